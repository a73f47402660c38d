"""The incident desk: what the cockpit does with alerts and a responder's keys,
between the live signals and the journal. No UI code: the app calls it and
shows what it returns.

- The first critical alert declares an incident (if configured); every alert
  after that is journaled on it.
- Every journaled event becomes a timeline line (:func:`timeline_line`).
- A failed journal write never loses the responder's text: it is kept in
  ``unsaved`` and the error is returned for the UI to show.

Threading: every method that touches the journal runs on the app's one journal
thread (a shared journal is a network round trip away). :meth:`state` and
:attr:`current` only read what that thread last published, so the UI can ask
them on every frame without waiting on the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.clock import Clock, hms
from cockpit.incident import IncidentError, Incidents, IncidentState, fold
from cockpit.journal import MACHINE_ACTOR, Event, Journal, JournalError
from cockpit.model import Level, TimelineEvent

STATUS_LEVELS = {"declared": Level.CRIT, "acknowledged": Level.WARN, "mitigated": Level.WARN,
                 "resolved": Level.OK, "closed": Level.OK}


@dataclass
class Unsaved:
    """Something the journal refused; kept, retried when the journal answers again, and
    written to a rescue file if the cockpit stops first (:meth:`IncidentDesk.rescue`)."""

    kind: str
    payload: dict
    error: str
    at: float
    retry: Callable[[], object] | None = field(default=None, repr=False)


def timeline_line(ev: Event) -> TimelineEvent:
    """How a journal event reads on the timeline."""
    p, who = ev.payload, ev.actor
    kind = ev.kind
    if kind == "incident_declared":
        how = "automatically" if p.get("auto") else f"by {who}"
        return TimelineEvent(ev.ts, "incident", f"incident {ev.incident} declared {how}: {p.get('title', '')}",
                             Level.CRIT, payload={"id": ev.id})
    if kind in ("alert_raised", "alert_cleared"):
        return TimelineEvent(ev.ts, "alert", p.get("text", ""), Level[p.get("level", "WARN")], p.get("signal", ""),
                             {"id": ev.id})
    if kind == "status_changed":
        why = f" ({p['reason']})" if p.get("reason") else ""
        return TimelineEvent(ev.ts, "status", f"status {p['from']} → {p['to']} by {who}{why}",
                             STATUS_LEVELS.get(p["to"], Level.WARN), payload={"id": ev.id})
    if kind == "severity_suggested":
        return TimelineEvent(ev.ts, "severity", f"{p['severity']} suggested: {p.get('driver', '')}", Level.WARN,
                             payload={"id": ev.id})
    if kind == "severity_set":
        how = "accepted the suggestion" if p.get("accepted_suggestion") else (p.get("reason") or "set")
        return TimelineEvent(ev.ts, "severity", f"severity {p['severity']} by {who}: {how}", Level.WARN,
                             payload={"id": ev.id})
    if kind == "note":
        return TimelineEvent(ev.ts, "note", f"{who}: {p.get('text', '')}", Level.OK, payload={"id": ev.id})
    if kind == "milestone_set":
        at = f" to {hms(p['at'])}" if isinstance(p.get("at"), (int, float)) else ""
        return TimelineEvent(ev.ts, "status",
                             f"milestone {p['name'].replace('_', ' ')} set{at} by {who}: {p.get('reason', '')}",
                             Level.OK, payload={"id": ev.id})
    if kind == "communication_sent":
        how = p.get("channel", "?") if p.get("ok") else f"{p.get('channel', '?')} FAILED ({p.get('detail', '')})"
        return TimelineEvent(ev.ts, "status", f"update sent to {how} by {who}: {p.get('summary', '')}",
                             Level.OK if p.get("ok") else Level.WARN, payload={"id": ev.id})
    if kind == "action_intent":
        plan = p.get("plan", {})
        return TimelineEvent(ev.ts, "action", f"▶ {p.get('action')} on {plan.get('target', '?')} by {who}",
                             Level.WARN, payload={"id": ev.id})
    if kind == "action_outcome":
        took = f" in {p['duration']:.1f}s" if isinstance(p.get("duration"), (int, float)) else ""
        level = {"ok": Level.OK, "failed": Level.CRIT}.get(p.get("result"), Level.WARN)
        return TimelineEvent(ev.ts, "action", f"{p.get('action')}: {str(p.get('result')).upper()}{took}: "
                             f"{p.get('details', '')}", level, payload={"id": ev.id, "intent": p.get("intent")})
    if kind == "action_verified":
        ok = p.get("ok")
        verdict = "verified" if ok else "NOT verified" if ok is False else "not verifiable"
        effect = ", ".join(f"{k.replace('_', ' ')} {_num(b)} → {_num(p.get('after', {}).get(k))}"
                           for k, b in p.get("before", {}).items())
        return TimelineEvent(ev.ts, "action", f"{p.get('action')} {verdict}: {p.get('details', '')}"
                             + (f"; {effect}" if effect else ""),
                             Level.OK if ok else Level.CRIT if ok is False else Level.WARN,
                             payload={"id": ev.id, "intent": p.get("intent")})
    if kind == "drill_marker" and "scorecard" in p:
        return TimelineEvent(ev.ts, "note", f"drill scored against {p['scorecard'].get('against', '?')}", Level.OK,
                             payload={"id": ev.id})
    if kind == "metrics_snapshot":
        return TimelineEvent(ev.ts, "snapshot", "signals recorded", Level.OK, payload={"id": ev.id, "quiet": True})
    if kind == "pin":
        return TimelineEvent(ev.ts, "note", f"{who} {'pinned' if p.get('pinned', True) else 'unpinned'} an event",
                             Level.OK, payload={"id": ev.id, "quiet": True})
    return TimelineEvent(ev.ts, kind, f"{kind.replace('_', ' ')} by {who}", Level.OK, payload={"id": ev.id})


def _num(v) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) else "?"


class IncidentDesk:
    def __init__(self, journal: Journal, clock: Clock, actor: str, service: str,
                 declare_on_critical: bool = True, on_event: Callable[[TimelineEvent], None] | None = None,
                 drill: bool = False) -> None:
        self.journal = journal
        self.incidents = Incidents(journal, clock, actor)
        self.service = service
        self.declare_on_critical = declare_on_critical
        self.on_event = on_event or (lambda ev: None)
        self.drill = drill  # incidents declared here are drills (marked so in the journal and the postmortem)
        self._current: str | None = None  # on the journal thread; the UI reads `current`
        self.unsaved: list[Unsaved] = []
        self._events: list[Event] = []  # the current incident's events, in journal order
        self._state: IncidentState | None = None
        self._last_snapshot = float("-inf")
        self._retrying = False
        #: the journal's last failure, until an operation succeeds again (shown in the header)
        self.journal_error: str | None = None

    # ------------------------------------------------------------ reading

    @property
    def current(self) -> str | None:
        """The current incident's id as last published (None until its events were read)."""
        st = self._state
        return st.id if st is not None else None

    def state(self) -> IncidentState | None:
        """The current incident as last read from the journal (no I/O: safe on the UI thread)."""
        return self._state

    def _follow(self, incident: str | None) -> None:
        self._current, self._events = incident, []
        self._state = None

    def resume_open(self) -> str | None:
        """Pick up the newest open incident of this service (a restarted cockpit, or one
        another cockpit declared on a shared journal)."""
        for inc in reversed(self.journal.incidents()):
            st = self.incidents.state(inc)
            declared = next((e for e in st.events if e.kind == "incident_declared"), None)
            if declared is None or declared.payload.get("service") != self.service or st.drill:
                continue
            if not st.open:
                return None  # this service's newest incident is over: start clean, read no further back
            if inc != self._current:
                self._follow(inc)
                self.sync()
                for intent in self.unresolved_actions():  # the cockpit stopped while these ran
                    self.on_event(TimelineEvent(
                        intent.ts, "action", f"{intent.payload.get('action')}: OUTCOME UNKNOWN (the cockpit stopped "
                        "while it ran; check the target)", Level.WARN, payload={"intent": intent.id}))
            else:
                self.sync()
            return inc
        return None

    def follow(self) -> int:
        """Another writer changed the journal: show the current incident's new events;
        with no open incident, adopt the newest open one of this service. A journal that
        cannot be read is noted in :attr:`journal_error` (the next announcement retries)."""
        self.retry_unsaved()
        try:
            st = self._state
            if st is not None and st.open:
                return self.sync()
            before = self._current
            self.resume_open()
        except JournalError as e:
            self.journal_error = str(e)
            return 0
        return 1 if self._current != before else 0

    def sync(self) -> int:
        """Show journal events not shown yet (also those written by another cockpit)."""
        if not self._current:
            return 0
        new = self.journal.events(self._current, after_seq=self._events[-1].seq if self._events else 0)
        self.journal_error = None
        if not new and self._state is not None:
            return 0
        self._events.extend(new)
        for ev in new:
            line = timeline_line(ev)
            # who did what, for a drill's ghost: the original responders' own acts
            line.payload.update(journal=ev.kind, by=ev.actor, **({"auto": True} if ev.payload.get("auto") else {}),
                                **({"to": ev.payload["to"]} if "to" in ev.payload else {}))
            if not line.payload.get("quiet"):
                self.on_event(line)
        self._state = fold(self._current, self._events)
        return len(new)

    # ------------------------------------------------------------ writing

    def _guard(self, kind: str, payload: dict, write: Callable[[], object]) -> str | None:
        """Run a journal write; on failure keep what the responder did and return the error."""
        self.retry_unsaved()
        try:
            write()
        except IncidentError as e:
            return str(e)
        except JournalError as e:
            self.journal_error = str(e)
            self.unsaved.append(Unsaved(kind, payload, str(e), self.incidents.clock.now(), write))
            return f"NOT SAVED to the journal ({e}); kept, and retried when it answers: {kind}"
        self.sync()
        return None

    def retry_unsaved(self) -> int:
        """Write what the journal refused earlier, oldest first, stopping at the first
        failure (the journal is still away). A change the rules no longer allow (the status
        moved on meanwhile) is dropped. Returns how many were written."""
        if self._retrying or not self.unsaved:
            return 0
        self._retrying = True
        saved = 0
        try:
            while self.unsaved:
                item = self.unsaved[0]
                try:
                    if item.retry is not None:
                        item.retry()
                except IncidentError:
                    pass
                except JournalError as e:
                    item.error = self.journal_error = str(e)
                    break
                self.unsaved.pop(0)
                saved += 1
        finally:
            self._retrying = False
        if saved:
            self.sync()
        return saved

    def rescue(self, path: Path) -> Path | None:
        """Write what is still unsaved to ``path`` (JSON lines) so nothing is lost when the
        cockpit stops while the journal is away. None when there was nothing to write."""
        import json

        if not self.unsaved:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            for u in self.unsaved:
                f.write(json.dumps({"incident": self._current, "kind": u.kind, "at": u.at, "payload": u.payload,
                                    "error": u.error}, sort_keys=True) + "\n")
        return path

    def declare(self, title: str, *, auto: bool = False, severity: str | None = None) -> str | None:
        st = self.state()
        if st is not None and st.open:
            return f"{self._current} is still open; resolve it before declaring another"

        def write() -> None:
            inc = self.incidents.new_id(self.service)
            self.journal.append(inc, "incident_declared",
                                {"title": title, "severity": severity, "drill": self.drill, "auto": auto,
                                 "service": self.service}, actor=self.incidents.actor,
                                ts=self.incidents.clock.now())
            self._follow(inc)

        return self._guard("incident_declared", {"title": title}, write)

    def alert(self, ev: TimelineEvent) -> str | None:
        """A threshold crossing or state change from the evaluator."""
        st = self.state()
        if st is None or not st.open:
            if not (self.declare_on_critical and ev.level is Level.CRIT):
                self.on_event(ev)  # before an incident: shown, not journaled
                return None
            self._follow(None)
            problem = self.declare(f"{ev.signal or 'signal'} critical: {ev.text}", auto=True)
            if problem:
                return problem
        kind = "alert_cleared" if ev.level is Level.OK else "alert_raised"
        payload = {"signal": ev.signal, "level": ev.level.name, "text": ev.text, **ev.payload}
        return self._guard(kind, payload, lambda: self.journal.append(
            self._current, kind, payload, actor=MACHINE_ACTOR, ts=ev.ts))

    def set_status(self, to: str, reason: str = "") -> str | None:
        if not self._current:
            return "no incident: press D to declare one"
        return self._guard("status_changed", {"to": to}, lambda: self.incidents.set_status(self._current, to, reason))

    def note(self, text: str) -> str | None:
        if not self._current:
            problem = self.declare("declared to record a note")
            if problem:
                self.unsaved.pop()  # the declaration: retried below, with the note
                self.unsaved.append(Unsaved("note", {"text": text}, problem, self.incidents.clock.now(),
                                            lambda: self._late_note(text)))
                return problem
        return self._guard("note", {"text": text}, lambda: self.incidents.note(self._current, text))

    def set_milestone(self, name: str, at: float, reason: str) -> str | None:
        if not self._current:
            return "no incident"
        return self._guard("milestone_set", {"name": name, "at": at, "reason": reason},
                           lambda: self.incidents.set_milestone(self._current, name, at, reason))

    # ------------------------------------------------------------ actions

    def action_intent(self, plan: dict) -> Event:
        """Journal that an action is about to run. Raises when the journal refuses: an
        action whose intent was not recorded must not run."""
        if not self._current:
            problem = self.declare(f"declared to record an action: {plan.get('action')}")
            if problem:
                self.unsaved.pop()  # nothing ran, nothing to keep
                raise JournalError(problem)
        ev = self.journal.intent(self._current, plan.get("action", "?"), plan, actor=self.incidents.actor)
        self.sync()
        return ev

    def action_outcome(self, intent: Event, result: str, details: str, extra: dict) -> str | None:
        """Journal what an action did; kept and retried if the journal refuses (it ran)."""
        inc = intent.incident
        return self._guard("action_outcome", {"intent": intent.id, "result": result, "details": details},
                           lambda: self.journal.outcome(inc, intent, result, details, extra=extra,
                                                        actor=self.incidents.actor))

    def action_verified(self, intent: Event, ok: bool | None, details: str, before: dict, after: dict) -> str | None:
        payload = {"intent": intent.id, "action": intent.payload.get("action"), "ok": ok, "details": details,
                   "before": before, "after": after}
        return self._guard("action_verified", payload, lambda: self.journal.append(
            intent.incident, "action_verified", payload, actor=MACHINE_ACTOR))

    def action_of(self, event_id: str) -> Event | None:
        """The action intent a timeline entry belongs to (the intent, its outcome or verification)."""
        by_id = {e.id: e for e in self._events}
        ev = by_id.get(event_id)
        if ev is None:
            return None
        if ev.kind in ("action_outcome", "action_verified"):
            ev = by_id.get(ev.payload.get("intent"))
        return ev if ev is not None and ev.kind == "action_intent" else None

    def outcome_of(self, intent_id: str) -> str | None:
        for e in self._events:
            if e.kind == "action_outcome" and e.payload.get("intent") == intent_id:
                return e.payload.get("result")
        return None

    def unresolved_actions(self) -> list[Event]:
        """Intents of the current incident with no outcome: shown as "outcome unknown"."""
        done = {e.payload.get("intent") for e in self._events if e.kind == "action_outcome"}
        return [e for e in self._events if e.kind == "action_intent" and e.id not in done]

    def _late_note(self, text: str) -> None:
        """A note whose incident could not be declared: declare, then note (on retry)."""
        if not self._current:
            problem = self.declare("declared to record a note")
            if problem:
                self.unsaved.pop()
                raise JournalError(problem)
        self.incidents.note(self._current, text)

    def set_severity(self, severity: str, reason: str = "", accepted: bool = False) -> str | None:
        if not self._current:
            return "no incident: press D to declare one"
        return self._guard("severity_set", {"severity": severity, "reason": reason},
                           lambda: self.incidents.set_severity(self._current, severity, reason, accepted=accepted))

    def suggest(self, severity: str | None, driver: str) -> None:
        if self._current and severity:
            self._guard("severity_suggested", {"severity": severity},
                        lambda: self.incidents.suggest_severity(self._current, severity, driver))

    SNAPSHOT_EVERY = 30.0

    def snapshot_due(self, now: float) -> bool:
        st = self._state
        return st is not None and st.open and now - self._last_snapshot >= self.SNAPSHOT_EVERY

    def snapshot(self, values: dict[str, float], now: float) -> None:
        """Journal the key signals now and then while the incident is open, so the
        postmortem's peaks and cost need nothing but the journal."""
        if not values or not self.snapshot_due(now):
            return
        self._last_snapshot = now
        self._guard("metrics_snapshot", values,
                    lambda: self.journal.append(self._current, "metrics_snapshot", values, actor=MACHINE_ACTOR, ts=now))

    def communication(self, channel: str, text: str, ok: bool, detail: str,
                      external_id: str | None = None) -> str | None:
        """Journal a status update (its text; never the webhook URL or API key)."""
        if not self._current:
            return "no incident"
        payload = {"channel": channel, "summary": text.splitlines()[0][:120] if text else "", "text": text,
                   "ok": ok, "detail": detail}
        if external_id:
            payload["external_id"] = external_id
        return self._guard("communication_sent", payload,
                           lambda: self.incidents._append(self._current, "communication_sent", payload))

    def record_scorecard(self, doc: dict) -> str | None:
        """Journal a drill's scorecard (the postmortem's drill appendix)."""
        if not self._current:
            return "no incident"
        payload = {"scorecard": doc}
        return self._guard("drill_marker", payload,
                           lambda: self.incidents._append(self._current, "drill_marker", payload))

    def next_update_due(self, every: dict[str, float]) -> float | None:
        """When the next status update is due under the severity's cadence (None: no cadence)."""
        st = self.state()
        if st is None or not st.open or st.severity not in every:
            return None
        return (st.last_update_sent or st.declared_at) + every[st.severity]

    def export_markdown(self, now: float) -> str:
        from cockpit.postmortem import to_markdown

        return to_markdown(self.state(), now)

    def export_file(self, now: float, folders: list[Path]) -> Path | None:
        """Write postmortem-<incident>.md into the first folder that takes it; None if none did."""
        text = self.export_markdown(now)
        name = f"postmortem-{self._current}.md"
        for folder in folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / name).write_text(text, encoding="utf-8")
            except OSError:
                continue
            return folder / name
        return None

    def pin(self, event_id: str, pinned: bool = True) -> str | None:
        if not self._current:
            return "no incident"
        return self._guard("pin", {"event": event_id}, lambda: self.incidents.pin(self._current, event_id, pinned))

    def can(self, to: str) -> bool:
        """Whether the status change ``to`` is allowed now (for greying keys)."""
        from cockpit.journal import TRANSITIONS

        st = self.state()
        return st is not None and to in TRANSITIONS.get(st.status, ())
