"""`pg_health`: a database as a row of the components table (seed 004): connections used
against max_connections, queries running too long, blocked queries.
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
    """A PostgreSQL database as a component (seed 004's checks): connections used against
    max_connections, queries running longer than ``long_query_after``, blocked queries."""

    kind: Literal["pg_health"]
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    component: str = Field("database", description="Its name in the components table.")
    long_query_after: float = Field(300.0, gt=0, description="Seconds after which a running query counts as "
                                    "long (seed 004: 5 minutes).")
    connections_warn: float = Field(0.8, gt=0, le=1, description="Share of max_connections in use that is degraded.")
    connections_crit: float = Field(0.95, gt=0, le=1, description="Share of max_connections in use that is "
                                    "unhealthy.")
    statement_timeout: float = Field(5.0, gt=0, le=600, description="Seconds before the database cancels a check.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))

    @property
    def components(self) -> list[str]:
        return [self.component]

    feeds: ClassVar[str] = "components"

    def series_names(self) -> list[str]:
        return [f"component/{self.component}", "connections_ratio", "long_queries", "blocked_queries"]

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



summarize = summarize_components  # what `cockpit check` says of it
CONFIG = PgHealthSource
SOURCE = PgHealth
