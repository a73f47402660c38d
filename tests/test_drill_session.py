"""The drill, the signals and the journal thread without Textual: a tape recorded from
the seeded demo is replayed, sought, stepped and scored by cockpit.drill.session; the
store and alert trackers are cockpit.signals.watch; the journal thread is
cockpit.incident.worker. No App, no pilot: these are the pieces the app wires together."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest

from apphelpers import frozen_demo, poll_each
from cockpit.clock import DrillClock
from cockpit.config import config_from_dict
from cockpit.drill.demo import demo_raw
from cockpit.drill.replay import Replayer
from cockpit.drill.session import DrillSession
from cockpit.drill.tape import Tape, start_recording
from cockpit.incident.desk import IncidentDesk
from cockpit.incident.journal import Event, JournalError, SQLiteJournal
from cockpit.incident.worker import JournalWorker, RunnerRecorder
from cockpit.model import Level, TimelineEvent
from cockpit.signals.poller import Poller
from cockpit.signals.sources import SourceContext, build_source
from cockpit.signals.watch import SignalWatch

ER = "metrics:error_rate"


@pytest.fixture(scope="module")
def tape_path(tmp_path_factory):
    """40 s of the seeded demo (bad deploy at 20 s), polled once a simulated second, with
    the original responders' acknowledgement at +30 s and severity P1 at +32 s."""
    path = tmp_path_factory.mktemp("tape") / "run.tape"
    server, clock = frozen_demo(seed=7, fault_at=20.0)
    config = config_from_dict(demo_raw(server.url), "<recorded>", {})
    t0 = clock.now()
    writer = start_recording(path, config, "DEMO", t0)

    async def run() -> None:
        ctx = SourceContext(clock)
        poller = Poller([build_source(s, ctx) for s in config.sources], lambda src, rs: writer.readings(rs))
        for second in range(1, 41):
            clock.advance(1.0)
            await poll_each(poller)
            if second == 30:
                writer.event(TimelineEvent(clock.now(), "status", "acknowledged by alice", Level.OK, "",
                                           {"journal": "status_changed", "to": "acknowledged", "by": "alice"}))
            if second == 32:
                writer.event(TimelineEvent(clock.now(), "severity", "severity P1 by alice: checkout down", Level.OK,
                                           "", {"journal": "severity_set", "severity": "P1", "by": "alice"}))
        await ctx.aclose()

    try:
        asyncio.run(run())
    finally:
        writer.close()
        server.stop()
    return path


def drill(tape_path) -> tuple[DrillSession, SignalWatch, list, list]:
    """A drill of the tape as `cockpit drill` builds it, minus the UI: (session, watch,
    the alerts the watch raised, the ghosts passed)."""
    tape = Tape.open(tape_path)
    config = config_from_dict(tape.header["config"], "<tape>", {}, secrets=False)
    clock = DrillClock(tape.start)
    replay = Replayer(tape, clock)
    watch = SignalWatch(config)
    alerts, ghosts = [], []
    replay.on_ghost = ghosts.append
    replay.attach(lambda source, readings: alerts.extend(watch.take(readings).alerts), float(config.settings.history))
    return DrillSession(config, clock, watch, replay=replay), watch, alerts, ghosts


def test_playing_the_tape_moves_the_clock_and_raises_the_recorded_incident(tape_path):
    session, watch, alerts, ghosts = drill(tape_path)
    begin = session.replay.begin
    assert session.status().endswith("x1 0/40s")
    moved, problem = session.advance(12.0)
    assert moved and problem is None and session.clock.now() == begin + 12
    assert watch.tracker.level(ER) is Level.OK and alerts == []
    session.speed(1)  # x2
    session.advance(14.0)  # 28 s more: +40, the end
    assert session.tape_over and "ENDED" in session.status()
    assert watch.tracker.level(ER) is Level.CRIT
    assert any(ev.signal == "error rate" and ev.level is Level.CRIT for ev in alerts)  # announced while playing
    assert [g.text for g in ghosts] == ["acknowledged by alice", "severity P1 by alice: checkout down"]
    assert session.advance(5.0) == (False, None)  # nothing after the end


