"""Status updates: drafted from live state in the seed runbook's template, edited by
the responder, sent to a Slack incoming webhook and/or a Statuspage-style incident API,
and journaled. Webhook URLs and API keys are secrets: configured as env:NAME, never
journaled."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from cockpit.clock import format_duration, spoken_duration, utc
from cockpit.incident.state import IncidentState

HEADINGS = {"started": "🔴 INCIDENT", "update": "🟡 UPDATE", "resolved": "🟢 RESOLVED"}


def stage(st: IncidentState) -> str:
    """Which of the template's three the next update is: it follows the incident's status
    (mitigated is an update whether or not one was sent before)."""
    if st.status in ("resolved", "closed"):
        return "resolved"
    has_update = any(e.kind == "communication_sent" for e in st.events)
    return "update" if has_update or st.status == "mitigated" else "started"


def draft(st: IncidentState, now: float, environment: str, signals: list[str], next_update: float | None) -> str:
    """The seed template (incident started / update / resolved) filled from the incident."""
    kind = stage(st)
    actions = [e for e in st.events if e.kind == "action_outcome"]
    done = [f"- {e.payload.get('action')}: {e.payload.get('result')}" for e in actions] or ["- (none yet)"]
    notes = [e.payload.get("text", "") for e in st.events if e.kind == "note"][-3:]
    lines = [
        f"{HEADINGS[kind]}: {st.title}",
        f"Time: {utc(now):%Y-%m-%d %H:%M} UTC (T+{format_duration(now - st.declared_at)})",
        f"Environment: {environment}",
        f"Severity: {st.severity or 'not set'}",
        f"Status: {st.status}",
    ]
    if kind == "resolved":
        resolved = st.milestones.get("resolved", now)
        start = st.milestones.get("impact_started", st.declared_at)
        lines += ["", f"Duration: {spoken_duration(resolved - start)}", "", "Resolution:", *done, "",
                  "Root cause:", "- <brief description>", "", "Next steps:",
                  "- Post-incident review scheduled", "- Preventive measures to implement"]
    else:
        lines += ["", "Impact:", *[f"- {s}" for s in signals or ["<description>"]], "",
                  "Actions taken:", *done]
        if notes:
            lines += ["", "Latest notes:", *[f"- {n}" for n in notes]]
        if next_update is not None:
            lines += ["", f"Next update: {utc(next_update):%H:%M} UTC"]
    return "\n".join(lines)


@dataclass
class SendResult:
    ok: bool
    detail: str
    attempts: int
    external_id: str | None = None  # the incident's id on the status page


async def _post_json(client, method: str, url: str, doc: dict, headers: dict[str, str], who: str, *,
                     max_attempts: int = 4, max_wait: float = 30.0):
    """Send JSON; on 429 wait Retry-After (bounded) and try again. Returns (SendResult, response or None)."""
    attempts = 0
    while True:
        attempts += 1
        try:
            resp = await client.request(method, url, content=json.dumps(doc),
                                        headers={"Content-Type": "application/json", **headers}, timeout=10.0)
        except Exception as e:  # noqa: BLE001 - one line for the responder
            from cockpit.signals.sources._base import describe_error

            return SendResult(False, describe_error(e, 10.0), attempts), None
        if resp.status_code == 429 and attempts < max_attempts:
            try:
                wait = float(resp.headers.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            if wait > max_wait:
                return SendResult(False, f"rate limited; {who} asks to wait {wait:g}s", attempts), resp
            await asyncio.sleep(max(0.0, wait))
            continue
        if 200 <= resp.status_code < 300:
            return SendResult(True, f"HTTP {resp.status_code}", attempts), resp
        body = resp.text[:120].strip()
        return SendResult(False, f"HTTP {resp.status_code}" + (f": {body}" if body else ""), attempts), resp


async def send_slack(client, url: str, text: str, **kw) -> SendResult:
    """POST to a Slack incoming webhook."""
    result, _ = await _post_json(client, "POST", url, {"text": text}, {}, "Slack", **kw)
    return result


#: the incident's status -> the status page's
STATUSPAGE_STATUS = {"declared": "investigating", "acknowledged": "identified", "mitigated": "monitoring",
                     "resolved": "resolved", "closed": "resolved"}


def statuspage_incident(st: IncidentState) -> str | None:
    """The id of this incident on the status page, from the last successful post."""
    for e in reversed(st.events):
        if e.kind == "communication_sent" and e.payload.get("channel") == "statuspage" and e.payload.get("ok"):
            if e.payload.get("external_id"):
                return e.payload["external_id"]
    return None


async def send_statuspage(client, base: str, page_id: str, api_key: str, st: IncidentState, text: str,
                          **kw) -> SendResult:
    """Create the public incident on the first update, then update it (status follows ours)."""
    from urllib.parse import quote

    existing = statuspage_incident(st)
    page = f"{base.rstrip('/')}/pages/{quote(page_id, safe='')}/incidents"
    body = {"status": STATUSPAGE_STATUS.get(st.status, "investigating"), "body": text}
    if existing is None:
        method, url, body["name"] = "POST", page, st.title
    else:
        method, url = "PATCH", f"{page}/{quote(existing, safe='')}"
    result, resp = await _post_json(client, method, url, {"incident": body}, {"Authorization": f"OAuth {api_key}"},
                                    "the status page", **kw)
    if not result.ok:
        return result
    try:
        doc = resp.json()
        result.external_id = str(doc["id"]) if existing is None else existing
    except (ValueError, KeyError, TypeError):
        if existing is None:
            return SendResult(False, "the status page answered without an incident id; check url and page_id",
                              result.attempts)
        result.external_id = existing
    result.detail += f" ({'created' if existing is None else 'updated'} {result.external_id})"
    return result
