"""A journal outage during an incident (issue 11): a real PostgreSQL refusing
connections, and a real full disk under the SQLite journal.

On b784a6b each critical alert queued its own declaration while the journal was away, so
one incident became several when it came back, the alert events were lost, and notes and
acknowledgements carried the retry time (an ack 60 s after declaring read as TTA 660 s).
Now everything that happened is written, in order, to one incident with its own times.
"""

from __future__ import annotations

import os

import pytest

from cockpit.clock import ManualClock
from cockpit.incident.desk import IncidentDesk
from cockpit.incident.journal import SQLiteJournal
from cockpit.model import Level, TimelineEvent
from cockpit.incident.pgjournal import PostgresJournal
from cockpit.incident.postmortem import durations
from conftest import pg_outage

T0 = 1_767_225_600.0


def alert(ts: float, signal: str, level: Level, text: str, kind: str = "alert") -> TimelineEvent:
    return TimelineEvent(ts, kind, text, level, signal, {"from": "OK", "to": level.name})


#: what the outage sequence journals, in the order written: the declaration, the WARN from
#: before it (the episode's first symptom), the three critical alerts, the note, the ack
EXPECTED = [("incident_declared", T0 + 5), ("alert_raised", T0), ("alert_raised", T0 + 5), ("alert_raised", T0 + 6),
            ("alert_raised", T0 + 7), ("note", T0 + 20), ("status_changed", T0 + 65)]


def incident_during_an_outage(desk: IncidentDesk, clock: ManualClock, down, up) -> None:
    """The whole sequence: a WARN, the journal goes away, three critical alerts, a note, an
    acknowledgement 60 s after the declaration, retries while it is away, then it answers."""
    desk.alert(alert(T0, "error rate", Level.WARN, "error rate WARN 6.1% (>= 5.0%)"))
    down()
    try:
        for dt, signal, text, kind in ((5, "error rate", "error rate CRIT 11.0% (>= 10.0%)", "alert"),
                                       (6, "latency", "latency CRIT 1.21s (>= 1.00s)", "alert"),
                                       (7, "component api", "component api degraded → unhealthy", "status")):
            clock.set(T0 + dt)
            desk.alert(alert(T0 + dt, signal, Level.CRIT, text, kind))
        clock.set(T0 + 20)
        assert "NOT SAVED" in desk.note("failing over to eu-west-1", at=T0 + 20)
        clock.set(T0 + 65)
        assert "NOT SAVED" in desk.set_status("acknowledged", at=T0 + 65)
        assert desk.journal_error is not None
        st = desk.state()  # the incident exists here already, with everything in it
        assert st is not None and st.status == "acknowledged"
        for _ in range(3):  # the listener's retries while it is still away
            clock.advance(200)
            assert desk.follow() == 0
        assert [(u.kind, u.at) for u in desk.unsaved] == EXPECTED  # kept, in order, with their own times
    finally:
        up()
    clock.advance(5)
    desk.follow()  # what the listener's reconnect (or the next tick) does
    assert desk.unsaved == [] and desk.journal_error is None


def check_one_incident(journal, desk: IncidentDesk) -> None:
    incidents = [i for i in journal.incidents() if i != "INC-EARLIER"]
    assert len(incidents) == 1, f"one incident, not {incidents}"
    events = journal.events(incidents[0])
    assert [(e.kind, e.ts) for e in events] == EXPECTED
    assert [e.kind for e in events].count("incident_declared") == 1
    assert all(e.written is not None and e.written >= T0 + 600 for e in events), "all written after the outage"
    st = desk.state()
    d = durations(st)
    assert st.milestones["impact_started"] == T0  # the WARN before the outage
    assert d["TTD"] == 5 and d["TTA"] == 60  # not 660: the moment the responder acted
    assert journal.verify() == []
    print("outage event list:\n" + "\n".join(f"  {e.seq:>4} {e.kind:<18} happened T+{e.ts - T0:>5.1f}s  "
                                              f"written T+{e.written - T0:>6.1f}s  {e.payload.get('text', '')}"
                                              for e in events))


def test_postgres_refusing_connections_keeps_one_incident_and_every_time(pg_url):
    clock = ManualClock(T0)
    journal = PostgresJournal(pg_url, clock=clock, actor="alice")
    journal.incidents()  # the tables exist before the outage
    desk = IncidentDesk(journal, clock, "alice", "checkout")
    incident_during_an_outage(desk, clock, lambda: pg_outage(pg_url, True), lambda: pg_outage(pg_url, False))
    check_one_incident(PostgresJournal(pg_url), desk)


def _fill(folder) -> None:
    """Take every free byte of the filesystem."""
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
        try:
            os.fsync(f.fileno())
        except OSError:
            pass


def test_a_full_disk_keeps_one_incident_and_every_time(small_disk):
    disk = small_disk("2m")
    clock = ManualClock(T0)
    journal = SQLiteJournal(disk / "journal.db", clock=clock, actor="alice")
    journal.append("INC-EARLIER", "note", {"text": "the journal worked before"})  # the file and its heads exist
    desk = IncidentDesk(journal, clock, "alice", "checkout")

    def down():
        _fill(disk)
        with pytest.raises(Exception, match="full"):
            journal.append("INC-PROBE", "note", {"text": "x" * 100_000})

    incident_during_an_outage(desk, clock, down, lambda: os.remove(disk / "filler"))
    check_one_incident(journal, desk)
    assert journal.check().intact, journal.check().all_problems  # the heads the full disk refused came later
    journal.close()


def test_a_journal_at_its_size_limit_keeps_one_incident_and_every_time(tmp_path):
    """The same outage by SQLite's own limit on the file (any machine can make this one)."""
    clock = ManualClock(T0)
    journal = SQLiteJournal(tmp_path / "journal.db", clock=clock, actor="alice")
    journal.append("INC-EARLIER", "note", {"text": "the journal worked before"})
    desk = IncidentDesk(journal, clock, "alice", "checkout")
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]

    def down():
        journal._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(Exception, match="full"):  # the pages it has fill up: then it is full
            for i in range(1000):
                journal.append("INC-EARLIER", "note", {"text": f"filler {i}"})

    def up():
        journal._db.execute("PRAGMA max_page_count = 1073741823")

    incident_during_an_outage(desk, clock, down, up)
    check_one_incident(journal, desk)


def test_what_is_still_unsaved_at_exit_goes_to_the_rescue_file_with_its_times(tmp_path, closed_port):
    clock = ManualClock(T0)
    journal = PostgresJournal(f"postgresql://127.0.0.1:{closed_port}/incidents", clock=clock)
    desk = IncidentDesk(journal, clock, "alice", "checkout")
    desk.alert(alert(T0, "error rate", Level.CRIT, "error rate CRIT 11%"))
    desk.note("tried restarting the pool", at=T0 + 30)
    path = desk.rescue(tmp_path / "unsaved.jsonl")
    import json

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["kind"], r["at"]) for r in rows] == [("incident_declared", T0), ("alert_raised", T0),
                                                   ("note", T0 + 30)]
    assert len({r["incident"] for r in rows}) == 1 and all(r["id"] for r in rows)
