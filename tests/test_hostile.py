"""Issue 12, hostile input: terminal escapes and echoed secrets from a broken service,
crafted tapes, and parsers fed generated input. Each attack goes through every sink the
cockpit has: the screen, `cockpit check`, the journal (raw bytes), the tape (every frame
decompressed), the Markdown and JSON exports, `journal list`, the crash log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from apphelpers import settle, wait_for
from hostile import ATTACKS, EVERY, FORBIDDEN, TITLE, HostileServer, config, leaks

from screens.app import CockpitApp
from cockpit.config import config_from_dict
from cockpit.incident.journal import SQLiteJournal
from cockpit.safetext import SECRETS, clean, sanitise

TOKEN = "CANARY-7f3a9c2e1d5b4a60"
AUTH = f"Bearer {TOKEN}"


@pytest.fixture
def hostile():
    server = HostileServer()
    yield server
    server.close()


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def tape_bytes(path: Path) -> bytes:
    """A tape's content as the reader sees it: every frame decompressed."""
    from cockpit.drill.tape import _FRAME, MAGIC, _VERSION

    data = path.read_bytes()
    pos = len(MAGIC) + _VERSION.size
    out = []
    while pos + _FRAME.size <= len(data):
        _tag, _t0, _t1, length, _crc = _FRAME.unpack_from(data, pos)
        pos += _FRAME.size
        out.append(zlib.decompress(data[pos:pos + length]))
        pos += length
    return b"\n".join(out)


# ---------------------------------------------------------------- the one sanitiser


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_escape_is_made_visible(attack):
    shown = sanitise(f"before{attack}after")
    assert not any(c in shown for c in FORBIDDEN)
    assert shown.startswith("before") and shown.endswith("after")
    assert "␛" in shown or "⍰" in shown  # visible, not dropped: the responder sees something was there


def test_ordinary_text_is_untouched_and_lines_are_kept_where_asked():
    for text in ("checkout 5xx after v1.5.0", "café ☕ 日本語 ✖ CRIT", "a\tb", ""):
        assert sanitise(text.replace("\t", " ")) == text.replace("\t", " ")
    assert sanitise("one\ntwo") == "one⏎two"
    assert sanitise("one\ntwo\r", lines=True) == "one\ntwo␍"
    assert clean("x" * 5000).endswith("…") and len(clean("x" * 5000)) == 4001
    assert sanitise("\ud800") == "\N{REPLACEMENT CHARACTER}"  # a lone surrogate would break UTF-8 writers


def test_the_registry_redacts_a_secret_and_the_parts_a_server_echoes():
    SECRETS.add("Bearer tok_1234567890abcdef")
    SECRETS.add("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX")
    SECRETS.add("postgresql://alice:pa#ss?w/rd1@db.example:5432/incidents")
    for echoed in ("invalid token tok_1234567890abcdef", "POST /services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX 404",
                   "the key XXXXXXXXXXXXXXXXXXXXXXXX is revoked", "password pa#ss?w/rd1 rejected"):
        assert "[redacted]" in clean(echoed), echoed
    assert clean("Bearer is the scheme; incidents is a database") == "Bearer is the scheme; incidents is a database"
    SECRETS.add("postgresql://cockpit_reader@db.example/incidents")  # no password: nothing secret in it but all
    assert clean('role "cockpit_reader" does not exist') == 'role "cockpit_reader" does not exist'


# ---------------------------------------------------------------- every sink, end to end


