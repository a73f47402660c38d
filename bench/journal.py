"""Journal throughput: N durable appends (each committed before append returns) and a
full chain verification, median of several runs. Prints figures; asserts nothing.

    .venv/bin/python bench/journal.py [--events 10000] [--runs 5] [--durability normal|full]

Target (issue 3): 10,000 durable events appended in <= 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cockpit.journal import SQLiteJournal  # noqa: E402


def one_run(n: int, durability: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        j = SQLiteJournal(Path(d) / "journal.db", durability=durability)
        t0 = time.perf_counter()
        for i in range(n):
            j.append("INC-BENCH", "note", {"text": f"note {i}: error rate 12.3%, p95 1.4 s"})
        appended = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert j.verify("INC-BENCH") == []
        verified = time.perf_counter() - t0
        j.close()
    return appended, verified


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--durability", choices=("normal", "full"), default="normal")
    args = p.parse_args()
    runs = [one_run(args.events, args.durability) for _ in range(args.runs)]
    app = [r[0] for r in runs]
    ver = [r[1] for r in runs]
    print(f"journal bench: {args.events} events, {args.runs} runs, SQLite WAL, durability={args.durability}")
    print(f"  append (committed each)  median {statistics.median(app):.2f} s  min {min(app):.2f}  max {max(app):.2f}"
          f"  ({statistics.median(app) / args.events * 1e6:.0f} us/event)   target <= 2 s for 10,000")
    print(f"  verify chain             median {statistics.median(ver):.2f} s  min {min(ver):.2f}  max {max(ver):.2f}")


if __name__ == "__main__":
    main()
