"""How journal events read: a line on the timeline for each kind of event, and the
verdict and effect of an action's verification, shared by the desk and the postmortem."""

from __future__ import annotations

from cockpit.clock import hms, utc
from cockpit.incident.journal import Event
from cockpit.model import Level, TimelineEvent
from cockpit.units import FORMATS


STATUS_LEVELS = {"declared": Level.CRIT, "acknowledged": Level.WARN, "mitigated": Level.WARN,
                 "resolved": Level.OK, "closed": Level.OK}


def timeline_line(ev: Event) -> TimelineEvent:
    """How a journal event reads on the timeline."""
    p, who = ev.payload, ev.actor
    kind = ev.kind
    ident = {"id": ev.id}
    if kind == "incident_declared":
        how = "automatically" if p.get("auto") else f"by {who}"
        return TimelineEvent(ev.ts, "incident", f"incident {ev.incident} declared {how}: {p.get('title', '')}",
                             Level.CRIT, payload=ident)
    if kind in ("alert_raised", "alert_cleared"):
        return TimelineEvent(ev.ts, "alert", p.get("text", ""), _level(p.get("level")), p.get("signal", ""), ident)
    if kind == "change_seen":
        return TimelineEvent(ev.ts, "change", p.get("text", ""), Level.OK, p.get("where", ""), ident)
    if kind == "title_set":
        return TimelineEvent(ev.ts, "status", f"title set by {who}: {p.get('title', '')}", Level.OK, payload=ident)
    if kind == "status_changed":
        why = f" ({p['reason']})" if p.get("reason") else ""
        return TimelineEvent(ev.ts, "status", f"status {p['from']} → {p['to']} by {who}{why}",
                             STATUS_LEVELS.get(p["to"], Level.WARN), payload=ident)
    if kind == "severity_suggested":
        return TimelineEvent(ev.ts, "severity", f"{p['severity']} suggested: {p.get('driver', '')}", Level.WARN,
                             payload=ident)
    if kind == "severity_set":
        how = "accepted the suggestion" if p.get("accepted_suggestion") else (p.get("reason") or "set")
        return TimelineEvent(ev.ts, "severity", f"severity {p['severity']} by {who}: {how}", Level.WARN,
                             payload=ident)
    if kind == "note":
        return TimelineEvent(ev.ts, "note", f"{who}: {p.get('text', '')}", Level.OK, payload=ident)
    if kind == "role_set":
        from cockpit.incident.state import ROLES

        role = ROLES.get(p.get("role", ""), p.get("role", "?"))
        how = (f"{who} took the role of {role}" if p.get("holder") == who
               else f"{who} handed the role of {role} to {p.get('holder')}")
        return TimelineEvent(ev.ts, "status", how, Level.OK, payload=ident)
    if kind == "action_item":
        owner = f" (owner {p['owner']})" if p.get("owner") else ""
        return TimelineEvent(ev.ts, "note", f"action item by {who}: {p.get('text', '')}{owner}", Level.OK,
                             payload=ident)
    if kind == "milestone_set":
        at = ""
        if isinstance(p.get("at"), (int, float)):  # with its date when not the day it was set on
            day = utc(p["at"]).date()
            at = f" to {hms(p['at'])}" if day == utc(ev.ts).date() else f" to {day.isoformat()} {hms(p['at'])}"
        return TimelineEvent(ev.ts, "status",
                             f"milestone {p['name'].replace('_', ' ')} set{at} by {who}: {p.get('reason', '')}",
                             Level.OK, payload=ident)
    if kind == "communication_sent":
        how = p.get("channel", "?") if p.get("ok") else f"{p.get('channel', '?')} FAILED ({p.get('detail', '')})"
        return TimelineEvent(ev.ts, "status", f"update sent to {how} by {who}: {p.get('summary', '')}",
                             Level.OK if p.get("ok") else Level.WARN, payload=ident)
    if kind == "action_intent":
        plan = p.get("plan", {})
        return TimelineEvent(ev.ts, "action", f"▶ {p.get('action')} on {plan.get('target', '?')} by {who}",
                             Level.WARN, payload=ident)
    if kind == "action_outcome":
        took = f" in {p['duration']:.1f}s" if isinstance(p.get("duration"), (int, float)) else ""
        level = {"ok": Level.OK, "failed": Level.CRIT}.get(p.get("result"), Level.WARN)
        return TimelineEvent(ev.ts, "action", f"{p.get('action')}: {str(p.get('result')).upper()}{took}: "
                             f"{p.get('details', '')}", level, payload={**ident, "intent": p.get("intent")})
    if kind == "action_verified":
        ok = p.get("ok")
        return TimelineEvent(ev.ts, "action", f"{p.get('action')} {verdict(ok)}: {p.get('details', '')}"
                             + (f"; {effect_text(p)}" if effect_text(p) else ""),  # journals before effects split
                             Level.OK if ok else Level.CRIT if ok is False else Level.WARN,
                             payload={**ident, "intent": p.get("intent")})
    if kind == "action_effect":
        return TimelineEvent(ev.ts, "action", f"{p.get('action')} effect after {p.get('after_s', 0):.0f}s: "
                             f"{effect_text(p) or 'no signal read'}", Level.OK,
                             payload={**ident, "intent": p.get("intent")})
    if kind == "drill_marker" and "attempt_ended" in p:
        return TimelineEvent(ev.ts, "note", str(p.get("text", "attempt ended")), Level.OK, payload=ident)
    if kind == "drill_marker" and "scorecard" in p:
        return TimelineEvent(ev.ts, "note", f"drill scored against {p['scorecard'].get('against', '?')}", Level.OK,
                             payload=ident)
    if kind == "metrics_snapshot":
        return TimelineEvent(ev.ts, "snapshot", "signals recorded", Level.OK, payload={**ident, "quiet": True})
    if kind == "pin":
        return TimelineEvent(ev.ts, "note", f"{who} {'pinned' if p.get('pinned', True) else 'unpinned'} an event",
                             Level.OK, payload={**ident, "quiet": True})
    return TimelineEvent(ev.ts, kind, f"{kind.replace('_', ' ')} by {who}", Level.OK, payload=ident)


def verdict(ok: bool | None) -> str:
    return "verified" if ok else "NOT verified" if ok is False else "not verifiable"


def effect_text(p: dict) -> str:
    """'error rate 21.3% → 0.4%, …' from the before/after signals of a payload, each in its
    unit (a journal from before units were kept: '0.213 → 0.004')."""
    after = p.get("after") or {}
    units = p.get("units") if isinstance(p.get("units"), dict) else {}

    def shown(k: str, v) -> str:
        fmt = FORMATS.get(units.get(k)) if isinstance(units.get(k), str) else None
        return fmt(v) if fmt is not None and isinstance(v, (int, float)) else _num(v)

    return ", ".join(f"{k.replace('_', ' ')} {shown(k, b)} → {shown(k, after.get(k))}"
                     for k, b in (p.get("before") or {}).items())


def _level(name) -> Level:
    try:
        return Level[str(name)]
    except KeyError:
        return Level.WARN


def _num(v) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) else "?"
