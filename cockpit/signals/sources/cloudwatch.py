"""`cloudwatch`: GetMetricData for every series in one call, metric math included; each
series reads its newest complete datapoint in the lookback window. Credential and
permission problems are one line on the panel (cockpit.aws.describe).

Only complete periods are read: the query ends at the last period boundary (periods are
aligned to the epoch, so a 300 s period is a clock's five minutes), and a datapoint whose
period has not ended is dropped, because the newest period is still being filled (a Sum
over a 60 s period that is 10 s old reads a sixth of the truth). A reading's time (``ts``:
the chart, the tape, the timeline) is the end of its period, never the poll's moment nor
the period's start that CloudWatch stamps; its arrival (``received``, what the panel's
"updated ... ago" and staleness measure) is the poll's, so a 5-minute period polled every
minute does not read as stale between its datapoints, and the detail says the data's own
age once it is 2 minutes or more. The first poll also loads ``backfill`` seconds of
earlier datapoints (in the same call) so the sparkline starts full, each at its own time;
those readings are marked as history and never raise alerts. `cockpit check` loads none.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cockpit import aws
from cockpit.configmodel import AwsSettings, Model, SourceBase, _check_queries
from cockpit.model import Reading, Status
from cockpit.signals.sources._base import Source, SourceError


class CloudWatchMetric(Model):
    """One series from CloudWatch: a metric with a statistic, or metric math over the others."""

    namespace: str | None = Field(None, description="e.g. AWS/ApiGateway, AWS/Lambda, AWS/SQS.")
    metric: str | None = Field(None, description="e.g. 5XXError, Errors, Duration, ApproximateNumberOfMessagesVisible.")
    dimensions: dict[str, str] = Field(default_factory=dict, description="e.g. {FunctionName = \"ai-core\"}.")
    stat: str = Field("Sum", description="Sum, Average, Maximum, Minimum, SampleCount or a percentile like p95.")
    expression: str | None = Field(None, description="Metric math over the other series' names instead of a metric, "
                                   "e.g. \"errors / requests\".")
    scale: float = Field(1.0, description="Multiply the value, e.g. 0.001 to turn milliseconds into seconds.")

    @model_validator(mode="after")
    def _one_of(self):
        if (self.expression is None) == (self.metric is None):
            raise ValueError("give either metric (with namespace) or expression")
        if self.metric is not None and not self.namespace:
            raise ValueError("a metric needs its namespace")
        if not re.fullmatch(r"Sum|Average|Maximum|Minimum|SampleCount|p\d{1,2}(\.\d+)?", self.stat):
            raise ValueError(f"unknown statistic {self.stat!r}")
        return self


class CloudWatchSource(SourceBase):
    """CloudWatch GetMetricData (one call for every series, metric math included): the newest datapoint
    of a complete period of each in the last ``lookback`` seconds, stamped with the end of its period
    (the period still being filled is never read). At start-up the last ``backfill`` seconds fill the
    sparkline."""

    kind: Literal["cloudwatch"]
    metrics: dict[str, CloudWatchMetric] = Field(min_length=1, description="Series name -> metric or expression.")
    period: int = Field(60, ge=1, le=86400, description="Seconds per datapoint (CloudWatch's Period).")
    lookback: float = Field(900.0, gt=0, le=86400 * 14, description="How far back to look for the newest datapoint.")
    backfill: float = Field(3600.0, ge=0, le=86400 * 14, description="Seconds of datapoints loaded at start-up "
                            "(in the first poll's call) so the sparkline starts full, each at the end of its "
                            "period; at most 1,440 per series (0: none).")
    interval: float = Field(60.0, ge=1, le=86400, description="Seconds between polls (each poll is a billed call).")
    timeout: float = Field(10.0, ge=0.05, le=600, description="Seconds before a poll is abandoned.")
    aws: AwsSettings | None = Field(None, description="AWS settings (default: the top-level [aws]).")

    @field_validator("metrics")
    @classmethod
    def _names(cls, v: dict) -> dict:
        _check_queries({k: "x" for k in v})
        return v

    uses_aws: ClassVar[bool] = True

    def series_names(self) -> list[str]:
        return list(self.metrics)


def _query_id(name: str) -> str:
    """GetMetricData ids start with a lower-case letter: series names already do."""
    return re.sub(r"[^a-z0-9_]", "_", name)


MAX_HISTORY = 1440  # datapoints per series loaded at start-up (a day of minutes)
HISTORY_TRIES = 3  # first polls that ask for the history too, while none has been answered


class CloudWatch(Source):
    kind = "cloudwatch"

    def __init__(self, cfg, ctx) -> None:
        super().__init__(cfg, ctx)
        self._backfilled = cfg.backfill <= 0
        self._history_tries = 0

    def checking(self) -> None:
        self._backfilled = True  # `cockpit check` asks for the value now, not the last hour

    @property
    def deadline(self) -> float:
        # the first poll's call also carries the history
        return self.timeout * (1 if self._backfilled else 2)

    def _queries(self) -> list[dict]:
        out = []
        for name, m in self.cfg.metrics.items():
            q: dict = {"Id": _query_id(name), "ReturnData": True}
            if m.expression is not None:
                q["Expression"] = m.expression
            else:
                q["MetricStat"] = {"Metric": {"Namespace": m.namespace, "MetricName": m.metric,
                                              "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions.items()]},
                                   "Period": self.cfg.period, "Stat": m.stat}
            out.append(q)
        return out

    def window(self, now: float, history: bool) -> tuple[float, float]:
        """(start, end) in epoch seconds of the call made at ``now``: ``end`` is the last
        period boundary (the period under way is never asked for), ``start`` whole periods
        before it, far enough for the lookback and, with ``history``, the backfill."""
        period = self.cfg.period
        end = math.floor(now / period) * period
        span = self.cfg.lookback
        if history:
            span = max(span, min(self.cfg.backfill, period * MAX_HISTORY))
        return end - math.ceil(span / period) * period, end

    def _poll(self, start: float, end: float) -> dict[str, list[tuple[float, float]]]:
        """Each series' complete datapoints as (end of period, value), oldest first."""
        cw = aws.client("cloudwatch", self.cfg.aws)
        results: dict[str, dict] = {}
        token = None
        try:
            while True:
                page = cw.get_metric_data(MetricDataQueries=self._queries(),
                                          StartTime=datetime.fromtimestamp(start, timezone.utc),
                                          EndTime=datetime.fromtimestamp(end, timezone.utc),
                                          ScanBy="TimestampDescending", **({"NextToken": token} if token else {}))
                for r in aws.field(page, "MetricDataResults"):
                    got = results.setdefault(r["Id"], {"ts": [], "values": []})
                    got["ts"] += r.get("Timestamps", [])
                    got["values"] += r.get("Values", [])
                token = page.get("NextToken")
                if not token:
                    break
        except Exception as e:  # noqa: BLE001
            raise SourceError(aws.failed(e, "cloudwatch:GetMetricData")) from None
        period = self.cfg.period
        out = {}
        for name, m in self.cfg.metrics.items():
            got = results.get(_query_id(name)) or {"ts": [], "values": []}
            points = {}
            for at, value in zip(got["ts"], got["values"]):
                closes = at.timestamp() + period  # CloudWatch stamps a datapoint with its period's start
                if closes <= end and math.isfinite(value):  # a period not over yet is not read
                    points[closes] = value * m.scale
            out[name] = sorted(points.items())
        return out

    async def fetch(self) -> list[Reading]:
        clock = self.ctx.clock
        history = not self._backfilled
        self._history_tries += history
        if self._history_tries >= HISTORY_TRIES:
            self._backfilled = True  # a history that never arrives in time is given up, not retried forever
        asked = clock.now()
        start, end = self.window(asked, history)
        results = await self.in_thread(self._poll, start, end)
        self._backfilled = True
        now, mono = clock.now(), clock.monotonic()
        live_from = self.window(asked, False)[0] + self.cfg.period  # the end of the lookback's first period
        past: list[Reading] = []
        out = []
        for name, points in results.items():
            if points and points[-1][0] >= live_from:
                at, value = points[-1]
                age = max(0.0, now - at)  # since its period ended
                out.append(Reading(self.name, name, at, value, received=mono,
                                   detail=f"datapoint {age / 60:.0f} min old" if age >= 120 else ""))
                points = points[:-1]
            else:
                out.append(Reading(self.name, name, now, None, Status.ERROR,
                                   f"{name}: no datapoints in the last {self.cfg.lookback / 60:g} min", received=mono))
            if history:
                older = [(at, v) for at, v in points if at > end - self.cfg.backfill][-MAX_HISTORY:]
                past += [Reading(self.name, name, at, v, received=mono - (now - at), history=True) for at, v in older]
        return sorted(past, key=lambda r: r.ts) + out


CONFIG = CloudWatchSource
SOURCE = CloudWatch
