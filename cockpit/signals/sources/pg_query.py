"""`pg_query`: SQL answering one number per series (seed 000's cost today).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cockpit.configmodel import SourceBase, _check_database, _check_queries
from cockpit.model import Reading, Status
from cockpit.signals.sources._pg import _one_line, _PgSource


class PgQuerySource(SourceBase):
    """PostgreSQL queries each answering one number, e.g. seed 000's cost today:
    SELECT SUM(token_usage * 0.00002) FROM ai_action_logs WHERE created_at >= CURRENT_DATE."""

    kind: Literal["pg_query"]
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    queries: dict[str, str] = Field(min_length=1, description="Series name -> SQL answering one number "
                                    "(NULL reads as no data).")
    statement_timeout: float = Field(5.0, gt=0, le=600, description="Seconds before the database cancels a query.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))

    _queries = field_validator("queries")(classmethod(lambda cls, v: _check_queries(v)))

    def series_names(self) -> list[str]:
        return list(self.queries)


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


CONFIG = PgQuerySource
SOURCE = PgQuery
