"""Journal throughput: N durable appends (each committed before append returns) and a
full chain verification, median of several runs. Prints figures; asserts nothing.

    .venv/bin/python bench/journal.py [--events 10000] [--runs 5] [--durability normal|full]

Targets (issue 3): 10,000 durable events appended in <= 2 s; the postmortem of a
10,000-event incident in <= 0.5 s (read, fold and render Markdown).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cockpit.incident import fold  # noqa: E402
from cockpit.journal import SQLiteJournal  # noqa: E402
from cockpit.postmortem import to_markdown  # noqa: E402


def one_run(n: int, durability: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        j = SQLiteJournal(Path(d) / "journal.db", durability=durability)
        t0 = time.perf_counter()
        j.append("INC-BENCH", "incident_declared", {"title": "bench", "auto": True})
        kinds = ("note", "alert_raised", "metrics_snapshot", "note")
        for i in range(n - 1):
            kind = kinds[i % 4]
            payload = ({"text": f"note {i}: error rate 12.3%, p95 1.4 s"} if kind == "note" else
                       {"signal": "error rate", "level": "CRIT", "text": f"error rate CRIT {i}"}
                       if kind == "alert_raised" else {"error_rate": 0.1 + i % 7 / 100, "cost_per_day": 120.0})
            j.append("INC-BENCH", kind, payload)
        appended = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert j.verify("INC-BENCH") == []
        verified = time.perf_counter() - t0
        t0 = time.perf_counter()
        text = to_markdown(fold("INC-BENCH", j.events("INC-BENCH")), time.time())
        exported = time.perf_counter() - t0
        assert "## Appendix: full event log" in text
        j.close()
    return appended, verified, exported


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--durability", choices=("normal", "full"), default="normal")
    args = p.parse_args()
    runs = [one_run(args.events, args.durability) for _ in range(args.runs)]
    app = [r[0] for r in runs]
    ver = [r[1] for r in runs]
    exp = [r[2] for r in runs]
    print(f"journal bench: {args.events} events, {args.runs} runs, SQLite WAL, durability={args.durability}")
    print(f"  append (committed each)  median {statistics.median(app):.2f} s  min {min(app):.2f}  max {max(app):.2f}"
          f"  ({statistics.median(app) / args.events * 1e6:.0f} us/event)   target <= 2 s for 10,000")
    print(f"  verify chain             median {statistics.median(ver):.2f} s  min {min(ver):.2f}  max {max(ver):.2f}")
    print(f"  postmortem (Markdown)    median {statistics.median(exp):.2f} s  min {min(exp):.2f}  max {max(exp):.2f}"
          "   target <= 0.5 s for 10,000")


if __name__ == "__main__":
    main()
