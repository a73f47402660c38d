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
            # resolved: the scorecard comes up by itself
            await wait_for(pilot, lambda: isinstance(app.screen, ScorecardScreen), 20, "the scorecard")
            rows = {r["measure"]: r for r in app.screen.doc["rows"]}
            assert app.screen.doc["why"] == "the scenario is resolved"
            assert rows["time to first correct mitigation"]["verdict"] == "kept"
            assert rows["wrong or unnecessary actions"]["got"] == "none"
            assert rows["time to acknowledge"]["verdict"] == "not done"  # nobody pressed a
            assert rows["time to correct severity"]["target"].startswith("P1 within")
            assert rows["status update cadence"]["target"] == "every 00:30:00"  # the config's cadence for P1
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
    rows = {r.measure: r for r in score(sorted(events, key=lambda e: e.ts), 1000, 1500, from_scenario(sc))}
    assert (rows["time to acknowledge"].got, rows["time to acknowledge"].verdict) == ("after 00:00:50", "kept")
    assert rows["time to correct severity"].verdict == "missed"  # P1 only after 400 s
    assert rows["time to first correct mitigation"].got == "after 00:04:10"  # the rollback, not the scale-out
    assert rows["time to first correct mitigation"].verdict == "kept"
    assert (rows["wrong or unnecessary actions"].got, rows["wrong or unnecessary actions"].verdict) == \
        ("Scale out", "missed")
