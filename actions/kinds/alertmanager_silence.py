"""`alertmanager_silence`: silence the alert highlighted in the components table (a row of
an `alertmanager` source) for the minutes asked in the dialog, with a comment naming the
incident and the responder; undo expires that silence (its id is journaled with the
outcome).

The plan reads the alert from Alertmanager when the key is pressed and shows the matchers
(the alert's labels, or the ``match_labels`` of them), every alert firing now that they
match (what will go quiet), and when the silence ends.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from actions.model import ActionError, Outcome, Plan, Step, Verification, is_destructive, one_line
from cockpit.configmodel import ActionBase, _check_headers, _check_url, _count_bounds
from cockpit.safetext import clean

NO_ROW = "highlight a firing alert in the components table first (tab to the table, arrows to the alert)"
MAX_MINUTES = 7 * 24 * 60


class AlertmanagerSilenceAction(ActionBase):
    """Silence the highlighted Alertmanager alert for a number of minutes asked in the dialog
    (bounded by min and max); undo expires the silence."""

    kind: Literal["alertmanager_silence"]
    url: str = Field(description="Alertmanager's base URL: the url of the alertmanager source whose rows it silences.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    match_labels: list[str] = Field(default_factory=list, description="The labels of the highlighted alert the "
                                    "silence matches, e.g. [\"alertname\", \"service\"] (every instance of it); "
                                    "empty: all of its labels (that alert only).")
    min: int = Field(5, ge=1, le=MAX_MINUTES, description="Fewest minutes the dialog accepts.")
    max: int = Field(240, ge=1, le=MAX_MINUTES, description="Most minutes the dialog accepts.")
    default: int | None = Field(60, description="Minutes the dialog offers first.")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))
    _bounds = model_validator(mode="after")(lambda self: _count_bounds(self))

    @field_validator("match_labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        from cockpit.signals.sources.alertmanager import LABEL_NAME

        bad = [n for n in v if not re.fullmatch(LABEL_NAME, n)]
        if bad:
            raise ValueError(f"not label names: {', '.join(map(repr, bad))}")
        return v


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S")


def _said(resp) -> str:
    """Alertmanager's own message in an error answer (a JSON string or {"message": ...})."""
    try:
        doc = resp.json()
    except ValueError:
        doc = " ".join(resp.text.split())[:160]
    said = doc if isinstance(doc, str) else doc.get("message") if isinstance(doc, dict) else ""
    return f"HTTP {resp.status_code}" + (f": {clean(str(said), limit=200)}" if said else "")


def matcher_text(matchers: list[dict]) -> str:
    return ", ".join(f"{m['name']}={json.dumps(m['value'], ensure_ascii=False)}" for m in matchers)


