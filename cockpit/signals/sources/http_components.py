"""`http_components`: one health endpoint per component (`/health/component/<name>`), at
most `max_in_flight` requests at a time.
"""

from __future__ import annotations

import asyncio
import math
import string
from typing import ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, field_validator

from cockpit.configmodel import _check_url, listed_once
from cockpit.model import Reading, Status, state_level
from cockpit.signals.sources._base import (
    Request,
    Source,
    SourceError,
    describe_error,
    summarize_components,
)
from cockpit.signals.sources._http import (
    BODY_LIMIT,
    HttpCheck,
    _detail,
    parse_json,
    resolve_headers,
    score,
    verdict,
)


class HttpComponentsSource(HttpCheck):
    """Per-component health endpoints, one GET each (`/health/component/<name>`)."""

    kind: Literal["http_components"]
    url: str = Field(description="URL template with {name}, e.g. http://host/health/component/{name}.")
    components: list[str] = Field(min_length=1, description="Component names to check.")
    max_in_flight: int = Field(64, ge=1, le=1024, description="Most component requests in flight at once.")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))

    @field_validator("url")
    @classmethod
    def _has_placeholder(cls, v: str) -> str:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as e:
            raise ValueError(f"bad URL template: {e}") from None
        if "name" not in fields:
            raise ValueError("the URL must contain {name}, replaced by each component's name")
        if fields - {"name"}:
            others = ", ".join("{" + f + "}" for f in sorted(fields - {"name"}))
            raise ValueError(f"the URL may only contain {{name}}, found {others}")
        return v

    @field_validator("components")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        listed_once(v)
        return v

    feeds: ClassVar[str] = "components"

    def series_names(self) -> list[str]:
        return [f"component/{c}" for c in self.components]


class HttpComponents(Source):
    """GET one health URL per component, at most ``max_in_flight`` at a time."""

    kind = "http_components"
    uses_http = True

    @property
    def deadline(self) -> float:
        batches = math.ceil(len(self.cfg.components) / self.cfg.max_in_flight)
        return self.cfg.timeout * batches + 1.0

    async def fetch(self) -> list[Reading]:
        cfg = self.cfg
        gets = self.poll_gets()
        gate = asyncio.Semaphore(cfg.max_in_flight)

        async def one(name: str, get: Request) -> Reading:
            async with gate:
                try:
                    answer = await self.ctx.get(*get)
                except Exception as e:  # noqa: BLE001 - recorded as data
                    return self.reading(f"component/{name}", None, status=Status.ERROR, error=describe_error(e, cfg.timeout))
                elapsed = answer.answered - answer.started
            said, unmet = verdict(cfg, answer.status, answer.body)
            detail = _detail(parse_json(answer.body)) or f"HTTP {answer.status}"
            state = said or ("unhealthy" if unmet is not None else "healthy")
            if unmet is not None and state_level(state) == 0:
                state = "unhealthy"
            if unmet:
                detail = f"HTTP {answer.status}{unmet}"
            return self.reading(f"component/{name}", score(state), state=state, detail=detail, latency=elapsed,
                                as_of=answer.answered)

        readings = await asyncio.gather(*(one(c, get) for c, get in zip(cfg.components, gets)))
        if all(r.status is Status.ERROR for r in readings):
            raise SourceError(readings[0].error)
        return list(readings)

    def poll_gets(self) -> list[Request]:
        cfg = self.cfg
        headers = resolve_headers(cfg.headers, f"sources.{cfg.name}")
        return [(cfg.url.format(name=quote(c, safe="")), headers, cfg.timeout, BODY_LIMIT, True) for c in cfg.components]



summarize = summarize_components  # what `cockpit check` says of it
CONFIG = HttpComponentsSource
SOURCE = HttpComponents