async def test_escapes_and_echoed_secrets_reach_no_sink(hostile, tmp_path, monkeypatch):
    """A service that answers escapes everywhere (status, message, reason phrase, redirect
    Location, Prometheus API error) and echoes the token it was sent: nothing of either
    reaches the screen, the journal, the tape, the exports, `journal list` or `check`."""
    monkeypatch.setenv("HOSTILE_TOKEN", AUTH)
    monkeypatch.chdir(tmp_path)
    raw = config(hostile)
    cfg = config_from_dict(raw, "<hostile>", {})
    from cockpit.drill.tape import start_recording

    journal_path = tmp_path / "journal.db"
    tape_path = tmp_path / "run.tape"
    app = CockpitApp(cfg, mode="LIVE", journal=SQLiteJournal(journal_path, actor="alice"),
                     tape=start_recording(tape_path, cfg, "LIVE", time.time()))
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(pilot, lambda: all(app.store.latest(k) is not None for k in (
            "health:health", "components:component/redirect", "components:component/reason",
            "prom:error_rate")), 10, "every hostile endpoint read")
        await wait_for(pilot, lambda: app.desk.current is not None, 5, "the unhealthy component to declare")
        app.desk_do(app.desk.set_title, f"checkout {TITLE}")  # a title someone pasted
        await settle(pilot)
        app.desk_do(app.desk.note, f"the server said {EVERY} {TOKEN}")
        await pilot.pause(1.5)  # the health check's degraded state becomes an alert
        await settle(pilot)
        inc = app.desk.current
        screen = app.export_screenshot()
        readings = [r for k in app.store.keys() for r in [app.store.latest(k)] if r is not None]
        timeline = [e.text for e in app.events]
    canaries = (TOKEN,)
    # the screen and what it was drawn from
    assert leaks(screen, canaries) == []
    assert "␛" in screen  # the escapes are shown, made visible
    for r in readings:
        assert leaks(f"{r.state} {r.detail} {r.error}", canaries) == [], r
    redirect = app.store.latest("components:component/redirect")
    assert "redirect to" in redirect.error and "␛]0;pwned␇" in redirect.error
    assert leaks(" ".join(timeline), canaries) == []
    # the journal file, byte for byte (and its write-ahead log)
    for f in tmp_path.glob("journal.db*"):
        assert leaks(f.read_bytes(), canaries) == [], f.name
    # the tape, every frame decompressed
    assert leaks(tape_bytes(tape_path), canaries) == []  # string tables and JSON among float columns
    # the exports and the list
    for fmt in ("md", "json"):
        out = cli("export", inc, "--format", fmt, "-o", str(tmp_path / f"pm.{fmt}"), "--journal", str(journal_path))
        assert out.returncode == 0, out.stderr
        assert leaks((tmp_path / f"pm.{fmt}").read_text(), canaries) == []
        assert leaks(out.stdout + out.stderr, canaries) == []
    listed = cli("journal", "list", "--journal", str(journal_path))
    assert "checkout ␛]0;pwned␇" in listed.stdout and leaks(listed.stdout, canaries) == []
    # `cockpit check` against the same service
    from conftest import to_toml

    path = tmp_path / "hostile.toml"
    path.write_text(to_toml(raw))
    checked = cli("check", "-c", str(path), env={"HOSTILE_TOKEN": AUTH})
    assert "redirect" in checked.stdout or "Unavailable" in checked.stdout
    assert leaks(checked.stdout + checked.stderr, canaries) == [], checked.stdout
    # and no crash log was needed
    assert not (tmp_path / "xdg-state" / "cockpit" / "errors.log").exists()


def test_another_writers_title_is_clean_when_read(tmp_path):
    """A journal row written by another cockpit (or by hand) is outside input too."""
    path = tmp_path / "j.db"
    j = SQLiteJournal(path)
    j.append("INC-1", "incident_declared", {"title": f"db down{TITLE}{EVERY}", "service": "x"})
    ev = j.events("INC-1")[0]
    assert not any(c in ev.payload["title"] for c in FORBIDDEN) and "␛" in ev.payload["title"]
    assert j.verify() == []  # verification reads the raw rows: the chain holds
    listed = cli("journal", "list", "--journal", str(path))
    assert leaks(listed.stdout, ()) == [] and "db down␛]0;pwned␇" in listed.stdout
    exported = cli("export", "INC-1", "--journal", str(path))
    assert leaks(exported.stdout, ()) == []


# ---------------------------------------------------------------- postmortem Markdown


