"""Tapes: what is written comes back exactly; cut-off, damaged, foreign and future tapes
are read as far as they can be and said in one line; secrets never reach the file."""

from __future__ import annotations

import math
import struct

import pytest

from cockpit.model import Level, Reading, Status, TimelineEvent
from cockpit.drill.tape import FORMAT_VERSION, MAGIC, Tape, TapeError, TapeWriter

T0 = 1_795_400_000.0


def sample(seconds: int = 60) -> tuple[list[Reading], list[TimelineEvent]]:
    readings = []
    for s in range(seconds):
        t = T0 + s + 0.137
        readings += [
            Reading("metrics", "error_rate", t, 0.01 + 0.0003 * s),
            Reading("metrics", "latency_p95", t, None if s % 17 == 0 else 0.2 + math.sin(s) / 10),
            Reading("health", "health", t, 1.0, state="up", detail="HTTP 200, status ok", latency=0.004 + s / 1e5),
            Reading("components", "component/api", t, 0.0, Status.ERROR, "connection refused", state="unreachable"),
            Reading("prom", "latency_p95", t - 3600, 0.3, history=True),
        ]
    events = [TimelineEvent(T0 + 5, "alert", "error rate crossed 5%", Level.CRIT, "metrics:error_rate",
                            {"value": 0.07}),
              TimelineEvent(T0 + 30, "note", "rolling back v1.5.0")]
    return readings, events


def write(path, readings, events, **kw) -> TapeWriter:
    w = TapeWriter(path, {"service": "checkout-api", "started": T0, "config": {"service": {"name": "x"}}}, **kw)
    w.readings(readings)
    for e in events:
        w.event(e)
    w.close()
    return w


def test_readings_and_events_come_back_exactly(tmp_path):
    readings, events = sample()
    w = write(tmp_path / "t.tape", readings, events, flush_every=10)
    tape = Tape.open(tmp_path / "t.tape")
    assert tape.damage == "" and w.frames > 3  # a header, then a frame per 10 s of data
    assert tape.header["service"] == "checkout-api" and tape.header["format"] == FORMAT_VERSION
    back = tape.readings()
    key = lambda r: (r.ts, r.key)  # noqa: E731
    assert sorted(back, key=key) == sorted(readings, key=key)
    assert tape.events() == events
    # a window reads only what is in it
    window = tape.readings(T0 + 20, T0 + 29.5)
    assert {round(r.ts - T0 - 0.137) for r in window} == set(range(20, 30))