def test_seek_forward_plays_what_came_and_back_sets_the_levels_without_announcing(tape_path):
    session, watch, alerts, ghosts = drill(tape_path)
    begin = session.replay.begin
    session.seek(begin + 39)  # forward: what a responder saw by then happened, at its time
    assert watch.tracker.level(ER) is Level.CRIT
    crit = [ev for ev in alerts if ev.signal == "error rate" and ev.level is Level.CRIT]
    assert len(crit) == 1 and begin + 20 < crit[0].ts < begin + 39
    assert [g.ts - begin for g in ghosts] == [30.0, 32.0]
    assert len(watch.store.get(ER)) >= 30  # the history before it is on the chart
    alerts.clear()
    session.seek(begin + 12)  # backwards: the levels as they were, nothing announced again
    assert alerts == []
    assert watch.tracker.level(ER) is Level.OK and session.clock.now() == begin + 12
    assert max(t for t, _ in watch.store.get(ER).samples_after(0)) <= begin + 12  # nothing from the future
    session.step(1)
    assert session.replay.position == begin + 13 and session.replay.paused
    session.replay.paused = False
    session.step(-1)
    assert session.replay.position == begin + 12 and session.replay.paused  # back is a paused seek
    assert "PAUSED" in session.status()


def test_a_damaged_frame_ends_the_replay_there_with_one_line(tape_path, tmp_path):
    session, _, _, _ = drill(tape_path)
    session.advance(5.0)

    def broken(*_a, **_k):
        from cockpit.drill.tape import TapeError

        raise TapeError("run.tape: frame 3 does not decode")

    session.replay.tape.readings = broken
    moved, problem = session.advance(30.0)
    assert problem == "run.tape: frame 3 does not decode; the replay stops here"
    assert session.tape_over  # ended where it broke, not at the tape's end
    assert session.replay.end == session.replay.begin + 5


def test_the_scorecard_compares_the_trainee_with_the_original_responders(tape_path):
    session, _, _, _ = drill(tape_path)
    begin = session.replay.begin
    session.seek(begin + 40)
    journal = SQLiteJournal(":memory:", actor="trainee", clock=session.clock)
    desk = IncidentDesk(journal, session.clock, "trainee", "checkout", False, drill=True, mode="DRILL")
    desk.declare("checkout errors", at=begin + 24)
    desk.set_status("acknowledged", at=begin + 36)
    doc = session.scorecard("the tape ended", desk.state())
    assert session.scored and doc["against"] == "the original responders"
    rows = {r["measure"]: r for r in doc["rows"]}
    ack = rows["time to acknowledge"]
    assert (ack["got"], ack["target"], ack["verdict"]) == ("after 00:00:36", "within 00:00:30", "late")
    assert doc["from"].startswith("the start of the tape")


def test_a_scenario_is_resolved_only_when_its_faults_cleared_and_the_rate_reads_ok():
    from cockpit.drill.scenario import load

    sc = load("bad-deploy")
    config = config_from_dict(demo_raw("http://127.0.0.1:1"), "<scenario>", {})
    clock = DrillClock(1_000_000.0)
    watch = SignalWatch(config)
    session = DrillSession(config, clock, watch, scenario=sc)
    assert session.status() == f"scenario {sc.scenario.name}"

    class Sim:
        faults = ["f1"]
        cleared: set = set()

    from cockpit.model import Reading

    watch.take([Reading("metrics", "error_rate", clock.now(), 0.001)])
    assert not session.resolved(Sim)  # the fault is not cleared yet
    Sim.cleared = {"f1"}
    assert session.resolved(Sim)
    watch.take([Reading("metrics", "error_rate", clock.now() + 1, 0.5)])
    assert not session.resolved(Sim)  # cleared, but the error rate is still bad
    assert not session.resolved(None)


def test_signal_watch_records_every_reading_and_suggests_from_them():
    from cockpit.model import Reading

    config = config_from_dict(demo_raw("http://127.0.0.1:1"), "<watch>", {})
    watch = SignalWatch(config)
    t0 = 1_000_000.0
    hist = watch.take([Reading("metrics", "error_rate", t0 - 600 + i, 0.9, history=True) for i in range(5)])
    assert hist.first and hist.alerts == []  # a backfill is drawn, never alerted on
    taken = watch.take([Reading("metrics", "error_rate", t0, 0.01)])
    assert not taken.first and taken.alerts == []
    assert not watch.take([Reading("metrics", "error_rate", t0 + 1, 0.02)]).first
    alerts = []
    for i in range(2, 12):  # critical, held past the 5 s hold
        alerts += watch.take([Reading("metrics", "error_rate", t0 + i, 0.3)]).alerts
    assert [a.level for a in alerts] == [Level.CRIT]
    doc = watch.record(t0 - 1, t0 + 20)
    assert doc["samples"]["error_rate"][0] == [t0, 0.01] and len(doc["samples"]["error_rate"]) == 12
    assert watch.values()["error_rate"] == 0.3
    severity, driver = watch.suggestion()
    assert severity and "error rate" in driver


