"""Incidents on top of the journal: declare, status, severity, notes, pins, milestones.

The journal holds only events; an incident's current state is a fold of them
(:func:`fold`), so two cockpits sharing a journal agree on the state by reading
the same events. Rules are checked before anything is written: an impossible
status change or milestone order is refused with one clear line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cockpit.clock import Clock, SystemClock, utc
from cockpit.incident.journal import MILESTONES, STATUSES, TRANSITIONS, Event, Journal

SEVERITIES = ("P0", "P1", "P2", "P3")


class IncidentError(Exception):
    """A change the rules do not allow; the message says why and what to do."""


@dataclass
class SeverityChange:
    ts: float
    severity: str
    actor: str
    reason: str
    accepted_suggestion: bool


@dataclass
class ActionItem:
    """A follow-up added during or after the incident (exported as a checklist)."""

    text: str
    owner: str = ""
    priority: str = ""
    due: str = ""
    by: str = ""
    ts: float = 0.0


PRIORITIES = ("P0", "P1", "P2", "P3")
#: the roles of the incident tools' practice, by key: incident commander, communications lead
ROLES = {"commander": "incident commander", "communications": "communications lead"}


@dataclass
class IncidentState:
    id: str
    title: str = ""
    status: str = "declared"
    drill: bool = False
    declared_at: float = 0.0
    severity: str | None = None
    severities: list[SeverityChange] = field(default_factory=list)
    suggestion: tuple[str, str] | None = None  # (severity, driver) last suggested
    suggested_at: float = float("-inf")  # when the latest suggestion was made
    milestones: dict[str, float] = field(default_factory=dict)
    milestone_set_by_hand: set[str] = field(default_factory=set)
    #: how each milestone came to be: "first symptom: …", "declared automatically", "alice: acknowledged", …
    milestone_source: dict[str, str] = field(default_factory=dict)
    pinned: set[str] = field(default_factory=set)
    last_update_sent: float | None = None
    responders: list[str] = field(default_factory=list)
    action_items: list[ActionItem] = field(default_factory=list)
    #: role -> [(who, since), ...]: every holder in turn (the last holds it now)
    roles: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def holder(self, role: str) -> str | None:
        held = self.roles.get(role)
        return held[-1][0] if held else None

    @property
    def open(self) -> bool:
        return self.status not in ("resolved", "closed")

    @property
    def graver_suggestion(self) -> str | None:
        """A severity suggested since the severity was set that is graver than it (P2 set,
        then the service went down: P0), else None: the header must not hide it."""
        if self.severity is None or self.suggestion is None or not self.severities:
            return None
        suggested = self.suggestion[0]
        graver = suggested in SEVERITIES and self.severity in SEVERITIES and \
            SEVERITIES.index(suggested) < SEVERITIES.index(self.severity)
        return suggested if graver and self.suggested_at > self.severities[-1].ts else None


def is_symptom(ev: Event) -> bool:
    """An alert that says something is wrong (a WARN/CRIT crossing or a degraded state)."""
    return ev.kind == "alert_raised" and ev.payload.get("level") in ("WARN", "CRIT")


def fold(incident: str, events: list[Event]) -> IncidentState:
    """The state of an incident after these events, in journal order. Events may carry
    earlier times than the ones before them (alerts from before the declaration, work
    written after an outage): milestones come from the times things happened."""
    st = IncidentState(incident)
    for ev in events:
        st.events.append(ev)
        if ev.actor not in st.responders:
            st.responders.append(ev.actor)
        p = ev.payload
        if ev.kind == "incident_declared":
            st.title, st.drill, st.declared_at = p.get("title", ""), bool(p.get("drill")), ev.ts
            st.status = "declared"
            how = "declared automatically on a critical alert" if p.get("auto") else f"declared by {ev.actor}"
            _auto_milestone(st, "detected", ev.ts, how)
            _auto_milestone(st, "impact_started", ev.ts, "no earlier symptom: the declaration")
            if p.get("severity"):
                st.severity = p["severity"]
                st.severities.append(SeverityChange(ev.ts, p["severity"], ev.actor, "declared", False))
        elif is_symptom(ev):
            _first_symptom(st, ev)
        elif ev.kind == "title_set":
            st.title = p.get("title", st.title)
        elif ev.kind == "status_changed":
            st.status = p["to"]
            if p["to"] in MILESTONES:
                _auto_milestone(st, p["to"], ev.ts, f"{ev.actor} set the status to {p['to']}")
        elif ev.kind == "severity_suggested":
            st.suggestion = (p["severity"], p.get("driver", ""))
            st.suggested_at = max(st.suggested_at, ev.ts)
        elif ev.kind == "severity_set":
            st.severity = p["severity"]
            st.severities.append(SeverityChange(ev.ts, p["severity"], ev.actor, p.get("reason", ""),
                                                bool(p.get("accepted_suggestion"))))
        elif ev.kind == "milestone_set":
            st.milestones[p["name"]] = float(p["at"])
            st.milestone_set_by_hand.add(p["name"])
            st.milestone_source[p["name"]] = f"set by {ev.actor}: {p.get('reason', '')}"
        elif ev.kind == "communication_sent" and p.get("ok"):
            st.last_update_sent = max(st.last_update_sent or ev.ts, ev.ts)
        elif ev.kind == "pin":
            (st.pinned.add if p.get("pinned", True) else st.pinned.discard)(p["event"])
        elif ev.kind == "role_set":
            st.roles.setdefault(p.get("role", ""), []).append((p.get("holder", ""), ev.ts))
        elif ev.kind == "action_item":
            st.action_items.append(ActionItem(p.get("text", ""), p.get("owner", ""), p.get("priority", ""),
                                              p.get("due", ""), ev.actor, ev.ts))
        if ev.pinned:
            st.pinned.add(ev.id)
    return st


def _auto_milestone(st: IncidentState, name: str, ts: float, how: str) -> None:
    # the first time a status is reached sets its milestone, unless a responder set it by hand
    if name not in st.milestones:
        st.milestones[name] = ts
        st.milestone_source[name] = how


def _first_symptom(st: IncidentState, ev: Event) -> None:
    """Impact starts at the episode's first symptom, unless a responder set it by hand."""
    if "impact_started" in st.milestone_set_by_hand:
        return
    if "impact_started" not in st.milestones or ev.ts < st.milestones["impact_started"]:
        st.milestones["impact_started"] = ev.ts
        st.milestone_source["impact_started"] = f"first symptom: {ev.payload.get('text', '')}"


