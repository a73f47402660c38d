"""The shared journal: PostgreSQL, so several responders' cockpits work on one incident.

Same events, same hash chain and same guarantees as the embedded SQLite journal
(an event is acknowledged once committed). What it adds:

- The chain is enforced by the database: ``UNIQUE (incident, prev_hash)`` lets only one
  event follow another. An append, or a batch of them (``append_many``), is one
  statement, so one round trip and one commit, against the tail this cockpit last saw;
  if another cockpit appended first, the insert is refused, the tail is read again
  (under the incident's lock) and the events re-chained.
- Each append sends ``NOTIFY cockpit_journal, '<incident>'`` in its transaction; a
  listening cockpit (:meth:`PostgresJournal.listen`) reads the new events at once
  instead of waiting for its next poll.
- Each append also records the event's head in ``cockpit_heads`` (same statement),
  and the cockpit that wrote it keeps it in a local heads file: deleting events does
  not delete their heads, so verification finds what was removed.

psycopg is imported on first use, in the thread that uses the journal, never at
start-up. The URL is never shown with its password (and the config refuses URLs
that carry one: use ``env:NAME``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from cockpit.clock import Clock, SystemClock
from cockpit.incident.journal import (_COLUMNS, GENESIS, LEASE_TTL, PRESENCE_TTL, SCHEMA_VERSION, Chained, Event, Head,
                             HeadsFile, Journal, JournalError, JournalUnreadable, Lease, Presence, _row_event,
                             default_path)

CHANNEL = "cockpit_journal"
CONNECT_TIMEOUT = 5  # seconds
STATEMENT_TIMEOUT_MS = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cockpit_events (
    seq       BIGSERIAL PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    incident  TEXT NOT NULL,
    ts        DOUBLE PRECISION NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    pinned    BOOLEAN NOT NULL DEFAULT FALSE,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    written   DOUBLE PRECISION,
    UNIQUE (incident, prev_hash)
);
CREATE INDEX IF NOT EXISTS cockpit_events_incident ON cockpit_events (incident, seq);
CREATE TABLE IF NOT EXISTS cockpit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cockpit_heads (
    incident TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    hash     TEXT NOT NULL,
    PRIMARY KEY (incident, seq)
);
CREATE TABLE IF NOT EXISTS cockpit_leases (target TEXT PRIMARY KEY, action TEXT NOT NULL, actor TEXT NOT NULL,
    cockpit TEXT NOT NULL, incident TEXT NOT NULL, started DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS cockpit_presence (cockpit TEXT PRIMARY KEY, actor TEXT NOT NULL, incident TEXT NOT NULL,
    mode TEXT NOT NULL, seen DOUBLE PRECISION NOT NULL);
"""
_NOW = "extract(epoch from clock_timestamp())"
_LEASE = "target, action, actor, cockpit, incident, started, expires"
#: advisory lock keys: one for creating the schema, one per incident (hashed) for appends
_SCHEMA_LOCK = 0x636B7074  # "ckpt"
#: the most events one statement writes (10 values each; a statement takes at most 65,535)
STATEMENT_EVENTS = 1000
_EVENT_COLUMNS = "id, incident, ts, actor, kind, payload, pinned, prev_hash, hash, written"
_EVENT_CASTS = ("", "", "::float8", "", "", "", "::boolean", "", "", "::float8")

# The writing statements are raw queries ($1, $2, ...: psycopg.RawCursor): psycopg parses a
# %s query again on every call once it is long or has many values, as a batch's is.


@lru_cache(maxsize=64)
def _locks_sql(incidents: int) -> str:
    """Take the incidents' locks ($1...), in the order given: sorted, the same in every
    cockpit, so two writers of the same incidents never wait for each other in a circle."""
    names = ", ".join(f"(${k})" for k in range(1, incidents + 1))
    return f"SELECT count(pg_advisory_xact_lock(hashtextextended('cockpit:' || i, 0))) FROM (VALUES {names}) AS l (i)"


