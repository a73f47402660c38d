"""What the benchmark scripts share."""

from __future__ import annotations

import subprocess
from pathlib import Path


def checkout_state(root: Path) -> str:
    """HEAD and how many tracked files differ from it (figures depend on the working tree)."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (f" + {len(dirty)} modified tracked files" if dirty else " (clean)")


def report(bench: str, figures: dict) -> None:
    """Hand this bench's headline figures to bench/all.py (a JSON line appended to the file
    named by BENCH_FIGURES); nothing happens when a bench is run by itself."""
    import json
    import os

    path = os.environ.get("BENCH_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"bench": bench, **figures}) + "\n")
