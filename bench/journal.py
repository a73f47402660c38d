"""Journal throughput: N durable appends (each committed before append returns) and a
full chain verification, median of several runs. Prints figures; asserts nothing.

    .venv/bin/python bench/journal.py [--events 10000] [--runs 5] [--durability normal|full]
    .venv/bin/python bench/journal.py --postgres postgresql://127.0.0.1/postgres   # the shared journal
                                      (a scratch database is created on that server and dropped)

Targets (issue 3): 10,000 durable events appended in <= 2 s; the postmortem of a
10,000-event incident in <= 0.5 s (read, fold and render Markdown).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cockpit.incident.state import fold  # noqa: E402
from cockpit.incident.journal import SQLiteJournal  # noqa: E402
from cockpit.incident.postmortem import to_markdown  # noqa: E402


@contextmanager
def sqlite_journal(durability: str):
    with tempfile.TemporaryDirectory() as d:
        yield SQLiteJournal(Path(d) / "journal.db", durability=durability)


@contextmanager
def postgres_journal(admin_url: str):
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from cockpit.incident.pgjournal import PostgresJournal

    name = f"cockpit_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield PostgresJournal(urlunsplit(parts._replace(path=f"/{name}")))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def one_run(n: int, opened) -> tuple[float, float, float]:
    with opened as j:
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
    p.add_argument("--postgres", metavar="ADMIN_URL", help="bench the shared PostgreSQL journal on this server")
    args = p.parse_args()
    runs = [one_run(args.events, postgres_journal(args.postgres) if args.postgres else sqlite_journal(args.durability))
            for _ in range(args.runs)]
    app = [r[0] for r in runs]
    ver = [r[1] for r in runs]
    exp = [r[2] for r in runs]
    where = "PostgreSQL (shared, a commit and a NOTIFY per event)" if args.postgres else \
        f"SQLite WAL, durability={args.durability}"
    print(f"journal bench: {args.events} events, {args.runs} runs, {where}")
    print(f"  append (committed each)  median {statistics.median(app):.2f} s  min {min(app):.2f}  max {max(app):.2f}"
          f"  ({statistics.median(app) / args.events * 1e6:.0f} us/event)   target <= 2 s for 10,000")
    print(f"  verify chain             median {statistics.median(ver):.2f} s  min {min(ver):.2f}  max {max(ver):.2f}")
    print(f"  postmortem (Markdown)    median {statistics.median(exp):.2f} s  min {min(exp):.2f}  max {max(exp):.2f}"
          "   target <= 0.5 s for 10,000")


if __name__ == "__main__":
    main()
