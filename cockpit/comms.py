"""Status updates: drafted from live state in the seed runbook's template, edited by
the responder, sent to a Slack incoming webhook or a Statuspage-style endpoint, and
journaled. Webhook URLs are secrets: configured as env:NAME, never journaled."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from cockpit.clock import format_duration, utc
from cockpit.incident import IncidentState

HEADINGS = {"started": "🔴 INCIDENT", "update": "🟡 UPDATE", "resolved": "🟢 RESOLVED"}


def stage(st: IncidentState) -> str:
    if st.status in ("resolved", "closed"):
        return "resolved"
    has_update = any(e.kind == "communication_sent" for e in st.events)
    return "update" if has_update else "started"


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
        lines += ["", f"Duration: {format_duration(resolved - start)}", "", "Resolution:", *done, "",
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


async def send_slack(client, url: str, text: str, *, max_attempts: int = 4, max_wait: float = 30.0) -> SendResult:
    """POST to a Slack incoming webhook; on 429 wait Retry-After (bounded) and try again."""
    attempts = 0
    while True:
        attempts += 1
        try:
            resp = await client.post(url, content=json.dumps({"text": text}),
                                     headers={"Content-Type": "application/json"}, timeout=10.0)
        except Exception as e:  # noqa: BLE001 - one line for the responder
            from cockpit.sources.base import describe_error

            return SendResult(False, describe_error(e, 10.0), attempts)
        if resp.status_code == 429 and attempts < max_attempts:
            try:
                wait = float(resp.headers.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            if wait > max_wait:
                return SendResult(False, f"rate limited; Slack asks to wait {wait:g}s", attempts)
            await asyncio.sleep(max(0.0, wait))
            continue
        if 200 <= resp.status_code < 300:
            return SendResult(True, f"HTTP {resp.status_code}", attempts)
        body = resp.text[:120].strip()
        return SendResult(False, f"HTTP {resp.status_code}" + (f": {body}" if body else ""), attempts)
