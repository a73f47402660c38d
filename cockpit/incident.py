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
from cockpit.journal import MILESTONES, STATUSES, TRANSITIONS, Event, Journal

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
class IncidentState:
    id: str
    title: str = ""
    status: str = "declared"
    drill: bool = False
    declared_at: float = 0.0
    severity: str | None = None
    severities: list[SeverityChange] = field(default_factory=list)
    suggestion: tuple[str, str] | None = None  # (severity, driver) last suggested
    milestones: dict[str, float] = field(default_factory=dict)
    milestone_set_by_hand: set[str] = field(default_factory=set)
    pinned: set[str] = field(default_factory=set)
    last_update_sent: float | None = None
    responders: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status not in ("resolved", "closed")


def fold(incident: str, events: list[Event]) -> IncidentState:
    """The state of an incident after these events, in order."""
    st = IncidentState(incident)
    for ev in events:
        st.events.append(ev)
        if ev.actor not in st.responders:
            st.responders.append(ev.actor)
        p = ev.payload
        if ev.kind == "incident_declared":
            st.title, st.drill, st.declared_at = p.get("title", ""), bool(p.get("drill")), ev.ts
            st.status = "declared"
            _auto_milestone(st, "detected", ev.ts)
            _auto_milestone(st, "impact_started", ev.ts)
            if p.get("severity"):
                st.severity = p["severity"]
                st.severities.append(SeverityChange(ev.ts, p["severity"], ev.actor, "declared", False))
        elif ev.kind == "status_changed":
            st.status = p["to"]
            if p["to"] in MILESTONES:
                _auto_milestone(st, p["to"], ev.ts)
        elif ev.kind == "severity_suggested":
            st.suggestion = (p["severity"], p.get("driver", ""))
        elif ev.kind == "severity_set":
            st.severity = p["severity"]
            st.severities.append(SeverityChange(ev.ts, p["severity"], ev.actor, p.get("reason", ""),
                                                bool(p.get("accepted_suggestion"))))
        elif ev.kind == "milestone_set":
            st.milestones[p["name"]] = float(p["at"])
            st.milestone_set_by_hand.add(p["name"])
        elif ev.kind == "communication_sent" and p.get("ok"):
            st.last_update_sent = ev.ts
        elif ev.kind == "pin":
            (st.pinned.add if p.get("pinned", True) else st.pinned.discard)(p["event"])
        if ev.pinned:
            st.pinned.add(ev.id)
    return st


def _auto_milestone(st: IncidentState, name: str, ts: float) -> None:
    # the first time a status is reached sets its milestone, unless a responder set it by hand
    if name not in st.milestones:
        st.milestones[name] = ts


def check_milestone_order(milestones: dict[str, float]) -> str | None:
    """A problem with the order of the milestones, or None."""
    seen = [(name, milestones[name]) for name in MILESTONES if name in milestones]
    for (a, ta), (b, tb) in zip(seen, seen[1:]):
        if tb < ta:
            return (f"{b} ({utc(tb):%H:%M:%S}) cannot be before {a} ({utc(ta):%H:%M:%S}); "
                    f"set {a} earlier or {b} later")
    return None


class Incidents:
    """Writes incident events to a journal after checking the rules."""

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
        if to not in STATUSES:
            raise IncidentError(f"status must be one of {', '.join(STATUSES)}")
        st = self.state(incident)
        if to == st.status:
            raise IncidentError(f"{incident} is already {to}")
        if to not in TRANSITIONS[st.status]:
            allowed = ", ".join(TRANSITIONS[st.status])
            raise IncidentError(f"{incident} is {st.status}: it can go to {allowed}, not {to}")
        reopening = STATUSES.index(to) < STATUSES.index(st.status)
        if reopening and not reason.strip():
            raise IncidentError(f"reopening {incident} ({st.status} -> {to}) needs a reason")
        return self._append(incident, "status_changed", {"from": st.status, "to": to, "reason": reason})

    def suggest_severity(self, incident: str, severity: str, driver: str) -> Event | None:
        """Journal a suggestion when the suggested severity changes (not for every new driver value)."""
        st = self.state(incident)
        if st.suggestion is not None and st.suggestion[0] == severity:
            return None
        return self._append(incident, "severity_suggested", {"severity": severity, "driver": driver})

    def set_severity(self, incident: str, severity: str, reason: str = "", *, accepted: bool = False) -> Event:
        if severity not in SEVERITIES:
            raise IncidentError(f"severity must be one of {', '.join(SEVERITIES)}")
        st = self.state(incident)
        overriding = st.suggestion is not None and st.suggestion[0] != severity and not accepted
        if overriding and not reason.strip():
            raise IncidentError(f"{severity} overrides the suggested {st.suggestion[0]}: give a reason")
        return self._append(incident, "severity_set",
                            {"severity": severity, "reason": reason, "accepted_suggestion": accepted,
                             "previous": st.severity})

    def note(self, incident: str, text: str, *, pinned: bool = False) -> Event:
        text = text.strip()
        if not text:
            raise IncidentError("an empty note is not saved")
        return self._append(incident, "note", {"text": text}, pinned=pinned)

    def pin(self, incident: str, event_id: str, pinned: bool = True) -> Event:
        if not any(e.id == event_id for e in self.journal.events(incident)):
            raise IncidentError(f"no event {event_id} in {incident}")
        return self._append(incident, "pin", {"event": event_id, "pinned": pinned})

    def set_milestone(self, incident: str, name: str, at: float, reason: str) -> Event:
        if name not in MILESTONES:
            raise IncidentError(f"milestone must be one of {', '.join(MILESTONES)}")
        if not reason.strip():
            raise IncidentError(f"changing {name} needs a reason (it moves the incident's durations)")
        st = self.state(incident)
        problem = check_milestone_order({**st.milestones, name: at})
        if problem:
            raise IncidentError(problem)
        return self._append(incident, "milestone_set",
                            {"name": name, "at": at, "reason": reason, "previous": st.milestones.get(name)})