def check_milestone_order(milestones: dict[str, float]) -> str | None:
    """A problem with the order of the milestones, or None."""
    seen = [(name, milestones[name]) for name in MILESTONES if name in milestones]
    for (a, ta), (b, tb) in zip(seen, seen[1:]):
        if tb < ta:
            return (f"{b} ({utc(tb):%H:%M:%S}) cannot be before {a} ({utc(ta):%H:%M:%S}); "
                    f"set {a} earlier or {b} later")
    return None


# ---------------------------------------------------------------- the rules
# Each takes the incident as it stands and returns the payload to journal, or raises
# IncidentError saying why not; the desk checks them against its own state (which
# includes what the journal has not taken yet), Incidents against the journal's.

def status_change(st: IncidentState, to: str, reason: str = "") -> dict:
    if to not in STATUSES:
        raise IncidentError(f"status must be one of {', '.join(STATUSES)}")
    if to == st.status:
        raise IncidentError(f"{st.id} is already {to}")
    if to not in TRANSITIONS[st.status]:
        allowed = ", ".join(TRANSITIONS[st.status])
        raise IncidentError(f"{st.id} is {st.status}: it can go to {allowed}, not {to}")
    reopening = STATUSES.index(to) < STATUSES.index(st.status)
    if reopening and not reason.strip():
        raise IncidentError(f"reopening {st.id} ({st.status} -> {to}) needs a reason")
    return {"from": st.status, "to": to, "reason": reason}


def severity_change(st: IncidentState, severity: str, reason: str = "", accepted: bool = False) -> dict:
    if severity not in SEVERITIES:
        raise IncidentError(f"severity must be one of {', '.join(SEVERITIES)}")
    overriding = st.suggestion is not None and st.suggestion[0] != severity and not accepted
    if overriding and not reason.strip():
        raise IncidentError(f"{severity} overrides the suggested {st.suggestion[0]}: give a reason")
    return {"severity": severity, "reason": reason, "accepted_suggestion": accepted, "previous": st.severity}


def suggestion(st: IncidentState, severity: str, driver: str) -> dict | None:
    """A suggestion worth journaling: only when the suggested severity changes."""
    if st.suggestion is not None and st.suggestion[0] == severity:
        return None
    return {"severity": severity, "driver": driver}


def note_text(text: str) -> dict:
    text = text.strip()
    if not text:
        raise IncidentError("an empty note is not saved")
    return {"text": text}


def title_change(st: IncidentState, title: str) -> dict:
    title = " ".join(title.split())
    if not title:
        raise IncidentError("an empty title is not saved")
    if title == st.title:
        raise IncidentError(f"{st.id} is already titled {title!r}")
    return {"title": title, "previous": st.title}


def pin_change(st: IncidentState, event_id: str, pinned: bool = True) -> dict:
    if not any(e.id == event_id for e in st.events):
        raise IncidentError(f"no event {event_id} in {st.id}")
    return {"event": event_id, "pinned": pinned}


