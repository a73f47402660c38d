"""HTTP health and component checks (httpx, async)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, NamedTuple
from urllib.parse import quote

from cockpit.config import SecretError, resolve_secret
from cockpit.model import Reading, Status, state_level
from cockpit.signals.sources.base import Source, SourceError, describe_error

BODY_LIMIT = 64 * 1024
_SCORES = {0: 1.0, 1: 0.5, 2: 0.0}


def resolve_headers(headers: dict[str, str], where: str) -> dict[str, str]:
    try:
        return {k: resolve_secret(v, f"{where}.headers.{k}") for k, v in headers.items()}
    except SecretError as e:
        raise SourceError(str(e)) from None


class Answer(NamedTuple):
    status: int
    reason: str
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def get_capped(session, url: str, headers: dict[str, str], timeout: float, limit: int,
                     truncate: bool) -> Answer:
    """GET (aiohttp) without reading more than ``limit`` bytes: the rest is dropped
    (``truncate``) or the answer is refused. ``timeout`` covers the whole request, the
    wait for a free connection included. A redirect is an error that names where it
    points, because following it silently would hide a misconfigured URL."""
    import aiohttp

    async with session.get(url, headers=headers, allow_redirects=False,
                           timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        if 300 <= resp.status < 400:
            where = resp.headers.get("location", "?")
            raise SourceError(f"HTTP {resp.status} redirect to {where[:100]}; configure that URL instead")
        too_big = SourceError(f"response larger than {limit // 1024} KiB; refusing to read it")
        if not truncate and resp.content_length is not None and resp.content_length > limit:
            raise too_big
        body = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > limit:
                if not truncate:
                    raise too_big
                del body[limit:]
                break
        return Answer(resp.status, resp.reason or "", bytes(body))


def parse_json(body: bytes) -> Any:
    """The JSON document in a body, or None when it is not JSON (or absurdly nested)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def json_field(doc: Any, path: str) -> Any:
    """``a.b`` of a parsed JSON object, or None when absent."""
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def said_state(value: Any) -> str | None:
    """A service's own verdict as a state word: strings as they are, booleans as up/down."""
    if isinstance(value, bool):
        return "up" if value else "down"
    if isinstance(value, str) and value:
        return value.lower()[:40]
    return None


def score(state: str) -> float:
    """Numeric health for sparklines: 1 healthy, 0.5 degraded, 0 down."""
    lvl = state_level(state)
    return _SCORES.get(int(lvl), math.nan)


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
        cfg = self.cfg
        headers = resolve_headers(cfg.headers, f"sources.{cfg.name}")
        clock = self.ctx.clock
        t0 = clock.monotonic()
        answer = await self.ctx.get(cfg.url, headers, cfg.timeout, BODY_LIMIT, truncate=True)
        elapsed = clock.monotonic() - t0
        state, detail = self.judge(answer.status, answer.body)
        return [
            self.reading("health", score(state), state=state, detail=detail, latency=elapsed),
            self.reading("response_time", elapsed, latency=elapsed),
        ]

    def judge(self, code: int, body: bytes) -> tuple[str, str]:
        said, unmet = verdict(self.cfg, code, body)
        detail = f"HTTP {code}" + (f", status {said}" if said else "")
        if unmet is not None:
            return "down", f"{detail}{unmet}"
        if said is None:
            return "up", detail
        return ("up" if state_level(said) == 0 else said), detail


def verdict(cfg: Any, code: int, body: bytes) -> tuple[str | None, str | None]:
    """What a health answer says of itself (its status field) and which expectation of
    the config it misses, if any: ``""`` for the status code, ``", body lacks ..."``."""
    said = said_state(json_field(parse_json(body), cfg.status_field)) if cfg.status_field else None
    if code not in cfg.expect_status:
        return said, ""
    if cfg.expect_body is not None and cfg.expect_body.encode() not in body:
        return said, f", body lacks {cfg.expect_body!r}"
    return said, None


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
        headers = resolve_headers(cfg.headers, f"sources.{cfg.name}")
        gate = asyncio.Semaphore(cfg.max_in_flight)

        async def one(name: str) -> Reading:
            async with gate:
                t0 = self.ctx.clock.monotonic()
                try:
                    url = cfg.url.format(name=quote(name, safe=""))
                    answer = await self.ctx.get(url, headers, cfg.timeout, BODY_LIMIT, truncate=True)
                except Exception as e:  # noqa: BLE001 - recorded as data
                    return self.reading(f"component/{name}", None, status=Status.ERROR, error=describe_error(e, cfg.timeout))
                elapsed = self.ctx.clock.monotonic() - t0
            said, unmet = verdict(cfg, answer.status, answer.body)
            detail = _detail(parse_json(answer.body)) or f"HTTP {answer.status}"
            state = said or ("unhealthy" if unmet is not None else "healthy")
            if unmet is not None and state_level(state) == 0:
                state = "unhealthy"
            if unmet:
                detail = f"HTTP {answer.status}{unmet}"
            return self.reading(f"component/{name}", score(state), state=state, detail=detail, latency=elapsed)

        readings = await asyncio.gather(*(one(c) for c in cfg.components))
        if all(r.status is Status.ERROR for r in readings):
            raise SourceError(readings[0].error)
        return list(readings)


def _detail(doc: Any) -> str:
    for key in ("message", "detail", "reason", "error"):
        v = json_field(doc, key)
        if isinstance(v, str) and v:
            return v[:120]
    return ""
