"""`cloudwatch`: GetMetricData for every series in one call, metric math included; each
series reads its newest datapoint in the lookback window. Credential and permission
problems are one line on the panel (cockpit.aws.describe).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
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
    of each in the last ``lookback`` seconds."""

    kind: Literal["cloudwatch"]
    metrics: dict[str, CloudWatchMetric] = Field(min_length=1, description="Series name -> metric or expression.")
    period: int = Field(60, ge=1, le=86400, description="Seconds per datapoint (CloudWatch's Period).")
    lookback: float = Field(900.0, gt=0, le=86400 * 14, description="How far back to look for the newest datapoint.")
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


class CloudWatch(Source):
    kind = "cloudwatch"

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

    def _poll(self) -> dict[str, tuple[float | None, float | None, str]]:
        cw = aws.client("cloudwatch", self.cfg.aws)
        end = datetime.now(timezone.utc)
        start = end - timedelta(seconds=self.cfg.lookback)
        results: dict[str, dict] = {}
        token = None
        try:
            while True:
                page = cw.get_metric_data(MetricDataQueries=self._queries(), StartTime=start, EndTime=end,
                                          ScanBy="TimestampDescending", **({"NextToken": token} if token else {}))
                for r in aws.field(page, "MetricDataResults"):
                    got = results.setdefault(r["Id"], {"ts": [], "values": [], "status": r.get("StatusCode", "")})
                    got["ts"] += r.get("Timestamps", [])
                    got["values"] += r.get("Values", [])
                token = page.get("NextToken")
                if not token:
                    break
        except Exception as e:  # noqa: BLE001
            raise SourceError(aws.failed(e, "cloudwatch:GetMetricData")) from None
        out = {}
        for name, m in self.cfg.metrics.items():
            got = results.get(_query_id(name))
            if not got or not got["values"]:
                out[name] = (None, None, f"{name}: no datapoints in the last {self.cfg.lookback / 60:g} min")
                continue
            newest = max(range(len(got["ts"])), key=lambda i: got["ts"][i])
            out[name] = (got["values"][newest] * m.scale, got["ts"][newest].timestamp(), "")
        return out

    async def fetch(self) -> list[Reading]:
        results = await self.in_thread(self._poll)
        clock = self.ctx.clock
        out = []
        for name, (value, at, error) in results.items():
            if error:
                out.append(Reading(self.name, name, clock.now(), None, Status.ERROR, error, received=clock.monotonic()))
            else:
                age = max(0.0, time.time() - at)
                out.append(self.reading(name, value, detail=f"datapoint {age / 60:.0f} min old" if age >= 120 else ""))
        return out


CONFIG = CloudWatchSource
SOURCE = CloudWatch