def test_journal_worker_runs_in_order_reports_and_never_raises():
    said, failed, changed = [], [], []
    journal = SQLiteJournal(":memory:", actor="alice")
    desk = IncidentDesk(journal, None, "alice", "checkout", False)
    worker = JournalWorker(desk, journal, say=said.append, failed=failed.append, changed=lambda: changed.append(1))
    order, threads = [], set()

    def job(n):
        threads.add(threading.current_thread().name)
        order.append(n)
        return None

    for n in range(20):
        worker.do(job, n)
    assert order == list(range(20)) and all(t.startswith("journal") for t in threads)
    worker.do(lambda: "NOT SAVED: the journal is away")
    worker.do(lambda: (_ for _ in ()).throw(JournalError("journal locked")))
    worker.do(lambda: 1 / 0)
    assert said == ["NOT SAVED: the journal is away", "journal locked"]
    assert [type(e) for e in failed] == [ZeroDivisionError]
    got = []
    worker.do(lambda: 42, then=got.append)
    assert got == [42]
    assert worker.call(lambda x, y=0: x + y, 1, y=2) == 3
    worker.shutdown()


def test_journal_worker_delivers_results_on_the_loop_it_is_attached_to():
    journal = SQLiteJournal(":memory:", actor="alice")
    desk = IncidentDesk(journal, None, "alice", "checkout", False)

    async def main():
        loop = asyncio.get_running_loop()
        worker = JournalWorker(desk, journal, say=print, failed=print, changed=lambda: None)
        worker.attach(loop)
        seen = []
        worker.do(lambda: threading.current_thread().name, then=lambda name: seen.append(
            (name, threading.current_thread() is threading.main_thread())))
        assert seen == []  # the UI did not wait
        await worker.idle()
        worker.shutdown()
        return seen

    [(name, on_main)] = asyncio.run(main())
    assert name.startswith("journal") and on_main


def test_runner_recorder_journals_an_action_with_the_time_it_happened():
    from cockpit.clock import ManualClock

    clock = ManualClock()
    journal = SQLiteJournal(":memory:", actor="alice", clock=clock)
    desk = IncidentDesk(journal, clock, "alice", "checkout", False)
    desk.declare("checkout errors")
    worker = JournalWorker(desk, journal, say=print, failed=print, changed=lambda: None)
    said, changed = [], []
    rec = RunnerRecorder(worker, clock, say=said.append, changed=lambda: changed.append(1))

    class Plan:
        target, key, sandbox, undo = "checkout-api", "rollback", False, None

        def to_dict(self):
            return {"action": "Rollback", "target": self.target, "kind": "http", "key": self.key}

    asked = clock.now()
    intent = rec.intent(Plan())
    clock.advance(30)  # the journal answered late: the intent keeps its own moment
    assert intent.ts == asked
    assert changed  # the UI was told to redraw
    worker.shutdown()


def test_a_reading_stamped_with_an_earlier_time_is_not_lost_between_snapshots():
    """A CloudWatch reading is stamped with its period's end and arrives a minute later;
    selecting by time lost every one of them (0 of 120 over two hours of 60 s periods).
    A record continuing the last one takes what was appended since, by arrival."""
    from cockpit.model import Reading

    config = config_from_dict(demo_raw("http://127.0.0.1:1"), "<watch>", {})
    watch = SignalWatch(config)
    t0 = 1_000_000.0
    watch.take([Reading("metrics", "cost_per_day", t0 - 30, 50.0)])  # before the incident: not its record
    watch.take([Reading("metrics", "cost_per_day", t0 + 10, 60.0)])
    first = watch.record(t0, t0 + 30)
    assert first["samples"]["cost"] == [[t0 + 10, 60.0]]
    recorded = list(first["samples"]["cost"])
    for k in range(1, 121):  # two hours: each minute the period that ended a minute ago arrives
        end = t0 + 30 + 60 * k
        watch.take([Reading("metrics", "cost_per_day", end - 75, 60.0 + k)])  # stamped before `since`
        doc = watch.record(end - 60, end)
        recorded += doc["samples"]["cost"]
    assert len(recorded) == 121 and recorded[-1] == [t0 + 30 + 7200 - 75, 180.0]
    # a record that does not continue the last one (a new incident) selects by time again
    assert watch.record(t0 + 99_999, t0 + 100_000)["samples"]["cost"] == []


