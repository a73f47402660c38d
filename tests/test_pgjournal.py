"""The shared journal on the machine's real PostgreSQL: the same chain and rules as
SQLite, concurrent writers, LISTEN/NOTIFY, and two cockpits on one incident."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg
import pytest
from apphelpers import settle, wait_for
from conftest import pg_outage

from screens.app import CockpitApp
from cockpit.clock import ManualClock
from cockpit.config import ConfigError, config_from_dict
from cockpit.drill.demo import demo_config, demo_raw
from cockpit.incident.desk import IncidentDesk
from cockpit.incident.journal import GENESIS, JournalError, NewEvent
from cockpit.incident.journals import open_journal
from cockpit.incident.pgjournal import PostgresJournal, safe_url
from cockpit.drill.simulator import Simulator, SimulatorServer
from screens.header import CockpitHeader
from screens.prompt import IncidentChoice, TextPrompt


@pytest.fixture
def calm_server():
    server = SimulatorServer(Simulator(seed=3, faults=())).start()
    yield server
    server.stop()


def test_events_chain_and_reopen(pg_url):
    j = PostgresJournal(pg_url, clock=ManualClock(), actor="alice")
    a = j.append("INC-1", "incident_declared", {"title": "checkout 5xx", "ratio": 0.1 + 0.2})
    b = j.append("INC-1", "note", {"text": "rolled back? ünïcode"}, actor="bob")
    j.append("INC-2", "note", {"text": "other"})
    j.close()
    j = open_journal(pg_url)  # the same factory `cockpit run` uses for journal = "postgresql://..."
    assert isinstance(j, PostgresJournal)
    evs = j.events("INC-1")
    assert [e.id for e in evs] == [a.id, b.id]
    assert evs[0].payload["ratio"] == 0.1 + 0.2  # floats round-trip exactly, so the hash still matches
    assert evs[1].actor == "bob" and evs[1].payload["text"] == "rolled back? ünïcode"
    assert evs[0].prev_hash == GENESIS and evs[1].prev_hash == evs[0].hash
    assert j.incidents() == ["INC-1", "INC-2"]
    assert j.verify() == []
    assert j.events("INC-1", after_seq=evs[0].seq) == [evs[1]]


def test_an_edited_or_deleted_row_is_detected(pg_url):
    j = PostgresJournal(pg_url)
    for i in range(4):
        j.append("INC-1", "note", {"text": f"note {i}"})
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("UPDATE cockpit_events SET payload = '{\"text\": \"we never said that\"}' "
                   "WHERE seq = (SELECT MIN(seq) + 1 FROM cockpit_events)")
        db.execute("DELETE FROM cockpit_events WHERE seq = (SELECT MAX(seq) - 1 FROM cockpit_events)")
    problems = j.verify()
    assert any("#2 (note) was changed" in p for p in problems)
    assert any("does not follow" in p for p in problems)


def test_two_writers_at_once_keep_one_unbroken_chain(pg_url):
    journals = [PostgresJournal(pg_url, actor=f"r{i}") for i in range(3)]
    journals[0].append("INC-1", "incident_declared", {"title": "x"})  # creates the tables once

    failures: list[Exception] = []

    def write(j: PostgresJournal) -> None:
        try:
            for i in range(60):
                j.append("INC-1", "note", {"text": f"{j.actor} {i}"})
        except Exception as e:  # noqa: BLE001 - collected, then asserted on
            failures.append(e)

    threads = [threading.Thread(target=write, args=(j,)) for j in journals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    evs = journals[0].events("INC-1")
    assert len(evs) == 1 + 3 * 60
    assert journals[0].verify() == []
    assert [e.seq for e in evs] == sorted(e.seq for e in evs)


def test_batches_and_appends_from_three_cockpits_at_once_keep_every_chain(pg_url):
    """Single appends and batches over two incidents, listed in either order, from three
    cockpits at once: no batch waits for another in a circle (a deadlock would be refused),
    nothing is lost, every chain and head holds, and `cockpit journal verify` says so."""
    journals = [PostgresJournal(pg_url, actor=f"r{i}") for i in range(3)]
    journals[0].append("INC-1", "incident_declared", {"title": "x"})
    failures: list[Exception] = []

    def write(j: PostgresJournal, n: int) -> None:
        first, second = ("INC-2", "INC-1") if n % 2 else ("INC-1", "INC-2")
        try:
            for i in range(15):
                j.append(first, "note", {"text": f"{j.actor} {i} alone"})
                j.append_many([NewEvent(inc, "note", {"text": f"{j.actor} {i} {k}"})
                               for k, inc in enumerate((first, second, first, second))])
        except Exception as e:  # noqa: BLE001 - collected, then asserted on
            failures.append(e)

    threads = [threading.Thread(target=write, args=(j, n)) for n, j in enumerate(journals)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    reader = PostgresJournal(pg_url)
    for incident, count in (("INC-1", 1 + 2 * 15 + 3 * 15 * 2), ("INC-2", 15 + 3 * 15 * 2)):
        evs = reader.events(incident)
        assert len(evs) == count
        assert [e.prev_hash for e in evs] == [GENESIS] + [e.hash for e in evs[:-1]]
    every = sorted(reader.events("INC-1") + reader.events("INC-2"), key=lambda e: e.seq)
    for j in journals:  # each cockpit's batches landed whole, in the order given
        mine = [tuple(map(int, e.payload["text"].split()[1:])) for e in every
                if e.actor == j.actor and e.kind == "note" and not e.payload["text"].endswith("alone")]
        assert mine == [(i, k) for i in range(15) for k in range(4)]
    assert reader.verify() == []
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM cockpit_heads").fetchone()[0] == 1 + 3 * 15 * 5
    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "journal", "verify", "--journal", pg_url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "chain INTACT" in out.stdout, out.stdout + out.stderr


def test_an_append_or_a_batch_is_one_statement_and_rechains_after_another_cockpit(pg_url, monkeypatch):
    alice, bob = PostgresJournal(pg_url, actor="alice"), PostgresJournal(pg_url, actor="bob")
    alice.append("INC-1", "incident_declared", {"title": "x"})  # first write here: the tail is read
    sent: list[str] = []
    execute = psycopg.Cursor.execute  # every statement, raw or not, whoever sends it
    monkeypatch.setattr(psycopg.Cursor, "execute",
                        lambda cur, query, *a, **kw: sent.append(query) or execute(cur, query, *a, **kw))
    alice.append("INC-1", "note", {"text": "one"})
    assert len(sent) == 1  # insert, head, NOTIFY and commit: one round trip
    alice.append_many([NewEvent("INC-1", "metrics_snapshot", {"n": i}) for i in range(100)])
    assert len(sent) == 2  # a hundred events: one more
    bob.append("INC-1", "note", {"text": "bob was first"})
    stored = alice.append_many([NewEvent("INC-1", "note", {"text": "re-chained"})])
    assert stored[0].prev_hash == bob.events("INC-1")[-2].hash
    assert [e.payload.get("text") for e in bob.events("INC-1")][-2:] == ["bob was first", "re-chained"]
    assert alice.verify() == []


def test_listen_announces_another_writers_event_within_a_second(pg_url):
    reader, writer = PostgresJournal(pg_url), PostgresJournal(pg_url)
    reader.incidents()  # tables exist before listening
    heard: list[tuple[float, str | None]] = []
    stop = reader.listen(lambda inc: heard.append((time.monotonic(), inc)))
    try:
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:  # the catch-up call after connecting
            time.sleep(0.01)
        assert heard and heard[0][1] is None
        sent = time.monotonic()
        writer.append("INC-7", "note", {"text": "hello"})
        while len(heard) < 2 and time.monotonic() < sent + 5:
            time.sleep(0.01)
        assert heard[-1][1] == "INC-7"
        assert heard[-1][0] - sent < 1.0
    finally:
        stop()


def test_unreachable_server_is_one_line_and_the_note_is_kept(closed_port):
    j = PostgresJournal(f"postgresql://127.0.0.1:{closed_port}/incidents")
    with pytest.raises(JournalError) as err:
        j.append("INC-1", "note", {"text": "x"})
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(f"postgresql://127.0.0.1:{closed_port}/incidents: cannot connect")
    desk = IncidentDesk(j, ManualClock(), "alice", "svc")
    assert "NOT SAVED" in desk.declare("the database is on fire")
    inc = desk.current
    assert inc is not None and desk.state().open  # the incident exists here, waiting to be written
    assert "NOT SAVED" in desk.note("failing over")  # refused, yet kept in memory, on that incident
    assert [(u.kind, u.event.incident) for u in desk.unsaved] == [("incident_declared", inc), ("note", inc)]


def test_a_lost_connection_reconnects_on_the_next_write(pg_url):
    j = PostgresJournal(pg_url)
    j.append("INC-1", "note", {"text": "before"})
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE application_name = 'cockpit' AND datname = current_database()")
    with pytest.raises(JournalError):
        j.append("INC-1", "note", {"text": "during"})  # the write hits the dead connection: refused, said
    j.append("INC-1", "note", {"text": "after"})  # the next one reconnects
    assert [e.payload["text"] for e in j.events("INC-1")] == ["before", "after"]
    assert j.verify() == []


def test_config_takes_urls_without_passwords_only(calm_server):
    raw = demo_raw(calm_server.url)
    for ok in ("postgresql://cockpit@db.internal/incidents", "env:COCKPIT_JOURNAL", "/var/lib/cockpit/j.db"):
        raw["incident"] = {"journal": ok}
        assert config_from_dict(raw, "<t>", {}).incident.journal == ok
    for bad, says in (("postgresql://cockpit:hunter2@db/incidents", "carries a password"),
                      ("mysql://db/incidents", "not mysql://")):
        raw["incident"] = {"journal": bad}
        with pytest.raises(ConfigError) as err:
            config_from_dict(raw, "<t>", {})
        assert says in "\n".join(err.value.problems)
        assert "hunter2" not in "\n".join(err.value.problems)
    assert safe_url("postgresql://u:hunter2@db:5433/x") == "postgresql://u:***@db:5433/x"


def test_cli_verify_list_and_export_read_the_shared_journal(pg_url, monkeypatch):
    j = PostgresJournal(pg_url, actor="alice")
    desk = IncidentDesk(j, ManualClock(), "alice", "checkout")
    assert desk.declare("checkout 5xx") is None
    desk.note("rolled back")
    monkeypatch.setenv("TEST_JOURNAL_URL", pg_url)

    def cockpit(*args):
        return subprocess.run([sys.executable, "-m", "cockpit.cli", *args], capture_output=True, text=True,
                              timeout=60)

    out = cockpit("journal", "verify", "--journal", "env:TEST_JOURNAL_URL")
    assert out.returncode == 0, out.stderr
    assert "1 incident(s), 2 event(s): chain INTACT" in out.stdout
    out = cockpit("journal", "list", "--journal", pg_url)
    assert desk.current in out.stdout and "checkout 5xx" in out.stdout
    out = cockpit("export", desk.current, "--journal", pg_url)
    assert out.returncode == 0 and "rolled back" in out.stdout
    bad = cockpit("journal", "list", "--journal", "postgresql://127.0.0.1:1/none")
    assert bad.returncode == 2 and "cannot connect" in bad.stderr and "Traceback" not in bad.stderr


async def seen_at(pilot, condition, timeout: float = 5.0) -> float:
    """The wall time at which ``condition()`` first held (checked every 10 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await pilot.pause(0.01)
    return time.time()


async def test_two_cockpits_see_each_others_notes_and_status_within_a_second(pg_url, calm_server):
    def cockpit(actor: str) -> CockpitApp:
        raw = demo_raw(calm_server.url)
        raw["settings"] = {**raw.get("settings", {}), "actor": actor}
        config = config_from_dict(raw, "<test>", {})
        return CockpitApp(config, mode="LIVE", journal=PostgresJournal(pg_url, actor=actor), poll=False)

    alice, bob = cockpit("alice"), cockpit("bob")
    received: dict[str, list[tuple[float, str]]] = {"alice": [], "bob": []}
    for name, app in (("alice", alice), ("bob", bob)):  # when each line reached the cockpit (journal thread)
        def record(ev, app=app, log=received[name]):
            log.append((time.time(), ev.text))
            app.record(ev)
        app.desk.on_event = record
    async with alice.run_test(size=(120, 40)) as pa, bob.run_test(size=(120, 40)) as pb:
        await settle(pa)
        await settle(pb)
        # alice declares; bob's cockpit picks the incident up by itself
        await pa.press("D", *"checkout 5xx", "enter")
        adopted = await seen_at(pb, lambda: bob.desk.current is not None)
        inc = bob.desk.current
        assert inc and alice.desk.current == inc
        # bob writes a note; alice sees it on her timeline
        await pb.press("n", *"bob here: db pool exhausted", "enter")
        noted = await seen_at(pa, lambda: any("bob here: db pool exhausted" in e.text for e in alice.events))
        await wait_for(pa, lambda: any("bob here" in str(alice.screen.query_one("#timeline-list")
                                                           .get_option_at_index(i).prompt)
                                       for i in range(alice.screen.query_one("#timeline-list").option_count)),
                       2, "the note on alice's timeline pane")
        # alice acknowledges; bob's header follows
        await pa.press("a")
        acked = await seen_at(pb, lambda: bob.desk.state() is not None and bob.desk.state().status == "acknowledged")
        await settle(pb)
        await pb.pause(0.1)
        assert f"{inc} ACKNOWLEDGED" in bob.screen.query_one(CockpitHeader).render().plain
        # from the moment each event was committed (its journal time) to the other cockpit having it
        events = PostgresJournal(pg_url).events(inc)
        written = {k: next(e.ts for e in events if e.kind == k) for k in ("incident_declared", "note", "status_changed")}

        def got(who: str, text: str) -> float:
            return next(t for t, line in received[who] if text in line)

        lags = {"adopt": got("bob", "declared by alice") - written["incident_declared"],
                "note": got("alice", "bob here") - written["note"],
                "ack": got("bob", "→ acknowledged by alice") - written["status_changed"]}
        assert max(adopted, noted, acked) > 0
        print("shared journal, commit -> other cockpit: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in lags.items()))
        assert max(lags.values()) < 1.0, lags
    events = PostgresJournal(pg_url).events(inc)
    assert {e.actor for e in events if e.kind in ("note", "status_changed", "incident_declared")} == {"alice", "bob"}
    assert PostgresJournal(pg_url).verify() == []


async def test_a_journal_that_cannot_be_reached_keeps_the_note_and_says_so(closed_port, calm_server):
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", poll=False,
                     journal=PostgresJournal(f"postgresql://127.0.0.1:{closed_port}/incidents"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("n", *"tried restarting the pool", "enter")
        await settle(pilot)
        assert isinstance(app.screen, IncidentChoice)  # no incident yet: asked, then declared while down
        await pilot.press("n")
        await settle(pilot)
        await settle(pilot)
        assert app.is_running and not isinstance(app.screen, (TextPrompt, IncidentChoice))
        assert any(u.payload.get("text") == "tried restarting the pool" for u in app.desk.unsaved)
        assert any("cannot connect" in n.message for n in app._notifications)
        await pilot.pause(0.1)
        assert "JOURNAL DOWN" in app.screen.query_one(CockpitHeader).render().plain
    # the cockpit stopped while the journal was still away: the note is in a rescue file
    assert app.rescued is not None and "tried restarting the pool" in app.rescued.read_text()


def test_changes_refused_during_an_outage_are_written_when_the_journal_answers(pg_url):
    j = PostgresJournal(pg_url, actor="alice")
    desk = IncidentDesk(j, ManualClock(), "alice", "checkout")
    assert desk.declare("checkout 5xx") is None
    pg_outage(pg_url, True)
    try:
        assert "NOT SAVED" in desk.note("failing over to eu-west-1")
        assert "NOT SAVED" in desk.set_status("acknowledged")
        assert desk.follow() == 0 and len(desk.unsaved) == 2  # still away: kept, in order
    finally:
        pg_outage(pg_url, False)
    desk.follow()  # what the listener's reconnect triggers
    assert desk.unsaved == []
    assert desk.state().status == "acknowledged"
    assert [e.kind for e in j.events(desk.current)] == ["incident_declared", "note", "status_changed"]
    assert j.verify() == []


def test_presence_on_the_shared_journal_ends_when_a_cockpit_leaves(pg_url):
    from cockpit.incident.journal import Presence

    alice, bob = PostgresJournal(pg_url, actor="alice"), PostgresJournal(pg_url, actor="bob")
    try:
        alice.heartbeat(Presence("cockpit-a", "alice", "INC-1", "LIVE", 0.0))
        seen = bob.heartbeat(Presence("cockpit-b", "bob", "INC-1", "LIVE", 0.0))
        assert {p.cockpit for p in seen} >= {"cockpit-a", "cockpit-b"}
        alice.leave("cockpit-a")
        seen = bob.heartbeat(Presence("cockpit-b", "bob", "INC-1", "LIVE", 0.0))
        assert "cockpit-a" not in {p.cockpit for p in seen} and "cockpit-b" in {p.cockpit for p in seen}
    finally:
        alice.close()
        bob.close()
