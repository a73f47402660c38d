"""`cockpit journal verify` against every removal and damage case (issue 11).

On b784a6b deleting an incident's last events, a whole incident, the events table, or
truncating the file to 0 bytes all said "chain INTACT" (exit 0); a mistyped incident id
said "0 event(s): chain INTACT"; a damaged page or bad UTF-8 was "unexpected error"
(exit 1, which means tampered); a journal on a read-only filesystem could not be read.
Now: 0 only when intact, 1 when changed, removed, reordered or cut short (naming what),
2 when the journal cannot be read.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.clock import ManualClock
from cockpit.incident.journal import HeadsFile, SQLiteJournal


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit.cli", *args], capture_output=True, text=True, timeout=60)


def make(path: Path, big: bool = False) -> dict[str, list]:
    """Two incidents: A with 6 events, B with 3 (with ``big``, A gets 300 larger ones)."""
    j = SQLiteJournal(path, clock=ManualClock(), actor="alice")
    made = {"INC-A": [], "INC-B": []}
    for i in range(300 if big else 6):
        made["INC-A"].append(j.append("INC-A", "note", {"text": f"note {i} " + ("x" * 400 if big else "")}))
    for i in range(3):
        made["INC-B"].append(j.append("INC-B", "note", {"text": f"b {i}"}))
    j.close()
    return made


def sql(path: Path, statement: str) -> None:
    db = sqlite3.connect(path)
    db.execute(statement)
    db.commit()
    db.close()


def verify(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli("journal", "verify", *extra, "--journal", str(path))


def test_intact(tmp_path):
    path = tmp_path / "j.db"
    make(path)
    run = verify(path)
    assert run.returncode == 0 and run.stdout.strip().endswith("2 incident(s), 9 event(s): chain INTACT"), run.stdout


def test_the_last_events_of_an_incident_removed(tmp_path):
    path = tmp_path / "j.db"
    made = make(path)
    sql(path, f"DELETE FROM events WHERE seq >= {made['INC-A'][4].seq} AND incident='INC-A'")
    run = verify(path)
    assert run.returncode == 1
    assert (f"incident INC-A: CUT SHORT: 2 event(s) removed from the end (#{made['INC-A'][4].seq} to "
            f"#{made['INC-A'][5].seq}); it now ends at #{made['INC-A'][3].seq}") in run.stdout


def test_a_whole_incident_removed(tmp_path):
    path = tmp_path / "j.db"
    make(path)
    sql(path, "DELETE FROM events WHERE incident='INC-B'")
    run = verify(path)
    assert run.returncode == 1 and "incident INC-B: REMOVED: 3 event(s) were recorded" in run.stdout
    one = verify(path, "INC-B")  # asked for by name: still known, from its heads
    assert one.returncode == 1 and "REMOVED" in one.stdout


def test_the_events_table_dropped(tmp_path):
    path = tmp_path / "j.db"
    make(path)
    sql(path, "DROP TABLE events")
    run = verify(path)
    assert run.returncode == 1
    assert "the events table is gone" in run.stdout
    assert "incident INC-A: REMOVED" in run.stdout and "incident INC-B: REMOVED" in run.stdout


def test_the_file_truncated_to_nothing(tmp_path):
    path = tmp_path / "j.db"
    make(path)
    path.write_bytes(b"")
    run = verify(path)
    assert run.returncode == 1 and "incident INC-A: REMOVED" in run.stdout, run.stdout + run.stderr
    os.remove(f"{path}.heads")  # and with nothing to compare against: not a journal, not "intact"
    run = verify(path)
    assert run.returncode == 2 and "not a journal (an empty file)" in run.stderr


def test_a_mistyped_incident_id(tmp_path):
    path = tmp_path / "j.db"
    make(path)
    run = verify(path, "INC-C")
    assert run.returncode == 2 and "no incident INC-C" in run.stderr and "recent: INC-A, INC-B" in run.stderr
    assert "INTACT" not in run.stdout


def test_a_damaged_page_cannot_be_read(tmp_path):
    path = tmp_path / "j.db"
    make(path, big=True)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    data[10 * page:12 * page] = os.urandom(2 * page)  # two pages of the events' b-tree
    path.write_bytes(bytes(data))
    run = verify(path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot read the journal" in run.stderr and "Traceback" not in run.stderr


def test_bad_utf8_is_a_changed_event_by_number(tmp_path):
    path = tmp_path / "j.db"
    made = make(path)
    seq = made["INC-A"][2].seq
    sql(path, f"UPDATE events SET payload = CAST(X'7B2274657874223A2022FF227D' AS TEXT) WHERE seq={seq}")
    run = verify(path)
    assert run.returncode == 1
    assert f"incident INC-A: event #{seq} was changed after it was written (its row no longer decodes" in run.stdout


def test_an_edited_event(tmp_path):
    path = tmp_path / "j.db"
    made = make(path)
    seq = made["INC-B"][1].seq
    sql(path, f"UPDATE events SET actor='mallory' WHERE seq={seq}")
    run = verify(path)
    assert run.returncode == 1 and f"incident INC-B: event #{seq} (note) was changed after it was written" in run.stdout


def test_a_journal_on_a_read_only_filesystem(small_disk):
    disk = small_disk("4m")
    path = disk / "j.db"
    # a cockpit that wrote two events and died: its write-ahead log still holds them
    code = ("import os, sys; from cockpit.incident.journal import SQLiteJournal; j = SQLiteJournal(sys.argv[1]); "
            "j.append('INC-A', 'note', {'text': 'one'}); j.append('INC-A', 'note', {'text': 'two'}); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=30)
    assert Path(f"{path}-wal").stat().st_size > 0
    small_disk.readonly(disk)
    try:
        run = verify(path)
        assert run.returncode == 0 and "1 incident(s), 2 event(s): chain INTACT" in run.stdout, run.stdout + run.stderr
        listed = cli("journal", "list", "--journal", str(path))
        assert listed.returncode == 0 and "INC-A" in listed.stdout
    finally:
        small_disk.writable(disk)
    SQLiteJournal(path).close()  # a clean close: no -wal or -shm left, so SQLite cannot open it read-only
    assert not Path(f"{path}-shm").exists()
    small_disk.readonly(disk)
    try:
        run = verify(path)  # read from a copy
        assert run.returncode == 0 and "1 incident(s), 2 event(s): chain INTACT" in run.stdout, run.stdout + run.stderr
    finally:
        small_disk.writable(disk)


def test_without_heads_nothing_is_called_intact(tmp_path):
    path = tmp_path / "j.db"
    made = make(path)
    os.remove(f"{path}.heads")
    run = verify(path)
    assert run.returncode == 1 and "UNSEALED" in run.stdout and "INTACT" not in run.stdout
    # the head an export printed seals it again
    head = made["INC-A"][-1].hash
    run = verify(path, "INC-A", "--head", head[:16])
    assert run.returncode == 0 and "chain INTACT" in run.stdout


def test_export_prints_a_head_that_finds_a_cut_even_with_the_heads_file_gone(tmp_path):
    path = tmp_path / "j.db"
    made = make(path)
    out = tmp_path / "pm.md"
    export = cli("export", "INC-A", "-o", str(out), "--journal", str(path))
    assert export.returncode == 0, export.stderr
    head = made["INC-A"][-1]
    assert f"head of INC-A: #{head.seq} {head.hash}" in export.stdout
    assert f"journal_head: {head.hash}" in out.read_text()
    sql(path, f"DELETE FROM events WHERE seq={head.seq}")
    os.remove(f"{path}.heads")
    run = verify(path, "INC-A", "--head", head.hash[:16])
    assert run.returncode == 1 and f"head {head.hash[:16]}… is not in incident INC-A" in run.stdout
    bad = verify(path, "--head", "nothex")
    assert bad.returncode == 2 and "is not a head" in bad.stderr


def test_not_a_journal_and_missing(tmp_path):
    other = tmp_path / "notes.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    run = verify(other)
    assert run.returncode == 2 and "not a journal (a database without the journal's tables)" in run.stderr
    missing = verify(tmp_path / "none.db")
    assert missing.returncode == 2 and "no journal there" in missing.stderr
    assert not (tmp_path / "none.db").exists()  # verifying never creates a journal


def test_a_schema_1_journal_is_migrated_and_sealed(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, incident TEXT NOT NULL,
            ts REAL NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
            pinned INTEGER NOT NULL DEFAULT 0, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');""")
    import hashlib

    body = json.dumps(["e1", "INC-OLD", repr(1.0), "alice", "note", {"text": "old"}, False], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode()
    digest = hashlib.sha256(("0" * 64).encode() + b"\n" + body).hexdigest()
    db.execute("INSERT INTO events (id, incident, ts, actor, kind, payload, pinned, prev_hash, hash) VALUES "
               "('e1', 'INC-OLD', 1.0, 'alice', 'note', '{\"text\": \"old\"}', 0, ?, ?)", ("0" * 64, digest))
    db.commit()
    db.close()
    j = SQLiteJournal(path, clock=ManualClock())  # opened by this version: migrated, what is there sealed
    j.append("INC-OLD", "note", {"text": "new"})
    j.close()
    run = verify(path)
    assert run.returncode == 0 and "1 incident(s), 2 event(s): chain INTACT" in run.stdout, run.stdout


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.one_of(st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
                               st.dictionaries(st.sampled_from(["i", "s", "h", "x"]),
                                               st.one_of(st.integers(), st.text(max_size=10), st.none()))
                               .map(json.dumps)), max_size=20))
