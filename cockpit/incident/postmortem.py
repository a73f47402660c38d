"""The postmortem, built from the journal alone (so `cockpit export` works anywhere
the journal is). Sections follow the Google SRE and PagerDuty templates and the
seed runbooks' post-incident reviews: summary, impact, trigger, detection,
response and recovery, timeline, roles, action items, lessons; what only people
can write (root cause, lessons) is left as prompts. It stays a draft until the
incident is closed.

Every figure comes from what happened, not from when it was written: peaks and
troughs from every reading of the key signals the cockpit journaled during the
incident (:func:`signal_series`), impact from the first symptom, durations
rounded to the second. With a file to write to, a chart of each key signal goes
beside the Markdown (:mod:`cockpit.incident.charts`, imported only then).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cockpit.clock import format_duration, spoken_duration, utc
from cockpit.incident.lines import effect_text, verdict
from cockpit.incident.readings import SignalSeries, signal_series, window
from cockpit.incident.state import IncidentState, is_symptom
from cockpit.incident.journal import MACHINE_ACTOR, Event
from cockpit.units import fmt_usd

#: what journals written before snapshots carried their signals' descriptions held
#: journal kinds the Timeline table leaves to the appendix
QUIET = {"metrics_snapshot", "pin", "severity_suggested", "drill_marker"}


def md(text: Any) -> str:
    """Outside text made inert in Markdown, for a table cell or a line: no pipes, newlines
    or HTML, no links or images (``[x](javascript:…)``, ``![x](http://…)``), and nothing
    that would start a heading, quote or list at the start of a line."""
    s = " ".join(str(text).split())
    s = (s.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
         .replace("`", "\\`").replace("[", "\\[").replace("]", "\\]"))
    if s[:1] in ("#", "-", "+", "*", "=", "~"):
        s = "\\" + s
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", s)


def when(ts: float | None) -> str:
    return "—" if ts is None else f"{utc(ts):%Y-%m-%d %H:%M:%S} UTC"


def people(st: IncidentState) -> list[str]:
    return [r for r in st.responders if r != MACHINE_ACTOR]


def durations(st: IncidentState) -> dict[str, float | None]:
    m = st.milestones

    def between(a: str, b: str) -> float | None:
        return round(m[b] - m[a]) if a in m and b in m else None

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


# ---------------------------------------------------------------- signals


def cost_during(series: dict[str, SignalSeries], start: float, end: float) -> float | None:
    """Money spent in the window: the cost burn rate ($/day) integrated over time."""
    s = series.get("cost")
    pts = s.within(start, end) if s is not None and s.unit == "usd_per_day" else []
    if not pts:
        return None
    total = 0.0
    for (t, v), nxt in zip(pts, pts[1:] + [(end, None)]):
        total += v * max(0.0, nxt[0] - t) / 86400.0
    return total


def failed_requests(series: dict[str, SignalSeries], start: float, end: float) -> tuple[float, float] | None:
    """(failed, total) requests in the window, where a source gives the request rate."""
    err, rate = series.get("error_rate"), series.get("requests")
    if err is None or rate is None or err.unit != "ratio":
        return None
    rates = rate.within(start, end)
    errs = err.points
    if len(rates) < 2 or not errs:
        return None
    import bisect

    times = [t for t, _ in errs]
    failed = total = 0.0
    for (t, r), (t2, _) in zip(rates, rates[1:]):
        i = bisect.bisect_right(times, t) - 1
        if i < 0:
            continue
        n = r * (t2 - t)
        total += n
        failed += n * errs[i][1]
    return failed, total


# ---------------------------------------------------------------- actions and the timeline

def _effect(v: Event | None, e: Event | None) -> str:
    """'verified (api healthy); error rate 0.21 → 0.004' from the verification and effect events."""
    parts = []
    if v is not None:
        parts.append(f"{verdict(v.payload.get('ok'))} ({v.payload.get('details', '')})")
    moved = effect_text(e.payload if e is not None else (v.payload if v is not None else {}))
    if moved:
        parts.append(moved)
    return "; ".join(parts)


def actions(events: list[Event]) -> list[dict[str, Any]]:
    by_intent: dict[str, dict[str, Event]] = {}
    for e in events:
        if e.kind in ("action_outcome", "action_verified", "action_effect"):
            by_intent.setdefault(e.payload.get("intent"), {})[e.kind] = e
    out = []
    for e in events:
        if e.kind == "action_intent":
            got = by_intent.get(e.id, {})
            o = got.get("action_outcome")
            out.append({"at": e.ts, "action": e.payload.get("action"), "actor": e.actor,
                        "target": (e.payload.get("plan") or {}).get("target", ""),
                        "result": o.payload.get("result") if o else "outcome unknown",
                        "details": o.payload.get("details", "") if o else "the cockpit stopped before recording it",
                        "effect": _effect(got.get("action_verified"), got.get("action_effect"))})
    return out


def line(e: Event) -> str:
    p = e.payload
    k = e.kind
    if k == "incident_declared":
        return f"Incident declared{' automatically' if p.get('auto') else ''}: {p.get('title', '')}"
    if k == "title_set":
        return f"Title set: {p.get('title', '')}"
    if k == "status_changed":
        return f"Status {p.get('from')} → {p.get('to')}" + (f" ({p['reason']})" if p.get("reason") else "")
    if k == "severity_set":
        return f"Severity {p.get('severity')}" + (" (accepted suggestion)" if p.get("accepted_suggestion")
                                                 else f": {p.get('reason', '')}")
    if k == "severity_suggested":
        return f"{p.get('severity')} suggested: {p.get('driver', '')}"
    if k in ("alert_raised", "alert_cleared"):
        return p.get("text", k)
    if k == "change_seen":
        return f"◆ {p.get('text', '')}"
    if k == "note":
        return f"Note: {p.get('text', '')}"
    if k == "role_set":
        from cockpit.incident.state import ROLES

        return f"{ROLES.get(p.get('role', ''), p.get('role', '?')).capitalize()}: {p.get('holder', '')}" + \
            (f" (was {p['previous']})" if p.get("previous") else "")
    if k == "action_item":
        return f"Action item: {p.get('text', '')}" + (f" (owner {p['owner']})" if p.get("owner") else "")
    if k == "milestone_set":
        return f"Milestone {p.get('name')} set to {when(p.get('at'))}: {p.get('reason', '')}"
    if k == "action_intent":
        return f"Action started: {p.get('action')}"
    if k == "action_outcome":
        return f"Action {p.get('action')}: {p.get('result')} {p.get('details', '')}".strip()
    if k == "action_verified":
        return f"Action {p.get('action')}: {_effect(e, None)}"
    if k == "action_effect":
        return f"Action {p.get('action')} after {p.get('after_s', 0):.0f}s: {effect_text(p) or 'no signal read'}"
    if k == "communication_sent":
        return f"Update sent to {p.get('channel', '?')}: {p.get('summary', '')}"
    if k == "pin":
        return "Pinned an event" if p.get("pinned", True) else "Unpinned an event"
    if k == "metrics_snapshot":
        n = sum(len(v) for v in (p.get("samples") or {}).values() if isinstance(v, list))
        return f"Signals recorded ({n} readings)" if "samples" in p else \
            "Signals: " + ", ".join(f"{a} {b}" for a, b in p.items())
    return k.replace("_", " ")


def changes_before(st: IncidentState, start: float, acts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes seen before the first symptom (before ``start`` when there is none),
    oldest first: deploys and configuration edits the sources saw, and the actions run
    from a cockpit (``acts``, from :func:`actions`: an action is a change too). Each with
    how long before it came."""
    evs = in_time_order(st.events)
    first = next((e for e in evs if is_symptom(e)), None)
    until = first.ts if first is not None else start

    def earliest(e: Event) -> float:  # a change seen by polling happened after the last look before it
        after = e.payload.get("after")
        return float(after) if isinstance(after, (int, float)) and after <= e.ts else e.ts

    out = [{"at": e.ts, "ago": until - e.ts, "text": e.payload.get("text", ""), "by": e.payload.get("by", ""),
            "where": e.payload.get("where", ""), "after": e.payload.get("after")}
           for e in evs if e.kind == "change_seen" and earliest(e) <= until]
    out += [{"at": a["at"], "ago": until - a["at"], "text": f"{a['action']} on {a['target']} by {a['actor']}",
             "by": a["actor"], "where": a["target"], "after": None} for a in acts if a["at"] <= until]
    return sorted(out, key=lambda c: c["at"])


def _ago(seconds: float) -> str:
    return format_duration(max(0.0, seconds))


def in_time_order(events: list[Event]) -> list[Event]:
    """Events by when they happened (journal order breaks ties): alerts from before the
    declaration and work written after an outage fall where they belong."""
    return sorted(events, key=lambda e: (e.ts, e.seq or 0))


def roles(st: IncidentState) -> dict[str, list[str]]:
    """Who did what: each person's acts, in the order they first did them."""
    did: dict[str, list[str]] = {}
    counts: dict[tuple[str, str], int] = {}
    for e in in_time_order(st.events):
        if e.actor == MACHINE_ACTOR:
            continue
        what = {"incident_declared": "declared" if not e.payload.get("auto") else "",
                "status_changed": {"acknowledged": "acknowledged", "mitigated": "marked mitigated",
                                   "resolved": "resolved", "closed": "closed"}.get(e.payload.get("to"), "reopened"),
                "severity_set": "set the severity", "title_set": "set the title",
                "action_intent": f"ran {e.payload.get('action')}", "note": "notes",
                "communication_sent": "sent updates", "action_item": "action items",
                "role_set": "set roles",
                "milestone_set": "corrected milestones"}.get(e.kind, "")
        if not what:
            continue
        key = (e.actor, what)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            did.setdefault(e.actor, []).append(what)
    return {who: [f"{w} ({counts[(who, w)]})" if counts[(who, w)] > 1 else w for w in acts]
            for who, acts in did.items()}


# ---------------------------------------------------------------- the document

def data(st: IncidentState, now: float, head: Event | None = None) -> dict[str, Any]:
    evs = st.events
    start, end = window(st, now)
    series = signal_series(evs)
    extremes = {role: s.extremes(start, end) for role, s in series.items()}
    requests = failed_requests(series, start, end)
    acts = actions(evs)
    items = [{"text": i.text, "owner": i.owner, "priority": i.priority, "due": i.due, "by": i.by}
             for i in st.action_items]
    items += [{"text": e.payload["text"][4:].lstrip(" :-"), "owner": "", "priority": "", "due": "", "by": e.actor}
              for e in evs if e.kind == "note" and e.payload.get("text", "").upper().startswith("TODO")]
    return {
        "id": st.id, "title": st.title, "status": st.status, "drill": st.drill,
        "postmortem": "final" if st.status == "closed" else "draft",
        "severity_initial": st.severities[0].severity if st.severities else None,
        "severity_final": st.severity,
        "severities": [{"severity": c.severity, "at": c.ts, "by": c.actor, "reason": c.reason,
                        "accepted_suggestion": c.accepted_suggestion} for c in st.severities],
        "time_at_severity": [{"severity": s, "seconds": d} for s, d in severity_time(st, end)],
        "milestones": st.milestones, "milestone_source": st.milestone_source, "durations": durations(st),
        "window": {"start": start, "end": end},
        "peaks": {role: x["worst"][1] for role, x in extremes.items() if x},
        "extremes": {role: {k: {"at": t, "value": v} for k, (t, v) in x.items()} for role, x in extremes.items() if x},
        "failed_requests": None if requests is None else {"failed": requests[0], "total": requests[1]},
        "cost_usd": cost_during(series, start, end),
        "responders": people(st), "roles": roles(st), "actions": acts,
        "changes_before": changes_before(st, start, acts),
        "role_holders": {role: [{"who": who, "from": ts} for who, ts in held] for role, held in st.roles.items()},
        "action_items": items,
        "communications": [e.payload for e in evs if e.kind == "communication_sent"],
        "head": None if head is None else {"seq": head.seq, "hash": head.hash},
        "events": [{"at": e.ts, "written": e.written, "actor": e.actor, "kind": e.kind, "payload": e.payload,
                    "pinned": e.id in st.pinned} for e in in_time_order(evs)],
    }


def to_json(st: IncidentState, now: float, head: Event | None = None) -> str:
    return json.dumps(data(st, now, head), indent=2, ensure_ascii=False) + "\n"


def write_markdown(st: IncidentState, now: float, path: Path, head: Event | None = None) -> list[Path]:
    """Write the postmortem to ``path`` and a chart of each key signal beside it (SVG);
    returns the charts written. Raises OSError when the file cannot be written."""
    from cockpit.incident.charts import draw_signals

    charts = draw_signals(st, now, path.with_suffix(""), signal_series(st.events))
    path.write_text(to_markdown(st, now, head=head, charts={role: p.name for role, p in charts.items()}),
                    encoding="utf-8")
    return list(charts.values())


def to_markdown(st: IncidentState, now: float, head: Event | None = None, charts: dict[str, str] | None = None) -> str:
    d = data(st, now, head)
    evs = st.events
    start, end = window(st, now)
    series = signal_series(evs)
    out: list[str] = []
    w = out.append
    sev_path = " → ".join(f"{c.severity} ({utc(c.ts):%H:%M} UTC)" for c in st.severities) or "not set"
    w("---")
    w(f"id: {st.id}")
    w(f"title: {json.dumps(st.title, ensure_ascii=False)}")
    w(f"severity: {json.dumps(sev_path, ensure_ascii=False)}")
    w(f"status: {st.status}")
    w(f"postmortem: {d['postmortem']}")
    w(f"authors: {json.dumps(people(st), ensure_ascii=False)}")
    w(f"drill: {'true' if st.drill else 'false'}")
    w(f"generated: {when(now)}")
    if head is not None:
        w(f"journal_head: {head.hash}")
    w("---")
    w("")
    w(f"# Postmortem: {md(st.title) or st.id}{' (DRILL)' if st.drill else ''}")
    w("")
    if d["postmortem"] == "draft":
        w("> **DRAFT**: it becomes final when the incident is closed. Fill in the prompts in _italics_.")
        w("")
    w("## Summary")
    w("")
    ttr = d["durations"]["TTR"]
    w(f"{md(st.title)}. Impact from {when(start)}; declared {when(st.declared_at)}; severity "
      f"{st.severity or 'not set'}; status {st.status}; "
      f"{'resolved after ' + format_duration(ttr) if ttr is not None else 'not resolved yet'}.")
    w("")
    w("> _Write two or three sentences: what broke, who was affected, how it was fixed._")
    w("")
    _impact(w, st, d, series, start, end)
    _milestones(w, st, d)
    w("## Trigger / what changed")
    w("")
    first = next((e for e in in_time_order(evs) if is_symptom(e)), None)
    if first is not None:
        w(f"First symptom: {md(first.payload.get('text', ''))} at {when(first.ts)}.")
    w("")
    changed = d["changes_before"]
    if changed:
        w(f"Changes seen before {'the first symptom' if first is not None else 'the impact began'} "
          "(newest last; the cockpit's own actions are changes too):")
        w("")
        for c in changed:
            between = f"; it changed between {utc(c['after']):%H:%M:%S} and then (seen by polling)" \
                if c["after"] is not None else ""
            when_ = f"{_ago(c['ago'])} before" if c["ago"] >= 0 else "seen just after the first symptom"
            w(f"- {utc(c['at']):%H:%M:%S} ({when_}{between}) ◆ {md(c['text'])}")
    else:
        w("No change was seen before the first symptom (no deploy, configuration edit or action reached the "
          "cockpit's sources).")
    w("")
    w("> _What changed just before the first symptom (deploy, config, traffic, a dependency)?_")
    w("")
    _detection(w, st, evs)
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
    w("## Timeline")
    w("")
    w("Times are when things happened (UTC); the appendix has every event.")
    w("")
    w("| time (UTC) | event | actor |")
    w("|---|---|---|")
    for e in in_time_order(evs):
        if e.kind not in QUIET or e.id in st.pinned:
            pin = "📌 " if e.id in st.pinned else ""
            w(f"| {utc(e.ts):%H:%M:%S} | {pin}{md(line(e))} | {md(e.actor)} |")
    w("")
    w("## Roles")
    w("")
    from cockpit.incident.state import ROLES

    for role, name in ROLES.items():
        held = st.roles.get(role)
        chain = ", then ".join(f"{md(who)} (from {utc(ts):%H:%M:%S} UTC)" for who, ts in held) if held else \
            "_not recorded (take it in the cockpit with `O`)_"
        w(f"- {name.capitalize()}: {chain}")
    w("")
    if d["roles"]:
        w("| responder | did |")
        w("|---|---|")
        for who, acts in d["roles"].items():
            w(f"| {md(who)} | {md(', '.join(acts))} |")
    else:
        w("No responder acted from the cockpit.")
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
        for item in d["action_items"]:
            extra = [f"owner: {md(item['owner'])}" if item["owner"] else "owner: _unassigned_",
                     f"priority: {item['priority']}" if item["priority"] else "",
                     f"due: {item['due']}" if item["due"] else ""]
            w(f"- [ ] {md(item['text'])} ({', '.join(x for x in extra if x)})")
    else:
        w("None recorded (add them in the cockpit with `i`, or here).")
    w("")
    w("## Communications sent")
    w("")
    comms = [e for e in in_time_order(evs) if e.kind == "communication_sent"]
    if comms:
        for e in comms:
            w(f"- {utc(e.ts):%H:%M:%S} UTC, {md(e.payload.get('channel', '?'))} by {md(e.actor)}: "
              f"{md(e.payload.get('summary', ''))}")
    else:
        w("None recorded.")
    w("")
    cards = [e.payload["scorecard"] for e in evs if e.kind == "drill_marker" and "scorecard" in e.payload]
    if cards:  # a drill: the last scorecard taken
        from cockpit.drill.scorecard import markdown

        out.extend(markdown(cards[-1]))
        w("")
    if charts:
        w("## Signals")
        w("")
        for role, name in charts.items():
            title = series[role].title if role in series else role
            w(f"![{md(title)} over the incident, with its thresholds and the D/A/M/R milestones]({name})")
            w("")
    w("## Appendix: full event log")
    w("")
    w("| time (UTC) | written | kind | event | actor |")
    w("|---|---|---|---|---|")
    for e in in_time_order(evs):
        late = f"+{e.written - e.ts:.0f}s" if e.written is not None and e.written - e.ts >= 1 else ""
        w(f"| {utc(e.ts):%H:%M:%S} | {late} | {e.kind} | {md(line(e))} | {md(e.actor)} |")
    w("")
    if head is not None:
        w(f"Journal head: event #{head.seq}, `{head.hash}`. Check this record later with "
          f"`cockpit journal verify {st.id} --head {head.hash[:16]}`.")
        w("")
    return "\n".join(out)


def _impact(w, st: IncidentState, d: dict, series: dict[str, SignalSeries], start: float, end: float) -> None:
    w("## Impact")
    w("")
    resolved = "resolved" in st.milestones
    how = st.milestone_source.get("impact_started", "")
    w(f"- Duration: {spoken_duration(end - start)}{'' if resolved else ' so far (not resolved)'}, "
      f"from impact started ({when(start)}{'; ' + md(how) if how else ''})")
    for sev, secs in severity_time(st, end):
        w(f"- Time at {sev}: {spoken_duration(secs)}")
    if not st.severities:
        w("- Severity: never set")
    for role, label in (("error_rate", "error rate"), ("latency", "latency"), ("cost", "cost burn")):
        s = series.get(role)
        x = d["extremes"].get(role)
        if s is None or x is None:
            w(f"- Peak {label}: not recorded")
            continue
        worst = x["worst"]
        word = "Peak" if s.direction == "above" else "Lowest"
        name = s.title if not s.series or s.series.endswith(s.title.replace(" ", "_")) else \
            f"{s.title} ({s.series.split(':', 1)[-1]})"
        w(f"- {word} {md(name)}: {s.fmt(worst['value'])} at {utc(worst['at']):%H:%M:%S} UTC")
    fr = d["failed_requests"]
    if fr is not None and fr["total"] > 0:
        w(f"- Requests failed: about {fr['failed']:,.0f} of {fr['total']:,.0f} "
          f"({fr['failed'] / fr['total'] * 100:.1f}%), from the error rate and the request rate")
    cost = d["cost_usd"]
    w(f"- Cost during the incident: {fmt_usd(cost) if cost is not None else 'not recorded'}")
    comps = sorted({e.payload.get("signal", "") for e in st.events if is_symptom(e) and e.payload.get("signal")
                    and start <= e.ts <= end and e.payload.get("signal", "").startswith(("component", "health"))})
    if comps:
        w(f"- Affected: {md(', '.join(comps))}")
    w("")
    w("> _Who was affected, and how (customers, regions, features)?_")
    w("")


def _milestones(w, st: IncidentState, d: dict) -> None:
    w("## Key timestamps and durations")
    w("")
    w("Durations are measured from **impact_started** (TTD, TTM, TTR) and from **detected** (TTA), "
      "rounded to the second. Correct a milestone in the cockpit with `M`.")
    w("")
    w("| milestone | time (UTC) | how |")
    w("|---|---|---|")
    for name in ("impact_started", "detected", "acknowledged", "mitigated", "resolved"):
        how = md(st.milestone_source.get(name, "")) if name in st.milestones else "—"
        w(f"| {name} | {when(st.milestones.get(name))} | {how} |")
    w("")
    for k, v in d["durations"].items():
        w(f"- {k}: {format_duration(v) if v is not None else '—'}")
    w("")


def _detection(w, st: IncidentState, evs: list[Event]) -> None:
    w("## Detection")
    w("")
    declared = next((e for e in evs if e.kind == "incident_declared"), None)
    if declared is not None:
        how = "automatically on a critical alert" if declared.payload.get("auto") else f"by {md(declared.actor)}"
        w(f"Declared {how} at {when(declared.ts)}.")
        early = [e for e in in_time_order(evs) if is_symptom(e) and e.ts < declared.ts]
        if early:
            w(f"{len(early)} symptom(s) came before the declaration, the first at {when(early[0].ts)}: "
              f"{md(early[0].payload.get('text', ''))}.")
    w("")
    w("> _Why did monitoring not catch it earlier? What would have?_")
    w("")
