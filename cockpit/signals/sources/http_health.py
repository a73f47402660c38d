"""`http_health`: a health endpoint (`/health`): status code, body, JSON `status` field.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from cockpit.configmodel import _check_url
from cockpit.model import Reading, Status, state_level
from cockpit.signals.sources._base import Request, Source
from cockpit.signals.sources._http import (
    BODY_LIMIT,
    HttpCheck,
    resolve_headers,
    score,
    verdict,
)


class HttpHealthSource(HttpCheck):
    """An HTTP health endpoint (`/health`): status code, optional body check and JSON status field."""

    kind: Literal["http_health"]
    url: str = Field(description="The health URL.")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))

    feeds: ClassVar[str] = "health"

    def series_names(self) -> list[str]:
        return ["health", "response_time"]


class HttpHealth(Source):
    """GET a health URL; healthy when the status code and body say so."""

    kind = "http_health"
    uses_http = True

    def failure(self, ts: float, error: str) -> list[Reading]:
        # An unreachable health endpoint is itself an outage signal.
        mono = self.ctx.clock.monotonic()
        return [
            Reading(self.name, "health", ts, 0.0, Status.ERROR, error, state="unreachable", received=mono),
            Reading(self.name, "response_time", ts, None, Status.ERROR, error, received=mono),
        ]

    async def fetch(self) -> list[Reading]:
        answer = await self.ctx.get(*self.poll_gets()[0])
        elapsed = answer.answered - answer.started
        state, detail = self.judge(answer.status, answer.body)
        return [
            self.reading("health", score(state), state=state, detail=detail, latency=elapsed, as_of=answer.answered),
            self.reading("response_time", elapsed, latency=elapsed, as_of=answer.answered),
        ]

    def poll_gets(self) -> list[Request]:
        cfg = self.cfg
        return [(cfg.url, resolve_headers(cfg.headers, f"sources.{cfg.name}"), cfg.timeout, BODY_LIMIT, True)]

    def judge(self, code: int, body: bytes) -> tuple[str, str]:
        said, unmet = verdict(self.cfg, code, body)
        detail = f"HTTP {code}" + (f", status {said}" if said else "")
        if unmet is not None:
            return "down", f"{detail}{unmet}"
        if said is None:
            return "up", detail
        return ("up" if state_level(said) == 0 else said), detail


CONFIG = HttpHealthSource
SOURCE = HttpHealth


def summarize(readings: list[Reading]) -> tuple[bool, str]:
    """`cockpit check`: the endpoint answered (that is what check verifies); what it said."""
    h = next((r for r in readings if r.series == "health"), None)
    if h is None:
        return False, "no reading"
    return True, f"{h.state} ({h.detail})" if h.detail else str(h.state)
