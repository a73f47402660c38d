"""The incident journal: append-only events with a hash chain.

Every event carries the hash of the one before it in the same incident, so an
edited, removed or reordered row is detected by :meth:`Journal.verify`
(`cockpit journal verify`). An event is *acknowledged* when ``append`` returns:
by then it is committed to the database, so it survives the cockpit being
killed (SQLite in WAL mode; ``durability="full"`` also survives power loss at
the cost of an fsync per event).

Actions write an ``action_intent`` before they run and an ``action_outcome``
after; an intent with no outcome (the cockpit died in between) is reported by
:meth:`Journal.unresolved_intents` and shown as "outcome unknown".

This module never imports textual; the embedded store is stdlib sqlite3. The
shared PostgreSQL journal implements the same interface.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockpit.clock import Clock, SystemClock

KINDS = (
    "incident_declared",
    "alert_raised",
    "alert_cleared",
    "severity_suggested",
    "severity_set",
    "status_changed",
    "milestone_set",
    "note",
    "pin",
    "action_intent",
    "action_outcome",
    "action_verified",
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
    import os

    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "cockpit" / "journal.db"


class JournalError(Exception):
    """A journal that cannot be opened or written, or an event that breaks a rule."""


@dataclass(frozen=True)
class Event:
    """One journaled event. ``seq`` orders events within the journal."""

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

    def body(self) -> bytes:
        """The canonical bytes the hash covers."""
        doc = [self.id, self.incident, repr(float(self.ts)), self.actor, self.kind, self.payload, self.pinned]
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
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_incident ON events (incident, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
SCHEMA_VERSION = "1"


class Journal:
    """What every journal does; subclasses store the events (SQLite here, PostgreSQL in
    :mod:`cockpit.pgjournal`). Subclasses provide append, events, incidents, close and
    ``where`` (the place, for messages; never a password)."""

    clock: Clock
    actor: str
    where: str
    #: True when other cockpits' writes are announced (LISTEN/NOTIFY); else the UI polls
    notifies = False

    def append(self, incident: str, kind: str, payload: dict[str, Any] | None = None, *,
               actor: str | None = None, ts: float | None = None, pinned: bool = False) -> Event:
        raise NotImplementedError

    def events(self, incident: str, after_seq: int = 0) -> list[Event]:
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
                   ts: float | None, pinned: bool) -> Event:
        """A checked, not yet chained event (the subclass sets prev_hash and hash under its lock)."""
        if kind not in KINDS:
            raise JournalError(f"unknown event kind {kind!r}")
        payload = dict(payload or {})
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as e:
            raise JournalError(f"event payload is not JSON: {e}") from None
        return Event(uuid.uuid4().hex, incident, self.clock.now() if ts is None else float(ts),
                     actor or self.actor, kind, payload, pinned)

    def verify(self, incident: str | None = None) -> list[str]:
        """Problems in the hash chain, one line each; empty when intact."""
        problems = []
        for inc in [incident] if incident else self.incidents():
            prev = GENESIS
            for ev in self.events(inc):
                if ev.prev_hash != prev:
                    problems.append(f"incident {inc}: event #{ev.seq} ({ev.kind}) does not follow the one before "
                                    "it: an event was removed or reordered")
                if chain_hash(ev.prev_hash, ev) != ev.hash:
                    problems.append(f"incident {inc}: event #{ev.seq} ({ev.kind}) was changed after it was written")
                prev = ev.hash
        return problems

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
    """The embedded journal: one SQLite file in WAL mode. Thread-safe."""

    def __init__(self, path: str | Path, clock: Clock | None = None, actor: str = "responder",
                 durability: str = "normal") -> None:
        if durability not in ("normal", "full"):
            raise ValueError("durability is 'normal' (survives a killed process) or 'full' (survives power loss)")
        self.path = Path(path)
        self.where = str(self.path)
        self.clock = clock or SystemClock()
        self.actor = actor
        self._lock = threading.Lock()
        self._tail: dict[str, str] = {}
        self._seen_version = -1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise JournalError(f"{self.path}: journal schema {row[0]} is not {SCHEMA_VERSION}; "
                                   "open it with the cockpit version that wrote it")
        except sqlite3.DatabaseError as e:
            raise JournalError(f"{self.path}: cannot open the journal: {e}") from None

    # ------------------------------------------------------------ writing

    def append(self, incident: str, kind: str, payload: dict[str, Any] | None = None, *,
               actor: str | None = None, ts: float | None = None, pinned: bool = False) -> Event:
        """Append one event; when this returns, the event is committed."""
        ev = self._new_event(incident, kind, payload, actor, ts, pinned)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                prev = self._last_hash(incident)
                digest = chain_hash(prev, ev)  # the hashed body holds neither prev_hash nor hash
                cur = self._db.execute(
                    "INSERT INTO events (id, incident, ts, actor, kind, payload, pinned, prev_hash, hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (ev.id, ev.incident, ev.ts, ev.actor, ev.kind, json.dumps(ev.payload, sort_keys=True),
                     int(ev.pinned), prev, digest),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                self._tail.clear()
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise JournalError(f"{self.path}: cannot write the event: {e}") from None
            self._tail[incident] = digest
            self._seen_version = self._data_version()
        return sealed(ev, prev, digest, cur.lastrowid)

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

    def events(self, incident: str, after_seq: int = 0) -> list[Event]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, incident, ts, actor, kind, payload, pinned, prev_hash, hash FROM events "
                "WHERE incident=? AND seq>? ORDER BY seq", (incident, after_seq)
            ).fetchall()
        return [_row_event(r) for r in rows]

    def incidents(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT incident, MIN(seq) FROM events GROUP BY incident ORDER BY MIN(seq)"
            ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

def is_shared(spec: str | None) -> bool:
    """Whether a journal setting names a PostgreSQL server rather than a file."""
    return bool(spec) and spec.split("://", 1)[0] in ("postgresql", "postgres")


def open_journal(spec: str | Path | None, *, clock: Clock | None = None, actor: str = "responder",
                 default: Path | None = None) -> Journal:
    """The journal a setting names: a postgresql:// URL (shared; ``env:NAME`` holding one
    is resolved here) or a SQLite file (``default`` when None). Raises JournalError."""
    from cockpit.config import SecretError, is_secret_ref, resolve_secret

    text = str(spec) if spec is not None else None
    if text is not None and is_secret_ref(text):
        try:
            text = resolve_secret(text, "incident.journal")
        except SecretError as e:
            raise JournalError(str(e)) from None
    if is_shared(text):
        from cockpit.pgjournal import PostgresJournal

        return PostgresJournal(text, clock=clock, actor=actor)
    path = Path(text).expanduser() if text is not None else (default or default_path())
    return SQLiteJournal(path, clock=clock, actor=actor)


def sealed(ev: Event, prev_hash: str, digest: str, seq: int) -> Event:
    """The event as stored: chained after ``prev_hash`` with its ``digest`` and ``seq``."""
    return Event(ev.id, ev.incident, ev.ts, ev.actor, ev.kind, ev.payload, ev.pinned, prev_hash, digest, seq)


def _row_event(r: Iterable) -> Event:
    seq, id_, incident, ts, actor, kind, payload, pinned, prev_hash, hash_ = r
    try:
        doc = json.loads(payload)
    except ValueError:
        doc = {"_unreadable": payload}
    return Event(id_, incident, ts, actor, kind, doc, bool(pinned), prev_hash, hash_, seq)
