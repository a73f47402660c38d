"""The embedded journal: durability under SIGKILL, the hash chain, intents and outcomes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from cockpit.clock import ManualClock
from cockpit.incident.journal import GENESIS, JournalError, SQLiteJournal


@pytest.fixture
def journal(tmp_path):
    j = SQLiteJournal(tmp_path / "journal.db", clock=ManualClock(), actor="alice")
    yield j
    j.close()


def test_events_come_back_in_order_after_reopening(tmp_path):
    path = tmp_path / "j.db"
    j = SQLiteJournal(path, clock=ManualClock(), actor="alice")
    a = j.append("INC-1", "incident_declared", {"title": "checkout 5xx"})
    b = j.append("INC-1", "note", {"text": "rolled back?"}, actor="bob")
    j.append("INC-2", "note", {"text": "other incident"})
    j.close()
    j = SQLiteJournal(path)
    evs = j.events("INC-1")
    assert [e.id for e in evs] == [a.id, b.id]
    assert evs[1].actor == "bob" and evs[1].payload == {"text": "rolled back?"}
    assert evs[0].prev_hash == GENESIS and evs[1].prev_hash == evs[0].hash
    assert j.incidents() == ["INC-1", "INC-2"]
    assert j.verify() == []


def test_unknown_kind_and_non_json_payload_refused(journal):
    with pytest.raises(JournalError, match="unknown event kind"):
        journal.append("INC-1", "gossip")
    with pytest.raises(JournalError, match="not JSON"):
        journal.append("INC-1", "note", {"obj": object()})
    assert journal.events("INC-1") == []


def _tamper(path, sql: str) -> None:
    db = sqlite3.connect(path)
    db.execute(sql)
    db.commit()
    db.close()


def _five_notes(path) -> SQLiteJournal:
    j = SQLiteJournal(path)
    for i in range(5):
        j.append("INC-1", "note", {"text": f"note {i}"})
    return j


def test_verify_detects_an_edited_event(tmp_path):
    path = tmp_path / "j.db"
    j = _five_notes(path)
    _tamper(path, "UPDATE events SET payload='{\"text\": \"nothing happened\"}' WHERE seq=3")
    problems = j.verify("INC-1")
    assert problems == ["incident INC-1: event #3 (note) was changed after it was written"]


def test_verify_detects_a_removed_event(tmp_path):
    path = tmp_path / "j.db"
    j = _five_notes(path)
    _tamper(path, "DELETE FROM events WHERE seq=2")
    problems = j.verify("INC-1")
    assert len(problems) == 2 and "event #3" in problems[0] and "removed or reordered" in problems[0]
    assert problems[1] == "incident INC-1: 1 event(s) removed from the middle (#2)"  # named by its head


def test_two_writers_on_one_file_keep_one_chain(tmp_path):
    path = tmp_path / "j.db"
    a, b = SQLiteJournal(path, actor="alice"), SQLiteJournal(path, actor="bob")
    for i in range(20):
        (a if i % 3 else b).append("INC-1", "note", {"i": i})
    assert len(a.events("INC-1")) == 20
    assert a.verify() == [] and b.verify() == []


def test_an_intent_without_outcome_is_unresolved(journal):
    first = journal.intent("INC-1", "rollback", {"service": "checkout", "to": "v1.4.2"})
    journal.outcome("INC-1", first, "ok", "deployment steady")
    second = journal.intent("INC-1", "scale", {"desired": 6})
    assert [e.id for e in journal.unresolved_intents("INC-1")] == [second.id]
    with pytest.raises(JournalError, match="outcome must be one of"):
        journal.outcome("INC-1", second, "probably")


def test_a_file_that_is_not_a_journal_is_one_clear_error(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(JournalError) as info:
        SQLiteJournal(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


CHILD = textwrap.dedent("""
    import sys
    from cockpit.incident.journal import SQLiteJournal
    j = SQLiteJournal(sys.argv[1], actor="child")
    i = 0
    while True:
        ev = j.append("INC-9", "note", {"n": i})
        print(ev.id, flush=True)  # acknowledged: append has returned
        i += 1
""")


def test_every_acknowledged_event_survives_sigkill(tmp_path):
    path = tmp_path / "j.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    acknowledged = []
    try:
        for line in child.stdout:
            acknowledged.append(line.strip())
            if len(acknowledged) >= 300:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    j = SQLiteJournal(path)
    stored = {e.id for e in j.events("INC-9")}
    missing = [i for i in acknowledged if i not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert j.verify() == []


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit.cli", *args], capture_output=True, text=True, timeout=30)


def test_cli_verify_intact_then_tampered(tmp_path):
    path = tmp_path / "j.db"
    j = SQLiteJournal(path)
    for i in range(3):
        j.append("INC-1", "note", {"text": f"note {i}"})
    j.close()
    ok = _cli("journal", "verify", "--journal", str(path))
    assert ok.returncode == 0 and "1 incident(s), 3 event(s): chain INTACT" in ok.stdout
    _tamper(path, "UPDATE events SET actor='mallory' WHERE seq=2")
    bad = _cli("journal", "verify", "--journal", str(path))
    assert bad.returncode == 1
    assert "event #2 (note) was changed after it was written" in bad.stdout and "1 PROBLEM" in bad.stdout
    missing = _cli("journal", "verify", "--journal", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "no journal there" in missing.stderr and "Traceback" not in missing.stderr


def test_the_journals_page_cache_is_capped(tmp_path):
    """SQLite's page cache fills as the journal grows: capped below its 2 MiB default (most
    of a day's memory growth in bench/soak.py)."""
    from cockpit.incident.journal import CACHE_KIB, SQLiteJournal

    journal = SQLiteJournal(tmp_path / "j.db")
    assert journal._db.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB and CACHE_KIB < 2000
