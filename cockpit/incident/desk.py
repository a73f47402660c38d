"""The incident desk: what the cockpit does with alerts and a responder's keys,
between the live signals and the journal. No UI code: the app calls it and
shows what it returns.

- The first critical alert declares an incident (if configured); every alert
  after that is journaled on it. The symptoms that came before the declaration
  in the same episode (a WARN, a degraded health check) are journaled on it too,
  with their own times, so impact starts at the first symptom.
- Everything goes through one ordered outbox: an event gets its id and the time
  it happened when the responder acts (or the reading arrives), is shown at once,
  and is written in order. When the journal is away (disk full, database down)
  the outbox keeps it, the incident's state already includes it, and it is
  written with its own time when the journal answers: one incident, one
  declaration, no alert dropped. Whatever is still unwritten at exit goes to a
  rescue file (:meth:`IncidentDesk.rescue`).
- Every journaled event becomes a timeline line (:func:`timeline_line`) once.

Threading: every method that touches the journal runs on the app's one journal
thread (a shared journal is a network round trip away). :meth:`state` and
:attr:`current` only read what that thread last published, so the UI can ask
them on every frame without waiting on the database.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cockpit.incident import state as rules
from cockpit.clock import Clock
from cockpit.incident.state import IncidentError, Incidents, IncidentState, fold
from cockpit.incident.journal import (ALERT_KINDS, LEASE_TTL, MACHINE_ACTOR, TRANSITIONS, Event, Journal, JournalError,
                                      Lease, NewEvent, Presence, duplicate_alert, one_crossing)
from cockpit.model import Level, TimelineEvent
from cockpit.incident.lines import timeline_line
from cockpit.safetext import clean_value

CHANGES_KEPT = 200  # changes seen with no incident open, kept for the next declaration
EPISODE_LIMIT = 500  # symptoms kept from before a declaration (the first one is always kept)
WRITE_BATCH = 500  # machine events written in one transaction at most
SNAPSHOT_LEAD = 120.0  # seconds of signal history before the first symptom that the first snapshot keeps


class ActionRefused(JournalError):
    """An action may not run: another cockpit holds its target, or there is no incident."""


@dataclass
class Unsaved:
    """An event the journal has not taken yet, with the id and time it was shown with.
    ``once``: an alert another cockpit may already have journaled."""

    event: Event
    error: str = ""
    once: bool = False
    spooled: bool = False  # kept in the spool already (or never to be: a metrics snapshot)

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def payload(self) -> dict:
        return self.event.payload

    @property
    def at(self) -> float:
        return self.event.ts


class IncidentDesk:
    def __init__(self, journal: Journal, clock: Clock, actor: str, service: str,
                 declare_on_critical: bool = True, on_event: Callable[[TimelineEvent], None] | None = None,
                 drill: bool = False, spool=None, mode: str = "LIVE") -> None:
        self.journal = journal
        #: this cockpit, among the others on the journal (leases and presence name it)
        self.cockpit = uuid.uuid4().hex
        self.mode = mode
        #: where the outbox is kept on disk while the journal is away (cockpit.incident.spool.Spool)
        self.spool = spool
        self.leases: list[Lease] = []  # every live lease, as last read (published for the UI)
        self.present: list[Presence] = []  # every cockpit on the journal, as last read
        self.incidents = Incidents(journal, clock, actor)
        self.clock = clock
        self.actor = actor
        self.service = service
        self.declare_on_critical = declare_on_critical
        self.on_event = on_event or (lambda ev: None)
        self.drill = drill  # incidents declared here are drills (marked so in the journal and the postmortem)
        self._current: str | None = None  # on the journal thread; the UI reads `current`
        #: events not written yet, oldest first (the journal was away); written in this order
        self.unsaved: list[Unsaved] = []
        self._events: list[Event] = []  # the current incident's written events, in journal order
        self._shown: set[str] = set()  # ids shown before the journal gave them back
        self._state: IncidentState | None = None
        self._levels: dict[str, Level] = {}  # each alerting signal's last level
        self._episode: list[Event] = []  # symptoms since every signal was last OK, before a declaration
        self._changes: list[Event] = []  # changes seen with no incident open, newest last (see change)
        #: seconds before a declaration whose changes are journaled with it (the app sets the history kept)
        self.change_window = 3600.0
        self._flushing = False
        #: while a poll's machine events are put (:meth:`from_poll`): those put so far, not
        #: published or written yet; None otherwise
        self._unpublished: list[Event] | None = None
        #: (state, signal -> its alerts, how many unpublished events are in it): see _newest_alerts
        self._alert_index: tuple[IncidentState | None, dict[str, list[Event]], int] = (None, {}, 0)
        self._snap_from = 0.0  # where the next signal snapshot starts (see snapshot_since)
        #: the journal's last failure, until a write succeeds again (shown in the header)
        self.journal_error: str | None = None
        self.attempt = 1  # a drill's attempt: a rewind past what happened starts the next (new_attempt)
        #: a team drill's key (cockpit.drill.team): its incidents are the team's, and every
        #: cockpit of the team follows them; None otherwise
        self.team: str | None = None
        #: each key signal's unit (cockpit.units), journaled with an action's effect so its
        #: lines and the postmortem show 21.3% and 993ms, never 0.213 and 0.9932
        self.units: dict[str, str] = {}
        #: a team drill's follower was given the incident the leader's rewind started: the
        #: ids of the ended attempt's lines it carried over (shown again, as the new incident's)
        self.on_replaced: Callable[[set[str]], None] = lambda ids: None
        self._ended: IncidentState | None = None  # the attempt a leader's rewind ended, until the next comes
        self._twins: list[Event] = []  # symptoms shown before taking up another's incident (see _twin)
        self._twin_of: dict[str, str] = {}  # a journaled copy's id -> the id of the line this cockpit showed

    # ------------------------------------------------------------ reading

    @property
    def current(self) -> str | None:
        """The current incident's id as last published (None until it has events)."""
        st = self._state
        return st.id if st is not None else None

    def state(self) -> IncidentState | None:
        """The current incident as last known, unwritten events included (no I/O: safe on
        the UI thread)."""
        return self._state

    def _follow(self, incident: str | None) -> None:
        self._current, self._events = incident, []
        self._publish()

    def _publish(self) -> None:
        if self._unpublished:
            self._unpublished.clear()
        inc = self._current
        if inc is None:
            self._state = None
            return
        pending = [u.event for u in self.unsaved if u.event.incident == inc]
        st = fold(inc, self._events + pending) if self._events or pending else None
        if st is not None:  # where the next snapshot starts, worked out here rather than on every tick
            last = max((e.payload.get("to", e.ts) for e in st.events if e.kind == "metrics_snapshot"), default=None)
            self._snap_from = float(last) if last is not None else \
                st.milestones.get("impact_started", st.declared_at) - SNAPSHOT_LEAD
        self._state = st

    def resume_open(self) -> str | None:
        """Pick up the newest open incident of this service (a restarted cockpit, or one
        another cockpit declared on a shared journal); in a team drill, the team's newest
        drill incident whose attempt goes on."""
        for inc in reversed(self.journal.incidents()):
            st = self.incidents.state(inc)
            declared = next((e for e in st.events if e.kind == "incident_declared"), None)
            if declared is None or declared.payload.get("service") != self.service:
                continue
            if declared.payload.get("team") != self.team or (st.drill and self.team is None):
                continue  # a team follows only its own drill; any other drill is nobody's real incident
            if not st.open or attempt_over(st):
                return None  # this service's newest incident is over: start clean, read no further back
            if inc != self._current:
                ended, self._ended = self._ended, None
                self._adopt_episode()
                self._follow(inc)
                self._journal_changes(inc, st.declared_at)
                if ended is not None and declared.payload.get("carried_from") == ended.id:
                    carried = [e.id for e in ended.events if e.kind in CARRIED]
                    self.on_replaced(self.lines_of(carried))
                self.sync()
                for intent in self.unresolved_actions():  # the cockpit stopped while these ran
                    self.on_event(TimelineEvent(
                        intent.ts, "action", f"{intent.payload.get('action')}: OUTCOME UNKNOWN (the cockpit stopped "
                        "while it ran; check the target)", Level.WARN, payload={"intent": intent.id}))
            else:
                self.sync()
            return inc
        return None

    def _adopt_episode(self) -> None:
        """Taking up an incident another cockpit declared: the symptoms this cockpit showed
        before are that incident's now; its copies of them (journaled with the declaration,
        perhaps after this cockpit took it up) are not shown a second time (:meth:`_show`)."""
        self._twins = list(self._episode)
        self._shown.difference_update(e.id for e in self._episode)
        self._episode = []

    def lines_of(self, ids) -> set[str]:
        """The ids of the timeline lines that show these journal events: their own, and the
        line this cockpit showed before one was journaled under another id (a symptom
        another cockpit journaled first, a change journaled under the id made from it)."""
        return {*ids, *(self._twin_of[i] for i in ids if i in self._twin_of)}

    def _twin(self, ev: Event) -> bool:
        """Whether ``ev`` (read from the journal) is another cockpit's copy of a symptom this
        one showed before taking up its incident (each symptom stands for one copy)."""
        if not self._twins or ev.kind not in ALERT_KINDS:
            return False
        twin = next((t for t in self._twins if t.kind == ev.kind and one_crossing(t, ev)), None)
        if twin is not None:
            self._twins.remove(twin)
            self._twin_of[ev.id] = twin.id
        return twin is not None

    def follow(self) -> int:
        """Another writer changed the journal (or it answers again): write what waits, show
        the current incident's new events; with no open incident, adopt the newest open one
        of this service. A journal that cannot be read is noted in :attr:`journal_error`."""
        self.flush()
        before = self._current
        try:
            st = self._state
            if st is not None and st.open and not attempt_over(st):
                n = self.sync()
                st = self._state
                if st is None or not attempt_over(st):
                    return n
            if st is not None and attempt_over(st):  # the team's leader rewound: its next attempt follows
                self._ended = st
                self._follow(None)
                st = None
            self.resume_open()
        except JournalError as e:
            self.journal_error = str(e)
            return 0
        return 1 if self._current != before else 0

    def sync(self) -> int:
        """Show journal events not shown yet (also those written by another cockpit)."""
        if not self._current or self.unsaved:
            return 0  # the outbox first: its events come before anything newer
        new = self.journal.events(self._current, after_seq=self._events[-1].seq if self._events else 0)
        self.journal_error = None
        if not new and self._state is not None:
            return 0
        self._events.extend(new)
        for ev in new:
            self._show(ev)
        self._publish()
        return len(new)

    def _show(self, ev: Event) -> None:
        """Put an event on the timeline once: when it happens, not again when it is read back."""
        if ev.id in self._shown:
            if ev.seq:  # the journal gave it back: it is written
                self._shown.discard(ev.id)
            return
        if not ev.seq:
            self._shown.add(ev.id)
        elif self._twin(ev):
            return
        line = timeline_line(ev)
        # who did what, for a drill's ghost: the original responders' own acts
        line.payload.update(journal=ev.kind, by=ev.actor, **({"auto": True} if ev.payload.get("auto") else {}),
                            **({"to": ev.payload["to"]} if "to" in ev.payload else {}), **_acted(ev))
        if not line.payload.get("quiet"):
            self.on_event(line)

    # ------------------------------------------------------------ writing

    def _event(self, kind: str, payload: dict, *, at: float | None = None, actor: str | None = None,
               incident: str | None = None, pinned: bool = False, id: str | None = None) -> Event:
        """An event to journal; its payload's strings cleaned (command output, what a target
        answered, text a responder pasted), so the journal holds no escape and no secret."""
        return Event(id or uuid.uuid4().hex, incident or self._current or "", self.clock.now() if at is None else at,
                     actor or self.actor, kind, clean_value(payload), pinned)

    def _put(self, ev: Event, once: bool = False) -> str | None:
        """Queue an event behind the ones waiting (on disk too, when there is a spool), show
        it, and write what the journal takes. Returns a line for the responder when their
        own act could not be written. A machine event of a poll (:meth:`from_poll`) is
        shown now and published and written with the poll's others, at its end."""
        try:
            json.dumps(ev.payload, allow_nan=False)
        except (TypeError, ValueError) as e:  # never queued: it would block everything behind it
            return f"not journaled: {ev.kind.replace('_', ' ')} is not JSON ({e})"
        self.unsaved.append(Unsaved(ev, once=once, spooled=self.spool is None or ev.kind == "metrics_snapshot"))
        self._show(ev)
        if self._unpublished is not None and ev.actor == MACHINE_ACTOR:
            self._unpublished.append(ev)
            return None
        self._publish()
        was_down = self.journal_error is not None
        self.flush()
        if self.journal_error is None or ev.actor == MACHINE_ACTOR:
            return None
        if was_down and ev.kind in ("metrics_snapshot", "severity_suggested"):
            return None
        return (f"NOT SAVED to the journal ({self.journal_error}); kept with its time, written when it answers: "
                f"{ev.kind.replace('_', ' ')}")

    def _rule(self, make: Callable[[IncidentState], dict]) -> dict:
        st = self._state
        if st is None:
            raise IncidentError("no incident: press D to declare one")
        return make(st)

    def flush(self) -> int:
        """Write what waits, oldest first, stopping at the first failure (the journal is
        still away). Returns how many were written. What is not in the spool yet goes there
        first (in one transaction). Machine events in a row are written in one transaction;
        a responder's event is written by itself, so its key press is acknowledged once it,
        and what came before it, is durable, never waiting for what came after."""
        if self._flushing or not self.unsaved:
            return 0
        self._flushing = True
        written = 0
        try:
            self._spool_unsaved()
            while self.unsaved:
                group = self._next_write()
                try:
                    stored = self.journal.append_many([
                        NewEvent(u.event.incident, u.event.kind, u.event.payload, u.event.actor, u.event.ts,
                                 u.event.pinned, u.event.id, u.once) for u in group])
                except JournalError as e:
                    self.journal_error = str(e)
                    for u in group:
                        u.error = self.journal_error
                    break
                for u, s in zip(group, stored):
                    if s.id != u.event.id:  # another cockpit journaled this alert first: ours is that one
                        self._shown.discard(u.event.id)
                        self._shown.add(s.id)
                del self.unsaved[:len(group)]
                if self.spool is not None:
                    self.spool.remove_many([u.event.id for u in group])
                written += len(group)
            else:
                self.journal_error = None
        finally:
            self._flushing = False
        if written and not self.unsaved:
            try:
                self.sync()
            except JournalError as e:
                self.journal_error = str(e)
        return written

    retry_unsaved = flush  # the app's name for it

    def _next_write(self) -> list[Unsaved]:
        """What the next transaction writes: the machine events at the head of the outbox
        (up to WRITE_BATCH), or the one responder's event at its head."""
        if self.unsaved[0].event.actor != MACHINE_ACTOR:
            return self.unsaved[:1]
        n = 1
        while n < min(len(self.unsaved), WRITE_BATCH) and self.unsaved[n].event.actor == MACHINE_ACTOR:
            n += 1
        return self.unsaved[:n]

    def _spool_unsaved(self) -> None:
        """Keep on disk, in their order, the waiting events not in the spool yet."""
        new = [u for u in self.unsaved if not u.spooled]
        if new and self.spool is not None:
            self.spool.add_many([(u.event, u.once) for u in new])
        for u in new:
            u.spooled = True

    @contextmanager
    def _poll_batch(self) -> Iterator[None]:
        """Machine events put inside are shown at once, then published and written
        together at the end: one fold of the incident and one transaction for a poll
        however many alerts it brings. A responder's event put meanwhile (an automatic
        declaration) is written at once, after what came before it."""
        if self._unpublished is not None:
            yield
            return
        self._unpublished = []
        self._alert_index = (None, {}, 0)
        try:
            yield
        finally:
            self._unpublished = None
            self._publish()
            self.flush()

    def from_poll(self, alerts: list[TimelineEvent], suggestion: tuple[str | None, str] | None = None,
                  snapshot: tuple[dict, float, float] | None = None, *, at: float | None = None) -> str | None:
        """What one poll brought, in this order: its crossings and state changes (each as
        :meth:`alert`), the severity the signals now suggest (:meth:`suggest`), the key
        signals' snapshot when one is due (:meth:`snapshot`); journaled in one transaction.
        ``at``: when the poll's readings were taken in (an automatic declaration and a
        suggestion are stamped then, not when this thread gets to them: a drill's seek plays
        many polls at once). Returns a line for the responder when an automatic declaration
        was not written."""
        problem = None
        with self._poll_batch():
            for ev in alerts:
                problem = (self.change(ev) if ev.kind == "change" else self.alert(ev, at=at)) or problem
            if suggestion is not None:
                self.suggest(*suggestion, at=at)
            if snapshot is not None:
                self.snapshot(*snapshot)
        return problem

    def rescue(self, path: Path) -> Path | None:
        """Write what is still unsaved to ``path`` (JSON lines, each with the time it
        happened) so nothing is lost when the cockpit stops while the journal is away.
        None when there was nothing to write."""
        if not self.unsaved:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            for u in self.unsaved:
                ev = u.event
                f.write(json.dumps({"id": ev.id, "incident": ev.incident, "kind": ev.kind, "at": ev.ts,
                                    "actor": ev.actor, "payload": ev.payload, "pinned": ev.pinned,
                                    "error": u.error}, sort_keys=True) + "\n")
        return path

    def _guarded(self, kind: str, make: Callable[[IncidentState], dict], at: float | None,
                 **kw) -> str | None:
        """A responder's change to the current incident: checked against its state (unsaved
        events included), then queued with the time of the key press."""
        try:
            payload = self._rule(make)
        except IncidentError as e:
            return str(e)
        return self._put(self._event(kind, payload, at=at, **kw))

    def declare(self, title: str, *, auto: bool = False, severity: str | None = None,
                at: float | None = None) -> str | None:
        """Declare an incident. Its id is made here, so what follows (alerts, notes) goes to
        it even while the journal is away. The symptoms of this episode so far go with it."""
        st = self.state()
        if st is not None and st.open:
            return f"{self._current} is still open; resolve it before declaring another"
        title = " ".join(title.split())
        if not title:
            return "an incident needs a title"
        inc = self._new_id()
        self._follow(inc)
        attempt = {"attempt": self.attempt} if self.attempt > 1 else {}  # a drill rewound: which try this is
        problem = self._put(self._event("incident_declared",
                                        {"title": title, "severity": severity, "drill": self.drill, "auto": auto,
                                         "service": self.service, **attempt,
                                         **({"team": self.team} if self.team else {})},
                                        at=at, actor=self.actor, incident=inc))
        episode, self._episode = self._episode, []
        for ev in episode:  # journaled with the times they happened (already on the timeline)
            self._put(Event(ev.id, inc, ev.ts, MACHINE_ACTOR, ev.kind, ev.payload))
        self._journal_changes(inc, self.clock.now() if at is None else at)
        return problem

    def change(self, ev: TimelineEvent) -> str | None:
        """A change seen (a deploy, a configuration edit; see ChangeTracker): journaled to the
        open incident; with none open, shown, and kept for the next declaration, which
        journals those of the ``change_window`` before it (what changed before the first
        symptom is the postmortem's trigger). Journaled once however many cockpits saw it."""
        event = self._event("change_seen", {**ev.payload, "text": ev.text}, at=ev.ts, actor=MACHINE_ACTOR)
        st = self.state()
        if st is not None and st.open:
            return self._put_change(event, st.id, st.events)
        self._show(event)
        self._changes.append(event)
        del self._changes[:-CHANGES_KEPT]
        return None

    def _journal_changes(self, inc: str, at: float) -> None:
        """The changes seen before ``inc`` was declared (or taken up) at ``at``, journaled to it."""
        kept, self._changes = self._changes, []
        st = self.state()
        known = st.events if st is not None and st.id == inc else []
        for ev in kept:
            if 0 <= at - ev.ts <= self.change_window:
                self._put_change(ev, inc, known)
            else:
                self._shown.discard(ev.id)

    def _put_change(self, ev: Event, inc: str, known: list[Event]) -> str | None:
        """Journal a change to incident ``inc`` under an id made from what it says (its
        source, where, from, to, since): another cockpit that saw it writes the same id,
        which the journal keeps once; one already ``known`` (or waiting) is not put again.
        A change seen by polling (no since) that says a from -> to already on the record is
        the same change when the two spans in which they happened overlap, else that
        from -> to once more (a roll forward after a rollback), numbered by how many came before."""
        p = ev.payload
        what = [inc, p.get("source"), p.get("where"), p.get("from"), p.get("to"), p.get("since")]
        pending = [u.event for u in self.unsaved]
        twin = None
        if p.get("since") is None:  # seen by polling: the same from -> to again (a roll forward after a rollback)
            same = [e for e in (*known, *pending) if e.kind == "change_seen" and _change_key(e.payload) == what[1:]]
            what += [len(same)] if same else []  # the nth time: the same n in every cockpit that saw them
            # the same flip seen by another cockpit at other moments of its polling: written already
            twin = next((e for e in same if _overlaps(_seen_between(e), _seen_between(ev))), None)
        ident = twin.id if twin else "chg-" + hashlib.sha256(json.dumps(what).encode()).hexdigest()[:28]
        if ev.id in self._shown:  # already on the timeline (that line keeps its id): not shown again
            self._shown.discard(ev.id)
            self._shown.add(ident)
            self._twin_of[ident] = ev.id
        if any(e.id == ident for e in (*known, *pending)):
            return None
        return self._put(Event(ident, inc, ev.ts, ev.actor, ev.kind, ev.payload))

    def alert(self, ev: TimelineEvent, *, at: float | None = None) -> str | None:
        """A threshold crossing or state change from the evaluator."""
        kind = "alert_cleared" if ev.level is Level.OK else "alert_raised"
        payload = {"signal": ev.signal, "level": ev.level.name, "text": ev.text, **ev.payload}
        event = self._event(kind, payload, at=ev.ts, actor=MACHINE_ACTOR)
        key = ev.signal or ev.text
        self._levels[key] = ev.level
        st = self.state()
        if st is not None and st.open:
            known = self._newest_alerts(st).get(event.payload.get("signal"))
            if known and (duplicate_alert(event, known[:1]) is not None or _late_copy(event, known)):
                return None  # another cockpit saw this crossing first: its line is on the timeline already
            return self._put(event, once=True)
        if self.declare_on_critical and ev.level is Level.CRIT:
            # declared now (detection), on an alert that says when the crossing began
            problem = self.declare(f"{ev.signal or 'signal'} critical: {ev.text}", auto=True, at=at)
            self._put(Event(event.id, self._current, event.ts, event.actor, event.kind, event.payload))
            return problem
        self._remember(event)
        return None

    def _newest_alerts(self, st: IncidentState) -> dict[str, list[Event]]:
        """Each signal's alerts, the one a new alert of it is compared with first
        (:func:`duplicate_alert` decides on the first of the signal's alerts by seq, newest
        first: the newest written one, else the first still waiting), counting the alerts put
        since ``st`` was published; worked out once per published state, not for every alert."""
        known, index, seen = self._alert_index
        if known is not st:
            index, seen = {}, 0
            for e in sorted((e for e in st.events if e.kind in ALERT_KINDS), key=lambda e: e.seq, reverse=True):
                index.setdefault(e.payload.get("signal"), []).append(e)
        pending = self._unpublished or []
        for e in pending[seen:]:
            if e.kind in ALERT_KINDS and e.incident == st.id:
                index.setdefault(e.payload.get("signal"), []).append(e)
        self._alert_index = (st, index, len(pending))
        return index

    def _remember(self, ev: Event) -> None:
        """An alert with no incident open: shown, and kept as a symptom of the episode until
        every signal is OK again (a declaration then journals them, not showing them twice)."""
        self._show(ev)
        if ev.kind == "alert_raised" or self._episode:
            self._episode.append(ev)
            if len(self._episode) > EPISODE_LIMIT:
                self._shown.discard(self._episode.pop(1).id)  # the first symptom stays
        else:
            self._shown.discard(ev.id)  # a recovery outside any episode: never journaled
        if all(level <= Level.OK for level in self._levels.values()):
            self._shown.difference_update(e.id for e in self._episode)
            self._episode = []

    def set_status(self, to: str, reason: str = "", *, at: float | None = None) -> str | None:
        problem = self._guarded("status_changed", lambda st: rules.status_change(st, to, reason), at)
        if problem is None and to in ("resolved", "closed"):
            self._episode = []  # what comes next is a new episode
        return problem

    def set_title(self, title: str, *, at: float | None = None) -> str | None:
        return self._guarded("title_set", lambda st: rules.title_change(st, title), at)

    def note(self, text: str, *, at: float | None = None) -> str | None:
        return self._guarded("note", lambda st: rules.note_text(text), at)

    def set_role(self, role: str, holder: str | None = None, *, at: float | None = None) -> str | None:
        """Take a role (``holder`` None: this responder) or hand it to someone."""
        return self._guarded("role_set", lambda st: rules.role_change(st, role, holder or self.actor), at)

    def add_action_item(self, text: str, owner: str = "", priority: str = "", due: str = "", *,
                        at: float | None = None) -> str | None:
        return self._guarded("action_item", lambda st: rules.action_item(text, owner, priority, due), at)

    def set_milestone(self, name: str, when: float, reason: str, *, at: float | None = None) -> str | None:
        return self._guarded("milestone_set", lambda st: rules.milestone_change(st, name, when, reason), at)

    def set_severity(self, severity: str, reason: str = "", accepted: bool = False, *,
                     at: float | None = None) -> str | None:
        return self._guarded("severity_set", lambda st: rules.severity_change(st, severity, reason, accepted), at)

    def suggest(self, severity: str | None, driver: str, *, at: float | None = None) -> None:
        st = self.state()
        if st is None or not st.open or not severity:
            return
        if (self.clock.now() if at is None else at) < st.suggested_at:
            return  # the incident was suggested a severity after this (another cockpit, further on)
        payload = rules.suggestion(st, severity, driver)
        if payload is not None:
            self._put(self._event("severity_suggested", payload, at=at, actor=MACHINE_ACTOR))

    def pin(self, event_id: str, pinned: bool = True, *, at: float | None = None) -> str | None:
        return self._guarded("pin", lambda st: rules.pin_change(st, event_id, pinned), at)

    def reopen(self, reason: str, *, at: float | None = None) -> str | None:
        """Take the current (resolved) incident up again."""
        return self.set_status("acknowledged", reason, at=at)

    # ------------------------------------------------------------ actions

    def action_intent(self, plan: dict, *, at: float | None = None) -> Event:
        """Journal that an action is about to run, holding its target for this cockpit (a
        lease every cockpit on the journal sees). Raises ActionRefused when another cockpit
        holds the target, JournalError when the journal did not take it: an action whose
        intent was not recorded must not run. An action confirmed while the journal was away
        (``plan["offline"]``) goes to the local spool instead, merged when it answers."""
        st = self.state()
        if st is None or not st.open:
            raise ActionRefused("no open incident to record it on: declare one, or reopen the last one")
        ev = self._event("action_intent", {"action": plan.get("action", "?"), "plan": plan}, at=at)
        if self.unsaved:
            self.flush()
        if self.unsaved or self.journal_error is not None:
            if not plan.get("offline"):
                raise JournalError(f"the journal is away ({self.journal_error}); "
                                   f"{len(self.unsaved)} change(s) are still waiting to be written")
            self._put(ev)  # recorded locally (the spool), merged when the journal answers
            return ev
        target = plan.get("target", "?")
        now = self.journal.now()
        held = self.journal.claim(Lease(target, plan.get("action", "?"), self.actor, self.cockpit, ev.incident, now,
                                        now + LEASE_TTL))
        if held.cockpit != self.cockpit:
            self.leases = [held, *[le for le in self.leases if le.target != target]]
            raise ActionRefused(held.describe(now))
        try:
            stored = self.journal.append(ev.incident, ev.kind, ev.payload, actor=ev.actor, ts=ev.ts, id=ev.id)
        except JournalError as e:
            self.journal_error = str(e)
            self._release(target)
            raise
        self.journal_error = None
        self.sync()
        return stored

    def action_done(self, plan: dict) -> None:
        """The action and its verification are over: its target is free for every cockpit."""
        self._release(plan.get("target", "?"))

    def _release(self, target: str) -> None:
        try:
            self.journal.release(target, self.cockpit)
        except JournalError:
            pass  # the lease expires by itself (LEASE_TTL)
        self.leases = [le for le in self.leases if not (le.target == target and le.cockpit == self.cockpit)]

    def merge_spool(self) -> int:
        """Take up what an earlier run kept in the spool while the journal was away, and
        write it (in order, with its own times) if the journal answers."""
        if self.spool is None:
            return 0
        known = {u.event.id for u in self.unsaved}
        for ev, once in self.spool.load():
            if ev.id not in known:
                self.unsaved.append(Unsaved(ev, once=once, spooled=True))
        return self.flush()

    def lease_on(self, target: str) -> Lease | None:
        """Another cockpit's live lease on ``target``, as last read (no I/O: for the dialog)."""
        return next((le for le in self.leases if le.target == target and le.cockpit != self.cockpit), None)

    def keep_alive(self) -> None:
        """Heartbeat: say this cockpit is here (and on which incident), renew its leases,
        read who else is here and which targets are held. A journal that is away is
        noted; the next beat tries again."""
        try:
            st = self._state
            self.present = self.journal.heartbeat(Presence(self.cockpit, self.actor, st.id if st else "", self.mode,
                                                           self.journal.now()))
            if any(le.cockpit == self.cockpit for le in self.leases):
                self.journal.renew(self.cockpit)
            self.leases = self.journal.leases()
        except JournalError as e:
            self.journal_error = self.journal_error or str(e)

    def leave(self) -> None:
        """This cockpit quits: the others stop showing it with the incident at once (not a
        heartbeat's lifetime later). A journal that is away lets it lapse instead."""
        try:
            self.journal.leave(self.cockpit)
        except JournalError:
            pass

    def refresh_leases(self) -> None:
        try:
            self.leases = self.journal.leases()
        except JournalError:
            pass

    def others(self) -> list[str]:
        """Who else is on the current incident (or on none, with this cockpit): names."""
        st = self._state
        here = st.id if st else ""
        return sorted({p.actor for p in self.present if p.cockpit != self.cockpit and p.incident == here})

    def action_outcome(self, intent: Event, result: str, details: str, extra: dict, *,
                       at: float | None = None) -> str | None:
        """Journal what an action did; kept and retried if the journal refuses (it ran)."""
        payload = {**extra, "intent": intent.id, "action": intent.payload.get("action"), "result": result,
                   "details": details}
        return self._put(self._event("action_outcome", payload, at=at, incident=intent.incident))

    def action_verified(self, intent: Event, ok: bool | None, details: str, *, at: float | None = None) -> str | None:
        """Journal the verification at the time the check ran."""
        payload = {"intent": intent.id, "action": intent.payload.get("action"), "ok": ok, "details": details}
        return self._put(self._event("action_verified", payload, at=at, actor=MACHINE_ACTOR,
                                     incident=intent.incident))

    def action_effect(self, intent: Event, before: dict, after: dict, after_s: float, *,
                      at: float | None = None) -> str | None:
        """Journal the key signals before the action and ``after_s`` seconds after it."""
        payload = {"intent": intent.id, "action": intent.payload.get("action"), "before": before, "after": after,
                   "after_s": after_s, "units": {k: self.units[k] for k in {*before, *after} if k in self.units}}
        return self._put(self._event("action_effect", payload, at=at, actor=MACHINE_ACTOR,
                                     incident=intent.incident))

    def _all_events(self) -> list[Event]:
        st = self._state
        return st.events if st is not None else []

    def action_of(self, event_id: str) -> Event | None:
        """The action intent a timeline entry belongs to (the intent, its outcome or verification)."""
        by_id = {e.id: e for e in self._all_events()}
        ev = by_id.get(event_id)
        if ev is None:
            return None
        if ev.kind in ("action_outcome", "action_verified", "action_effect"):
            ev = by_id.get(ev.payload.get("intent"))
        return ev if ev is not None and ev.kind == "action_intent" else None

    def outcome(self, intent_id: str) -> Event | None:
        """The journaled outcome of the action whose intent is ``intent_id`` (None: none yet)."""
        return next((e for e in self._all_events()
                     if e.kind == "action_outcome" and e.payload.get("intent") == intent_id), None)

    def outcome_of(self, intent_id: str) -> str | None:
        outcome = self.outcome(intent_id)
        return outcome.payload.get("result") if outcome is not None else None

    def unresolved_actions(self) -> list[Event]:
        """Intents of the current incident with no outcome: shown as "outcome unknown"."""
        evs = self._all_events()
        done = {e.payload.get("intent") for e in evs if e.kind == "action_outcome"}
        return [e for e in evs if e.kind == "action_intent" and e.id not in done]

    # ------------------------------------------------------------ signals

    SNAPSHOT_EVERY = 30.0

    def snapshot_since(self) -> float | None:
        """Where the next signal snapshot starts (None: no open incident). The first one
        reaches back before the first symptom, so the charts show the change."""
        st = self._state
        return self._snap_from if st is not None and st.open else None

    def snapshot_due(self, now: float) -> bool:
        since = self.snapshot_since()
        return since is not None and now - since >= self.SNAPSHOT_EVERY

    def snapshot(self, doc: dict, since: float, now: float) -> None:
        """Journal the key signals' readings in (since, now] (every value seen, so the
        postmortem's peaks and charts need nothing but the journal)."""
        if self.snapshot_since() is None:
            return  # resolved meanwhile
        self._put(self._event("metrics_snapshot", {**doc, "from": since, "to": now}, at=now, actor=MACHINE_ACTOR))

    def communication(self, channel: str, text: str, ok: bool, detail: str,
                      external_id: str | None = None, *, at: float | None = None) -> str | None:
        """Journal a status update (its text; never the webhook URL or API key)."""
        payload = {"channel": channel, "summary": text.splitlines()[0][:120] if text else "", "text": text,
                   "ok": ok, "detail": detail}
        if external_id:
            payload["external_id"] = external_id
        return self._guarded("communication_sent", lambda st: payload, at)

    def new_attempt(self, at: float) -> str | None:
        """A drill rewound to ``at`` (see :func:`attempt_ends`): the current incident's attempt
        ends, journaled on it, and a new one starts from the incident as it stood at ``at``,
        declared again at its own time with what was journaled up to then (alerts, status,
        severity, notes, roles, updates; the actions run are not carried: their lines stay on
        the timeline). Returns the ended incident's id; None when nothing happened after ``at``."""
        st = self.state()
        if not self.drill or not attempt_ends(st, at):
            return None
        old = st.id
        from cockpit.clock import hms

        self._put(self._event("drill_marker", {"attempt_ended": self.attempt, "rewound_to": at,
                                               "text": f"attempt {self.attempt} ended: rewound to {hms(at)}"},
                              incident=old))
        self.attempt += 1
        self._levels, self._episode = {}, []
        self._changes = [c for c in self._changes if c.ts <= at]
        carried = [e for e in st.events if e.ts <= at and e.kind in CARRIED]
        self._follow(None)
        if not carried or carried[0].kind != "incident_declared":
            self._before_declaration(carried)
            return old
        inc = self._new_id()
        self._follow(inc)
        with self._poll_batch():  # the carried alerts in one transaction, not one each
            for e in carried:
                payload = dict(e.payload, attempt=self.attempt, carried_from=old) if e.kind == "incident_declared" \
                    else e.payload
                self._put(self._event(e.kind, payload, at=e.ts, actor=e.actor, incident=inc))
        return old

    def _new_id(self) -> str:
        """A new incident's id; a drill's later attempt salts it with its number (a replay
        declares again at the very moment of the tape the first attempt was declared at)."""
        return self.incidents.new_id(self.service if self.attempt == 1 else f"{self.service}|attempt {self.attempt}")

    def _before_declaration(self, carried: list[Event]) -> None:
        """Rewound to before the incident was declared: its symptoms and changes from before
        then are the episode again (their lines stay on the timeline), for the next
        declaration to journal. The symptoms under new ids (the old ones are the ended
        attempt's), each standing for the line already shown."""
        for e in sorted(carried, key=lambda e: e.ts):
            if e.kind in ALERT_KINDS:
                copy = self._event(e.kind, e.payload, at=e.ts, actor=e.actor)
                self._shown.add(copy.id)
                self._twin_of[copy.id] = e.id
                self._levels[e.payload.get("signal") or e.payload.get("text", "")] = _level_of(e)
                self._episode.append(copy)
            elif e.kind == "change_seen":
                self._shown.add(e.id)  # journaled again under the next incident's id, as the same line
                self._changes.append(e)

    def record_scorecard(self, doc: dict) -> str | None:
        """Journal a drill's scorecard (the postmortem's drill appendix)."""
        return self._guarded("drill_marker", lambda st: {"scorecard": doc}, None)

    def next_update_due(self, every: dict[str, float]) -> float | None:
        """When the next status update is due under the severity's cadence (None: no cadence)."""
        st = self.state()
        if st is None or not st.open or st.severity not in every:
            return None
        return (st.last_update_sent or st.declared_at) + every[st.severity]

    # ------------------------------------------------------------ export

    def head(self) -> Event | None:
        """The current incident's last written event (its hash seals the export)."""
        return self._events[-1] if self._events else None

    def export_markdown(self, now: float) -> str:
        from cockpit.incident.postmortem import to_markdown

        return to_markdown(self.state(), now, head=self.head())

    def export_file(self, now: float, folders: list[Path]) -> Path | None:
        """Write postmortem-<incident>.md (and its charts beside it) into the first folder
        that takes it; None if none did."""
        from cockpit.incident.postmortem import write_markdown

        name = f"postmortem-{self._current}.md"
        for folder in folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                write_markdown(self.state(), now, folder / name, head=self.head())
            except OSError:
                continue
            return folder / name
        return None

    def can(self, to: str) -> bool:
        """Whether the status change ``to`` is allowed now (for greying keys)."""
        st = self.state()
        return st is not None and to in TRANSITIONS.get(st.status, ())


