"""What the HTTP sources share: the capped GET, JSON answers, a health verdict, the
config of an HTTP check.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import Field, field_validator

from cockpit.configmodel import SourceBase, _check_headers
from cockpit.model import state_level
from cockpit.safetext import SecretError, resolve_secret
from cockpit.signals.sources._base import SourceError

BODY_LIMIT = 64 * 1024
_SCORES = {0: 1.0, 1: 0.5, 2: 0.0}


def resolve_headers(headers: dict[str, str], where: str) -> dict[str, str]:
    try:
        return {k: resolve_secret(v, f"{where}.headers.{k}") for k, v in headers.items()}
    except SecretError as e:
        raise SourceError(str(e)) from None


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


def verdict(cfg: Any, code: int, body: bytes) -> tuple[str | None, str | None]:
    """What a health answer says of itself (its status field) and which expectation of
    the config it misses, if any: ``""`` for the status code, ``", body lacks ..."``."""
    said = said_state(json_field(parse_json(body), cfg.status_field)) if cfg.status_field else None
    if code not in cfg.expect_status:
        return said, ""
    if cfg.expect_body is not None and cfg.expect_body.encode() not in body:
        return said, f", body lacks {cfg.expect_body!r}"
    return said, None


def _detail(doc: Any) -> str:
    for key in ("message", "detail", "reason", "error"):
        v = json_field(doc, key)
        if isinstance(v, str) and v:
            return v[:120]
    return ""


class HttpCheck(SourceBase):
    """What an HTTP health check expects of an answer (shared by health and component checks)."""

    headers: dict[str, str] = Field(
        default_factory=dict, description="Request headers; secret values as env:NAME."
    )
    expect_status: list[int] = Field(
        [200], min_length=1, description="HTTP status codes that mean the service answered healthy."
    )
    expect_body: str | None = Field(None, description="Substring the body must contain to count as healthy.")
    status_field: str | None = Field(
        "status",
        description="JSON field holding the service's own verdict (healthy/degraded/unhealthy); "
        "empty to ignore the body.",
    )

    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))