def test_outside_text_cannot_shape_the_postmortem(tmp_path):
    from cockpit.clock import ManualClock
    from cockpit.incident.desk import IncidentDesk

    clock = ManualClock(1_767_225_600.0)
    desk = IncidentDesk(SQLiteJournal(tmp_path / "j.db", clock=clock), clock, "alice", "svc")
    desk.declare("# Everything is fine")
    desk.note("see ![x](http://evil.example/x.png) and [docs](javascript:alert(1))")
    desk.note("1. first\n## a heading\n> quoted")
    text = desk.export_markdown(clock.now())
    body = text.split("\n---\n", 1)[1]
    headings = [ln for ln in body.splitlines() if ln.startswith("#")]
    assert all(h.startswith(("# Postmortem: ", "## ")) for h in headings), headings
    assert "## a heading" not in headings and "\\# Everything is fine" in text
    assert "![x](" not in text and "[docs](" not in text
    assert "!\\[x\\](http://evil.example/x.png)" in text


# ---------------------------------------------------------------- crashes


async def test_an_action_named_like_markup_confirms_and_cancels(tmp_path):
    """`Restore [/var/backups/latest.sql]` killed the cockpit on confirm or cancel."""
    from cockpit.drill.demo import demo_raw
    from cockpit.drill.simulator import Simulator, SimulatorServer
    from screens.confirm import ActionConfirm

    server = SimulatorServer(Simulator(seed=3, faults=())).start()
    try:
        raw = demo_raw(server.url)
        for a in raw["actions"]:
            a["effect_after"] = 0
        raw["actions"][3]["name"] = "Restore [/var/backups/latest.sql]"
        raw["actions"][3]["guard"] = "confirm"
        raw["actions"][3]["destructive"] = False
        app = CockpitApp(config_from_dict(raw, "<t>", {}), mode="DEMO", armed=True, poll=False,
                         journal=SQLiteJournal(tmp_path / "j.db"))
        async with app.run_test(size=(120, 40)) as pilot:
            app.desk_do(app.desk.declare, "x")
            await settle(pilot)
            for answer in ("escape", "y"):
                await pilot.press("b")
                await wait_for(pilot, lambda: isinstance(app.screen, ActionConfirm), 5, "the plan")
                await pilot.press(answer)
                await settle(pilot)
                await pilot.pause(0.3)
                assert app.is_running
            await wait_for(pilot, lambda: any("Restore [/var/backups/latest.sql]: OK" in n.message
                                              for n in app._notifications), 10, "the outcome, said plainly")
    finally:
        server.stop()


async def test_a_crash_prints_one_line_not_a_traceback_with_locals(tmp_path, capfd):
    """Textual's own crash screen prints the traceback with local variables (a secret among
    them) over the terminal: the cockpit's prints one line and logs the rest, redacted."""
    from cockpit.drill.demo import demo_config

    app = CockpitApp(demo_config("http://127.0.0.1:9"), mode="LIVE", poll=False,
                     journal=SQLiteJournal(tmp_path / "j.db"))
    SECRETS.add(TOKEN)
    with pytest.raises(RuntimeError):
        async with app.run_test(size=(80, 24)):
            secret_local = TOKEN  # noqa: F841 - Textual's handler would have printed it
            try:
                raise RuntimeError(f"boom {TOKEN}")
            except RuntimeError as e:
                app._handle_exception(e)
    printed = capfd.readouterr()
    shown = " ".join((printed.err + printed.out).split())  # the terminal may wrap it
    assert "cockpit stopped on an unexpected error: RuntimeError: boom [redacted] (details in " in shown
    assert TOKEN not in shown and "secret_local" not in shown and "Traceback" not in shown
    log = tmp_path / "xdg-state" / "cockpit" / "errors.log"
    assert log.exists() and TOKEN not in log.read_text() and "RuntimeError: boom [redacted]" in log.read_text()
    log.unlink()  # expected here: the fixture fails a test that leaves one


# ---------------------------------------------------------------- crafted tapes