def test_a_tape_drill_grades_actions_by_what_the_recording_shows_worked(tmp_path):
    """The recorded responders scaled out (verified, before mitigation: expected), tried
    emergency mode (its verification failed) and rolled back after the incident was already
    mitigated: only the scale-out is expected; the trainee's other actions are flagged."""
    from cockpit.clock import ManualClock
    from cockpit.drill.scorecard import from_ghost, recorded_fixes, score
    from cockpit.drill.replay import is_ghost

    clock = ManualClock()
    lines = []
    journal = SQLiteJournal(tmp_path / "orig.db", actor="alice", clock=clock)
    desk = IncidentDesk(journal, clock, "alice", "checkout", False, on_event=lines.append)
    start = clock.now()
    desk.declare("pool exhausted")
    clock.advance(30)
    for key, name, ok in (("s", "Scale out", True), ("e", "Emergency mode", False)):
        intent = desk.action_intent({"action": name, "key": key, "target": "svc"})
        desk.action_outcome(intent, "ok", "done", {})
        clock.advance(10)
        desk.action_verified(intent, ok, "checked")
        desk.action_done({"action": name, "key": key, "target": "svc"})
    desk.set_status("mitigated")
    clock.advance(10)
    late = desk.action_intent({"action": "Rollback", "key": "r", "target": "svc"})
    desk.action_verified(late, True, "checked")
    ghosts = [line for line in lines if is_ghost(line)]
    assert recorded_fixes(ghosts) == frozenset({"s"})
    exp = from_ghost(ghosts, start)
    assert exp.mitigate == 30.0 and exp.unexpected == "actions not in the original response"

    def ev(ts, action, key):
        return Event(id=f"t{ts}", incident="DRILL-1", ts=start + ts, actor="trainee", kind="action_intent",
                     payload={"action": action, "plan": {"key": key}})

    rows, _ = score([ev(20, "Rollback", "r"), ev(40, "Scale out", "s")], start, start + 100, exp)
    by = {r.measure: r for r in rows}
    assert (by["time to first correct mitigation"].got, by["time to first correct mitigation"].verdict) == \
        ("after 00:00:40", "late")
    assert (by["actions not in the original response"].got, by["actions not in the original response"].verdict) \
        == ("Rollback", "wrong")
    # lines from before actions were named in them: nothing to grade by
    old = [dataclasses.replace(g, payload={k: v for k, v in g.payload.items() if k != "key"}) for g in ghosts]
    assert recorded_fixes(old) is None and from_ghost(old, start).fixes is None


def test_expect_scores_a_tape_drill_against_a_scenarios_targets(tape_path):
    from cockpit.drill.scenario import load

    session, _, _, _ = drill(tape_path)
    session.expect = load("db-exhaustion")
    begin = session.replay.begin
    session.seek(begin + 40)
    journal = SQLiteJournal(":memory:", actor="trainee", clock=session.clock)
    desk = IncidentDesk(journal, session.clock, "trainee", "checkout", False, drill=True, mode="DRILL")
    desk.declare("checkout errors", at=begin + 24)
    doc = session.scorecard("ended with q", desk.state())
    rows = {r["measure"]: r for r in doc["rows"]}
    assert doc["against"] == "the expectations of db-exhaustion (--expect)"
    assert rows["time to acknowledge"]["target"] == "within 00:02:00"
    assert rows["time to correct severity"]["target"] == "P1 within 00:03:00"
    assert rows["wrong or unnecessary actions"]["verdict"] == "kept"


def test_expect_naming_no_scenario_is_one_line(tape_path, tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "drill", str(tape_path), "--expect", "bad_deploy"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("cockpit drill: --expect bad_deploy: cannot read the scenario")
    assert "did you mean bad-deploy?" in out.stderr
