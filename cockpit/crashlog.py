"""Unexpected errors go to a log file, never as a traceback on the responder's screen."""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "cockpit"


def write(exc: BaseException, where: str) -> Path | None:
    """Append the traceback to the crash log; return its path (None if it cannot be written)."""
    from cockpit.safetext import clean

    path = state_dir() / "errors.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {where}\n")
            f.write(clean("".join(traceback.format_exception(exc)), lines=True, limit=100_000))  # no secret in a log
        return path
    except OSError:
        return None


def one_line(exc: BaseException) -> str:
    from cockpit.safetext import clean

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return clean(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, limit=300)