@lru_cache(maxsize=64)
def _insert_sql(events: int, incidents: int) -> str:
    """One statement writing ``events`` events (the incidents' names, 10 values per event,
    the channel): under the incidents' locks (taken in the statement itself, so a writer
    that read the tails under them cannot be overtaken), the events in the order given
    (each drawing its seq in that order), their heads, and the announcement; one row per
    event, its id and seq."""
    rows = []
    for n in range(events):
        first = incidents + 10 * n + 1
        rows.append("(" + ", ".join(f"${first + k}{cast}" for k, cast in enumerate(_EVENT_CASTS)) + f", {n})")
    return (f"WITH lock AS ({_locks_sql(incidents)}), "
            f"ins AS (INSERT INTO cockpit_events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} "
            f"FROM (VALUES {', '.join(rows)}) AS v ({_EVENT_COLUMNS}, n), lock ORDER BY n "
            "RETURNING id, seq, incident, hash), "
            "head AS (INSERT INTO cockpit_heads SELECT incident, seq, hash FROM ins) "
            f"SELECT id, seq, pg_notify(${incidents + 10 * events + 1}, incident) FROM ins")


_TAILS = ("SELECT i, (SELECT hash FROM cockpit_events WHERE incident = i ORDER BY seq DESC LIMIT 1) "
          "FROM unnest(%s::text[]) AS i")
_RECENT_ALERTS = (f"SELECT {_COLUMNS} FROM unnest(%s::text[]) AS i, LATERAL (SELECT {_COLUMNS} FROM cockpit_events "
                  "WHERE incident = i AND kind IN ('alert_raised', 'alert_cleared') ORDER BY seq DESC LIMIT 50) AS e "
                  "ORDER BY seq DESC")


def safe_url(url: str) -> str:
    """A connection string for messages, with nothing that could be a password: in a URL
    everything between "://" and the last "@" (a password may hold '#', '?', '/' or '@',
    which no URL parser reads right), in a key=value string every password value, and
    any query string."""
    import re

    if "://" in url:
        scheme, rest = url.split("://", 1)
        if "@" in rest:
            user = rest.split("@", 1)[0].split(":", 1)[0]
            rest = f"{user}:***@" + rest.rsplit("@", 1)[1] if ":" in rest.rsplit("@", 1)[0] else rest
        rest = rest.split("?", 1)[0]
        return f"{scheme}://{rest}"
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url, flags=re.I)


