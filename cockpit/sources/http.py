"""HTTP health and component checks (httpx, async)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any
from urllib.parse import quote

from cockpit.config import SecretError, resolve_secret
from cockpit.model import Reading, Status, state_level
from cockpit.sources.base import Source, SourceError, describe_error

BODY_LIMIT = 64 * 1024
_SCORES = {0: 1.0, 1: 0.5, 2: 0.0}


def resolve_headers(headers: dict[str, str], where: str) -> dict[str, str]:
    try:
        return {k: resolve_secret(v, f"{where}.headers.{k}") for k, v in headers.items()}
    except SecretError as e:
        raise SourceError(str(e)) from None


def json_field(body: bytes, path: str) -> Any:
    """``a.b`` of a JSON object body, or None when absent or not JSON."""
    try:
        node: Any = json.loads(body[:BODY_LIMIT])
    except (ValueError, UnicodeDecodeError):
        return None
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def score(state: str) -> float:
    """Numeric health for sparklines: 1 healthy, 0.5 degraded, 0 down."""
    lvl = state_level(state)
    return _SCORES.get(int(lvl), math.nan)


class HttpHealth(Source):
    """GET a health URL; healthy when the status code and body say so."""

    kind = "http_health"

    def series(self) -> list[str]:
        return ["health", "response_time"]

    def failure(self, ts: float, error: str) -> list[Reading]:
        # An unreachable health endpoint is itself an outage signal.
        return [
            Reading(self.name, "health", ts, 0.0, Status.ERROR, error, state="unreachable"),
            Reading(self.name, "response_time", ts, None, Status.ERROR, error),
        ]

    async def fetch(self) -> list[Reading]:
        cfg = self.cfg
        headers = resolve_headers(cfg.headers, f"sources.{cfg.name}")
        clock = self.ctx.clock
        t0 = clock.monotonic()
        resp = await (await self.ctx.http()).get(cfg.url, headers=headers, timeout=cfg.timeout)
        body = resp.content[:BODY_LIMIT]
        elapsed = clock.monotonic() - t0
        state, detail = self.judge(resp.status_code, body)
        return [
            self.reading("health", score(state), state=state, detail=detail, latency=elapsed),
            self.reading("response_time", elapsed, latency=elapsed),
        ]

    def judge(self, code: int, body: bytes) -> tuple[str, str]:
        cfg = self.cfg
        said = json_field(body, cfg.status_field) if cfg.status_field else None
        said = str(said).lower() if isinstance(said, (str, bool)) else None
        detail = f"HTTP {code}" + (f", status {said}" if said else "")
        if code not in cfg.expect_status:
            return "down", detail
        if cfg.expect_body is not None and cfg.expect_body.encode() not in body:
            return "down", f"{detail}, body lacks {cfg.expect_body!r}"
        if said is None:
            return "up", detail
        return ("up" if state_level(said) == 0 else said), detail


class HttpComponents(Source):
    """GET one health URL per component, at most ``max_in_flight`` at a time."""

    kind = "http_components"

    def series(self) -> list[str]:
        return [f"component/{c}" for c in self.cfg.components]

    @property
    def deadline(self) -> float:
        batches = math.ceil(len(self.cfg.components) / self.cfg.max_in_flight)
        return self.cfg.timeout * batches + 1.0

    async def fetch(self) -> list[Reading]:
        cfg = self.cfg
        headers = resolve_headers(cfg.headers, f"sources.{cfg.name}")
        gate = asyncio.Semaphore(cfg.max_in_flight)
        client = await self.ctx.http()

        async def one(name: str) -> Reading:
            async with gate:
                t0 = self.ctx.clock.monotonic()
                try:
                    resp = await client.get(cfg.url.format(name=quote(name, safe="")), headers=headers, timeout=cfg.timeout)
                except Exception as e:  # noqa: BLE001 - recorded as data
                    return self.reading(f"component/{name}", None, status=Status.ERROR, error=describe_error(e, cfg.timeout))
                elapsed = self.ctx.clock.monotonic() - t0
            said = json_field(resp.content, cfg.status_field)
            state = str(said).lower() if isinstance(said, str) else ("healthy" if resp.is_success else "unhealthy")
            if not resp.is_success and state_level(state) == 0:
                state = "unhealthy"
            detail = _detail(resp.content) or f"HTTP {resp.status_code}"
            return self.reading(f"component/{name}", score(state), state=state, detail=detail, latency=elapsed)

        readings = await asyncio.gather(*(one(c) for c in cfg.components))
        if all(r.status is Status.ERROR for r in readings):
            raise SourceError(readings[0].error)
        return list(readings)


def _detail(body: bytes) -> str:
    for key in ("message", "detail", "reason", "error"):
        v = json_field(body, key)
        if isinstance(v, str) and v:
            return v[:120]
    return ""
