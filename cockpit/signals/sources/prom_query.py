"""`prom_query`: the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`).

Each configured series is one PromQL expression that must answer one number. What
it answers instead is said plainly on the panel: no series ("add `or vector(0)` if
none means zero"), several series ("aggregate with sum() or max()"), NaN, or the
PromQL error Prometheus gave. The first poll also loads ``backfill`` seconds of
history with range queries so the sparklines start full; those readings are marked
as history and never raise alerts.

A live reading is stamped with the time Prometheus evaluated the query (the timestamp in
its answer), not when the answer arrived: under load that comes a second or more later.
A timestamp outside the request's own span by more than CLOCK_TOLERANCE (a server whose
clock is off, or a hostile one) is not believed: the reading is stamped on arrival and
its detail says so; a smaller difference is clamped into the span.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import Field, field_validator

from cockpit.configmodel import SourceBase, _check_headers, _check_queries, _check_url
from cockpit.model import Reading, Status
from cockpit.signals.sources._base import Source, SourceError
from cockpit.signals.sources._changes import build_versions
from cockpit.signals.sources._http import resolve_headers

MAX_BYTES = 4 * 1024 * 1024
MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series
#: seconds an evaluation time may lie outside [request sent, answer received] (clock skew)
#: and still be believed (then clamped into that span)
CLOCK_TOLERANCE = 5.0


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise SourceError(f"Prometheus answered a value that is not a number: {str(text)[:40]!r}") from None


class PromQuerySource(SourceBase):
    """The Prometheus HTTP API: one PromQL query per series, each answering one number
    (seed 001: sum(rate(http_errors_total[5m])), histogram_quantile(0.95, ...)). At
    start-up a range query fills the sparklines with the recent past."""

    kind: Literal["prom_query"]
    url: str = Field(description="Prometheus base URL, e.g. http://prometheus:9090 (the API is under /api/v1).")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    queries: dict[str, str] = Field(min_length=1, description="Series name -> PromQL answering one number, e.g. "
                                    "error_rate = \"sum(rate(http_errors_total[5m])) / "
                                    "sum(rate(http_requests_total[5m]))\".")
    changes: str | None = Field(None, description="PromQL whose series carry versions in their labels, e.g. "
                                "'{__name__=~\".+_build_info\"}': a series whose version (or revision) label changes is "
                                "a change on the timeline (a deploy).")
    backfill: float = Field(3600.0, ge=0, le=7 * 86400, description="Seconds of history loaded at start-up "
                            "with a range query (0: none).")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))

    _queries = field_validator("queries")(classmethod(lambda cls, v: _check_queries(v)))

    def series_names(self) -> list[str]:
        return list(self.queries)


class PromQuery(Source):
    kind = "prom_query"
    uses_http = True

    def __init__(self, cfg, ctx) -> None:
        super().__init__(cfg, ctx)
        self._backfilled = cfg.backfill <= 0

    def checking(self) -> None:
        self._backfilled = True  # `cockpit check` asks for the value now, not the last hour

    @property
    def deadline(self) -> float:
        # the first poll also runs the range queries
        return self.timeout * (1 if self._backfilled else 3)

    async def _api(self, path: str, params: dict[str, Any]) -> Any:
        cfg = self.cfg
        url = f"{cfg.url.rstrip('/')}/api/v1/{path}?{urlencode(params)}"
        headers = resolve_headers(cfg.headers, f"sources.{cfg.name}")
        answer = await self.ctx.get(url, headers, cfg.timeout, MAX_BYTES, truncate=False)
        try:
            doc = json.loads(answer.body)
        except ValueError:
            if not answer.ok:
                raise SourceError(f"HTTP {answer.status} {answer.reason}".strip()) from None
            raise SourceError("not a Prometheus answer (not JSON): is the URL its base URL?") from None
        if not isinstance(doc, dict) or doc.get("status") != "success":
            err = doc.get("error", "") if isinstance(doc, dict) else ""
            kind = doc.get("errorType", "") if isinstance(doc, dict) else ""
            raise SourceError(f"Prometheus {kind or 'error'}: {str(err)[:160]}" if err else
                              f"HTTP {answer.status} {answer.reason}".strip())
        data = doc.get("data") or {}
        if not isinstance(data, dict):
            raise SourceError("not a Prometheus answer (its data is not an object)")
        return data

    def _one(self, series: str, data: dict) -> tuple[float, Any]:
        """The one number a query answered and the evaluation time given with it (unchecked);
        an answer of another shape is one line, never a TypeError on the panel."""
        try:
            return self._number_of(series, data)
        except (TypeError, KeyError, IndexError, AttributeError):
            raise SourceError(f"{series}: not a Prometheus answer (a {data.get('resultType')!s:.20} "
                              "result of another shape)") from None

    def _number_of(self, series: str, data: dict) -> tuple[float, Any]:
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            at, value = result[0], _number(result[1])
        elif kind == "vector":
            if not result:
                raise SourceError(f"{series}: no data (add `or vector(0)` if none means zero)")
            if len(result) > 1:
                raise SourceError(f"{series}: {len(result)} series; aggregate the query with sum() or max()")
            at, value = result[0]["value"][0], _number(result[0]["value"][1])
        else:
            raise SourceError(f"{series}: the query answers a {kind}, not one number")
        if math.isnan(value):
            raise SourceError(f"{series}: NaN (a division by zero with no traffic?)")
        return value, at

    async def _instant(self, series: str, query: str) -> Reading:
        clock = self.ctx.clock
        sent, sent_mono = clock.now(), clock.monotonic()
        try:
            data = await self._api("query", {"query": query})
            value, at = self._one(series, data)
        except SourceError as e:
            return Reading(self.name, series, clock.now(), None, Status.ERROR, str(e), received=clock.monotonic())
        ts, received, detail = evaluated_at(at, sent, sent_mono, clock.now(), clock.monotonic())
        return Reading(self.name, series, ts, value, received=received, detail=detail)

    async def _history(self, series: str, query: str) -> list[Reading]:
        clock = self.ctx.clock
        now, mono = clock.now(), clock.monotonic()
        span = self.cfg.backfill
        step = max(self.cfg.interval, span / MAX_POINTS)
        try:
            data = await self._api("query_range", {"query": query, "start": f"{now - span:.3f}", "end": f"{now:.3f}",
                                                   "step": f"{step:g}"})
        except SourceError:
            return []  # no history is not an error: the live value still comes
        result = data.get("result") or []
        if data.get("resultType") != "matrix" or len(result) != 1:
            return []
        points = result[0].get("values", []) if isinstance(result[0], dict) else []
        out = []
        for point in points if isinstance(points, list) else []:
            try:  # a point that is not [time, "number"] is skipped: the rest of the history still comes
                ts, text = point
                ts, value = float(ts), float(text)
            except (TypeError, ValueError):
                continue
            if not (math.isfinite(ts) and math.isfinite(value)) or not now - span - 1 <= ts < now:
                continue
            out.append(Reading(self.name, series, ts, value, received=mono - (now - ts), history=True))
        return out

    async def fetch(self) -> list[Reading]:
        queries = self.cfg.queries
        history: list[Reading] = []
        if not self._backfilled:
            self._backfilled = True
            for part in await asyncio.gather(*(self._history(s, q) for s, q in queries.items())):
                history += part
        readings = list(await asyncio.gather(*(self._instant(s, q) for s, q in queries.items())))
        if all(not r.ok for r in readings) and len({r.error for r in readings}) == 1 and \
                not readings[0].error.startswith(tuple(queries)):
            raise SourceError(readings[0].error)  # the server, not a query: one error for the source
        return history + readings + (await self._versions(self.cfg.changes) if self.cfg.changes else [])

    async def _versions(self, query: str) -> list[Reading]:
        """The version each series ``query`` answers carries in its labels (a change when it
        changes); a query that fails or answers another shape says no change."""
        try:
            data = await self._api("query", {"query": query})
        except SourceError:
            return []
        result = data.get("result") if data.get("resultType") == "vector" else None
        infos = [(str(item["metric"].get("__name__", "")), {str(k): str(v) for k, v in item["metric"].items()})
                 for item in (result if isinstance(result, list) else [])
                 if isinstance(item, dict) and isinstance(item.get("metric"), dict)]
        return [self.change(where, now) for where, now in build_versions(infos)]


def evaluated_at(at: Any, sent: float, sent_mono: float, arrived: float,
                 arrived_mono: float) -> tuple[float, float, str]:
    """(wall time, monotonic time, detail) of a reading Prometheus evaluated at ``at`` (its
    answer's timestamp), for a request sent at ``sent`` whose answer arrived at ``arrived``
    (wall clock; ``*_mono`` the same moments on the monotonic clock, which ages use).

    The evaluation happened while the request was out, so a believable ``at`` is clamped
    into [sent, arrived], and the monotonic time is as far into the request's span: ages
    count from the evaluation, and no answer can make a reading look fresher than its
    arrival. An ``at`` that is not a finite number, or is more than CLOCK_TOLERANCE outside
    the span, is not believed: the arrival time is used and the detail says why."""
    try:
        t = float(at)
    except (TypeError, ValueError, OverflowError):
        t = math.nan
    if isinstance(at, (bool, str)) or not math.isfinite(t):
        return arrived, arrived_mono, "no evaluation time in Prometheus's answer; stamped on arrival"
    if t > arrived + CLOCK_TOLERANCE or t < sent - CLOCK_TOLERANCE:
        off = t - arrived if t > arrived else t - sent
        word = "ahead of" if off > 0 else "behind"
        return arrived, arrived_mono, (f"Prometheus's evaluation time is {abs(off):.0f}s {word} this "
                                       "clock; stamped on arrival")
    t = min(max(t, sent), arrived)
    span_mono = max(0.0, arrived_mono - sent_mono)
    return t, min(arrived_mono, sent_mono + min(t - sent, span_mono)), ""


CONFIG = PromQuerySource
SOURCE = PromQuery
