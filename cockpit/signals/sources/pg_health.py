"""`pg_health`: a database as a row of the components table (seed 004): connections used
against the usable slots (on the URL's database and server-wide), queries running too long,
blocked queries and who holds their lock, sessions idle in a transaction.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from cockpit.configmodel import SourceBase, _check_database
from cockpit.model import Reading
from cockpit.signals.sources._base import summarize_components
from cockpit.signals.sources._http import score
from cockpit.signals.sources._pg import _PgSource


class PgHealthSource(SourceBase):
    """A PostgreSQL database as a component (seed 004's checks): connections used against the
    slots the application can use (max_connections less superuser_reserved_connections and,
    on PostgreSQL 16+, reserved_connections), on the URL's database and server-wide; queries
    running longer than ``long_query_after``; blocked queries and who holds the lock (pid,
    user, state, age, the head of its query); sessions idle in a transaction for longer than
    ``idle_in_transaction_after``."""

    kind: Literal["pg_health"]
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    component: str = Field("database", description="Its name in the components table.")
    long_query_after: float = Field(300.0, gt=0, description="Seconds after which a running query counts as "
                                    "long (seed 004: 5 minutes).")
    idle_in_transaction_after: float = Field(
        60.0, gt=0, description="Seconds after which a session idle in a transaction counts (it holds its locks "
        "and its snapshot; any counted makes the database degraded).")
    connections_warn: float = Field(0.8, gt=0, le=1, description="Share of the usable connections (max_connections "
                                    "less the reserved slots) in use that is degraded.")
    connections_crit: float = Field(0.95, gt=0, le=1, description="Share of the usable connections in use that is "
                                    "unhealthy.")
    statement_timeout: float = Field(5.0, gt=0, le=600, description="Seconds before the database cancels a check.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))

    @property
    def components(self) -> list[str]:
        return [self.component]

    feeds: ClassVar[str] = "components"

    def series_names(self) -> list[str]:
        return [f"component/{self.component}", "connections_ratio", "connections", "db_connections",
                "long_queries", "blocked_queries", "idle_in_transaction"]


# One statement, one snapshot of pg_stat_activity. pg_blocking_pids() only for sessions
# waiting on a lock (it takes the lock manager's locks: not for every session under load).
# The holder shown: one on this database first, then one not waiting itself (the head of
# the chain), then the one blocking most sessions, then the oldest transaction.
HEALTH_SQL = """
WITH a AS MATERIALIZED (
    SELECT pid, datname, usename, state, backend_type, query, query_start, xact_start, state_change,
           CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid) END AS blockers
    FROM pg_stat_activity),
waits AS MATERIALIZED (
    SELECT pid, unnest(blockers) AS holder FROM a WHERE cardinality(blockers) > 0),
holders AS MATERIALIZED (
    SELECT holder AS pid, count(DISTINCT pid) AS n FROM waits GROUP BY holder),
top AS (
    SELECT h.pid, a.usename, a.state,
           extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::float8 AS age,
           a.query, h.n
    FROM holders h LEFT JOIN a ON a.pid = h.pid
    ORDER BY (a.datname IS NOT DISTINCT FROM current_database()) DESC,
             (h.pid NOT IN (SELECT pid FROM waits)) DESC, h.n DESC, a.xact_start ASC NULLS LAST, h.pid
    LIMIT 1),
c AS (
    SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS used,
           count(*) FILTER (WHERE backend_type = 'client backend' AND datname = current_database()) AS on_db,
           count(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()
                            AND now() - query_start > make_interval(secs => %(long)s)) AS long,
           count(*) FILTER (WHERE cardinality(blockers) > 0) AS blocked,
           count(*) FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
                            AND now() - state_change > make_interval(secs => %(idle)s)) AS idle_tx
    FROM a)
SELECT c.used, c.on_db, current_database(),
       current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int,
       c.long, c.blocked, c.idle_tx, (SELECT count(*) FROM holders),
       top.pid, top.usename, top.state, top.age, top.query, top.n
FROM c LEFT JOIN top ON true
"""

#: how much of a lock holder's query the detail shows
QUERY_HEAD = 60


def query_head(text: str | None, limit: int = QUERY_HEAD) -> str:
    """The start of a query from pg_stat_activity, which is hostile text: on one line,
    sanitised and redacted (before it is cut, so a cut never leaves half a secret that the
    redactor can no longer recognise), then cut to ``limit`` characters."""
    from cockpit.safetext import clean

    if not text or not text.strip():
        return "(no query text)"
    head = clean(" ".join(text.split()), limit=max(limit, 4000))
    return head if len(head) <= limit else head[: limit - 1] + "…"


def _age(seconds: float | None) -> str:
    from cockpit.clock import format_age

    return format_age(seconds) if seconds is not None else "?"


def _after(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 60 else f"{seconds:g}s"


class PgHealth(_PgSource):
    kind = "pg_health"

    def _check(self):
        cfg = self.cfg

        def run(conn):
            row = conn.execute(HEALTH_SQL, {"long": cfg.long_query_after,
                                            "idle": cfg.idle_in_transaction_after}).fetchone()
            return self._names_database(), row

        return self._run(run)

    async def fetch(self) -> list[Reading]:
        named, row = await self.in_thread(self._check)
        (used, on_db, dbname, most, su_reserved, reserved, long_, blocked, idle_tx, holders,
         h_pid, h_user, h_state, h_age, h_query, h_n) = row
        cfg = self.cfg
        usable = max(1, most - su_reserved - reserved)
        ratio = used / usable
        if ratio >= cfg.connections_crit:
            state = "unhealthy"
        elif ratio >= cfg.connections_warn or long_ or blocked or idle_tx:
            state = "degraded"
        else:
            state = "healthy"
        conns = "connections: " + (f"{on_db} on {dbname} / " if named else "") + f"{used} of {usable} usable"
        if blocked and h_pid is not None:
            who = (f"{h_user}, {h_state or 'no state'}, {_age(h_age)}" if h_user is not None or h_state is not None
                   else "not in pg_stat_activity")
            more = f", +{holders - 1} more holder{'s' if holders > 2 else ''}" if holders > 1 else ""
            blocking = f"{blocked} blocked by pid {h_pid} ({who}{more}): {query_head(h_query)}"
        else:
            blocking = f"{blocked} blocked"
        parts = [(blocked, blocking), (idle_tx, f"{idle_tx} idle in transaction > {_after(cfg.idle_in_transaction_after)}"),
                 (long_, f"{long_} running > {_after(cfg.long_query_after)}")]
        # what is wrong first: the components table shows the start of the detail
        detail = " · ".join([p for n, p in parts if n] + [conns] + [p for n, p in parts if not n])
        return [self.reading(f"component/{cfg.component}", score(state), state=state, detail=detail),
                self.reading("connections_ratio", ratio), self.reading("connections", float(used)),
                self.reading("db_connections", float(on_db) if named else None,
                             detail="" if named else "the URL names no database"),
                self.reading("long_queries", float(long_)), self.reading("blocked_queries", float(blocked)),
                self.reading("idle_in_transaction", float(idle_tx))]


summarize = summarize_components  # what `cockpit check` says of it
CONFIG = PgHealthSource
SOURCE = PgHealth
