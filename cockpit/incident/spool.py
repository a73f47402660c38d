"""The local spool: the desk's outbox on disk, for when the journal is away.

With the shared journal down (its PostgreSQL is the very thing failing), what the
responder does, an action's intent included, is kept here in a small SQLite file
beside the default journal, in order and with the times it happened, and merged
into the journal when it answers, by the same cockpit or by the next one started on
this machine (writes are idempotent by event id, so a merge that is repeated, or an
``unsaved-*.jsonl`` imported as well, writes nothing twice).

Never raises: a spool that cannot be written (a full disk) leaves the events in the
desk's memory, where they were anyway.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

from cockpit.incident.journal import Event


def spool_path(journal_where: str) -> Path:
    """The spool of one journal: beside the default journal, named after the journal."""
    from cockpit.incident.journal import default_path

    tag = hashlib.sha256(journal_where.encode()).hexdigest()[:16]
    return default_path().parent / f"spool-{tag}.db"


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.error = ""
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")  # a spooled intent survives a power cut
                db.execute("CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "id TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)")
                self._db = db
            except sqlite3.Error as e:
                self.error = f"{self.path}: {e}"
        return self._db

    def _do(self, sql: str, args: tuple = ()) -> list:
        with self._lock:
            db = self._conn()
            if db is None:
                return []
            try:
                return db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                self.error = f"{self.path}: {e}"
                return []

    def _do_many(self, sql: str, rows: list[tuple]) -> None:
        """``sql`` once per row, all in one transaction (one sync to disk for a poll's alerts)."""
        if not rows:
            return
        with self._lock:
            db = self._conn()
            if db is None:
                return
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(sql, rows)
                db.execute("COMMIT")
            except sqlite3.Error as e:
                self.error = f"{self.path}: {e}"
                try:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the connection is unusable: the events are still in the desk's memory

    def add(self, ev: Event, once: bool = False) -> None:
        self.add_many([(ev, once)])

    def add_many(self, entries: list[tuple[Event, bool]]) -> None:
        """Keep these events (each with its ``once``), in this order, in one transaction."""
        self._do_many("INSERT OR IGNORE INTO spool (id, doc) VALUES (?, ?)", [
            (ev.id, json.dumps({"id": ev.id, "incident": ev.incident, "at": ev.ts, "actor": ev.actor, "kind": ev.kind,
                                "payload": ev.payload, "pinned": ev.pinned, "once": once}, sort_keys=True))
            for ev, once in entries])

    def remove(self, event_id: str) -> None:
        self.remove_many([event_id])

    def remove_many(self, event_ids: list[str]) -> None:
        self._do_many("DELETE FROM spool WHERE id=?", [(i,) for i in event_ids])

    def load(self) -> list[tuple[Event, bool]]:
        """What an earlier run left here, oldest first."""
        if not self.path.exists():
            return []
        out = []
        for (text,) in self._do("SELECT doc FROM spool ORDER BY seq"):
            try:
                d = json.loads(text)
                out.append((Event(d["id"], d["incident"], float(d["at"]), d["actor"], d["kind"], d["payload"],
                                  bool(d.get("pinned"))), bool(d.get("once"))))
            except (ValueError, KeyError, TypeError):
                continue  # a damaged row: the rest still merges
        return out

    def __len__(self) -> int:
        rows = self._do("SELECT count(*) FROM spool") if self.path.exists() else []
        return rows[0][0] if rows else 0

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