def milestone_change(st: IncidentState, name: str, at: float, reason: str) -> dict:
    if name not in MILESTONES:
        raise IncidentError(f"milestone must be one of {', '.join(MILESTONES)}")
    if not reason.strip():
        raise IncidentError(f"changing {name} needs a reason (it moves the incident's durations)")
    problem = check_milestone_order({**st.milestones, name: at})
    if problem:
        raise IncidentError(problem)
    return {"name": name, "at": at, "reason": reason, "previous": st.milestones.get(name)}


def role_change(st: IncidentState, role: str, holder: str) -> dict:
    """Someone takes a role, or hands it over to someone else."""
    if role not in ROLES:
        raise IncidentError(f"role must be one of {', '.join(ROLES)}")
    holder = " ".join(holder.split())
    if not holder:
        raise IncidentError(f"say who takes the {ROLES[role]}")
    if st.holder(role) == holder:
        raise IncidentError(f"{holder} is already the {ROLES[role]}")
    return {"role": role, "holder": holder, "previous": st.holder(role)}


def action_item(text: str, owner: str = "", priority: str = "", due: str = "") -> dict:
    """A follow-up: what, who owns it, how urgent (P0-P3), when (YYYY-MM-DD)."""
    from datetime import date

    text = " ".join(text.split())
    if not text:
        raise IncidentError("an action item needs a text")
    priority = priority.strip().upper()
    if priority and priority not in PRIORITIES:
        raise IncidentError(f"priority must be one of {', '.join(PRIORITIES)} (or left empty)")
    due = due.strip()
    if due:
        try:
            date.fromisoformat(due)
        except ValueError:
            raise IncidentError(f"due {due!r} is not a date: type it as YYYY-MM-DD") from None
    return {"text": text, "owner": " ".join(owner.split()), "priority": priority, "due": due}


class Incidents:
    """Writes incident events to a journal after checking the rules against it."""

    def __init__(self, journal: Journal, clock: Clock | None = None, actor: str | None = None) -> None:
        self.journal = journal
        self.clock = clock or SystemClock()
        self.actor = actor or journal.actor

    def state(self, incident: str) -> IncidentState:
        return fold(incident, self.journal.events(incident))

    def _append(self, incident: str, kind: str, payload: dict, **kw) -> Event:
        return self.journal.append(incident, kind, payload, actor=self.actor, ts=self.clock.now(), **kw)

    def new_id(self, salt: str = "") -> str:
        """INC-<UTC date-time>-<4 hex from who, what and the exact time>: readable, and
        different for two responders declaring in the same minute."""
        now = self.clock.now()
        tag = hashlib.sha256(f"{self.actor}|{salt}|{now!r}".encode()).hexdigest()[:4]
        return f"INC-{utc(now):%Y%m%d-%H%M}-{tag}"

    def declare(self, title: str, *, severity: str | None = None, drill: bool = False, auto: bool = False,
                reason: str = "") -> str:
        if severity is not None and severity not in SEVERITIES:
            raise IncidentError(f"severity must be one of {', '.join(SEVERITIES)}")
        incident = self.new_id()
        self._append(incident, "incident_declared",
                     {"title": title, "severity": severity, "drill": drill, "auto": auto, "reason": reason})
        return incident

    def set_status(self, incident: str, to: str, reason: str = "") -> Event:
        return self._append(incident, "status_changed", status_change(self.state(incident), to, reason))

    def suggest_severity(self, incident: str, severity: str, driver: str) -> Event | None:
        """Journal a suggestion when the suggested severity changes (not for every new driver value)."""
        payload = suggestion(self.state(incident), severity, driver)
        return None if payload is None else self._append(incident, "severity_suggested", payload)

    def set_severity(self, incident: str, severity: str, reason: str = "", *, accepted: bool = False) -> Event:
        return self._append(incident, "severity_set",
                            severity_change(self.state(incident), severity, reason, accepted))

    def note(self, incident: str, text: str, *, pinned: bool = False) -> Event:
        return self._append(incident, "note", note_text(text), pinned=pinned)

    def set_title(self, incident: str, title: str) -> Event:
        return self._append(incident, "title_set", title_change(self.state(incident), title))

    def pin(self, incident: str, event_id: str, pinned: bool = True) -> Event:
        return self._append(incident, "pin", pin_change(self.state(incident), event_id, pinned))

    def set_milestone(self, incident: str, name: str, at: float, reason: str) -> Event:
        return self._append(incident, "milestone_set", milestone_change(self.state(incident), name, at, reason))

    def add_action_item(self, incident: str, text: str, owner: str = "", priority: str = "", due: str = "") -> Event:
        return self._append(incident, "action_item", action_item(text, owner, priority, due))
