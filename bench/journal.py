"""Journal throughput: N durable appends, one by one (each committed before append returns)
and in batches (``append_many``: one commit per batch), a full chain verification and the
postmortem, median of several runs. Prints figures; asserts nothing.

    .venv/bin/python bench/journal.py [--events 10000] [--batch 100] [--runs 5] [--durability normal|full]
    .venv/bin/python bench/journal.py --postgres postgresql://127.0.0.1/postgres   # the shared journal
                                      (a scratch database is created on that server and dropped)

With --postgres it also prints the server's floor for a commit per event: the same number
of one-row INSERTs, each committed, nothing else (no hash, no heads, no lock, no NOTIFY).

Targets (issue 3, issue 15): 10,000 durable events appended in <= 2 s; the postmortem of
a 10,000-event incident in <= 0.5 s (read, fold and render Markdown).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import report  # noqa: E402  (bench/ is on sys.path when a script here runs)
from cockpit.incident.state import fold  # noqa: E402
from cockpit.incident.journal import HeadsFile, Journal, NewEvent, SQLiteJournal  # noqa: E402
from cockpit.incident.postmortem import to_markdown  # noqa: E402

INCIDENT = "INC-BENCH"


@contextmanager
def sqlite_journal(durability: str) -> Iterator[Journal]:
    with tempfile.TemporaryDirectory() as d:
        yield SQLiteJournal(Path(d) / "journal.db", durability=durability)


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """The URL of a fresh database on the admin URL's server, dropped afterwards."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"cockpit_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def postgres_journal(admin_url: str) -> Iterator[Journal]:
    from cockpit.incident.pgjournal import PostgresJournal

    with scratch_database(admin_url) as url, tempfile.TemporaryDirectory() as d:
        j = PostgresJournal(url)
        j.heads = HeadsFile(Path(d) / "pg.heads")  # not in the user's data folder
        yield j


def events(n: int) -> Iterator[tuple[str, dict]]:
    """The bench's incident: a declaration, then notes, alerts and snapshots."""
    yield "incident_declared", {"title": "bench", "auto": True}
    kinds = ("note", "alert_raised", "metrics_snapshot", "note")
    for i in range(n - 1):
        kind = kinds[i % 4]
        yield kind, ({"text": f"note {i}: error rate 12.3%, p95 1.4 s"} if kind == "note" else
                     {"signal": "error rate", "level": "CRIT", "text": f"error rate CRIT {i}"}
                     if kind == "alert_raised" else {"error_rate": 0.1 + i % 7 / 100, "cost_per_day": 120.0})


def append_all(j: Journal, n: int, batch: int) -> None:
    """Every event with ``append`` (batch 1) or ``append_many``, ``batch`` events a commit."""
    if batch == 1:
        for kind, payload in events(n):
            j.append(INCIDENT, kind, payload)
        return
    todo = [NewEvent(INCIDENT, kind, payload) for kind, payload in events(n)]
    for start in range(0, n, batch):
        j.append_many(todo[start:start + batch])


def one_run(n: int, batch: int, opened) -> tuple[float, float, float]:
    with opened as j:
        t0 = time.perf_counter()
        append_all(j, n, batch)
        appended = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert j.verify(INCIDENT) == []
        verified = time.perf_counter() - t0
        t0 = time.perf_counter()
        text = to_markdown(fold(INCIDENT, j.events(INCIDENT)), time.time())
        exported = time.perf_counter() - t0
        assert "## Appendix: full event log" in text
        j.close()
    return appended, verified, exported


def commit_floor(admin_url: str, n: int) -> dict[str, float]:
    """Seconds for ``n`` of each, on this server and connection, before the journal does
    anything: ``commit`` one-row INSERTs, each committed and each answer awaited (what one
    commit per event costs); ``pipelined`` the same INSERTs, each its own commit, sent
    without waiting for the answers (psycopg's pipeline mode: the server's work alone);
    ``round_trip`` ``SELECT 1``s, each answer awaited (the wait alone, no commit)."""
    import psycopg

    with scratch_database(admin_url) as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE floor (seq BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)")
        t0 = time.perf_counter()
        for i in range(n):
            conn.execute("INSERT INTO floor (payload) VALUES (%s)", (f"event {i}",))
        commit = time.perf_counter() - t0
        t0 = time.perf_counter()
        with conn.pipeline():
            for i in range(n):
                conn.execute("INSERT INTO floor (payload) VALUES (%s)", (f"event {i}",))
        pipelined = time.perf_counter() - t0
        assert conn.execute("SELECT count(*) FROM floor").fetchone()[0] == 2 * n
        t0 = time.perf_counter()
        for _ in range(n):
            conn.execute("SELECT 1").fetchone()
        round_trip = time.perf_counter() - t0
        return {"commit": commit, "pipelined": pipelined, "round_trip": round_trip}


def line(label: str, values: list[float], extra: str = "") -> str:
    return (f"  {label:<32}median {statistics.median(values):.2f} s  min {min(values):.2f}  max {max(values):.2f}"
            + extra)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=100, help="events per append_many (one commit each)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--durability", choices=("normal", "full"), default="normal")
    p.add_argument("--postgres", metavar="ADMIN_URL", help="bench the shared PostgreSQL journal on this server")
    args = p.parse_args()

    def opened():
        return postgres_journal(args.postgres) if args.postgres else sqlite_journal(args.durability)

    single, batched, floor = [], [], []
    for _ in range(args.runs):  # interleaved, so a noisy moment hits every figure alike
        single.append(one_run(args.events, 1, opened()))
        batched.append(one_run(args.events, args.batch, opened())[0])
        if args.postgres:
            floor.append(commit_floor(args.postgres, args.events))
    app = [r[0] for r in single]
    per_event = f"  ({statistics.median(app) / args.events * 1e6:.0f} us/event)"
    where = "PostgreSQL (shared, a NOTIFY per commit)" if args.postgres else f"SQLite WAL, durability={args.durability}"
    print(f"journal bench: {args.events} events, {args.runs} runs, {where}")
    print(line("append (committed each)", app, per_event + "   target <= 2 s for 10,000"))
    print(line(f"append_many ({args.batch} a commit)", batched,
               f"  ({statistics.median(batched) / args.events * 1e6:.0f} us/event)"))
    if floor:
        def us(key: str) -> str:
            return f"{statistics.median(f[key] for f in floor) / args.events * 1e6:.0f} us each"

        print(line("floor: bare INSERT, committed", [f["commit"] for f in floor],
                   f"  ({us('commit')}: a commit per event, each answer awaited, nothing else)"))
        print(line("  the same, pipelined", [f["pipelined"] for f in floor],
                   f"  ({us('pipelined')}: the server's commits alone, no answer awaited)"))
        print(line("  SELECT 1, answer awaited", [f["round_trip"] for f in floor],
                   f"  ({us('round_trip')}: the wait for an answer alone, no commit)"))
    print(line("verify chain", [r[1] for r in single]))
    print(line("postmortem (Markdown)", [r[2] for r in single], "   target <= 0.5 s for 10,000"))
    store = "pg" if args.postgres else "sqlite"
    report("journal", {"events": args.events, "batch": args.batch, f"{store}_append_s": statistics.median(app),
                       f"{store}_append_many_s": statistics.median(batched),
                       **({f"pg_floor_{key}_s": statistics.median(f[key] for f in floor)
                          for key in ("commit", "pipelined", "round_trip")} if floor else {})})


if __name__ == "__main__":
    main()
