"""``append_many`` on both journals (SQLite and the shared PostgreSQL one): a batch is the
same events as appending them one by one, in one transaction: chained in order, all or
nothing, its heads recorded, retried without writing twice, alerts journaled once."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest

from cockpit.clock import ManualClock
from cockpit.incident.journal import GENESIS, Journal, JournalError, NewEvent, SQLiteJournal
from cockpit.incident.pgjournal import PostgresJournal


#: make the store refuse any event whose payload says "boom" (the transaction fails there)
SQLITE_REFUSE_BOOM = ("CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.payload LIKE '%boom%' "
                      "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END;")
PG_REFUSE_BOOM = ("CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "IF NEW.payload LIKE '%boom%' THEN RAISE EXCEPTION 'refused by a trigger'; END IF; RETURN NEW; END $$; "
                  "CREATE TRIGGER boom BEFORE INSERT ON cockpit_events FOR EACH ROW EXECUTE FUNCTION boom()")


@dataclass
class Store:
    """Where the journals of one test live: ``open(actor)`` opens a journal on it (another
    cockpit, when called again), ``sql(statement)`` changes it behind the journal's back."""

    open: Callable[..., Journal]
    sql: Callable[[str], None]
    events: str  # the events table's name
    refuse_boom: str  # SQLITE_REFUSE_BOOM or PG_REFUSE_BOOM


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    opened: list[Journal] = []
    if request.param == "sqlite":
        path = tmp_path / "journal.db"

        def open_journal(actor: str = "alice") -> Journal:
            opened.append(SQLiteJournal(path, clock=ManualClock(), actor=actor))
            return opened[-1]

        def sql(statement: str) -> None:
            db = sqlite3.connect(path)
            db.executescript(statement)
            db.close()

        yield Store(open_journal, sql, "events", SQLITE_REFUSE_BOOM)
    else:
        url = request.getfixturevalue("pg_url")

        def open_journal(actor: str = "alice") -> Journal:
            opened.append(PostgresJournal(url, clock=ManualClock(), actor=actor))
            return opened[-1]

        def sql(statement: str) -> None:
            with psycopg.connect(url, autocommit=True) as db:
                db.execute(statement)

        yield Store(open_journal, sql, "cockpit_events", PG_REFUSE_BOOM)
    for j in opened:
        j.close()


def notes(incident: str, *texts: str, **kw) -> list[NewEvent]:
    return [NewEvent(incident, "note", {"text": t}, **kw) for t in texts]


def texts(j: Journal, incident: str) -> list[str]:
    return [e.payload.get("text", e.kind) for e in j.events(incident)]


def assert_chained(j: Journal, incident: str) -> None:
    evs = j.events(incident)
    assert [e.prev_hash for e in evs] == [GENESIS] + [e.hash for e in evs[:-1]]
    assert [e.seq for e in evs] == sorted(e.seq for e in evs)


def test_a_batch_is_chained_in_order_across_incidents(store):
    j = store.open()
    first = j.append("INC-1", "incident_declared", {"title": "checkout 5xx"})
    entries = [NewEvent("INC-1", "alert_raised", {"signal": "error rate", "level": "CRIT", "text": "5xx 12%"}),
               NewEvent("INC-2", "note", {"text": "other incident"}, actor="bob", ts=1000.0),
               NewEvent("INC-1", "metrics_snapshot", {"error_rate": 0.12}),
               NewEvent("INC-1", "note", {"text": "pinned"}, pinned=True, id="my-id")]
    stored = j.append_many(entries)
    last = j.append("INC-1", "note", {"text": "after the batch"})
    assert [e.kind for e in stored] == [e.kind for e in entries]
    assert [e.seq for e in stored] == sorted(e.seq for e in stored) and stored[0].seq > first.seq
    assert stored[1].actor == "bob" and stored[1].ts == 1000.0 and stored[3].pinned and stored[3].id == "my-id"
    assert stored[0].prev_hash == first.hash and stored[2].prev_hash == stored[0].hash
    assert stored[3].prev_hash == stored[2].hash and last.prev_hash == stored[3].hash
    assert stored[1].prev_hash == GENESIS
    assert j.events("INC-1") == [first, stored[0], stored[2], stored[3], last]  # as returned, as read back
    assert j.events("INC-2") == [stored[1]]
    assert j.verify() == []
    assert j.append_many([]) == []


def test_every_event_of_a_batch_is_sealed_by_its_head(store):
    j = store.open()
    j.append_many(notes("INC-1", *(f"note {i}" for i in range(6))))
    store.sql(f"DELETE FROM {store.events} WHERE incident = 'INC-1' AND payload LIKE '%note 5%'")
    assert j.verify() == ["incident INC-1: CUT SHORT: 1 event(s) removed from the end (#6); it now ends at #5"]
    store.sql(f"DELETE FROM {store.events} WHERE incident = 'INC-1' AND payload LIKE '%note 2%'")
    assert any("removed from the middle (#3)" in p for p in j.verify())


