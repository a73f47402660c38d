"""Scenario drills: the built-ins load, a scenario file's mistakes are one line naming
the place, and the simulator reacts to the trainee's action (a rollback really clears
the bad deploy) while nothing leaves the process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from actions.sandbox import SimulatorExecutor
from apphelpers import accelerated, error_rate_below, settle, wait_for
from screens.app import CockpitApp
from cockpit.clock import ManualClock
from cockpit.drill.demo import demo_config
from cockpit.incident.journal import SQLiteJournal
from cockpit.drill.scenario import BUILTIN, ScenarioError, listing, load, parse
from cockpit.drill.simulator import Simulator, SimulatorServer
from screens.confirm import ActionConfirm
from screens.scorecard import ScorecardScreen


def test_every_built_in_loads_and_is_listed():
    names = [name for name, _ in listing()]
    assert names == list(BUILTIN) and {"bad-deploy", "db-exhaustion", "cost-runaway", "throttling",
                                       "component-failure"} <= set(names)
    for name in names:
        sc = load(name)
        assert sc.faults and sc.fixes and sc.scenario.severity in ("P0", "P1", "P2", "P3")
    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "drill", "--list"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and all(name in out.stdout for name in names)


@pytest.mark.parametrize("text, says", [
    ('[scenario]\nname="x"\ndescription="d"\nseverity="P1"\n[[faults]]\nkind="meteor"\nat=1\n', "faults.0.kind"),
    ('[scenario]\nname="x"\ndescription="d"\nseverity="P1"\n[[faults]]\nkind="bad_deploy"\nat=1\n'
     '[fixes]\nbad_deploy=["z"]\n', "'z' is not an action key"),
    ('[scenario]\nname="x"\ndescription="d"\nseverity="P9"\n[[faults]]\nkind="bad_deploy"\nat=1\n', "severity"),
    ("[scenario\n", "not valid TOML"),
])
def test_a_scenario_file_mistake_is_one_line_naming_the_place(text, says):
    with pytest.raises(ScenarioError) as err:
        parse(text, "team.toml")
    assert str(err.value).startswith("team.toml: ") and says in str(err.value) and "\n" not in str(err.value)


async def test_the_simulator_reacts_to_the_trainees_rollback(tmp_path):
    sc = load("bad-deploy")
    clock = ManualClock()
    server = SimulatorServer(Simulator(clock=clock, seed=sc.scenario.seed, faults=sc.sim_faults())).start()
    executor = SimulatorExecutor(server.sim)
    try:
        app = CockpitApp(demo_config(server.url), mode="DRILL", armed=True, journal=SQLiteJournal(tmp_path / "d.db"),
                         executors={"http": executor}, scenario=sc)
        async with app.run_test(size=(120, 40)) as pilot, accelerated(clock):
            await wait_for(pilot, lambda: app.tracker.level("metrics:error_rate").name == "CRIT", 30,
                           "the bad deploy to go critical")
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, ActionConfirm), 5, "the plan")
            assert "applied to the simulated service only" in str(app.screen.plan.notes)
            assert "DRILL  scenario bad-deploy" in app.screen_stack[1].query_one("CockpitHeader").render().plain
            await pilot.press("y")
            await wait_for(pilot, lambda: server.sim.version == "v1.4.2", 5, "the rollback")
            await wait_for(pilot, error_rate_below(app, 0.05), 20, "the error rate back under the warn threshold")
            # the service recovered: the trainee is told, and the scorecard waits for the resolve
            await wait_for(pilot, lambda: app.drill.recovery_told, 20, "the recovery to be told")
            assert not isinstance(app.screen, ScorecardScreen) and not app.drill.scored
            await settle(pilot)
            assert not isinstance(app.screen, ScorecardScreen), "no scorecard before the trainee resolves"
            await pilot.press("R")
            await wait_for(pilot, lambda: not isinstance(app.screen, ActionConfirm) and app.screen.is_modal, 5,
                           "the resolve question")
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, ScorecardScreen), 20, "the scorecard")
            rows = {r["measure"]: r for r in app.screen.doc["rows"]}
            assert app.screen.doc["why"] == "the incident is resolved"
            assert all(r["verdict"] in ("kept", "late", "missed", "wrong") for r in rows.values())
            assert rows["time to first correct mitigation"]["verdict"] == "kept"
            assert rows["wrong or unnecessary actions"]["got"] == "none"
            assert (rows["time to acknowledge"]["got"], rows["time to acknowledge"]["verdict"]) == \
                ("not done", "missed")  # nobody pressed a
            assert rows["time to correct severity"]["target"].startswith("P1 within")
            # the config's cadence for P1; no update at all is a miss even before the first gap is
            # over (the seeds' runbooks send an initial notification), and the target says so: at least one
            assert rows["status update cadence"]["target"] == "≥1, every 00:30:00"
            assert rows["status update cadence"]["got"] == "0 sent"
            assert rows["status update cadence"]["verdict"] == "missed", "no update sent is not a cadence kept"
            await settle(pilot)
        st = app.desk.state()
        assert st is not None and st.drill
        outcome = next(e for e in app.journal.events(st.id) if e.kind == "action_outcome")
        assert outcome.payload["result"] == "ok" and "rolled back to v1.4.2" in outcome.payload["details"]
        assert [p.action for p in executor.calls] == ["Rollback"]
    finally:
        server.stop()


def test_score_against_a_scenarios_targets():
    from cockpit.incident.journal import Event
    from cockpit.drill.scorecard import from_scenario, score

    def ev(ts, kind, **p):
        return Event(id=f"e{ts}", incident="INC-1", ts=ts, actor="trainee", kind=kind, payload=p)

    sc = load("bad-deploy")  # ack 120 s, severity P1 180 s, mitigate 300 s, fix: r
    events = [ev(1050, "status_changed", **{"from": "declared", "to": "acknowledged"}),
              ev(1100, "severity_set", severity="P2"), ev(1400, "severity_set", severity="P1"),
              ev(1200, "action_intent", action="Scale out", plan={"key": "s"}),
              ev(1250, "action_intent", action="Rollback", plan={"key": "r"})]
    scored, unscored = score(sorted(events, key=lambda e: e.ts), 1000, 1500, from_scenario(sc))
    rows = {r.measure: r for r in scored}
    assert unscored == [] and all(r.verdict in ("kept", "late", "missed", "wrong") for r in scored)
    assert (rows["time to acknowledge"].got, rows["time to acknowledge"].verdict) == ("after 00:00:50", "kept")
    assert rows["time to correct severity"].verdict == "late"  # P1 only after 400 s
    assert rows["time to first correct mitigation"].got == "after 00:04:10"  # the rollback, not the scale-out
    assert rows["time to first correct mitigation"].verdict == "kept"
    assert (rows["wrong or unnecessary actions"].got, rows["wrong or unnecessary actions"].verdict) == \
        ("Scale out", "wrong")


def _events(*spec):
    from cockpit.incident.journal import Event

    return [Event(id=f"e{ts}", incident="INC-1", ts=ts, actor="trainee", kind=kind, payload=p)
            for ts, kind, p in spec]


def test_a_severity_never_set_right_is_wrong_and_updates_are_held_to_their_cadence():
    from cockpit.drill.scorecard import Expectations, score

    exp = Expectations("scenario x's targets", 120, "P1", 180, 300, frozenset({"r"}), update_every=600)
    rows, _ = score(_events((1100, "severity_set", {"severity": "P2"})), 1000, 1500, exp)
    by = {r.measure: r for r in rows}
    assert (by["time to correct severity"].got, by["time to correct severity"].verdict) == \
        ("set to P2, never P1", "wrong")
    assert (by["time to acknowledge"].got, by["time to acknowledge"].verdict) == ("not done", "missed")
    assert (by["status update cadence"].got, by["status update cadence"].verdict) == ("0 sent", "missed")
    sent = _events((1200, "communication_sent", {}), (1700, "communication_sent", {}))
    rows, _ = score(sent, 1000, 2000, exp)
    cadence = {r.measure: r for r in rows}["status update cadence"]
    assert (cadence.got, cadence.target, cadence.verdict) == ("2 sent, longest gap 00:08:20",
                                                              "≥1, every 00:10:00",
                                                              "kept")
    rows, _ = score(sent, 1000, 2400, exp)  # 700 s since the last one
    assert {r.measure: r for r in rows}["status update cadence"].verdict == "late"


def test_the_update_cadence_target_is_the_scenarios_severity_not_the_trainees(tmp_path):
    """cost-runaway is a P2 (hourly updates in the demo config): a trainee who calls it P1
    is still held to the P2 cadence, and one who calls a P1 a P2 to the P1's."""
    from cockpit.clock import ManualClock
    from cockpit.drill.session import DrillSession
    from cockpit.incident.desk import IncidentDesk
    from cockpit.signals.watch import SignalWatch

    config = demo_config("http://127.0.0.1:9")
    every = config.incident.update_every
    for name, trainee in (("bad-deploy", "P2"), ("cost-runaway", "P1")):
        sc = load(name)
        clock = ManualClock()
        session = DrillSession(config, clock, SignalWatch(config), scenario=sc)
        journal = SQLiteJournal(tmp_path / f"{name}.db", actor="trainee", clock=clock)
        desk = IncidentDesk(journal, clock, "trainee", "checkout", False, drill=True, mode="DRILL")
        clock.advance(60)
        desk.declare("trouble")
        desk.set_severity(trainee, "my call")
        doc = session.scorecard("ended with q", desk.state())
        cadence = {r["measure"]: r for r in doc["rows"]}["status update cadence"]
        from cockpit.clock import format_duration

        assert cadence["target"] == f"≥1, every {format_duration(float(every[sc.scenario.severity]))}"
        assert every[sc.scenario.severity] != every[trainee]


