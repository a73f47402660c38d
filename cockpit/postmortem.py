"""The postmortem, built from the journal alone (so `cockpit export` works anywhere
the journal is). Sections merge the Google SRE, PagerDuty and Atlassian templates
with the seed runbooks' post-incident reviews; what only people can write (root
cause, lessons) is left as prompts."""

from __future__ import annotations

import json
from typing import Any

from cockpit.clock import format_duration, utc
from cockpit.incident import IncidentState
from cockpit.journal import MACHINE_ACTOR, Event
from cockpit.units import fmt_ratio, fmt_seconds, fmt_usd

SIGNIFICANT = {"incident_declared", "status_changed", "severity_set", "milestone_set", "action_intent",
               "action_outcome", "action_verified", "communication_sent", "drill_marker"}


def md(text: Any) -> str:
    """Text made safe for one Markdown table cell: no pipes, no newlines, no HTML."""
    s = " ".join(str(text).split())
    return (s.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("`", "\\`"))


def when(ts: float | None) -> str:
    return "—" if ts is None else f"{utc(ts):%Y-%m-%d %H:%M:%S} UTC"


def people(st: IncidentState) -> list[str]:
    return [r for r in st.responders if r != MACHINE_ACTOR]


def durations(st: IncidentState) -> dict[str, float | None]:
    m = st.milestones

    def between(a: str, b: str) -> float | None:
        return m[b] - m[a] if a in m and b in m else None

    return {
        "TTD": between("impact_started", "detected"),
        "TTA": between("detected", "acknowledged"),
        "TTM": between("impact_started", "mitigated"),
        "TTR": between("impact_started", "resolved"),
    }


def severity_time(st: IncidentState, end: float) -> list[tuple[str, float]]:
    """Seconds spent at each severity, in order."""
    out: list[tuple[str, float]] = []
    for cur, nxt in zip(st.severities, st.severities[1:] + [None]):
        stop = nxt.ts if nxt is not None else end
        out.append((cur.severity, max(0.0, stop - cur.ts)))
    return out


def peaks(events: list[Event]) -> dict[str, float]:
    """Worst values journaled during the incident (metrics snapshots and alerts)."""
    out: dict[str, float] = {}
    for e in events:
        if e.kind == "metrics_snapshot":
            for k, v in e.payload.items():
                if isinstance(v, (int, float)):
                    out[k] = max(out.get(k, v), v)
    return out


def cost_during(events: list[Event], end: float) -> float | None:
    """Money spent while open: the journaled burn rate integrated over time."""
    snaps = [(e.ts, e.payload.get("cost_per_day")) for e in events if e.kind == "metrics_snapshot"]
    snaps = [(t, v) for t, v in snaps if isinstance(v, (int, float))]
    if not snaps:
        return None
    total = 0.0
    for (t, v), nxt in zip(snaps, snaps[1:] + [(end, None)]):
        total += v * max(0.0, nxt[0] - t) / 86400.0
    return total


def _effect(v: Event | None) -> str:
    """'verified; error_rate 0.21 → 0.004' from an action_verified event."""
    if v is None:
        return ""
    p = v.payload
    verdict = {True: "verified", False: "NOT verified"}.get(p.get("ok"), "not verifiable")
    after = p.get("after") or {}
    moved = ", ".join(f"{k} {b:.4g} → {after[k]:.4g}" for k, b in (p.get("before") or {}).items()
                      if isinstance(b, (int, float)) and isinstance(after.get(k), (int, float)))
    return f"{verdict} ({p.get('details', '')})" + (f"; {moved}" if moved else "")


def actions(events: list[Event]) -> list[dict[str, Any]]:
    outcomes = {e.payload.get("intent"): e for e in events if e.kind == "action_outcome"}
    verified = {e.payload.get("intent"): e for e in events if e.kind == "action_verified"}
    out = []
    for e in events:
        if e.kind == "action_intent":
            o = outcomes.get(e.id)
            out.append({"at": e.ts, "action": e.payload.get("action"), "actor": e.actor,
                        "target": (e.payload.get("plan") or {}).get("target", ""),
                        "result": o.payload.get("result") if o else "outcome unknown",
                        "details": o.payload.get("details", "") if o else "the cockpit stopped before recording it",
                        "effect": _effect(verified.get(e.id))})
    return out