def _one_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class PostgresJournal(Journal):
    """A journal in a PostgreSQL database, shared by every cockpit pointed at it. Thread-safe;
    connects on first use and again after the connection is lost."""

    notifies = True

    def __init__(self, url: str, clock: Clock | None = None, actor: str = "responder",
                 readonly: bool = False) -> None:
        import hashlib

        self.url = url
        self.where = safe_url(url)
        self.clock = clock or SystemClock()
        self.actor = actor
        self.readonly = readonly
        self._lock = threading.Lock()
        self._conn = None
        self._tail: dict[str, str] = {}  # incident -> the last hash this cockpit saw
        tag = hashlib.sha256(self.where.encode()).hexdigest()[:16]
        self.heads = HeadsFile(default_path().parent / "heads" / f"pg-{tag}.heads")

    # ------------------------------------------------------------ connection

    def _connect(self):
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                   application_name="cockpit")
        except psycopg.Error as e:
            raise JournalError(f"{self.where}: cannot connect to the shared journal: {_one_line(e)}") from None
        conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        return conn

    def _db(self):
        """The open connection (made, and the schema checked, on first use)."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = self._connect()
        if self.readonly:
            return self._check_tables(conn)
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                row = conn.execute("SELECT to_regclass('cockpit_meta') IS NOT NULL").fetchone()
                old = conn.execute("SELECT value FROM cockpit_meta WHERE key='schema'").fetchone() if row[0] else None
                if old is not None and old[0] not in ("1", SCHEMA_VERSION):
                    row = old
                else:
                    conn.execute(_SCHEMA)
                    if old is None:
                        conn.execute("INSERT INTO cockpit_meta VALUES ('schema', %s)", (SCHEMA_VERSION,))
                    elif old[0] == "1":  # seal what is there (removal before now cannot be detected)
                        # (ALTER only here: it locks the table against every writer while it runs)
                        conn.execute("ALTER TABLE cockpit_events ADD COLUMN IF NOT EXISTS written DOUBLE PRECISION")
                        conn.execute("INSERT INTO cockpit_heads SELECT incident, seq, hash FROM cockpit_events "
                                     "ON CONFLICT DO NOTHING")
                        conn.execute("UPDATE cockpit_meta SET value=%s WHERE key='schema'", (SCHEMA_VERSION,))
                    row = None
        except Exception as e:
            conn.close()
            raise JournalError(f"{self.where}: cannot set up the journal tables: {_one_line(e)}") from None
        if row is not None and row[0] != SCHEMA_VERSION:
            conn.close()
            raise JournalError(f"{self.where}: journal schema {row[0]} is not {SCHEMA_VERSION}; "
                               "open it with the cockpit version that wrote it")
        self._conn = conn
        return conn

    def _check_tables(self, conn):
        """Read-only: the journal's tables must be there (nothing is created)."""
        found = conn.execute("SELECT to_regclass('cockpit_events') IS NOT NULL, "
                             "to_regclass('cockpit_heads') IS NOT NULL, to_regclass('cockpit_meta') IS NOT NULL"
                             ).fetchone()
        self._tables = dict(zip(("events", "heads", "meta"), found)) | {"leases": False}
        if not any(found) and not self.heads.exists():
            conn.close()
            raise JournalUnreadable(f"{self.where}: not a journal (no cockpit tables in this database)")
        self._conn = conn
        return conn

    def _has(self, table: str) -> bool:
        return not self.readonly or self._tables.get(table, False)

    def _run(self, what: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(connection)`` under the lock; errors become one JournalError line, and a
        lost connection is dropped so the next call reconnects."""
        import psycopg

        with self._lock:
            conn = self._db()
            try:
                return fn(conn)
            except psycopg.Error as e:
                if isinstance(e, psycopg.OperationalError) or conn.closed:
                    conn.close()
                    self._conn = None
                self._tail.clear()
                raise JournalError(f"{self.where}: cannot {what}: {_one_line(e)}") from None

    # ------------------------------------------------------------ writing

    def _insert(self, batch: list[tuple[Event, bool]]) -> list[Event]:
        """Usually one statement: chained after the tails this cockpit last saw. When another
        cockpit appended first (the insert is refused), an id is there already (a retry),
        an incident is new to this cockpit, or for a ``once`` alert: the tails, ids and
        alerts are read under the incidents' locks first, in one transaction with the insert."""
        if self.readonly:
            raise JournalError(f"{self.where}: opened read-only")
        incidents = sorted({ev.incident for ev, _ in batch})

        def write(conn) -> list[Event]:
            import psycopg

            chained = None
            if (len(batch) <= STATEMENT_EVENTS and all(i in self._tail for i in incidents)
                    and not any(once for _, once in batch)):
                chained = Chained(batch, self._tail)
                try:
                    seqs = self._put(conn, chained, incidents)  # the usual case: one round trip
                except psycopg.errors.UniqueViolation:
                    chained = None  # another cockpit appended first, or written before
            if chained is None:
                with conn.transaction():
                    chained = self._chain_locked(conn, batch, incidents)
                    seqs = self._put(conn, chained, incidents)
            self._tail.update(chained.tails)  # committed
            return chained.events(seqs)

        return self._run("write the event", write)

    @staticmethod
    def _chain_locked(conn, batch: list[tuple[Event, bool]], incidents: list[str]) -> Chained:
        """Chain the batch on what the journal holds, read under the incidents' locks (held
        until the transaction ends, so no writer can overtake it)."""
        import psycopg

        psycopg.RawCursor(conn).execute(_locks_sql(len(incidents)), incidents)
        tails = {i: h or GENESIS for i, h in conn.execute(_TAILS, (incidents,))}
        stored = {e.id: e for e in map(_row_event, conn.execute(
            f"SELECT {_COLUMNS} FROM cockpit_events WHERE id = ANY(%s)", ([ev.id for ev, _ in batch],)))}
        recent: dict[str, list[Event]] = {i: [] for i in {ev.incident for ev, once in batch if once}}
        if recent:
            for e in map(_row_event, conn.execute(_RECENT_ALERTS, (sorted(recent),))):
                recent[e.incident].append(e)
        return Chained(batch, tails, stored, recent)

    @staticmethod
    def _put(conn, chained: Chained, incidents: list[str]) -> list[int]:
        """Insert the chained rows, their heads and the announcement, STATEMENT_EVENTS to a
        statement (more than one only inside a transaction); the seq of each row."""
        import psycopg

        cur = psycopg.RawCursor(conn)
        seq_of: dict[str, int] = {}
        for start in range(0, len(chained.rows), STATEMENT_EVENTS):
            rows = chained.rows[start:start + STATEMENT_EVENTS]
            values: list[Any] = list(incidents)
            for ev, prev, digest in rows:
                values += (ev.id, ev.incident, ev.ts, ev.actor, ev.kind, json.dumps(ev.payload, sort_keys=True),
                           ev.pinned, prev, digest, ev.written)
            values.append(CHANNEL)
            cur.execute(_insert_sql(len(rows), len(incidents)), values)
            seq_of.update((i, seq) for i, seq, _ in cur)
        return [seq_of[ev.id] for ev, _, _ in chained.rows]

    # ------------------------------------------------------------ shared state

    def now(self) -> float:
        return float(self._run("read the time", lambda conn: conn.execute(f"SELECT {_NOW}").fetchone()[0]))

    def put_meta(self, key: str, value: str) -> None:
        self._run("write to the journal", lambda conn: conn.execute(
            "INSERT INTO cockpit_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value=EXCLUDED.value",
            (key, value)))

    def get_meta(self, key: str) -> str | None:
        row = self._run("read the journal", lambda conn: conn.execute(
            "SELECT value FROM cockpit_meta WHERE key=%s", (key,)).fetchone() if self._has("meta") else None)
        return row[0] if row else None

    def claim(self, lease: Lease) -> Lease:
        """One statement: insert, or take over an expired lease or our own; nothing when
        another cockpit holds it (the unique target decides a race); announced."""
        ttl = max(1.0, lease.expires - lease.started)

        def take(conn) -> Lease:
            row = conn.execute(
                f"WITH got AS (INSERT INTO cockpit_leases ({_LEASE}) VALUES (%s, %s, %s, %s, %s, {_NOW}, {_NOW} + %s) "
                "ON CONFLICT (target) DO UPDATE SET action=EXCLUDED.action, actor=EXCLUDED.actor, "
                "cockpit=EXCLUDED.cockpit, incident=EXCLUDED.incident, started=EXCLUDED.started, "
                f"expires=EXCLUDED.expires WHERE cockpit_leases.expires < {_NOW} "
                f"OR cockpit_leases.cockpit = EXCLUDED.cockpit RETURNING {_LEASE}) "
                f"SELECT {_LEASE}, pg_notify(%s, %s) FROM got",
                (lease.target, lease.action, lease.actor, lease.cockpit, lease.incident, ttl, CHANNEL,
                 "lease:" + lease.target)).fetchone()
            if row is None:
                row = conn.execute(f"SELECT {_LEASE} FROM cockpit_leases WHERE target=%s", (lease.target,)).fetchone()
            return Lease(*row[:7])

        return self._run("claim the target", take)

    def release(self, target: str, cockpit: str) -> None:
        self._run("release the target", lambda conn: conn.execute(
            "WITH gone AS (DELETE FROM cockpit_leases WHERE target=%s AND cockpit=%s RETURNING target) "
            "SELECT pg_notify(%s, %s) FROM gone", (target, cockpit, CHANNEL, "lease:" + target)))

    def renew(self, cockpit: str, ttl: float = LEASE_TTL) -> None:
        self._run("renew the leases", lambda conn: conn.execute(
            f"UPDATE cockpit_leases SET expires = {_NOW} + %s WHERE cockpit=%s", (ttl, cockpit)))

    def leases(self) -> list[Lease]:
        rows = self._run("read the leases", lambda conn: conn.execute(
            f"SELECT {_LEASE} FROM cockpit_leases WHERE expires > {_NOW}").fetchall() if self._has("leases") else [])
        return [Lease(*r) for r in rows]

    def heartbeat(self, presence: Presence) -> list[Presence]:
        p = presence

        def beat(conn) -> list[Presence]:
            conn.execute(f"INSERT INTO cockpit_presence VALUES (%s, %s, %s, %s, {_NOW}) ON CONFLICT (cockpit) DO "
                         "UPDATE SET actor=EXCLUDED.actor, incident=EXCLUDED.incident, mode=EXCLUDED.mode, "
                         "seen=EXCLUDED.seen", (p.cockpit, p.actor, p.incident, p.mode))
            conn.execute(f"DELETE FROM cockpit_presence WHERE seen < {_NOW} - %s", (10 * PRESENCE_TTL,))
            return [Presence(*r) for r in conn.execute(
                f"SELECT cockpit, actor, incident, mode, seen FROM cockpit_presence WHERE seen >= {_NOW} - %s",
                (PRESENCE_TTL,)).fetchall()]

        return self._run("say this cockpit is here", beat)

    def leave(self, cockpit: str) -> None:
        self._run("say this cockpit is gone", lambda conn: conn.execute(
            "DELETE FROM cockpit_presence WHERE cockpit = %s", (cockpit,)))

    # ------------------------------------------------------------ reading

    def _events(self, incident: str, after_seq: int = 0) -> list[Event]:
        rows = self._run("read the journal", lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM cockpit_events WHERE incident=%s AND seq>%s ORDER BY seq",
            (incident, after_seq)).fetchall() if self._has("events") else [])
        return [_row_event(r) for r in rows]

    def incidents(self) -> list[str]:
        rows = self._run("read the journal", lambda conn: conn.execute(
            "SELECT incident, MIN(seq) FROM cockpit_events GROUP BY incident ORDER BY MIN(seq)").fetchall()
            if self._has("events") else [])
        return [r[0] for r in rows]

    def _recorded_heads(self) -> list[Head]:
        rows = self._run("read the journal's heads", lambda conn: conn.execute(
            "SELECT incident, seq, hash FROM cockpit_heads").fetchall() if self._has("heads") else [])
        return [Head(r[0], int(r[1]), r[2]) for r in rows] + self.heads.load()

    def check(self, incident: str | None = None, heads=()):
        report = super().check(incident, heads)
        if self.readonly and not self._tables.get("events"):
            report.problems.insert(0, f"{self.where}: the cockpit_events table is gone")
        return report

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ------------------------------------------------------------ sharing

    def listen(self, callback: Callable[[str | None], None]) -> Callable[[], None]:
        """Watch for other cockpits' writes on a connection of its own, in a daemon thread.
        ``callback(incident)`` per announced write; ``callback(None)`` after (re)connecting,
        since announcements sent while disconnected are lost: catch up from the journal."""
        stop = threading.Event()
        thread = threading.Thread(target=self._listen, args=(callback, stop), name="journal-listen", daemon=True)
        thread.start()

        def stop_listening() -> None:
            stop.set()
            thread.join(timeout=3)

        return stop_listening

    def _listen(self, callback: Callable[[str | None], None], stop: threading.Event) -> None:
        import psycopg

        delay = 1.0
        while not stop.is_set():
            try:
                conn = self._connect()
            except JournalError:
                stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            try:
                with conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    callback(None)
                    while not stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            callback(note.payload)
            except psycopg.Error:
                stop.wait(0.5)  # the server went away: reconnect and catch up
            except Exception:  # noqa: BLE001 - a failing callback must not end the listener
                time.sleep(0.1)