def crafted_tape(path: Path, listener_url: str, t0: float = 1_795_400_000.0) -> Path:
    """A tape as an attacker would send it over chat: its recorded config posts updates
    to the attacker's server with the trainee's secret, its names carry escapes."""
    from cockpit.drill.demo import demo_raw
    from cockpit.model import Level, Reading, TimelineEvent
    from cockpit.drill.tape import TapeWriter

    raw = demo_raw("http://127.0.0.1:9")
    raw["service"]["name"] = f"checkout{TITLE}"
    raw["incident"] = {"slack_webhook": "env:VICTIM_HOOK",
                       "statuspage": {"url": listener_url, "page_id": "p1", "api_key": "env:VICTIM_SECRET"}}
    writer = TapeWriter(path, {"service": f"checkout{TITLE}", "mode": "LIVE", "started": t0, "config": raw})
    writer.readings([Reading("metrics", "error_rate", t0 + i, 0.2, detail=f"x{CLEAR_OR_TITLE()}")
                     for i in range(1, 20)])
    writer.event(TimelineEvent(t0 + 5, "note", f"the original responder{TITLE}", Level.OK))
    writer.close()
    return path


def CLEAR_OR_TITLE() -> str:  # noqa: N802 - a constant's spelling, for the readings' detail
    return "\x1b[2J"


async def test_a_crafted_tape_sends_nothing_and_reads_no_secret(tmp_path, fault_server, monkeypatch):
    """In a drill, u then ctrl+s posted for real to the tape's Statuspage with the
    trainee's env:VICTIM_SECRET: a tape must never be trusted with a URL or a reference."""
    from cockpit.cli import tape_drill
    from cockpit.drill.tape import Tape
    from screens.prompt import UpdateEditor

    secret = "victim-secret-0123456789"
    monkeypatch.setenv("VICTIM_SECRET", secret)
    monkeypatch.setenv("VICTIM_HOOK", fault_server.url("/hook"))
    fault_server.respond_json("/v1/pages/p1/incidents", {"id": "stolen"})
    fault_server.respond("/hook", "ok")
    path = crafted_tape(tmp_path / "sent-over-chat.tape", fault_server.url("/v1"))
    tape = Tape.open(path)
    assert not any(c in json.dumps(tape.header, ensure_ascii=False) for c in FORBIDDEN)
    journal_path = tmp_path / "drill-journal.db"
    app = tape_drill(tape, SQLiteJournal(journal_path, actor="trainee"))
    async with app.run_test(size=(120, 40)) as pilot:
        app.replay.paused = True
        app.desk_do(app.desk.declare, "drill")
        await settle(pilot)
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, UpdateEditor), 5, "the update editor")
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.pause(0.5)
        await settle(pilot)
        screen = app.export_screenshot()
    assert fault_server.count("/v1/pages/p1/incidents") == 0 and fault_server.count("/hook") == 0
    sent = [e.payload for e in SQLiteJournal(journal_path).events(app.desk.current)
            if e.kind == "communication_sent"]
    assert sorted(p["channel"] for p in sent) == ["slack (drill sandbox)", "statuspage (drill sandbox)"]
    assert all(p["detail"] == "drill: not sent" for p in sent)
    assert secret not in journal_path.read_bytes().decode("latin-1")
    assert leaks(screen, (secret,)) == []
    from cockpit.safetext import SecretError, resolve_secret

    with pytest.raises(SecretError, match="a drill reads no secret"):
        resolve_secret("env:VICTIM_SECRET")  # nothing in a drill's process reads one


def _crafted(path: Path, damage: str) -> Path:
    from cockpit.drill.demo import demo_raw
    from cockpit.drill.tape import _FRAME, _VERSION, FORMAT_VERSION, HEAD, MAGIC, READINGS

    def frame(tag: bytes, body: bytes, t0: float = 1_795_400_000.0, t1: float = 1_795_400_010.0) -> bytes:
        packed = zlib.compress(body, 9)
        return _FRAME.pack(tag, t0, t1, len(packed), zlib.crc32(packed)) + packed

    good_head = json.dumps({"service": "x", "started": 1_795_400_000.0,
                            "config": demo_raw("http://127.0.0.1:9")}).encode()
    head = {"header-list": b"[1, 2, 3]", "start-text": json.dumps({"started": "yesterday"}).encode()}.get(
        damage, good_head)
    frames = frame(HEAD, head, 1_795_400_000.0, 1_795_400_000.0)
    if damage == "bomb":
        frames += frame(READINGS, b"\0" * (200 * 1024 * 1024))  # 200 MB of zeros, 200 KB on disk
    if damage == "time-1e300":
        frames += frame(READINGS, b"{}", 1e300, 1e300)
    path.write_bytes(MAGIC + _VERSION.pack(FORMAT_VERSION) + frames)
    return path