class AlertmanagerSilenceExecutor:
    kind = "alertmanager_silence"
    #: plans from the highlighted row (see actions.model.Executor)
    takes_context = True

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._made: dict[int, str] = {}  # id(plan) -> the silence its execution made, for verify

    # ------------------------------------------------------------ HTTP

    def _client(self, cfg):
        import httpx

        from cockpit.tls import tls_context

        return httpx.Client(timeout=min(self.timeout, cfg.timeout), follow_redirects=False, trust_env=False,
                            verify=tls_context())

    @staticmethod
    def _headers(cfg) -> dict[str, str]:
        from cockpit.safetext import SecretError, resolve_secret

        try:
            return {k: resolve_secret(v, f"header {k}") for k, v in cfg.headers.items()}
        except SecretError as e:
            raise ActionError(str(e)) from None

    def _api(self, cfg, path: str) -> str:
        return f"{cfg.url.rstrip('/')}/api/v2/{path}"

    def _get(self, cfg, path: str) -> Any:
        with self._client(cfg) as client:
            resp = client.get(self._api(cfg, path), headers=self._headers(cfg))
        if not 200 <= resp.status_code < 300:
            raise ActionError(f"Alertmanager at {cfg.url}: {_said(resp)}")
        try:
            return resp.json()
        except ValueError:
            raise ActionError(f"Alertmanager at {cfg.url} answered something that is not JSON") from None

    def _firing(self, cfg) -> list:
        from cockpit.signals.sources._base import SourceError
        from cockpit.signals.sources.alertmanager import parse_alerts

        try:
            return parse_alerts(self._get(cfg, "alerts?active=true&silenced=false&inhibited=false"))[0]
        except SourceError as e:
            raise ActionError(f"Alertmanager at {cfg.url}: {e}") from None

    def _silence(self, cfg, silence_id: str) -> dict:
        doc = self._get(cfg, f"silence/{silence_id}")
        if not isinstance(doc, dict):
            raise ActionError(f"Alertmanager at {cfg.url}: not a silence in its answer")
        return doc

    # ------------------------------------------------------------ plan

    def plan(self, cfg, guard: str, context: dict[str, Any] | None = None) -> Plan:
        ctx = context or {}
        row = ctx.get("row")
        if ctx.get("kind") != "alertmanager" or not row:
            raise ActionError(NO_ROW)
        if ctx.get("url") and str(ctx["url"]).rstrip("/") != cfg.url.rstrip("/"):
            raise ActionError(f"{row} is an alert of {ctx.get('source')}, not of the Alertmanager at {cfg.url} "
                              f"that {cfg.name} silences: highlight one of its alerts")
        firing = self._firing(cfg)
        alert = next((a for a in firing if a.row == row), None)
        if alert is None:
            raise ActionError(f"{row} is not firing at {cfg.url} now (resolved, or silenced already)")
        names = [n for n in cfg.match_labels if n in alert.labels] if cfg.match_labels else sorted(alert.labels)
        if not names:
            raise ActionError(f"{row} has none of the labels {', '.join(cfg.match_labels)} (match_labels)")
        matchers = [{"name": n, "value": alert.labels[n], "isRegex": False, "isEqual": True} for n in names]
        hit = [a.row for a in firing if all(a.labels.get(m["name"]) == m["value"] for m in matchers)]
        incident, actor = ctx.get("incident") or "(none)", ctx.get("actor") or "cockpit"
        comment = f"cockpit: incident {incident} · {actor}"
        minutes = cfg.default if cfg.default is not None else cfg.min
        ends = time.time() + minutes * 60
        return Plan(
            action=cfg.name, key=cfg.key, kind=self.kind, target=cfg.target,
            steps=(Step(f"POST {self._api(cfg, 'silences')}", {"matchers": matchers, "createdBy": actor,
                                                               "comment": comment}),),
            before={"firing_matched": len(hit)}, after={"comment": comment, "createdBy": actor},
            destructive=is_destructive(cfg), blast_radius=tuple(cfg.components), expected=cfg.expected,
            guard=guard, undo={"expire": "the silence made (its id is journaled with the outcome)"},
            notes=(f"matchers: {matcher_text(matchers)}",
                   f"silences {len(hit)} alert(s) firing now: {'; '.join(hit[:10])}"
                   + (f" and {len(hit) - 10} more" if len(hit) > 10 else ""),
                   f"ends at {_hms(ends)} UTC with the {minutes} minutes offered; the minutes below set the end "
                   f"({cfg.min}–{cfg.max})"),
            ask={"name": "minutes", "now": None, "min": cfg.min, "max": cfg.max,
                 "default": min(cfg.max, max(cfg.min, minutes))})

    def undo(self, cfg, plan: Plan, guard: str, context: dict[str, Any] | None = None) -> Plan | None:
        changed = (context or {}).get("changed") or {}
        silence_id = changed.get("silence_id")
        if not isinstance(silence_id, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", silence_id):
            raise ActionError(f"{plan.action}: no silence id was journaled with its outcome; expire the silence "
                              f"in Alertmanager ({cfg.url})")
        doc = self._silence(cfg, silence_id)
        state = (doc.get("status") or {}).get("state") if isinstance(doc.get("status"), dict) else None
        if state == "expired":
            raise ActionError(f"silence {silence_id} is already expired: nothing to undo")
        return Plan(
            action=f"undo {plan.action}", key=cfg.key, kind=self.kind, target=cfg.target,
            steps=(Step(f"DELETE {self._api(cfg, f'silence/{silence_id}')}"),),
            before={"silence": silence_id, "state": state, "ends": doc.get("endsAt"),
                    "matchers": matcher_text([m for m in doc.get("matchers") or [] if isinstance(m, dict)
                                              and {"name", "value"} <= set(m)])},
            after={"expire": silence_id}, destructive=False, blast_radius=tuple(cfg.components),
            expected="", guard=guard, undo=None,
            notes=("the alerts it silenced are told again if they still fire",))

    # ------------------------------------------------------------ execute

    def execute(self, cfg, plan: Plan) -> Outcome:
        t0 = time.monotonic()
        try:
            if "expire" in plan.after:
                return self._expire(cfg, plan.after["expire"], t0)
            return self._create(cfg, plan, t0)
        except ActionError as e:
            return Outcome("failed", str(e), time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001
            import httpx

            from cockpit.signals.sources._base import describe_error

            # a timeout after the request went out may or may not have made the silence
            result = "unknown" if isinstance(e, httpx.ReadTimeout) else "failed"
            return Outcome(result, describe_error(e, cfg.timeout), time.monotonic() - t0)

    def _create(self, cfg, plan: Plan, t0: float) -> Outcome:
        minutes = plan.after.get("minutes")
        if not isinstance(minutes, int):
            return Outcome("failed", "no minutes were given")
        params = plan.steps[0].params
        now = time.time()
        ends = now + minutes * 60
        body = {"matchers": params["matchers"], "startsAt": _iso(now), "endsAt": _iso(ends),
                "createdBy": params["createdBy"], "comment": params["comment"]}
        with self._client(cfg) as client:
            resp = client.post(self._api(cfg, "silences"), headers=self._headers(cfg), json=body)
        took = time.monotonic() - t0
        if not 200 <= resp.status_code < 300:
            return Outcome("failed", f"Alertmanager refused the silence: {_said(resp)}", took)
        try:
            silence_id = resp.json().get("silenceID")
        except (ValueError, AttributeError):
            silence_id = None
        if not isinstance(silence_id, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", silence_id):
            return Outcome("unknown", f"HTTP {resp.status_code} without a silence id: look for it in Alertmanager",
                           took)
        self._made[id(plan)] = silence_id
        return Outcome("ok", f"silence {silence_id} until {_hms(ends)} UTC ({minutes} min): "
                       f"{matcher_text(params['matchers'])}", took,
                       {"silence_id": silence_id, "ends_at": _iso(ends)})

    def _expire(self, cfg, silence_id: str, t0: float) -> Outcome:
        with self._client(cfg) as client:
            resp = client.delete(self._api(cfg, f"silence/{silence_id}"), headers=self._headers(cfg))
        took = time.monotonic() - t0
        if not 200 <= resp.status_code < 300:
            return Outcome("failed", f"Alertmanager did not expire silence {silence_id}: {_said(resp)}", took)
        return Outcome("ok", f"silence {silence_id} expired", took, {"silence_id": silence_id, "state": "expired"})

    # ------------------------------------------------------------ verify

    def verify(self, cfg, plan: Plan) -> Verification:
        if "expire" in plan.after:
            silence_id, want = plan.after["expire"], "expired"
        else:
            silence_id, want = self._made.pop(id(plan), None), "active"
            if silence_id is None:
                return Verification(None, "no silence id to verify with")
        deadline = time.monotonic() + cfg.verify_timeout
        last = ""
        while True:
            try:
                doc = self._silence(cfg, silence_id)
                state = doc.get("status", {}).get("state") if isinstance(doc.get("status"), dict) else None
                if state == want:
                    return Verification(True, f"Alertmanager says silence {silence_id} is {want}"
                                        + (f" until {clean(doc.get('endsAt'), limit=40)}" if want == "active" else ""))
                last = f"is {clean(state, limit=40)}"
            except Exception as e:  # noqa: BLE001
                last = one_line(e)
            if time.monotonic() >= deadline:
                return Verification(False, f"silence {silence_id} {last} after {cfg.verify_timeout:g}s, not {want}")
            time.sleep(min(1.0, max(0.05, cfg.verify_timeout / 20)))


CONFIG = AlertmanagerSilenceAction
EXECUTOR = AlertmanagerSilenceExecutor