def test_a_damaged_heads_file_never_raises_and_seals_nothing_it_should_not(tmp_path, junk):
    """The heads file is outside input: whatever lines it holds, reading it never raises,
    and a line that is not a well-formed head seals nothing."""
    path = tmp_path / "h.heads"
    path.write_text("\n".join(junk), encoding="utf-8", errors="replace")
    heads = HeadsFile(path).load()
    for h in heads:
        assert isinstance(h.incident, str) and isinstance(h.seq, int) and isinstance(h.hash, str)


@pytest.mark.parametrize("payload", ["{\"text\": 1", "[1, 2]", "null"])
def test_a_payload_that_is_not_an_object_is_a_changed_event(tmp_path, payload):
    path = tmp_path / "j.db"
    made = make(path)
    seq = made["INC-B"][0].seq
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET payload=? WHERE seq=?", (payload, seq))
    db.commit()
    db.close()
    run = verify(path)
    assert run.returncode == 1 and f"event #{seq}" in run.stdout and "Traceback" not in run.stderr


def test_the_shared_journal_finds_removed_events_and_incidents(pg_url):
    """PostgreSQL keeps each event's head in a table of its own (and the writing cockpit in a
    local file): deleting rows from cockpit_events is found, the table dropped too."""
    import psycopg

    from cockpit.incident.pgjournal import PostgresJournal

    j = PostgresJournal(pg_url, clock=ManualClock(), actor="alice")
    a = [j.append("INC-A", "note", {"text": f"a {i}"}) for i in range(4)]
    for i in range(2):
        j.append("INC-B", "note", {"text": f"b {i}"})
    j.close()
    assert verify_url(pg_url).returncode == 0
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("DELETE FROM cockpit_events WHERE seq = %s", (a[-1].seq,))
        db.execute("DELETE FROM cockpit_events WHERE incident = 'INC-B'")
    run = verify_url(pg_url)
    assert run.returncode == 1
    assert f"incident INC-A: CUT SHORT: 1 event(s) removed from the end (#{a[-1].seq})" in run.stdout
    assert "incident INC-B: REMOVED: 2 event(s) were recorded" in run.stdout
    with psycopg.connect(pg_url, autocommit=True) as db:  # the heads table emptied too:
        db.execute("DELETE FROM cockpit_heads")
    run = verify_url(pg_url)  # the writing cockpit's own heads file still remembers
    assert run.returncode == 1 and "incident INC-A: CUT SHORT" in run.stdout and "INC-B: REMOVED" in run.stdout
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("DROP TABLE cockpit_events")
    run = verify_url(pg_url)
    assert run.returncode == 1 and "the cockpit_events table is gone" in run.stdout
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("DROP TABLE cockpit_heads")
        db.execute("DROP TABLE cockpit_meta")
    os.remove(PostgresJournal(pg_url).heads.path)  # and the writing cockpit's own copy of the heads
    run = verify_url(pg_url)  # a database with no journal in it: not "intact"
    assert run.returncode == 2 and "not a journal" in run.stderr, run.stdout + run.stderr


def verify_url(url: str) -> subprocess.CompletedProcess:
    return cli("journal", "verify", "--journal", url)