@pytest.mark.parametrize("damage", ["header-list", "start-text"])
def test_a_crafted_header_is_refused_in_one_line(tmp_path, damage):
    """A header that is not an object, a start that is not a time: one line naming the
    file, exit 2 (it was "unexpected error", exit 1)."""
    path = _crafted(tmp_path / f"{damage}.tape", damage)
    run = cli("drill", str(path))
    says = {"header-list": "the tape's header is damaged (it is not an object)",
            "start-text": "the tape's header is damaged (time yesterday is not a moment"}[damage]
    assert run.returncode == 2 and says in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


BOMB = """
import resource, sys
from cockpit.drill.tape import Tape, TapeError
tape = Tape.open(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    tape.readings()
except TapeError as e:
    print(str(e).splitlines()[0])
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, "MB")
"""


def test_a_decompression_bomb_is_one_line_without_the_memory(tmp_path):
    """A 1.5 MB tape reached 3.1 GB of memory: a frame now inflates to 64 MB at most."""
    path = _crafted(tmp_path / "bomb.tape", "bomb")
    assert path.stat().st_size < 1_000_000
    run = subprocess.run([sys.executable, "-c", BOMB, str(path)], capture_output=True, text=True, timeout=60)
    line, grew = run.stdout.strip().splitlines()
    assert "does not decode (ValueError: it inflates past 64 MB)" in line, run.stdout + run.stderr
    assert int(grew.split()[0]) < 150  # MB more than before reading (a 200 MB frame is never held)


def test_a_frame_at_an_impossible_time_ends_the_tape_there(tmp_path):
    """A frame dated 1e300 crashed the drill bar (OverflowError): it is damage, said where."""
    from cockpit.drill.tape import Tape

    tape = Tape.open(_crafted(tmp_path / "t.tape", "time-1e300"))
    assert "its times are not moments of a recording" in tape.damage and tape.frames == []


# ---------------------------------------------------------------- connection strings


@pytest.mark.parametrize("password", ["pa#ss1234", "p?w/x9876", "a@b:c/d#e?f"])
def test_a_journal_password_with_url_characters_is_refused_and_never_printed(tmp_path, password, closed_port,
                                                                           write_config):
    """`#`, `?` or `/` in the password defeated urlsplit: the URL was printed whole and
    passed the "no password in the URL" check. libpq's own parser (psycopg's conninfo)
    finds it, and messages show no userinfo at all."""
    from cockpit.drill.demo import demo_raw

    url = f"postgresql://alice:{password}@127.0.0.1:{closed_port}/incidents"
    raw = demo_raw("http://127.0.0.1:9")
    raw["incident"] = {"journal": url}
    checked = cli("check", "--offline", "-c", str(write_config(raw)))
    pieces = [p for p in re.split(r"[#?/@:]", password) if len(p) >= 3]  # not even a fragment of it
    assert checked.returncode == 2 and not any(p in checked.stdout + checked.stderr for p in pieces), checked.stderr
    if "?" not in password:  # libpq cannot read a URL whose password holds '?': refused, said so
        assert "carries a password" in checked.stderr, checked.stderr
    verified = cli("journal", "verify", "--journal", url)
    assert verified.returncode == 2 and password not in verified.stdout + verified.stderr
    assert "alice:***@127.0.0.1" in verified.stderr
    # through env:NAME, as the config asks: the JOURNAL DOWN line, the rescue file
    from cockpit.clock import ManualClock
    from cockpit.incident.desk import IncidentDesk
    from cockpit.incident.journals import open_journal

    os.environ["COCKPIT_T_JOURNAL"] = url
    try:
        journal = open_journal("env:COCKPIT_T_JOURNAL")
    finally:
        del os.environ["COCKPIT_T_JOURNAL"]
    desk = IncidentDesk(journal, ManualClock(), "alice", "svc")
    problem = desk.declare("db down")
    assert "NOT SAVED" in problem and password not in problem and password not in desk.journal_error
    rescued = desk.rescue(tmp_path / "unsaved.jsonl")
    assert password not in rescued.read_text()
