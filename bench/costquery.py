"""Seed 000's cost query on a big ai_action_logs table, without and with the index the
README recommends. A scratch database is created on the server and dropped after.

    .venv/bin/python bench/costquery.py [--rows 1000000] [--days 60] [--runs 7] [--server postgresql://127.0.0.1/postgres]

Prints median / min / max ms per query and the ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg

QUERY = "SELECT SUM(token_usage * 0.00002) FROM ai_action_logs WHERE created_at >= CURRENT_DATE"
INDEX = "CREATE INDEX ai_action_logs_created_at ON ai_action_logs (created_at) INCLUDE (token_usage)"


def timed(conn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.execute(QUERY).fetchone()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--server", default="postgresql://127.0.0.1/postgres")
    args = p.parse_args()
    name = f"cockpit_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(args.server)._replace(path=f"/{name}"))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE ai_action_logs (id bigserial PRIMARY KEY, token_usage int, "
                         "created_at timestamptz NOT NULL, payload text)")
            t0 = time.perf_counter()
            conn.execute("INSERT INTO ai_action_logs (token_usage, created_at, payload) "
                         "SELECT (random() * 4000)::int, now() - random() * %s * interval '1 day', "
                         "repeat('x', 100) FROM generate_series(1, %s)", (args.days, args.rows))
            conn.execute("VACUUM ANALYZE ai_action_logs")
            load = time.perf_counter() - t0
            today = conn.execute("SELECT count(*) FROM ai_action_logs WHERE created_at >= CURRENT_DATE").fetchone()[0]
            timed(conn, 1)  # warm the cache
            without = timed(conn, args.runs)
            conn.execute(INDEX)
            conn.execute("ANALYZE ai_action_logs")
            timed(conn, 1)
            with_index = timed(conn, args.runs)
            plan = conn.execute("EXPLAIN " + QUERY).fetchall()
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    m0, m1 = statistics.median(without), statistics.median(with_index)
    print(f"cost query bench: {args.rows:,} rows over {args.days} days ({today:,} today), loaded in {load:.1f} s, "
          f"{args.runs} runs each")
    print(f"  without index   median {m0:8.2f} ms  min {min(without):8.2f}  max {max(without):8.2f}")
    print(f"  with index      median {m1:8.2f} ms  min {min(with_index):8.2f}  max {max(with_index):8.2f}")
    print(f"  ratio without/with: {m0 / m1:.1f}x   index: {INDEX}")
    print("  plan with index: " + " / ".join(r[0].strip() for r in plan[:3]))


if __name__ == "__main__":
    main()
