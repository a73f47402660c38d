"""`cost_explorer`: today's cost from Cost Explorer's GetCostAndUsage (daily), an
alternative to a cost query.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Literal

from pydantic import Field

from cockpit import aws
from cockpit.configmodel import AwsSettings, SourceBase
from cockpit.model import Reading
from cockpit.signals.sources._base import Source, SourceError


class CostExplorerSource(SourceBase):
    """AWS Cost Explorer (GetCostAndUsage, daily): what today has cost so far, as an alternative to a
    cost query (its figures lag by hours; each call is billed)."""

    kind: Literal["cost_explorer"]
    metric: Literal["UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost"] = Field(
        "UnblendedCost", description="Which cost Cost Explorer reports.")
    services: list[str] = Field(default_factory=list, description="Only these services, e.g. [\"Amazon Bedrock\"] "
                                "(default: everything).")
    series: str = Field("cost_today", description="Series name of today's cost (USD).")
    interval: float = Field(3600.0, ge=60, le=86400, description="Seconds between polls (each call costs $0.01).")
    timeout: float = Field(15.0, ge=0.05, le=600, description="Seconds before a poll is abandoned.")
    aws: AwsSettings | None = Field(None, description="AWS settings (default: the top-level [aws]).")

    uses_aws: ClassVar[bool] = True

    def series_names(self) -> list[str]:
        return [self.series]


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


CONFIG = CostExplorerSource
SOURCE = CostExplorer
