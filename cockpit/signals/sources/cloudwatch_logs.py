"""`cloudwatch_logs`: FilterLogEvents, the number of matching events in a window (seed
000: ERROR in the function's log group).
"""

from __future__ import annotations

import time
from typing import ClassVar, Literal

from pydantic import Field

from cockpit import aws
from cockpit.configmodel import AwsSettings, SourceBase
from cockpit.model import Reading
from cockpit.signals.sources._base import Source, SourceError


class CloudWatchLogsSource(SourceBase):
    """CloudWatch Logs FilterLogEvents: how many events match a pattern in the last ``window``
    seconds (seed 000: ERROR in the function's log group)."""

    kind: Literal["cloudwatch_logs"]
    log_group: str = Field(description="e.g. /aws/lambda/bedrock-ai-core.")
    pattern: str = Field("ERROR", description="CloudWatch Logs filter pattern.")
    window: float = Field(900.0, gt=0, le=86400, description="Seconds back to count (seed 000: 15 minutes).")
    series: str = Field("errors", description="Series name of the count.")
    max_events: int = Field(10000, ge=1, le=1_000_000, description="Stop counting here (shown as at least N).")
    interval: float = Field(60.0, ge=1, le=86400, description="Seconds between polls.")
    timeout: float = Field(10.0, ge=0.05, le=600, description="Seconds before a poll is abandoned.")
    aws: AwsSettings | None = Field(None, description="AWS settings (default: the top-level [aws]).")

    uses_aws: ClassVar[bool] = True

    def series_names(self) -> list[str]:
        return [self.series]


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


CONFIG = CloudWatchLogsSource
SOURCE = CloudWatchLogs
