"""The incident journal: append-only events with a hash chain.

Every event carries the hash of the one before it in the same incident, so an
edited, removed or reordered row is detected by :meth:`Journal.verify`
(`cockpit journal verify`). An event is *acknowledged* when ``append`` returns:
by then it is committed to the database, so it survives the cockpit being
killed (SQLite in WAL mode; ``durability="full"`` also survives power loss at
the cost of an fsync per event). ``append_many`` writes several events in one
transaction, one commit for all (all or none; see its contract), for what the
cockpit journals by itself in one tick.

Actions write an ``action_intent`` before they run and an ``action_outcome``
after; an intent with no outcome (the cockpit died in between) is reported by
:meth:`Journal.unresolved_intents` and shown as "outcome unknown".

Every event carries two times: ``ts``, when the thing happened (the reading, the
key press, the check), and ``written``, when the journal took it. Durations and
the postmortem use ``ts``; an event written late (the journal was away) keeps
the time it happened.

Removal is detected too: after each append the event's *head* (incident, seq,
hash) is added to an append-only heads file beside the SQLite journal (the
PostgreSQL journal keeps them in a table of their own as well as in a local
file). Deleting events from the journal does not delete their heads, so
:meth:`Journal.check` finds an incident cut short, removed, or a table gone.
An export prints the incident's head; ``cockpit journal verify --head HASH``
checks a journal against it.

This module never imports textual; the embedded store is stdlib sqlite3. The
shared PostgreSQL journal implements the same interface.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.clock import Clock, SystemClock

KINDS = (
    "incident_declared",
    "title_set",
    "alert_raised",
    "alert_cleared",
    "change_seen",
    "severity_suggested",
    "severity_set",
    "status_changed",
    "milestone_set",
    "note",
    "role_set",
    "pin",
    "action_item",
    "action_intent",
    "action_outcome",
    "action_verified",
    "action_effect",
    "communication_sent",
    "drill_marker",
    "metrics_snapshot",
)
STATUSES = ("declared", "acknowledged", "mitigated", "resolved", "closed")
#: status -> statuses it may move to; "reopen" goes back to declared or acknowledged
TRANSITIONS = {
    "declared": ("acknowledged", "mitigated", "resolved"),
    "acknowledged": ("mitigated", "resolved"),
    "mitigated": ("resolved", "acknowledged"),
    "resolved": ("closed", "acknowledged", "declared"),
    "closed": ("acknowledged", "declared"),
}
MILESTONES = ("impact_started", "detected", "acknowledged", "mitigated", "resolved")
OUTCOMES = ("ok", "failed", "unknown")
GENESIS = "0" * 64
MACHINE_ACTOR = "cockpit"  # the actor of events the cockpit journals by itself (alerts, snapshots)


def default_path() -> Path:
    """The embedded journal's home: $XDG_DATA_HOME/cockpit/journal.db (~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "cockpit" / "journal.db"


class JournalError(Exception):
    """A journal that cannot be opened or written, or an event that breaks a rule."""


class JournalUnreadable(JournalError):
    """A journal that cannot be read at all: not a journal, damaged, unknown incident
    (``cockpit journal verify`` exits 2, not 1: nothing was shown to be changed)."""


