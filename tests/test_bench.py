"""The benchmark scripts still run (tiny sizes; their figures are not checked here:
timings are not pass/fail). They broke once silently when the demo config grew."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize("script, args, prints", [
    ("tick.py", ["--components", "20", "--samples", "10", "--rounds", "3"], "after a poll"),
    ("journal.py", ["--events", "200", "--runs", "1"], "append (committed each)"),
    ("startup.py", ["--runs", "1"], "ratio ours/bare"),
    ("costquery.py", ["--rows", "2000", "--runs", "2"], "ratio without/with"),
    ("endpoints.py", ["--endpoints", "20", "--rounds", "1"], "ratio"),
    ("tape.py", ["--hours", "0.02", "--series", "5", "--runs", "1"], "open + seek"),
    ("replay.py", ["--components", "6", "--minutes", "2", "--ticks", "3"], "tick (decode"),
    ("config.py", ["--runs", "1"], "kind modules imported: {every_kind}"),
    ("soak.py", ["--hours", "0.2", "--types", "--top", "3"], "ratio"),
])
def test_bench_script_runs(script, args, prints):
    out = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300,
                         cwd=BENCH.parent)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    from cockpit import kinds

    assert prints.format(every_kind=len(kinds.source_kinds()) + len(kinds.action_kinds())) in out.stdout


def test_all_prints_every_figure_beside_its_goal():
    """bench/all.py runs each bench (tiny sizes here) and prints one table of figures and goals."""
    out = subprocess.run([sys.executable, str(BENCH / "all.py"), "--smoke"], capture_output=True, text=True,
                         timeout=900, cwd=BENCH.parent)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "FAILED" not in out.stdout, out.stdout
    for figure in ("dashboard first paint vs bare Textual app", "dashboard painted with data", "import cockpit.cli",
                   "tick (b)", "tick (c)", "RSS over", "PostgreSQL journal", "per transaction",
                   "validating the config", "waiting for answers", "pipelined"):
        assert figure in out.stdout, out.stdout