@pytest.mark.parametrize("once", [False, True], ids=["usual", "with-an-alert"])
def test_a_failed_batch_writes_nothing_and_the_chain_goes_on(store, once):
    """All or nothing: the store refuses the second of three events; the first is not kept,
    no head is recorded for any, and the next append chains after the last event written."""
    j = store.open()
    before = j.append_many(notes("INC-1", "declared", "tail known"))
    store.sql(store.refuse_boom)
    batch = [NewEvent("INC-1", "alert_raised", {"signal": "p95", "level": "WARN", "text": "p95 1.2 s"}, once=once),
             *notes("INC-1", "boom", "never")]
    with pytest.raises(JournalError, match="refused by a trigger"):
        j.append_many(batch)
    assert j.events("INC-1") == before
    after = j.append("INC-1", "note", {"text": "after"})
    assert after.prev_hash == before[-1].hash
    assert j.verify() == []  # no head of the refused events: nothing reads as cut short
    assert texts(store.open("bob"), "INC-1") == ["declared", "tail known", "after"]


def test_a_bad_entry_refuses_the_whole_batch_before_anything_is_written(store):
    j = store.open()
    with pytest.raises(JournalError, match="unknown event kind"):
        j.append_many([*notes("INC-1", "fine"), NewEvent("INC-1", "gossip")])
    with pytest.raises(JournalError, match="not JSON"):
        j.append_many([*notes("INC-1", "fine"), NewEvent("INC-1", "note", {"nan": float("nan")})])
    assert j.events("INC-1") == []
    assert j.verify() == []


def test_a_retried_batch_writes_nothing_twice(store):
    """A batch whose answer was lost is sent again (same ids), with more behind it: what
    was written is returned as it is, the rest is chained after it."""
    j = store.open()
    sent = [NewEvent("INC-1", "note", {"text": f"n{i}"}, id=f"ev-{i}") for i in range(3)]
    first = j.append_many(sent)
    again = j.append_many([*sent, NewEvent("INC-1", "note", {"text": "n3"}, id="ev-3"), sent[1]])
    assert again[:3] == first and again[4] == first[1]
    assert again[3].prev_hash == first[-1].hash
    assert texts(j, "INC-1") == ["n0", "n1", "n2", "n3"]
    other = store.open("bob")  # a cockpit that never saw them (its tails unknown)
    assert other.append_many(sent[:1]) == first[:1]
    assert [e.id for e in other.events("INC-1")] == ["ev-0", "ev-1", "ev-2", "ev-3"]
    assert j.verify() == []


def test_alerts_in_a_batch_are_journaled_once(store):
    """A ``once`` alert another cockpit, or an earlier entry, journaled already is that
    event; the rest of the batch is written."""
    alice, bob = store.open("alice"), store.open("bob")
    alert = {"signal": "error rate", "level": "CRIT", "text": "5xx 12%"}
    theirs = bob.append("INC-1", "alert_raised", alert, actor="cockpit")
    got = alice.append_many([NewEvent("INC-1", "alert_raised", alert, once=True),
                             NewEvent("INC-1", "metrics_snapshot", {"error_rate": 0.12}),
                             NewEvent("INC-1", "alert_raised", {**alert, "signal": "p95"}, once=True),
                             NewEvent("INC-1", "alert_raised", {**alert, "signal": "p95"}, once=True)])
    assert got[0] == theirs
    assert got[3] == got[2] and got[2].prev_hash == got[1].hash
    assert [e.kind for e in alice.events("INC-1")] == ["alert_raised", "metrics_snapshot", "alert_raised"]
    assert alice.verify() == []


def test_an_empty_batch_asks_nothing_of_the_journal(closed_port):
    j = PostgresJournal(f"postgresql://127.0.0.1:{closed_port}/incidents")
    assert j.append_many([]) == []  # no connection tried
    with pytest.raises(JournalError, match="cannot connect"):
        j.append_many(notes("INC-1", "x"))


def test_a_batch_longer_than_a_statement_is_still_all_or_nothing(pg_url, monkeypatch):
    """A batch past STATEMENT_EVENTS goes in several statements of one transaction: a
    refusal in the last of them keeps none of it."""
    from cockpit.incident import pgjournal

    monkeypatch.setattr(pgjournal, "STATEMENT_EVENTS", 3)
    j = PostgresJournal(pg_url, clock=ManualClock())
    first = j.append_many(notes("INC-1", *(f"n{i}" for i in range(8))))
    assert [e.prev_hash for e in first[1:]] == [e.hash for e in first[:-1]]
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute(PG_REFUSE_BOOM)
    with pytest.raises(JournalError, match="refused by a trigger"):
        j.append_many(notes("INC-1", *(f"m{i}" for i in range(6)), "boom"))
    assert j.events("INC-1") == first
    j.append_many(notes("INC-1", *(f"m{i}" for i in range(7))))
    assert texts(j, "INC-1") == [f"n{i}" for i in range(8)] + [f"m{i}" for i in range(7)]
    assert j.verify() == []
    j.close()