def line(e: Event) -> str:
    p = e.payload
    k = e.kind
    if k == "incident_declared":
        return f"Incident declared{' automatically' if p.get('auto') else ''}: {p.get('title', '')}"
    if k == "status_changed":
        return f"Status {p.get('from')} → {p.get('to')}" + (f" ({p['reason']})" if p.get("reason") else "")
    if k == "severity_set":
        return f"Severity {p.get('severity')}" + (" (accepted suggestion)" if p.get("accepted_suggestion")
                                                 else f": {p.get('reason', '')}")
    if k == "severity_suggested":
        return f"{p.get('severity')} suggested: {p.get('driver', '')}"
    if k in ("alert_raised", "alert_cleared"):
        return p.get("text", k)
    if k == "note":
        return f"Note: {p.get('text', '')}"
    if k == "milestone_set":
        return f"Milestone {p.get('name')} set to {when(p.get('at'))}: {p.get('reason', '')}"
    if k == "action_intent":
        return f"Action started: {p.get('action')}"
    if k == "action_outcome":
        return f"Action {p.get('action')}: {p.get('result')} {p.get('details', '')}".strip()
    if k == "action_verified":
        return f"Action {p.get('action')}: {_effect(e)}"
    if k == "communication_sent":
        return f"Update sent to {p.get('channel', '?')}: {p.get('summary', '')}"
    if k == "pin":
        return "Pinned an event" if p.get("pinned", True) else "Unpinned an event"
    if k == "metrics_snapshot":
        return "Signals: " + ", ".join(f"{a} {b}" for a, b in p.items())
    return k.replace("_", " ")


def data(st: IncidentState, now: float) -> dict[str, Any]:
    evs = st.events
    end = st.milestones.get("resolved", now)
    pk = peaks(evs)
    return {
        "id": st.id, "title": st.title, "status": st.status, "drill": st.drill,
        "severity_initial": st.severities[0].severity if st.severities else None,
        "severity_final": st.severity,
        "severities": [{"severity": c.severity, "at": c.ts, "by": c.actor, "reason": c.reason,
                        "accepted_suggestion": c.accepted_suggestion} for c in st.severities],
        "time_at_severity": [{"severity": s, "seconds": d} for s, d in severity_time(st, end)],
        "milestones": st.milestones, "durations": durations(st),
        "peaks": pk, "cost_usd": cost_during(evs, end),
        "responders": people(st), "actions": actions(evs),
        "action_items": [e.payload["text"] for e in evs if e.kind == "note"
                         and e.payload.get("text", "").upper().startswith("TODO")],
        "communications": [e.payload for e in evs if e.kind == "communication_sent"],
        "events": [{"at": e.ts, "actor": e.actor, "kind": e.kind, "payload": e.payload, "pinned": e.id in st.pinned}
                   for e in evs],
    }


def to_json(st: IncidentState, now: float) -> str:
    return json.dumps(data(st, now), indent=2, ensure_ascii=False) + "\n"


