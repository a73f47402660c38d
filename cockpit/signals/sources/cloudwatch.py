"""CloudWatch sources (boto3 in a thread, shared clients, adaptive retries):

- ``cloudwatch``: GetMetricData for every series in one call, metric math included;
  each series reads its newest datapoint in the lookback window.
- ``cloudwatch_logs``: FilterLogEvents, the number of matching events in a window.

Credential and permission problems are one line on the panel (cockpit.aws.describe).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from cockpit import aws
from cockpit.model import Reading, Status
from cockpit.signals.sources.base import Source, SourceError


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


class CloudWatchLogs(Source):
    kind = "cloudwatch_logs"

    def _count(self) -> tuple[int, bool]:
        logs = aws.client("logs", self.cfg.aws)
        now_ms = int(time.time() * 1000)
        kw = {"logGroupName": self.cfg.log_group, "filterPattern": self.cfg.pattern,
              "startTime": now_ms - int(self.cfg.window * 1000), "endTime": now_ms}
        count, token = 0, None
        try:
            while True:
                page = logs.filter_log_events(**kw, **({"nextToken": token} if token else {}))
                count += len(aws.field(page, "events"))
                token = page.get("nextToken")
                if count >= self.cfg.max_events:
                    return self.cfg.max_events, True
                if not token:
                    return count, False
        except Exception as e:  # noqa: BLE001
            raise SourceError(aws.failed(e, "logs:FilterLogEvents")) from None

    async def fetch(self) -> list[Reading]:
        count, capped = await self.in_thread(self._count)
        window = f"{self.cfg.window / 60:g} min"
        return [self.reading(self.cfg.series, float(count),
                             detail=f"{'at least ' if capped else ''}{count} matching {self.cfg.pattern!r} in {window}")]


class CostExplorer(Source):
    kind = "cost_explorer"

    def _today(self) -> tuple[float, bool]:
        from datetime import date

        today = date.today()
        kw: dict = {"TimePeriod": {"Start": today.isoformat(), "End": (today + timedelta(days=1)).isoformat()},
                    "Granularity": "DAILY", "Metrics": [self.cfg.metric]}
        if self.cfg.services:
            kw["Filter"] = {"Dimensions": {"Key": "SERVICE", "Values": list(self.cfg.services)}}
        try:
            days = aws.field(aws.client("ce", self.cfg.aws).get_cost_and_usage(**kw), "ResultsByTime")
        except Exception as e:  # noqa: BLE001
            raise SourceError(aws.failed(e, "ce:GetCostAndUsage")) from None
        if not days:
            raise SourceError("Cost Explorer has no figures for today yet")
        total = days[-1].get("Total", {}).get(self.cfg.metric, {})
        return float(total.get("Amount", 0.0)), bool(days[-1].get("Estimated"))

    async def fetch(self) -> list[Reading]:
        amount, estimated = await self.in_thread(self._today)
        return [self.reading(self.cfg.series, amount, detail="estimated" if estimated else "")]
