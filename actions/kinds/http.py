"""`http`: call an admin or feature-flag endpoint (seed 002's support mode, seed 003's
circuit-breaker reset). The body is what is sent; ``undo_body`` what reverses it."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from actions.model import (
    ActionError,
    Outcome,
    Plan,
    Step,
    Verification,
    is_destructive,
    one_line,
)
from cockpit.configmodel import ActionBase, _check_headers, _check_url

UNHEALTHY = {"unhealthy", "down", "degraded", "error", "failed"}


def _headers(cfg) -> dict[str, str]:
    from cockpit.safetext import SecretError, resolve_secret

    try:
        return {k: resolve_secret(v, f"header {k}") for k, v in cfg.headers.items()}
    except SecretError as e:
        raise ActionError(str(e)) from None


def _get_json(client, url: str, headers: dict[str, str]) -> tuple[int, Any]:
    resp = client.get(url, headers=headers)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text[:200]


def _summary(resp) -> str:
    """What the endpoint said, short: its own message field if it has one, else the start of the body."""
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for field in ("note", "message", "detail", "status", "error"):
            if isinstance(doc.get(field), str) and doc[field].strip():
                return doc[field].strip()[:160]
    return " ".join(resp.text.split())[:160]


class HttpAction(ActionBase):
    """An HTTP call: a feature flag, an admin endpoint, a circuit-breaker reset (seeds 002, 003)."""

    kind: Literal["http"]
    url: str = Field(description="The URL to call.")
    method: Literal["POST", "PUT", "PATCH", "DELETE"] = Field("POST", description="HTTP method.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    body: dict[str, Any] | None = Field(None, description="JSON body.")
    undo_body: dict[str, Any] | None = Field(None, description="JSON body that undoes it (same URL and method); "
                                             "none: not undoable.")
    state_url: str | None = Field(None, description="GET this before and after to show (and undo to) the current "
                                  "state.")
    verify_url: str | None = Field(None, description="GET this after; 2xx with a healthy status verifies it.")
    verify_echo: dict[str, str] = Field(
        default_factory=dict, description="Fields the verify_url answer must say back: {answer field = body field}, "
        "e.g. {emergency = \"on\"}: verified once the answer's emergency is what the body's on asked (an undo: what "
        "its undo_body asked).")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _opt_urls = field_validator("state_url", "verify_url")(
        classmethod(lambda cls, v: v if v is None else _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))

    @model_validator(mode="after")
    def _echo(self):
        if self.verify_echo and not self.verify_url:
            raise ValueError("verify_echo needs verify_url (the answer it reads)")
        for body in (self.body, self.undo_body):
            missing = [f for f in self.verify_echo.values() if body is not None and f not in body]
            if missing:
                raise ValueError(f"verify_echo names {', '.join(missing)}, which the body does not have")
        return self


class HttpExecutor:
    kind = "http"

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def _client(self, cfg):
        import httpx

        from cockpit.tls import tls_context

        return httpx.Client(timeout=min(self.timeout, cfg.timeout), follow_redirects=False, verify=tls_context())

    def _plan(self, cfg, guard: str, body: Any, undo_body: Any, before: dict, name: str) -> Plan:
        return Plan(action=name, key=cfg.key, kind=self.kind, target=cfg.target,
                    steps=(Step(f"{cfg.method} {cfg.url}", {"headers": dict(cfg.headers), "body": body}),),
                    before=before, after={"body": body} if body is not None else {}, destructive=is_destructive(cfg),
                    blast_radius=tuple(cfg.components), expected=cfg.expected, guard=guard,
                    undo={"body": undo_body} if undo_body is not None else None)

    def _state(self, cfg) -> dict:
        if not cfg.state_url:
            return {}
        try:
            with self._client(cfg) as client:
                status, doc = _get_json(client, cfg.state_url, _headers(cfg))
        except ActionError:
            raise
        except Exception as e:  # noqa: BLE001 - the plan says it could not read the state
            return {"state": f"could not read {cfg.state_url}: {one_line(e)}"}
        return {"state": doc} if status < 400 else {"state": f"HTTP {status} from {cfg.state_url}"}

    def plan(self, cfg, guard: str) -> Plan:
        return self._plan(cfg, guard, cfg.body, cfg.undo_body, self._state(cfg), cfg.name)

    def execute(self, cfg, plan: Plan) -> Outcome:
        t0 = time.monotonic()
        body = plan.after.get("body")
        try:
            headers = _headers(cfg)
            if body is not None:
                headers["Content-Type"] = "application/json"
            with self._client(cfg) as client:
                resp = client.request(cfg.method, cfg.url, headers=headers,
                                      content=json.dumps(body) if body is not None else None)
        except ActionError as e:
            return Outcome("failed", str(e), time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001
            import httpx

            # a timeout after the request went out may or may not have changed the target
            result = "unknown" if isinstance(e, httpx.ReadTimeout) else "failed"
            from cockpit.signals.sources._base import describe_error

            return Outcome(result, describe_error(e, cfg.timeout), time.monotonic() - t0)
        took = time.monotonic() - t0
        text = _summary(resp)
        if 200 <= resp.status_code < 300:
            return Outcome("ok", f"HTTP {resp.status_code}" + (f": {text}" if text else ""), took, self._state(cfg))
        return Outcome("failed", f"HTTP {resp.status_code}" + (f": {text}" if text else ""), took)

    def verify(self, cfg, plan: Plan) -> Verification:
        if not cfg.verify_url:
            return Verification(None, "nothing to verify with (no verify_url)")
        deadline = time.monotonic() + cfg.verify_timeout
        last = ""
        with self._client(cfg) as client:
            while True:
                try:
                    status, doc = _get_json(client, cfg.verify_url, _headers(cfg))
                    verdict = str(doc.get("status", "")).lower() if isinstance(doc, dict) else ""
                    off = _not_echoed(cfg.verify_echo, doc, plan.after.get("body") or {})
                    said = f"HTTP {status}" + (f", {verdict}" if verdict else "")
                    if 200 <= status < 300 and verdict not in UNHEALTHY and off is None:
                        echoed = ", ".join(f"{k} is {json.dumps(doc.get(k))} as asked" for k in cfg.verify_echo)
                        return Verification(True, f"{cfg.verify_url}: {said}" + (f", {echoed}" if echoed else ""))
                    last = said + (f", {off}" if off else "")
                except Exception as e:  # noqa: BLE001
                    last = one_line(e)
                if time.monotonic() >= deadline:
                    return Verification(False, f"{cfg.verify_url} still {last} after {cfg.verify_timeout:g}s")
                time.sleep(min(1.0, max(0.05, cfg.verify_timeout / 20)))

    def undo(self, cfg, plan: Plan, guard: str) -> Plan | None:
        if plan.undo is None:
            return None
        return self._plan(cfg, guard, plan.undo["body"], plan.after.get("body"), self._state(cfg), f"undo {plan.action}")


def _not_echoed(echo: dict[str, str], doc: Any, body: dict) -> str | None:
    """What the answer does not say back of what the body asked (None: all of it)."""
    for answer, asked in echo.items():
        got = doc.get(answer) if isinstance(doc, dict) else None
        if got != body.get(asked):
            return f"{answer} is {json.dumps(got)}, asked {json.dumps(body.get(asked))}"
    return None


CONFIG = HttpAction
EXECUTOR = HttpExecutor