def test_a_tape_cut_off_mid_write_is_read_up_to_its_last_complete_frame(tmp_path):
    readings, events = sample()
    write(tmp_path / "t.tape", readings, events, flush_every=10)
    data = (tmp_path / "t.tape").read_bytes()
    full = Tape.open(tmp_path / "t.tape")
    last = full.frames[-1]
    (tmp_path / "cut.tape").write_bytes(data[:last.offset + last.length // 2])
    cut = Tape.open(tmp_path / "cut.tape")
    assert "cut off at byte" in cut.damage and "stopped mid-write" in cut.damage
    assert len(cut.frames) == len(full.frames) - 1
    assert cut.readings() and max(r.ts for r in cut.readings()) <= max(r.ts for r in full.readings())
    # cut inside the header: nothing to replay, said clearly
    (tmp_path / "stub.tape").write_bytes(data[:len(MAGIC) + 5])
    with pytest.raises(TapeError, match="no readable header"):
        Tape.open(tmp_path / "stub.tape")


def test_a_damaged_frame_stops_reading_there_and_says_where(tmp_path):
    readings, events = sample()
    write(tmp_path / "t.tape", readings, events, flush_every=10)
    data = bytearray((tmp_path / "t.tape").read_bytes())
    victim = Tape.open(tmp_path / "t.tape").frames[3]
    data[victim.offset + 5] ^= 0xFF
    (tmp_path / "bad.tape").write_bytes(bytes(data))
    bad = Tape.open(tmp_path / "bad.tape")
    assert "checksum mismatch" in bad.damage and f"byte {victim.offset - 28}" in bad.damage
    assert len(bad.frames) == 3 and bad.readings()


@pytest.mark.parametrize("content, says", [
    (MAGIC + struct.pack("<H", FORMAT_VERSION + 1), f"tape format {FORMAT_VERSION + 1} is newer than this cockpit"),
    (b"# a TOML file\n[service]\n", "not a cockpit tape"),
    (b"", "not a cockpit tape"),
])
def test_foreign_and_future_tapes_are_refused_in_one_line(tmp_path, content, says):
    (tmp_path / "x.tape").write_bytes(content)
    with pytest.raises(TapeError) as err:
        Tape.open(tmp_path / "x.tape")
    assert says in str(err.value) and str(err.value).startswith(str(tmp_path / "x.tape"))
    assert "\n" not in str(err.value)


def test_missing_tape_and_existing_target_are_one_line(tmp_path):
    with pytest.raises(TapeError, match="cannot open the tape"):
        Tape.open(tmp_path / "nope.tape")
    (tmp_path / "keep.tape").write_bytes(b"precious")
    with pytest.raises(TapeError, match="already exists"):
        TapeWriter(tmp_path / "keep.tape", {"started": T0})
    assert (tmp_path / "keep.tape").read_bytes() == b"precious"


def test_secret_values_never_reach_the_file(tmp_path):
    secret = "xoxb-12345-very-secret"
    readings = [Reading("slack", "ok", T0, None, Status.ERROR, f"POST https://hooks/{secret} failed")]
    events = [TimelineEvent(T0, "comms", f"posted with {secret}", payload={"url": f"https://x/{secret}"})]
    write(tmp_path / "t.tape", readings, events, secrets=[secret])
    assert secret.encode() not in (tmp_path / "t.tape").read_bytes()
    tape = Tape.open(tmp_path / "t.tape")
    assert tape.readings()[0].error == "POST https://hooks/[redacted] failed"
    assert tape.events()[0].payload == {"url": "https://x/[redacted]"}


async def test_recording_the_demo_keeps_every_panel_series_and_the_timeline(tmp_path, monkeypatch):
    """`--record` on a running cockpit: what the panels were fed and what was journaled
    is on the tape, with the config it ran under; a token the config references never is."""
    from apphelpers import settle, wait_for
    from screens.app import CockpitApp
    from cockpit.drill.demo import demo_raw
    from cockpit.config import config_from_dict
    from cockpit.drill.simulator import Simulator, SimulatorServer
    from cockpit.drill.tape import start_recording

    server = SimulatorServer(Simulator(seed=3, faults=())).start()
    monkeypatch.setenv("HEALTH_TOKEN", "Bearer tok-very-secret-1234")
    raw = demo_raw(server.url)
    raw["sources"][0]["headers"] = {"Authorization": "env:HEALTH_TOKEN"}
    config = config_from_dict(raw, "<t>", {})
    tape = start_recording(tmp_path / "demo.tape", config, "DEMO", 1_795_400_000.0)
    app = CockpitApp(config, mode="DEMO", tape=tape)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: len(app.store.keys()) >= 8 and all(
                app.store.latest(k) is not None for k in ("metrics:error_rate", "health:health")), 10, "data")
            await pilot.pause(1.5)
            await pilot.press("D", *"checkout slow", "enter")
            await settle(pilot)
            await pilot.press("n", *"rolling back", "enter")
            await settle(pilot)
    finally:
        server.stop()
    data = (tmp_path / "demo.tape").read_bytes()
    assert b"tok-very-secret-1234" not in data
    read = Tape.open(tmp_path / "demo.tape")
    assert read.damage == "" and read.header["mode"] == "DEMO" and read.header["service"] == "checkout-api"
    assert read.header["config"]["sources"][0]["headers"] == {"Authorization": "env:HEALTH_TOKEN"}
    keys = {r.key for r in read.readings()}
    for panel_series in ("metrics:error_rate", "metrics:latency_p95", "metrics:cost_per_day", "health:health",
                         "components:component/api"):
        assert panel_series in keys, (panel_series, keys)
    # the tape holds exactly what the store was fed
    for key in ("metrics:error_rate", "health:health"):
        assert [r.value for r in read.readings() if r.key == key] == app.store.get(key).values()
    kinds = [e.kind for e in read.events()]
    assert "note" in kinds and any(e.text.endswith("rolling back") or "rolling back" in e.text for e in read.events())


def test_record_onto_an_existing_file_is_refused_before_the_dashboard_starts(tmp_path):
    import subprocess
    import sys

    (tmp_path / "old.tape").write_bytes(b"yesterday's drill")
    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "demo", "--record", str(tmp_path / "old.tape")],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path,
                         env={**__import__("os").environ, "XDG_DATA_HOME": str(tmp_path)})
    assert out.returncode == 2, out
    assert "already exists" in out.stderr and "Traceback" not in out.stderr
    assert (tmp_path / "old.tape").read_bytes() == b"yesterday's drill"