async def test_a_scale_out_in_a_drill_can_be_undone_on_the_simulated_service():
    sim = Simulator(clock=ManualClock(), seed=7)
    executor = SimulatorExecutor(sim)
    cfg = next(a for a in demo_config("http://127.0.0.1:9").actions if a.key == "s")
    plan = executor.plan(cfg, "confirm")
    assert executor.execute(cfg, plan).result == "ok" and sim.replicas == 6
    undo = executor.undo(cfg, plan, "confirm")
    assert undo is not None and undo.action == f"undo {cfg.name}" and undo.sandbox
    assert "applied to the simulated service only" in undo.notes[0]
    assert executor.execute(cfg, undo).result == "ok" and sim.replicas == 3
    rollback = next(a for a in demo_config("http://127.0.0.1:9").actions if a.key == "r")
    assert executor.undo(rollback, executor.plan(rollback, "confirm"), "confirm") is None  # no undo_body


@pytest.mark.parametrize("typed, meant", [("bad_deploy", "bad-deploy"), ("db exhaustion", "db-exhaustion"),
                                          ("throttle", "throttling")])
def test_a_mistyped_scenario_name_suggests_the_closest_built_ins(typed, meant, tmp_path):
    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "drill", typed], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"did you mean {meant}" in out.stderr and "cockpit drill --list" in out.stderr
    assert "cannot open the tape" not in out.stderr


def test_a_tape_drills_sandbox_records_an_undo_where_the_config_says_how():
    from actions.sandbox import SandboxExecutor

    executor = SandboxExecutor("http")
    actions = {a.key: a for a in demo_config("http://127.0.0.1:9").actions}
    plan = executor.plan(actions["s"], "confirm")
    undo = executor.undo(actions["s"], plan, "confirm")
    assert undo is not None and undo.action == f"undo {actions['s'].name}" and undo.sandbox
    assert undo.steps[0].params["would_run"].startswith("undo http")
    assert executor.execute(actions["s"], undo).result == "ok" and executor.calls == [undo]
    assert executor.undo(actions["r"], executor.plan(actions["r"], "confirm"), "confirm") is None