def _acted(ev: Event) -> dict:
    """For a drill's grading of a tape: which action a line is about (its name and key) and,
    for a verification, whether it passed."""
    if not ev.kind.startswith("action_"):
        return {}
    p = ev.payload
    out = {"action": p.get("action"), "key": (p.get("plan") or {}).get("key")} if ev.kind == "action_intent" else {}
    if ev.kind == "action_verified":
        out["ok"] = p.get("ok")
    return {k: v for k, v in out.items() if v is not None}


#: what a drill's new attempt carries over from the one a rewind ended (actions hold leases
#: and have outcomes of their own: not carried)
CARRIED = {"incident_declared", "change_seen", "alert_raised", "alert_cleared", "status_changed",
           "severity_suggested", "severity_set", "title_set", "note", "role_set", "milestone_set", "communication_sent", "action_item"}


def attempt_ends(st: IncidentState | None, at: float) -> bool:
    """Whether rewinding a drill to ``at`` ends the attempt ``st`` is (something of it
    happened after ``at``: shown as it stood at ``at`` needs a new attempt)."""
    return st is not None and any(e.ts > at for e in st.events if e.kind != "drill_marker")


def _late_copy(ev: Event, known: list[Event]) -> bool:
    """A crossing from before the newest alert of its signal already in the incident, which
    the incident has at that level then: seen by another cockpit first (a team drill's
    follower catching up on the tape, a cockpit whose poll came late)."""
    return ev.ts < known[0].ts and any(one_crossing(ev, k) for k in known)


def attempt_over(st: IncidentState) -> bool:
    """A drill incident a rewind ended (the next attempt is another incident)."""
    return st.drill and any(e.kind == "drill_marker" and "attempt_ended" in e.payload for e in st.events)


def _change_key(payload: dict) -> list:
    """What says which change a change_seen event is: source, where, from, to, since."""
    return [payload.get(k) for k in ("source", "where", "from", "to", "since")]


def _seen_between(ev: Event) -> tuple[float, float]:
    """When a change seen by polling happened: after the last look at the old state (or
    when it was seen, when that is not known) and by when it was seen."""
    after = ev.payload.get("after")
    return (float(after) if isinstance(after, int | float) and after <= ev.ts else ev.ts), ev.ts


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _level_of(ev: Event) -> Level:
    """An alert event's level (its payload names it)."""
    try:
        return Level[str(ev.payload.get("level", "OK"))]
    except KeyError:
        return Level.UNKNOWN