def to_markdown(st: IncidentState, now: float) -> str:
    d = data(st, now)
    evs = st.events
    end = st.milestones.get("resolved", now)
    out: list[str] = []
    w = out.append
    sev_path = " → ".join(f"{c.severity} ({utc(c.ts):%H:%M} UTC)" for c in st.severities) or "not set"
    w("---")
    w(f"id: {st.id}")
    w(f"title: {json.dumps(st.title, ensure_ascii=False)}")
    w(f"severity: {json.dumps(sev_path, ensure_ascii=False)}")
    w(f"status: {st.status}")
    w(f"authors: {json.dumps(people(st), ensure_ascii=False)}")
    w(f"drill: {'true' if st.drill else 'false'}")
    w(f"generated: {when(now)}")
    w("---")
    w("")
    w(f"# Postmortem: {md(st.title) or st.id}{' (DRILL)' if st.drill else ''}")
    w("")
    w("## Summary")
    w("")
    dur = d["durations"]["TTR"]
    w(f"{md(st.title)}. Declared {when(st.declared_at)}; severity {st.severity or 'not set'}; status "
      f"{st.status}; {'resolved after ' + format_duration(dur) if dur is not None else 'not resolved yet'}.")
    w("")
    w("> _Write two or three sentences: what broke, who was affected, how it was fixed._")
    w("")
    w("## Impact")
    w("")
    for sev, secs in severity_time(st, end):
        w(f"- {sev}: {format_duration(secs)}")
    if not st.severities:
        w("- severity: never set")
    pk = d["peaks"]
    w(f"- Peak error rate: {fmt_ratio(pk['error_rate']) if 'error_rate' in pk else 'not recorded'}")
    w(f"- Peak p95 latency: {fmt_seconds(pk['latency_p95']) if 'latency_p95' in pk else 'not recorded'}")
    cost = d["cost_usd"]
    w(f"- Cost during the incident: {fmt_usd(cost) if cost is not None else 'not recorded'}")
    w("")
    w("## Key timestamps and durations")
    w("")
    w("Durations are measured from **impact_started** (TTD, TTM, TTR) and from **detected** (TTA).")
    w("")
    w("| milestone | time (UTC) | set |")
    w("|---|---|---|")
    for name in ("impact_started", "detected", "acknowledged", "mitigated", "resolved"):
        how = "by hand" if name in st.milestone_set_by_hand else "automatically"
        w(f"| {name} | {when(st.milestones.get(name))} | {how if name in st.milestones else '—'} |")
    w("")
    for k, v in d["durations"].items():
        w(f"- {k}: {format_duration(v) if v is not None else '—'}")
    w("")
    w("## Responders")
    w("")
    for r in people(st):
        w(f"- {md(r)}")
    w("")
    w("## Timeline")
    w("")
    w("| time (UTC) | event | actor |")
    w("|---|---|---|")
    for e in evs:
        critical_alert = e.kind == "alert_raised" and e.payload.get("level") == "CRIT"
        if e.kind in SIGNIFICANT or e.id in st.pinned or critical_alert:
            pin = "📌 " if e.id in st.pinned else ""
            w(f"| {utc(e.ts):%H:%M:%S} | {pin}{md(line(e))} | {md(e.actor)} |")
    w("")
    w("The full log is in the appendix.")
    w("")
    w("## Detection")
    w("")
    declared = next((e for e in evs if e.kind == "incident_declared"), None)
    first_alert = next((e for e in evs if e.kind == "alert_raised"), None)
    if declared is not None:
        how = "automatically on a critical alert" if declared.payload.get("auto") else f"by {md(declared.actor)}"
        w(f"Declared {how} at {when(declared.ts)}.")
    if first_alert is not None:
        w(f"First alert: {md(first_alert.payload.get('text', ''))} at {when(first_alert.ts)}.")
    w("")
    w("> _Why did monitoring not catch it earlier? What would have?_")
    w("")
    w("## Response and recovery")
    w("")
    if d["actions"]:
        w("| time (UTC) | action | target | by | outcome | details | verified / effect |")
        w("|---|---|---|---|---|---|---|")
        for a in d["actions"]:
            w(f"| {utc(a['at']):%H:%M:%S} | {md(a['action'])} | {md(a['target'])} | {md(a['actor'])} | "
              f"{md(a['result'])} | {md(a['details'])} | {md(a['effect'])} |")
    else:
        w("No remediation actions were run from the cockpit.")
    w("")
    w("## Root cause and contributing factors")
    w("")
    w("> _What was the underlying cause? Which factors made it worse or slower to fix?_")
    w("")
    w("## Lessons learned")
    w("")
    w("- What went well: _…_")
    w("- What went wrong: _…_")
    w("- Where we got lucky: _…_")
    w("")
    w("## Action items")
    w("")
    if d["action_items"]:
        w("| # | item | owner | due |")
        w("|---|---|---|---|")
        for i, item in enumerate(d["action_items"], 1):
            w(f"| {i} | {md(item[4:].lstrip(' :-'))} |  |  |")
    else:
        w("No notes starting with TODO were recorded; add action items here.")
    w("")
    w("## Communications sent")
    w("")
    comms = [e for e in evs if e.kind == "communication_sent"]
    if comms:
        for e in comms:
            w(f"- {utc(e.ts):%H:%M:%S} UTC, {md(e.payload.get('channel', '?'))}: {md(e.payload.get('summary', ''))}")
    else:
        w("None recorded.")
    w("")
    cards = [e.payload["scorecard"] for e in evs if e.kind == "drill_marker" and "scorecard" in e.payload]
    if cards:  # a drill: the last scorecard taken
        from cockpit.scorecard import markdown

        out.extend(markdown(cards[-1]))
        w("")
    w("## Appendix: full event log")
    w("")
    w("| time (UTC) | kind | event | actor |")
    w("|---|---|---|---|")
    for e in evs:
        w(f"| {utc(e.ts):%H:%M:%S} | {e.kind} | {md(line(e))} | {md(e.actor)} |")
    w("")
    return "\n".join(out)
