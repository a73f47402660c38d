"""PostgreSQL sources (psycopg 3, a connection per source kept between polls, every
call in a thread with a statement timeout):

- ``pg_query``: SQL answering one number per series (seed 000's cost today);
- ``pg_health``: the database as a component (seed 004): connections used against
  max_connections, queries running too long, blocked queries.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from typing import Any

from cockpit.model import Reading, Status
from cockpit.signals.sources.base import Source, SourceError
from cockpit.signals.sources.http import score


# libpq's wrapping of what went wrong: the panel has room for the cause only
_PG_NOISE = re.compile(r'^(connection failed: )?(connection to server (at|on) "[^"]*"(, port \d+)? failed: )?'
                       r'((FATAL|ERROR):\s+)?')


def _one_line(e: BaseException) -> str:
    """The cause in one short line: 'connection refused', 'role "x" does not exist'."""
    text = str(e).strip().splitlines()
    short = _PG_NOISE.sub("", text[0]).strip() if text else ""
    return short[:1].lower() + short[1:] if short else type(e).__name__


class _PgSource(Source):
    def __init__(self, cfg, ctx) -> None:
        super().__init__(cfg, ctx)
        self._conn = None
        self._lock = threading.Lock()

    def _url(self) -> str:
        from cockpit.config import SecretError, resolve_secret

        try:
            return resolve_secret(self.cfg.database, f"sources.{self.name}.database")
        except SecretError as e:
            raise SourceError(str(e)) from None

    def _connection(self):
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = psycopg.connect(self._url(), autocommit=True, connect_timeout=max(1, int(self.cfg.timeout)),
                                   application_name="cockpit")
            conn.execute(f"SET statement_timeout = {int(self.cfg.statement_timeout * 1000)}")
        except psycopg.Error as e:
            raise SourceError(f"cannot connect: {_one_line(e)}") from None
        self._conn = conn
        return conn

    def _run(self, fn) -> Any:
        """``fn(connection)`` in this thread; a broken connection is dropped for the next poll."""
        import psycopg

        with self._lock:
            conn = self._connection()
            try:
                return fn(conn)
            except psycopg.errors.QueryCanceled:
                raise SourceError(f"cancelled after {self.cfg.statement_timeout:g}s (statement_timeout)") from None
            except psycopg.OperationalError as e:
                self._drop()
                raise SourceError(_one_line(e)) from None

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self._conn = None

    def reset(self) -> None:
        """Forget the connection after a failed poll. Called on the event loop, so it never
        waits: when a poll is still stuck on the connection (a frozen server), its socket
        is shut down, which makes that poll fail at once and drop the connection itself."""
        if self._lock.acquire(blocking=False):
            try:
                self._drop()
            finally:
                self._lock.release()
            return
        conn = self._conn
        if conn is None:  # still connecting: connect_timeout ends it
            return
        try:
            with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001 - it closed meanwhile
            pass

    async def aclose(self) -> None:
        await asyncio.to_thread(self.reset)


class PgQuery(_PgSource):
    kind = "pg_query"

    def _poll(self) -> list[tuple[str, float | None, str]]:
        import psycopg

        def run(conn) -> list[tuple[str, float | None, str]]:
            out = []
            for series, sql in self.cfg.queries.items():
                try:
                    row = conn.execute(sql).fetchone()
                except psycopg.errors.QueryCanceled:
                    raise
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as e:
                    out.append((series, None, f"{series}: {_one_line(e)}"))
                    continue
                if row is None or len(row) != 1:
                    out.append((series, None, f"{series}: the query must answer one row with one column"))
                elif row[0] is None:
                    out.append((series, None, ""))  # NULL: no data (e.g. SUM over no rows today)
                else:
                    try:
                        out.append((series, float(row[0]), ""))
                    except (TypeError, ValueError):
                        out.append((series, None, f"{series}: answered {str(row[0])[:30]!r}, not a number"))
            return out

        return self._run(run)

    async def fetch(self) -> list[Reading]:
        results = await self.in_thread(self._poll)
        clock = self.ctx.clock
        out = []
        for series, value, error in results:
            if error:
                out.append(Reading(self.name, series, clock.now(), None, Status.ERROR, error,
                                   received=clock.monotonic()))
            else:
                out.append(self.reading(series, value, detail="" if value is not None else "no rows"))
        return out


HEALTH_SQL = """
SELECT count(*) FILTER (WHERE backend_type = 'client backend'),
       current_setting('max_connections')::int,
       count(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()
                        AND now() - query_start > make_interval(secs => %s)),
       count(*) FILTER (WHERE cardinality(pg_blocking_pids(pid)) > 0)
FROM pg_stat_activity
"""


class PgHealth(_PgSource):
    kind = "pg_health"

    async def fetch(self) -> list[Reading]:
        used, most, long_, blocked = await self.in_thread(
            self._run, lambda conn: conn.execute(HEALTH_SQL, (self.cfg.long_query_after,)).fetchone())
        cfg = self.cfg
        ratio = used / most if most else 0.0
        if ratio >= cfg.connections_crit:
            state = "unhealthy"
        elif ratio >= cfg.connections_warn or long_ or blocked:
            state = "degraded"
        else:
            state = "healthy"
        after = f"{cfg.long_query_after / 60:g}m" if cfg.long_query_after >= 60 else f"{cfg.long_query_after:g}s"
        detail = f"{used}/{most} connections · {long_} running > {after} · {blocked} blocked"
        return [self.reading(f"component/{cfg.component}", score(state), state=state, detail=detail),
                self.reading("connections_ratio", ratio), self.reading("long_queries", float(long_)),
                self.reading("blocked_queries", float(blocked))]
