"""`pg_query`: SQL answering one number per series (seed 000's cost today), in a session
whose settings the config fixes (TimeZone UTC unless said otherwise, so CURRENT_DATE is the
same day whatever the server's or the role's default), and counters read as per-second
rates between polls (TPS from pg_stat_database.xact_commit).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from cockpit.configmodel import SourceBase, _check_database, _check_queries
from cockpit.model import Reading, Status
from cockpit.signals.sources._pg import _one_line, _PgSource

#: a run-time parameter's name: a plain one (search_path) or a custom one (app.tenant)
SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*")
#: set by the source itself, not by ``settings``
OWN_SETTINGS = {"statement_timeout": "set by the source's own statement_timeout key, not here"}
DEFAULT_SETTINGS = {"TimeZone": "UTC"}

WARMING_UP = "warming up: a rate needs a second poll"


class PgQuerySource(SourceBase):
    """PostgreSQL queries each answering one number, e.g. seed 000's cost today:
    SELECT SUM(token_usage * 0.00002) FROM ai_action_logs WHERE created_at >= CURRENT_DATE.
    The session's TimeZone is UTC unless ``settings`` says otherwise. A query listed in
    ``rates`` answers a counter (e.g. TPS: SELECT xact_commit FROM pg_stat_database WHERE
    datname = current_database()); its series is the counter's per-second rate between polls."""

    kind: Literal["pg_query"]
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    queries: dict[str, str] = Field(min_length=1, description="Series name -> SQL answering one number "
                                    "(NULL reads as no data).")
    statement_timeout: float = Field(5.0, gt=0, le=600, description="Seconds before the database cancels a query.")
    settings: dict[str, str] = Field(
        default_factory=dict,
        description='Session settings, name -> value, given to each new connection with set_config() before any '
                    'query, e.g. { search_path = "app", lock_timeout = "1s" }. TimeZone is "UTC" unless set here, '
                    "so CURRENT_DATE is the same day whatever the server's or the role's default. A name the "
                    "server does not know, or a value it refuses, fails the poll with one line naming it.")
    rates: list[str] = Field(
        default_factory=list,
        description='Queries (names in `queries`) that answer a counter, e.g. ["tps"] for SELECT xact_commit FROM '
                    "pg_stat_database WHERE datname = current_database(): the series is the per-second rate "
                    'between two polls. The first poll gives no number ("warming up"), nor does a counter that '
                    "went down (a reset) or a window shorter than `min_rate_window`.")
    min_rate_window: float = Field(2.0, gt=0, le=3600, description="Seconds two samples must be apart for a rate "
                                   "between them; until then the earlier one stays the baseline. Backends report "
                                   "their counts to pg_stat_database about once a second, so a shorter window turns "
                                   "that jitter into wrong rates.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))

    _queries = field_validator("queries")(classmethod(lambda cls, v: _check_queries(v)))

    @field_validator("settings")
    @classmethod
    def _settings(cls, v: dict[str, str]) -> dict[str, str]:
        problems = []
        seen: dict[str, str] = {}
        for name, value in v.items():
            if not SETTING_NAME.fullmatch(name) or len(name) > 63:
                problems.append(f"{name!r} is not a setting name (letters, digits, '_', e.g. search_path "
                                "or app.tenant)")
            elif name.lower() in OWN_SETTINGS:
                problems.append(f"{name}: {OWN_SETTINGS[name.lower()]}")
            elif name.lower() in seen:
                problems.append(f"{seen[name.lower()]!r} and {name!r} are the same setting (names are "
                                "case-insensitive)")
            seen.setdefault(name.lower(), name)
            if "\x00" in value:
                problems.append(f"{name}: a value cannot hold a NUL character")
        if problems:
            raise ValueError("\n".join(problems))
        return v

    @field_validator("rates")
    @classmethod
    def _rates(cls, v: list[str], info: ValidationInfo) -> list[str]:
        import difflib

        queries = info.data.get("queries")
        if queries is None:  # queries is wrong itself: said there
            return v
        problems = []
        for name in v:
            if name not in queries:
                close = difflib.get_close_matches(name, list(queries), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; the queries are {', '.join(queries)}"
                problems.append(f"{name!r} is not one of the queries{hint}")
        if len(set(v)) != len(v):
            problems.append("each query may be listed once")
        if problems:
            raise ValueError("\n".join(problems))
        return v

    def session_settings(self) -> dict[str, str]:
        """The settings each session gets: TimeZone UTC, then the config's own (which win)."""
        out = {k: val for k, val in DEFAULT_SETTINGS.items() if k.lower() not in {n.lower() for n in self.settings}}
        return {**out, **self.settings}

    def series_names(self) -> list[str]:
        return list(self.queries)


class PgQuery(_PgSource):
    kind = "pg_query"

    def __init__(self, cfg, ctx) -> None:
        super().__init__(cfg, ctx)
        #: per counter: (value, monotonic time it was read) of the baseline sample
        self._counters: dict[str, tuple[float, float]] = {}
        self._warming = bool(cfg.rates)

    def session_settings(self) -> dict[str, str]:
        return self.cfg.session_settings()

    def next_delay(self) -> float:
        # a poll that only set a counter's baseline gives no rate: the next one comes as soon
        # as the window is long enough
        if self._warming:
            return min(self.interval, self.cfg.min_rate_window)
        return self.interval

    def reset(self) -> None:
        # after a failed poll a baseline would average the rate over the outage
        super().reset()
        self._counters = {}
        self._warming = bool(self.cfg.rates)

    def _rate(self, series: str, value: float, at: float) -> tuple[float | None, str]:
        """(per-second rate or None, why none) for a counter read at monotonic ``at``."""
        prev = self._counters.get(series)
        if prev is None:
            self._counters[series] = (value, at)
            return None, WARMING_UP
        before, since = prev
        window = at - since
        if value < before:  # restarted server, pg_stat_reset(): not a negative rate
            self._counters[series] = (value, at)
            return None, f"counter reset ({before:.6g} → {value:.6g}): rate again next poll"
        if window < self.cfg.min_rate_window:  # keep the older baseline: the next window is longer
            return None, f"window {window:.2g}s is shorter than {self.cfg.min_rate_window:g}s: no rate yet"
        self._counters[series] = (value, at)
        return (value - before) / window, ""

    def _poll(self) -> list[tuple[str, float | None, str, str]]:
        import psycopg

        clock = self.ctx.clock
        rates = set(self.cfg.rates)

        def run(conn) -> list[tuple[str, float | None, str, str]]:
            out = []
            for series, sql in self.cfg.queries.items():
                try:
                    row = conn.execute(sql).fetchone()
                except psycopg.errors.QueryCanceled:
                    raise
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as e:
                    self._counters.pop(series, None)
                    out.append((series, None, f"{series}: {_one_line(e)}", ""))
                    continue
                at = clock.monotonic()
                if row is None or len(row) != 1:
                    self._counters.pop(series, None)
                    out.append((series, None, f"{series}: the query must answer one row with one column", ""))
                elif row[0] is None:
                    self._counters.pop(series, None)
                    out.append((series, None, "", "no rows"))  # NULL: no data (e.g. SUM over no rows today)
                else:
                    try:
                        value = float(row[0])
                    except (TypeError, ValueError):
                        self._counters.pop(series, None)
                        out.append((series, None, f"{series}: answered {str(row[0])[:30]!r}, not a number", ""))
                        continue
                    if series in rates:
                        rate, why = self._rate(series, value, at)
                        out.append((series, rate, "", why))
                    else:
                        out.append((series, value, "", ""))
            return out

        results = self._run(run)
        self._warming = any(detail == WARMING_UP for _, _, _, detail in results)
        return results

    async def fetch(self) -> list[Reading]:
        results = await self.in_thread(self._poll)
        clock = self.ctx.clock
        out = []
        for series, value, error, detail in results:
            if error:
                out.append(Reading(self.name, series, clock.now(), None, Status.ERROR, error,
                                   received=clock.monotonic()))
            else:
                out.append(self.reading(series, value, detail=detail))
        return out


def summarize(readings: list[Reading]) -> tuple[bool, str]:
    """`cockpit check`: every series with its value, a rate still warming up said so, and
    every failing series with its own error."""
    live = [r for r in readings if not r.history]
    parts = []
    for r in live:
        if r.ok and r.value is not None:
            parts.append(f"{r.series} {r.value:.4g}")
        elif r.ok and r.detail == WARMING_UP:
            parts.append(f"{r.series}: warming up (a rate)")
        else:
            error = r.error or "no data"
            parts.append(error if error.startswith(f"{r.series}:") else f"{r.series}: {error}")
    return not any(r.status is Status.ERROR for r in live), ", ".join(parts) if parts else "no readings"


CONFIG = PgQuerySource
SOURCE = PgQuery