@dataclass(frozen=True)
class Event:
    """One journaled event. ``seq`` orders events within the journal; ``ts`` is when the
    thing happened, ``written`` when the journal took it (None in journals older than
    schema 2)."""

    id: str
    incident: str
    ts: float
    actor: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    pinned: bool = False
    prev_hash: str = GENESIS
    hash: str = ""
    seq: int = 0
    written: float | None = None

    def body(self) -> bytes:
        """The canonical bytes the hash covers (both times, when the event has both)."""
        doc = [self.id, self.incident, repr(float(self.ts)), self.actor, self.kind, self.payload, self.pinned]
        if self.written is not None:
            doc.append(repr(float(self.written)))
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, event: Event) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + event.body()).hexdigest()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    id        TEXT NOT NULL UNIQUE,
    incident  TEXT NOT NULL,
    ts        REAL NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    pinned    INTEGER NOT NULL DEFAULT 0,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    written   REAL
);
CREATE INDEX IF NOT EXISTS events_incident ON events (incident, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (target TEXT PRIMARY KEY, action TEXT NOT NULL, actor TEXT NOT NULL,
    cockpit TEXT NOT NULL, incident TEXT NOT NULL, started REAL NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS presence (cockpit TEXT PRIMARY KEY, actor TEXT NOT NULL, incident TEXT NOT NULL,
    mode TEXT NOT NULL, seen REAL NOT NULL);
"""
#: 2 added ``written`` (when the journal took an event; ``ts`` is when it happened)
SCHEMA_VERSION = "2"
_COLUMNS = "seq, id, incident, ts, actor, kind, payload, pinned, prev_hash, hash, written"


# ---------------------------------------------------------------- shared state: leases and presence

#: the SQLite journal's page cache, KiB (SQLite's default is 2,000: see bench/soak.py)
CACHE_KIB = 1024
LEASE_TTL = 60.0  # seconds a lease lives unless its cockpit renews it (a crashed holder's lease expires)
PRESENCE_TTL = 30.0  # seconds after its last heartbeat a cockpit no longer counts as present
ALERT_SAME_WITHIN = 60.0  # seconds within which two cockpits' alerts of one signal and level are one alert


@dataclass(frozen=True)
class Lease:
    """One action running on one target, held by one cockpit (across every cockpit on the
    journal): the second confirm on the same target is refused with this."""

    target: str
    action: str
    actor: str
    cockpit: str
    incident: str
    started: float
    expires: float

    def describe(self, now: float) -> str:
        from cockpit.clock import hms

        return (f"{self.action} on {self.target} is running: {self.actor}, {hms(self.started)}, "
                f"{max(0.0, now - self.started):.0f} s ago")


@dataclass(frozen=True)
class Presence:
    """A cockpit open on the journal, as its last heartbeat said."""

    cockpit: str
    actor: str
    incident: str
    mode: str
    seen: float


ALERT_KINDS = ("alert_raised", "alert_cleared")


def duplicate_alert(ev: Event, recent: Iterable[Event]) -> Event | None:
    """The alert another cockpit already journaled for the same crossing (same signal, same
    level, within ALERT_SAME_WITHIN), or None. ``recent``: the incident's latest alerts."""
    return _same_crossing(ev, sorted(recent, key=lambda e: e.seq, reverse=True))


def _same_crossing(ev: Event, newest_first: Iterable[Event]) -> Event | None:
    """:func:`duplicate_alert` on alerts already in order, the newest first: the newest alert
    of the same signal decides."""
    signal = ev.payload.get("signal")
    for other in newest_first:
        if other.payload.get("signal") != signal:
            continue
        return other if one_crossing(ev, other) else None
    return None


def one_crossing(a: Event, b: Event) -> bool:
    """Two alerts of one crossing: the same signal at the same level, within ALERT_SAME_WITHIN."""
    return (a.payload.get("signal") == b.payload.get("signal") and a.payload.get("level") == b.payload.get("level")
            and abs(a.ts - b.ts) <= ALERT_SAME_WITHIN)


# ---------------------------------------------------------------- batches

@dataclass(frozen=True)
class NewEvent:
    """One event for :meth:`Journal.append_many`: the arguments of :meth:`Journal.append`."""

    incident: str
    kind: str
    payload: dict[str, Any] | None = None
    actor: str | None = None
    ts: float | None = None
    pinned: bool = False
    id: str | None = None
    once: bool = False


class Chained:
    """A batch of checked events (each with its ``once``) chained as appending them one by
    one would chain them, ready to be written in one transaction; both journals write
    every append this way, a single one being a batch of one.

    ``tails``: each incident's last hash now (every incident of the batch). ``stored``: the
    events the journal already holds under the batch's ids (looked up when a write was
    refused: an entry written before, its answer lost, is that event, not a second one).
    ``recent``: the latest alerts of every incident with a ``once`` entry, the newest first
    (a ``once`` alert whose crossing another cockpit, or an earlier entry, journaled
    already is that event). ``rows`` are what to insert, in this order, each
    ``(event, prev_hash, hash)``; ``tails`` is then each incident's last hash."""

    def __init__(self, batch: Sequence[tuple[Event, bool]], tails: Mapping[str, str],
                 stored: Mapping[str, Event] | None = None, recent: Mapping[str, list[Event]] | None = None) -> None:
        self.tails = dict(tails)
        self.rows: list[tuple[Event, str, str]] = []
        self._picks: list[int | Event] = []  # per entry: its row, or the event the journal holds
        row_of: dict[str, int] = {}  # event id -> its row
        alerts = {incident: list(evs) for incident, evs in (recent or {}).items()}
        for ev, once in batch:
            pick: int | Event | None = row_of.get(ev.id)
            if pick is None and stored:
                pick = stored.get(ev.id)
            if pick is None and once:
                dup = _same_crossing(ev, alerts[ev.incident])
                pick = None if dup is None else row_of.get(dup.id, dup)
            if pick is None:
                prev = self.tails[ev.incident]
                digest = chain_hash(prev, ev)  # the hashed body holds neither prev_hash nor hash
                self.tails[ev.incident] = digest
                pick = row_of[ev.id] = len(self.rows)
                self.rows.append((ev, prev, digest))
                if ev.kind in ALERT_KINDS and ev.incident in alerts:
                    alerts[ev.incident].insert(0, ev)
            self._picks.append(pick)

    def events(self, seqs: Sequence[int]) -> list[Event]:
        """Every entry's event as stored, given the seq each row was written with."""
        rows = [sealed(ev, prev, digest, seq) for (ev, prev, digest), seq in zip(self.rows, seqs, strict=True)]
        return [rows[p] if isinstance(p, int) else p for p in self._picks]


# ---------------------------------------------------------------- heads

@dataclass(frozen=True)
class Head:
    """The last event of an incident as it was when written: (incident, seq, hash)."""

    incident: str
    seq: int
    hash: str


class HeadsFile:
    """An append-only file of heads, one JSON line per journaled event, kept apart from
    the journal so that deleting rows (or the whole journal) does not delete them.
    Never raises on write: a head that cannot be written is kept and written with the
    next one (the event itself is already committed)."""

    def __init__(self, path: Path, durable: bool = False) -> None:
        self.path = path
        self.durable = durable
        self._waiting: list[Head] = []
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return self.path.exists()

    def add(self, *heads: Head) -> None:
        with self._lock:
            self._waiting.extend(heads)
            lines = "".join(json.dumps({"i": h.incident, "s": h.seq, "h": h.hash}, separators=(",", ":")) + "\n"
                            for h in self._waiting)
            try:
                self._append(lines.encode())
            except OSError:
                return  # the disk is full or gone: these heads go with the next event
            self._waiting.clear()

    def _append(self, data: bytes) -> None:
        """``data`` at the end of the file, made (and its folder) when missing; opened for
        each write, so a file moved or deleted meanwhile is made again, not written blind."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        try:
            fd = os.open(self.path, flags, 0o666)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, flags, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def load(self) -> list[Head]:
        """Every head recorded; a damaged line is skipped (it seals nothing)."""
        try:
            text = self.path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        except OSError as e:
            raise JournalUnreadable(f"{self.path}: cannot read the heads file: {e.strerror or e}") from None
        out = []
        for line in text.splitlines():
            try:
                doc = json.loads(line)
                out.append(Head(str(doc["i"]), int(doc["s"]), str(doc["h"])))
            except (ValueError, KeyError, TypeError):
                continue
        return out


@dataclass
class IncidentCheck:
    """What verification found for one incident."""

    incident: str
    events: int = 0
    problems: list[str] = field(default_factory=list)
    sealed: bool = False  # a recorded head matched an event of it
    unsealed_tail: int = 0  # events after the last recorded head (a cockpit stopped between the two writes)


@dataclass
class CheckReport:
    """Everything ``cockpit journal verify`` says, and its exit code."""

    where: str
    incidents: list[IncidentCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # of the journal as a whole
    notes: list[str] = field(default_factory=list)

    @property
    def all_problems(self) -> list[str]:
        return self.problems + [p for c in self.incidents for p in c.problems]

    @property
    def intact(self) -> bool:
        return not self.all_problems and all(c.sealed for c in self.incidents if c.events)


# ---------------------------------------------------------------- journals

class Journal:
    """What every journal does; subclasses store the events (SQLite here, PostgreSQL in
    :mod:`cockpit.incident.pgjournal`). Subclasses provide _insert, _events, incidents, close and
    ``where`` (the place, for messages; never a password)."""

    clock: Clock
    actor: str
    where: str
    heads: HeadsFile | None = None
    #: True when other cockpits' writes are announced (LISTEN/NOTIFY); else the UI polls
    notifies = False

    def append(self, incident: str, kind: str, payload: dict[str, Any] | None = None, *,
               actor: str | None = None, ts: float | None = None, pinned: bool = False,
               id: str | None = None, once: bool = False) -> Event:
        """Append one event; when this returns, the event is committed and its head recorded.
        ``ts`` is when it happened (default now); ``id`` lets a write that is retried keep
        the id the event was shown with. ``once`` (alerts): when another cockpit already
        journaled the same crossing, nothing is written and its event is returned."""
        return self.append_many([NewEvent(incident, kind, payload, actor=actor, ts=ts, pinned=pinned, id=id,
                                          once=once)])[0]

    def append_many(self, entries: Iterable[NewEvent]) -> list[Event]:
        """Append several events in one transaction: one commit for all of them (on
        PostgreSQL one round trip in the usual case), for what the cockpit journals by
        itself in one tick (alerts, snapshots).

        The contract:

        - The same events as calling :meth:`append` with each entry in order: each is
          chained after the one before it in its incident (entries may belong to several
          incidents), seqs follow the entries' order, and every field means what it means
          there (a ``once`` alert is checked against the journal and the entries before it).
        - All or nothing: when this returns, every event is committed and its head recorded;
          when it raises JournalError, none of them was written and the chain is as it was
          (every entry is checked first: one bad kind or payload refuses the batch). One
          exception, as for ``append``: a connection lost while committing can leave the
          batch written without saying so; appending the same entries again (same ``id``
          each) then returns the events written and writes nothing twice.
        - Returns one event per entry, in order: as stored, or the one it stands for (the
          alert another cockpit journaled first, the event written before under its id).
        - Nothing in the batch is durable before the call returns: acknowledge none of it
          earlier, and append a responder's own act by itself (``append``) so that its
          acknowledgement never waits for a batch.

        No entries: nothing is written and nothing is asked of the database."""
        batch = [(self._new_event(e.incident, e.kind, e.payload, e.actor, e.ts, e.pinned, e.id), e.once)
                 for e in entries]
        if not batch:
            return []
        stored = self._insert(batch)
        if self.heads is not None:  # heads of what this call wrote (or wrote before, its answer lost)
            mine = {s.seq: Head(s.incident, s.seq, s.hash) for (ev, _), s in zip(batch, stored) if s.id == ev.id}
            if mine:
                self.heads.add(*mine.values())
        return stored

    def _insert(self, batch: list[tuple[Event, bool]]) -> list[Event]:
        """Write the checked events (each with its ``once``) in one transaction, chained by
        :class:`Chained`: every one or none. Returns each entry's event as stored."""
        raise NotImplementedError

    # ------------------------------------------------------------ shared state

    def claim(self, lease: Lease) -> Lease:
        """Take ``lease.target`` for ``lease.cockpit`` unless another cockpit's live lease
        holds it; returns the lease that holds it afterwards (compare its cockpit)."""
        raise NotImplementedError

    def release(self, target: str, cockpit: str) -> None:
        raise NotImplementedError

    def renew(self, cockpit: str, ttl: float = LEASE_TTL) -> None:
        """Push back the expiry of every lease ``cockpit`` holds (it is alive)."""
        raise NotImplementedError

    def leases(self) -> list[Lease]:
        """Every live lease."""
        raise NotImplementedError

    def heartbeat(self, presence: Presence) -> list[Presence]:
        """Say this cockpit is here; returns every cockpit seen within PRESENCE_TTL."""
        raise NotImplementedError

    def leave(self, cockpit: str) -> None:
        """Say this cockpit is gone (it quit): the others stop showing it at once."""
        raise NotImplementedError

    def put_meta(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` beside the events, for every cockpit on the journal
        (a team drill's clock); never part of an incident or its hash chain."""
        raise NotImplementedError

    def get_meta(self, key: str) -> str | None:
        raise NotImplementedError

    def now(self) -> float:
        """The time leases and presence are kept in (the database's, for a shared journal)."""
        import time

        return time.time()

    def events(self, incident: str, after_seq: int = 0) -> list[Event]:
        """The incident's events after ``after_seq``, in journal order, every string in them
        cleaned: rows another writer put there are outside input (verification reads the
        raw rows)."""
        return [clean_event(e) for e in self._events(incident, after_seq)]

    def _events(self, incident: str, after_seq: int = 0) -> list[Event]:
        raise NotImplementedError

    def incidents(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def foreign_writes(self) -> bool:
        """Whether another writer may have appended since the last call (for journals that
        do not announce writes; the UI polls this)."""
        return True

    def listen(self, callback: Callable[[str | None], None]) -> Callable[[], None] | None:
        """Call ``callback(incident)`` from another thread when another writer appends
        (None: catch up on everything). Returns a stop function, or None when this
        journal cannot announce writes."""
        return None

    def _new_event(self, incident: str, kind: str, payload: dict[str, Any] | None, actor: str | None,
                   ts: float | None, pinned: bool, id: str | None = None) -> Event:
        """A checked, not yet chained event (the subclass sets prev_hash and hash under its lock)."""
        if kind not in KINDS:
            raise JournalError(f"unknown event kind {kind!r}")
        payload = dict(payload or {})
        try:
            json.dumps(payload, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise JournalError(f"event payload is not JSON: {e}") from None
        now = self.clock.now()
        return Event(id or uuid.uuid4().hex, incident, now if ts is None else float(ts),
                     actor or self.actor, kind, payload, pinned, written=now)

    # ------------------------------------------------------------ verification

    def _chain(self, incident: str) -> list[Event | str]:
        """The incident's events as stored, for verification; a row that cannot be decoded
        is a problem line in its place (SQLite reads raw bytes here)."""
        return list(self._events(incident))

    def _recorded_heads(self) -> list[Head]:
        """Heads recorded apart from the events (file, and table where there is one)."""
        return self.heads.load() if self.heads is not None else []

    def _has_heads(self) -> bool:
        return self.heads is not None and self.heads.exists()

    def verify(self, incident: str | None = None) -> list[str]:
        """Problems in the hash chain and against the recorded heads, one line each;
        empty when nothing was changed, removed, reordered or cut short."""
        return self.check(incident).all_problems

    def check(self, incident: str | None = None, heads: Iterable[str] = ()) -> CheckReport:
        """Verify every (or one) incident: the chain, and every recorded head against it.
        ``heads`` are hashes printed by exports (``--head``). Raises JournalUnreadable when
        the journal cannot be read or ``incident`` is unknown."""
        report = CheckReport(self.where)
        recorded = self._recorded_heads()
        by_incident: dict[str, dict[int, set[str]]] = {}
        for h in recorded:
            by_incident.setdefault(h.incident, {}).setdefault(h.seq, set()).add(h.hash)
        in_journal = self.incidents()
        if incident is not None:
            if incident not in in_journal and incident not in by_incident:
                near = ", ".join(in_journal[-5:]) or "none"
                raise JournalUnreadable(f"{self.where}: no incident {incident} (recent: {near}); "
                                        "`cockpit journal list` shows them")
            names = [incident]
        else:
            names = in_journal + [i for i in by_incident if i not in in_journal]
        given = {h.strip().lower() for h in heads if h.strip()}
        for h in given:
            if len(h) < 16 or len(h) > 64 or any(c not in "0123456789abcdef" for c in h):
                raise JournalUnreadable(f"--head {h[:70]!r} is not a head: give its hash as printed by "
                                        "`cockpit export` (at least its first 16 hex characters)")
        found: set[str] = set()
        for name in names:
            report.incidents.append(self._check_one(name, by_incident.get(name, {}), given, found))
        for h in sorted(given - found):
            report.problems.append(f"head {h[:16]}… is not in {'incident ' + incident if incident else 'the journal'}: "
                                   "the event it sealed, or one before it, was changed or removed")
        if not recorded and any(c.events for c in report.incidents) and not given:
            report.notes.append("no heads recorded for this journal"
                                + (f" ({self.heads.path} is missing)" if self.heads is not None else "")
                                + ": removal cannot be ruled out; pass --head HASH from an export")
        return report

    def _check_one(self, name: str, heads: dict[int, set[str]], given: set[str], found: set[str]) -> IncidentCheck:
        chk = IncidentCheck(name)
        prev = GENESIS
        seqs: dict[int, str] = {}
        last_seq = 0
        for ev in self._chain(name):
            if isinstance(ev, str):  # a row that does not decode
                chk.problems.append(f"incident {name}: {ev}")
                prev = ""
                continue
            chk.events += 1
            if ev.prev_hash != prev:
                chk.problems.append(f"incident {name}: event #{ev.seq} ({ev.kind}) does not follow the one before "
                                    "it: an event was removed or reordered")
            if chain_hash(ev.prev_hash, ev) != ev.hash:
                chk.problems.append(f"incident {name}: event #{ev.seq} ({ev.kind}) was changed after it was written")
            prev = ev.hash
            seqs[ev.seq] = ev.hash
            last_seq = ev.seq
            for h in given:
                if ev.hash.startswith(h):
                    found.add(h)
                    chk.sealed = True
        if chk.events == 0 and heads:
            chk.problems.append(f"incident {name}: REMOVED: {len(heads)} event(s) were recorded (the last #"
                                f"{max(heads)}), none is left in the journal")
            return chk
        gone = sorted(s for s in heads if s not in seqs)
        cut = [s for s in gone if s > last_seq]
        if cut:
            chk.problems.append(f"incident {name}: CUT SHORT: {len(cut)} event(s) removed from the end (#{cut[0]}"
                                f"{'' if len(cut) == 1 else f' to #{cut[-1]}'}); it now ends at #{last_seq}")
        middle = [s for s in gone if s <= last_seq]
        if middle:
            chk.problems.append(f"incident {name}: {len(middle)} event(s) removed from the middle (#"
                                + ", #".join(map(str, middle[:5])) + (" …" if len(middle) > 5 else "") + ")")
        for s, hs in heads.items():
            if s in seqs and (seqs[s] not in hs or len(hs) > 1):
                chk.problems.append(f"incident {name}: event #{s} differs from the head recorded when it was written:"
                                    " it was changed or replaced")
        matched = [s for s, hs in heads.items() if seqs.get(s) in hs]
        if matched:
            chk.sealed = True
            chk.unsealed_tail = sum(1 for s in seqs if s > max(matched))
        return chk

    def unresolved_intents(self, incident: str) -> list[Event]:
        """Action intents with no outcome: the cockpit stopped between running and recording."""
        evs = self.events(incident)
        done = {e.payload.get("intent") for e in evs if e.kind == "action_outcome"}
        return [e for e in evs if e.kind == "action_intent" and e.id not in done]

    # ------------------------------------------------------------ the action API

    def intent(self, incident: str, action: str, plan: dict[str, Any], **kw) -> Event:
        """Record that an action is about to run (before it runs)."""
        return self.append(incident, "action_intent", {"action": action, "plan": plan}, **kw)

    def outcome(self, incident: str, intent: Event, result: str, details: str = "", *,
                extra: dict[str, Any] | None = None, **kw) -> Event:
        """Record what an action did (after it ran)."""
        if result not in OUTCOMES:
            raise JournalError(f"outcome must be one of {', '.join(OUTCOMES)}")
        payload = {**(extra or {}), "intent": intent.id, "action": intent.payload.get("action"), "result": result,
                   "details": details}
        return self.append(incident, "action_outcome", payload, **kw)


class SQLiteJournal(Journal):
    """The embedded journal: one SQLite file in WAL mode, its heads in ``<file>.heads``
    beside it. Thread-safe. ``readonly`` opens it for verification only: nothing is
    created or migrated, and a journal on a read-only filesystem is read from a copy."""

    def __init__(self, path: str | Path, clock: Clock | None = None, actor: str = "responder",
                 durability: str = "normal", readonly: bool = False) -> None:
        if durability not in ("normal", "full"):
            raise ValueError("durability is 'normal' (survives a killed process) or 'full' (survives power loss)")
        self.path = Path(path)
        self.where = str(self.path)
        self.clock = clock or SystemClock()
        self.actor = actor
        self.readonly = readonly
        self._lock = threading.Lock()
        self._tail: dict[str, str] = {}
        self._seen_version = -1
        self._copy: Path | None = None  # the temporary copy a read-only filesystem is read from
        memory = str(path) == ":memory:"
        self.heads = None if memory else HeadsFile(Path(f"{self.path}.heads"), durable=durability == "full")
        if readonly:
            self._db = self._open_readonly()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
            self._db.execute("PRAGMA busy_timeout=5000")
            # the page cache SQLite fills as the journal grows (its default, 2 MiB, was most of a
            # day's memory growth); appends touch the newest pages, reads the OS caches
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif row[0] == "1":
                self._migrate_from_1()
            elif row[0] != SCHEMA_VERSION:
                raise JournalError(f"{self.path}: journal schema {row[0]} is not {SCHEMA_VERSION}; "
                                   "open it with the cockpit version that wrote it")
        except sqlite3.DatabaseError as e:
            raise JournalError(f"{self.path}: cannot open the journal: {e}") from None

    def _migrate_from_1(self) -> None:
        """Schema 1 had no ``written`` column and no heads: add the column, and seal what
        is there now (removal before this moment cannot be detected)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(events)")}
            if "written" not in columns:
                self._db.execute("ALTER TABLE events ADD COLUMN written REAL")
            self._db.execute("UPDATE meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._db.execute("ROLLBACK")
            raise
        if self.heads is not None and not self.heads.exists():
            for seq, incident, digest in self._db.execute("SELECT seq, incident, hash FROM events ORDER BY seq"):
                self.heads.add(Head(incident, seq, digest))

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise JournalUnreadable(f"{self.path}: no journal there")
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                 isolation_level=None)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            db = self._open_copy()  # a WAL journal on a read-only filesystem cannot make its -shm file
        except sqlite3.DatabaseError as e:
            raise JournalUnreadable(f"{self.path}: not a journal ({e})") from None
        db.text_factory = bytes  # every row is read, even one whose text was damaged
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables & {b"events", b"meta"} and not (self.heads is not None and self.heads.exists()):
            what = "an empty file" if self.path.stat().st_size == 0 else "a database without the journal's tables"
            raise JournalUnreadable(f"{self.path}: not a journal ({what})")
        self._has_events_table = b"events" in tables
        self._had_schema = b"meta" in tables
        return db

    def _open_copy(self) -> sqlite3.Connection:
        """Read a journal whose folder cannot be written (a read-only filesystem): copy the
        database and its write-ahead log to a temporary folder and read the copy."""
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="cockpit-verify-"))
        try:
            shutil.copy2(self.path, folder / self.path.name)
            for suffix in ("-wal",):
                side = Path(f"{self.path}{suffix}")
                if side.exists():
                    shutil.copy2(side, folder / side.name)
            db = sqlite3.connect(folder / self.path.name, check_same_thread=False, isolation_level=None)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except (OSError, sqlite3.DatabaseError) as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise JournalUnreadable(f"{self.path}: cannot be read: {getattr(e, 'strerror', None) or e}") from None
        self._copy = folder
        return db

    # ------------------------------------------------------------ writing

    def _insert(self, batch: list[tuple[Event, bool]]) -> list[Event]:
        if self.readonly:
            raise JournalError(f"{self.path}: opened read-only")
        with self._lock:
            try:
                try:
                    chained, seqs = self._write_chained(batch, look_up_ids=False)
                except sqlite3.IntegrityError:  # an id already there: written before, its answer lost
                    chained, seqs = self._write_chained(batch, look_up_ids=True)
            except sqlite3.Error as e:
                self._tail.clear()
                raise JournalError(f"{self.path}: cannot write the event: {e}") from None
            self._tail.update(chained.tails)
            self._seen_version = self._data_version()
        return chained.events(seqs)

    def _write_chained(self, batch: list[tuple[Event, bool]], look_up_ids: bool) -> tuple[Chained, list[int]]:
        """One immediate transaction: chain the batch after the incidents' tails and insert it."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            stored: dict[str, Event] = {}
            if look_up_ids:
                for ev, _ in batch:
                    row = db.execute(f"SELECT {_COLUMNS} FROM events WHERE id=?", (ev.id,)).fetchone()
                    if row is not None:
                        stored[ev.id] = _row_event(row)
            recent = {incident: [_row_event(r) for r in db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE incident=? AND kind IN ('alert_raised', 'alert_cleared') "
                "ORDER BY seq DESC LIMIT 50", (incident,))] for incident in {ev.incident for ev, once in batch if once}}
            tails = {incident: self._last_hash(incident) for incident in {ev.incident for ev, _ in batch}}
            chained = Chained(batch, tails, stored, recent)
            seqs = [db.execute(
                "INSERT INTO events (id, incident, ts, actor, kind, payload, pinned, prev_hash, hash, written) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ev.id, ev.incident, ev.ts, ev.actor, ev.kind, json.dumps(ev.payload, sort_keys=True), int(ev.pinned),
                 prev, digest, ev.written)).lastrowid for ev, prev, digest in chained.rows]
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return chained, seqs

    def _write(self, fn) -> Any:
        """``fn(db)`` in one immediate transaction (leases, presence)."""
        if self.readonly:
            raise JournalError(f"{self.path}: opened read-only")
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                out = fn(self._db)
                self._db.execute("COMMIT")
                return out
            except sqlite3.Error as e:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise JournalError(f"{self.path}: cannot write: {e}") from None

    def claim(self, lease: Lease) -> Lease:
        def take(db) -> Lease:
            row = db.execute("SELECT target, action, actor, cockpit, incident, started, expires FROM leases "
                             "WHERE target=?", (lease.target,)).fetchone()
            if row is not None and row[3] != lease.cockpit and row[6] > self.now():
                return Lease(*row)
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (lease.target, lease.action, lease.actor, lease.cockpit, lease.incident, lease.started,
                        lease.expires))
            return lease

        return self._write(take)

    def release(self, target: str, cockpit: str) -> None:
        self._write(lambda db: db.execute("DELETE FROM leases WHERE target=? AND cockpit=?", (target, cockpit)))

    def renew(self, cockpit: str, ttl: float = LEASE_TTL) -> None:
        self._write(lambda db: db.execute("UPDATE leases SET expires=? WHERE cockpit=?", (self.now() + ttl, cockpit)))

    def leases(self) -> list[Lease]:
        rows = self._query("SELECT target, action, actor, cockpit, incident, started, expires FROM leases "
                           "WHERE expires > ?", (self.now(),))
        return [Lease(*r) for r in rows]

    def heartbeat(self, presence: Presence) -> list[Presence]:
        p = presence

        def beat(db) -> list[Presence]:
            db.execute("INSERT OR REPLACE INTO presence VALUES (?, ?, ?, ?, ?)",
                       (p.cockpit, p.actor, p.incident, p.mode, p.seen))
            db.execute("DELETE FROM presence WHERE seen < ?", (self.now() - 10 * PRESENCE_TTL,))
            return [Presence(*r) for r in db.execute(
                "SELECT cockpit, actor, incident, mode, seen FROM presence WHERE seen >= ?",
                (self.now() - PRESENCE_TTL,))]

        return self._write(beat)

    def leave(self, cockpit: str) -> None:
        self._write(lambda db: db.execute("DELETE FROM presence WHERE cockpit = ?", (cockpit,)))

    def put_meta(self, key: str, value: str) -> None:
        self._write(lambda db: db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value)))

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def foreign_writes(self) -> bool:
        """Whether another connection (another cockpit on this file) wrote since we last looked."""
        with self._lock:
            version = self._data_version()
            if version == self._seen_version:
                return False
            self._tail.clear()
            self._seen_version = version
            return True

    def _data_version(self) -> int:
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def _last_hash(self, incident: str) -> str:
        """The chain's tail; cached while no other connection has written (data_version)."""
        if incident in self._tail and self._data_version() == self._seen_version:
            return self._tail[incident]
        self._tail.clear()
        row = self._db.execute(
            "SELECT hash FROM events WHERE incident=? ORDER BY seq DESC LIMIT 1", (incident,)
        ).fetchone()
        return row[0] if row else GENESIS

    # ------------------------------------------------------------ reading

    def _query(self, sql: str, args: tuple = ()) -> list:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as e:
                hint = (f"; restore it from a backup, or save what can be read with `sqlite3 {self.path} .recover`"
                        if "malformed" in str(e) else "")
                raise JournalUnreadable(f"{self.path}: cannot read the journal: {e}{hint}") from None

    def _events(self, incident: str, after_seq: int = 0) -> list[Event]:
        if self.readonly:
            return [e for e in self._chain(incident) if isinstance(e, Event) and e.seq > after_seq]
        rows = self._query(f"SELECT {_COLUMNS} FROM events WHERE incident=? AND seq>? ORDER BY seq",
                           (incident, after_seq))
        return [_row_event(r) for r in rows]

    def incidents(self) -> list[str]:
        if self.readonly and not self._has_events_table:
            return []
        rows = self._query("SELECT incident, MIN(seq) FROM events GROUP BY incident ORDER BY MIN(seq)")
        return [r[0].decode("utf-8", "replace") if isinstance(r[0], bytes) else r[0] for r in rows]

    def _chain(self, incident: str) -> list[Event | str]:
        if not self.readonly:
            return list(self._events(incident))
        if not self._has_events_table:
            return []
        rows = self._query(f"SELECT {_COLUMNS} FROM events WHERE incident=? ORDER BY seq", (incident,))
        out: list[Event | str] = []
        for r in rows:
            try:
                out.append(_row_event([v.decode("utf-8") if isinstance(v, bytes) else v for v in r], strict=True))
            except (UnicodeDecodeError, ValueError, TypeError) as e:
                out.append(f"event #{r[0]} was changed after it was written (its row no longer decodes: "
                           f"{str(e).splitlines()[0][:80]})")
        return out

    def check(self, incident: str | None = None, heads: Iterable[str] = ()) -> CheckReport:
        report = super().check(incident, heads)
        if self.readonly and not self._has_events_table:
            report.problems.insert(0, f"{self.path}: the events table is gone"
                                   + ("" if self._had_schema else " (the file holds no journal any more)"))
        return report

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._copy is not None:
            import shutil

            shutil.rmtree(self._copy, ignore_errors=True)


def clean_event(ev: Event) -> Event:
    """The event with every string cleaned (see :mod:`cockpit.safetext`)."""
    from cockpit.safetext import clean, clean_value

    return Event(ev.id, clean(ev.incident, limit=200), ev.ts, clean(ev.actor, limit=200), ev.kind,
                 clean_value(ev.payload), ev.pinned, ev.prev_hash, ev.hash, ev.seq, ev.written)


def sealed(ev: Event, prev_hash: str, digest: str, seq: int) -> Event:
    """The event as stored: chained after ``prev_hash`` with its ``digest`` and ``seq``."""
    return Event(ev.id, ev.incident, ev.ts, ev.actor, ev.kind, ev.payload, ev.pinned, prev_hash, digest, seq,
                 ev.written)


def _row_event(r: Iterable, strict: bool = False) -> Event:
    """An event from a row (columns as in ``_COLUMNS``). ``strict``: a payload that is not
    JSON raises instead of being kept as text (verification)."""
    seq, id_, incident, ts, actor, kind, payload, pinned, prev_hash, hash_, written = r
    try:
        doc = json.loads(payload)
    except ValueError:
        if strict:
            raise
        doc = {"_unreadable": payload}
    return Event(id_, incident, float(ts), actor, kind, doc, bool(pinned), prev_hash, hash_, seq,
                 None if written is None else float(written))
