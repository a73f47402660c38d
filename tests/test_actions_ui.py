"""Actions in the real app (Pilot) against the simulator's admin endpoints: key ->
plan dialog -> confirmation -> executed -> verified -> timeline, and every guard."""

from __future__ import annotations

import pytest
from apphelpers import accelerated, error_rate_below, settle, wait_for

from screens.app import CockpitApp
from cockpit.clock import ManualClock
from cockpit.drill.demo import demo_config
from cockpit.incident.journal import SQLiteJournal
from cockpit.drill.simulator import Fault, Simulator, SimulatorServer
from screens.confirm import ActionConfirm
from screens.prompt import IncidentChoice


@pytest.fixture
def sim():
    """A simulator on its own manual clock, a bad deploy and data corruption already under way."""
    clock = ManualClock()
    faults = (Fault("bad_deploy", at=1.0, version="v1.5.0"), Fault("data_corruption", at=1.0))
    server = SimulatorServer(Simulator(clock=clock, seed=4, faults=faults)).start()
    clock.advance(40)
    yield server
    server.stop()


def demo_with(url: str, **changes: dict):
    """The demo config with some actions changed, e.g. r={"effect_after": 0}; every=... for all."""
    from cockpit.config import config_from_dict
    from cockpit.drill.demo import demo_raw

    raw = demo_raw(url)
    for a in raw["actions"]:
        a.update(changes.get("every", {}))
        a.update(changes.get(a["key"], {}))
    return config_from_dict(raw, "<test>", {})


def make_app(server, tmp_path, armed=True, effect_after=0.2):
    config = demo_with(server.url, every={"effect_after": effect_after})
    return CockpitApp(config, mode="DEMO", armed=armed, poll=False, simulator=server,
                      journal=SQLiteJournal(tmp_path / "j.db"))


def plan_text(dialog: ActionConfirm) -> str:
    """The plan as drawn in the dialog, as plain text."""
    import io

    from rich.console import Console

    console = Console(width=96, file=io.StringIO(), record=True)
    console.print(dialog.query_one("#action-plan Static").content)
    return console.export_text()


def kinds(app) -> list[str]:
    cur = app.desk.current
    return [e.kind for e in app.journal.events(cur) if e.kind.startswith("action")] if cur else []


async def declared(pilot, title: str = "checkout 5xx") -> str:
    """Declare an incident as D would, and wait until it is written."""
    app = pilot.app
    app.desk_do(app.desk.declare, title)
    await settle(pilot)
    assert app.desk.state() is not None and app.desk.state().open
    return app.desk.current


async def open_dialog(pilot, key: str) -> ActionConfirm:
    """Press an action's key; with no incident open, answer the question with n (a new one)."""
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, (ActionConfirm, IncidentChoice)), 5, "a dialog")
    if isinstance(pilot.app.screen, IncidentChoice):
        await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ActionConfirm), 5, "the plan dialog")
    return pilot.app.screen


async def test_rollback_shows_the_plan_runs_verifies_and_journals(sim, tmp_path):
    app = make_app(sim, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await open_dialog(pilot, "r")
        shown = plan_text(dialog)
        assert f"POST {sim.url}/admin/rollback" in shown and '"version": "v1.5.0"' in shown
        assert "YES: it overwrites state" in shown and "api" in shown
        await pilot.press("y")
        await wait_for(pilot, lambda: "action_effect" in kinds(app), 10, "the verification and effect")
        await settle(pilot)
        assert kinds(app) == ["action_intent", "action_outcome", "action_verified", "action_effect"]
        assert sim.sim.version == "v1.4.2"
        events = app.journal.events(app.desk.current)
        outcome = next(e for e in events if e.kind == "action_outcome").payload
        assert outcome["result"] == "ok" and outcome["target"] == "checkout-api"
        verified = next(e for e in events if e.kind == "action_verified").payload
        assert verified["ok"] is True and "healthy" in verified["details"]
        texts = [e.text for e in app.events]
        assert any(t.startswith("▶ Rollback on checkout-api by") for t in texts)
        assert any(t.startswith("Rollback: OK in") for t in texts)
        assert any(t.startswith("Rollback verified") for t in texts)


async def test_escape_cancels_and_nothing_changes(sim, tmp_path):
    app = make_app(sim, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_dialog(pilot, "r")
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ActionConfirm)
        assert sim.sim.version == "v1.5.0" and kinds(app) == []
        assert not app.runner.busy("checkout-api")  # the target is free again
        assert any("cancelled, nothing was run" in n.message for n in app._notifications)


async def test_read_only_blocks_every_action(sim, tmp_path):
    app = make_app(sim, tmp_path, armed=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for key in "ersb":
            await pilot.press(key)
        await settle(pilot)
        assert not isinstance(app.screen, ActionConfirm)
        state = sim.sim.admin_state()
        assert state["version"] == "v1.5.0" and not state["emergency"] and kinds(app) == []
        assert app.screen.check_action("run_action", ("r",)) is None  # shown greyed in the footer


async def test_typed_confirmation_for_a_restore(sim, tmp_path):
    app = make_app(sim, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await open_dialog(pilot, "b")
        await pilot.press("y")  # a letter in the name box, not a confirmation
        await pilot.press(*"checkout", "enter")  # wrong name: refused, nothing runs
        await settle(pilot)
        assert isinstance(app.screen, ActionConfirm) and "that is not" in str(
            dialog.query_one("#action-hint").render())
        assert sim.sim.active("data_corruption") is not None and kinds(app) == []
        dialog.query_one("#action-typed").value = ""
        await pilot.press(*"checkout-db", "enter")
        await wait_for(pilot, lambda: "action_verified" in kinds(app), 10, "the restore to be verified")
        assert sim.sim.active("data_corruption") is None


async def test_double_press_runs_once_and_a_busy_target_says_so(sim, tmp_path, fault_server):
    from conftest import Respond

    fault_server.set("/flag", Respond(200, "{}", "application/json", delay=1.5))  # a slow feature-flag service
    config = demo_with(sim.url, e={"url": fault_server.url("/flag"), "effect_after": 0,  # not the simulator:
                                   "verify_url": None, "verify_echo": {}})  # nothing says the mode back
    app = CockpitApp(config, mode="DEMO", armed=True, poll=False, journal=SQLiteJournal(tmp_path / "j.db"))
    async with app.run_test(size=(120, 40)) as pilot:
        await declared(pilot)
        await pilot.press("e", "e")  # the second press: the dialog (or the claim) already has it
        await wait_for(pilot, lambda: isinstance(app.screen, ActionConfirm), 5, "the plan dialog")
        dialog = app.screen
        dialog.action_confirm()
        dialog.action_confirm()  # a second confirmation does nothing
        await wait_for(pilot, lambda: "action_intent" in kinds(app), 5, "the intent")
        await pilot.press("e")  # while it runs
        await settle(pilot)
        assert not isinstance(app.screen, ActionConfirm)
        said = [n.message for n in app._notifications]
        assert any("Emergency mode is already running on ai-gateway" in m for m in said), said
        await wait_for(pilot, lambda: "action_verified" in kinds(app), 10, "the outcome")
        assert kinds(app).count("action_intent") == 1
        assert fault_server.count("/flag") == 1


async def test_undo_from_the_timeline_restores_the_captured_state(sim, tmp_path):
    app = make_app(sim, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_dialog(pilot, "e")
        await pilot.press("y")
        await wait_for(pilot, lambda: "action_verified" in kinds(app), 10, "emergency mode on")
        assert sim.sim.emergency is True
        await settle(pilot)
        await pilot.pause(0.2)
        timeline = app.screen.query_one("#timeline-list")
        timeline.focus()
        timeline.highlighted = next(i for i in range(timeline.option_count)
                                    if "Emergency mode: OK" in str(timeline.get_option_at_index(i).prompt))
        dialog = await open_dialog(pilot, "z")
        assert "Undo Emergency mode on ai-gateway?" in str(dialog.query_one(".dialog-title").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: kinds(app).count("action_verified") == 2, 10, "the undo")
        assert sim.sim.emergency is False
        intents = [e.payload["action"] for e in app.journal.events(app.desk.current) if e.kind == "action_intent"]
        assert intents == ["Emergency mode", "undo Emergency mode"]


async def test_a_failing_action_shows_its_error_and_journals_failed(sim, tmp_path, closed_port):
    config = demo_with(sim.url, r={"url": f"http://127.0.0.1:{closed_port}/admin/rollback", "effect_after": 0})
    app = CockpitApp(config, mode="DEMO", armed=True, poll=False, journal=SQLiteJournal(tmp_path / "j.db"))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_dialog(pilot, "r")
        await pilot.press("y")
        await wait_for(pilot, lambda: "action_verified" in kinds(app), 10, "the outcome")
        outcome = next(e for e in app.journal.events(app.desk.current) if e.kind == "action_outcome")
        assert outcome.payload["result"] == "failed" and outcome.payload["details"] == "connection refused"
        await settle(pilot)
        assert any("Rollback: FAILED: connection refused" in n.message for n in app._notifications)
        assert app.is_running


async def test_outcome_unknown_after_a_restart(sim, tmp_path):
    journal = SQLiteJournal(tmp_path / "j.db")
    config = demo_config(sim.url)
    from cockpit.incident.desk import IncidentDesk

    desk = IncidentDesk(journal, ManualClock(), "alice", config.service.name)
    desk.declare("checkout 5xx")
    desk.action_intent({"action": "Rollback", "target": "checkout-api"})  # ... and the cockpit was killed here
    app = CockpitApp(config, mode="LIVE", poll=False, journal=SQLiteJournal(tmp_path / "j.db"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause(0.2)
        assert any("Rollback: OUTCOME UNKNOWN" in e.text for e in app.events)
        md = app.desk.export_markdown(app.clock.now())
        assert "outcome unknown" in md


async def test_demo_rollback_brings_the_error_rate_back_under_the_threshold(tmp_path):
    """The whole loop on an accelerated simulator clock: the bad deploy goes critical,
    `r` rolls it back, and the polled error rate falls back under the threshold."""
    clock = ManualClock()
    server = SimulatorServer(Simulator(clock=clock, seed=5, faults=(Fault("bad_deploy", at=3.0),))).start()
    try:
        config = demo_with(server.url, r={"effect_after": 0.5})
        app = CockpitApp(config, mode="DEMO", armed=True, simulator=server,
                         journal=SQLiteJournal(tmp_path / "j.db"))
        async with app.run_test(size=(120, 40)) as pilot:
            async with accelerated(clock):  # simulated time at 5x: every poll sees traffic
                await wait_for(pilot, lambda: app.tracker.level("metrics:error_rate").name == "CRIT", 20,
                               "the error rate to go critical")
                dialog = await open_dialog(pilot, "r")
                # the plan names the change it reverts: the deploy, seen from the service's build_info
                assert "reverts     checkout version v1.4.2 → v1.5.0 at " in plan_text(dialog), plan_text(dialog)
                await pilot.press("y")
                await wait_for(pilot, lambda: "action_outcome" in kinds(app), 5, "the rollback")
                await wait_for(pilot, error_rate_below(app, 0.05), 20, "the error rate back under the warn threshold")
                await wait_for(pilot, lambda: "action_effect" in kinds(app), 10, "the effect to be recorded")
            effect = next(e for e in app.journal.events(app.desk.current) if e.kind == "action_effect")
            assert effect.payload["before"]["error_rate"] > 0.10
            intent = next(e for e in app.journal.events(app.desk.current) if e.kind == "action_intent")
            assert intent.payload["plan"]["reverts"].startswith("checkout version v1.4.2 → v1.5.0 at ")
            # the rollback is marked on the sparklines (◆ over its column; the deploy came before the
            # first rate here, off the sparkline's left edge)
            from screens.panels import SignalPanelWidget

            await wait_for(pilot, lambda: all(w.view.marks for w in app.screen.query(SignalPanelWidget)
                                              if w.role == "error_rate"), 5, "a mark on the error rate")
            error_panel = next(w for w in app.screen.query(SignalPanelWidget) if w.role == "error_rate")
            assert "◆" in error_panel.render().plain
    finally:
        server.stop()


async def test_the_actions_menu_lists_every_action_and_opens_its_plan(sim, tmp_path):
    from screens.prompt import ActionsMenu

    app = make_app(sim, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await declared(pilot)
        await pilot.press("A")
        assert isinstance(app.screen, ActionsMenu)
        menu = app.screen.query_one("#actions-options")
        assert [menu.get_option_at_index(i).id for i in range(menu.option_count)] == ["e", "r", "s", "b"]
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ActionConfirm), 5, "the rollback's plan")
        assert app.screen.plan.action == "Rollback"
        await pilot.press("escape")
        await settle(pilot)
        assert kinds(app) == []


async def test_an_action_with_no_incident_open_asks_first(sim, tmp_path):
    """One rule for every action key: with no incident, or after resolve, the cockpit asks
    whether to declare a new incident or reopen the last one; Escape runs nothing."""
    app = make_app(sim, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentChoice), 5, "the question")
        assert "o  reopen" not in str(app.screen.query_one("#choice-options").render())  # nothing to reopen
        await pilot.press("escape")
        await settle(pilot)
        assert app.desk.current is None and sim.sim.admin_state()["version"] == "v1.5.0"
        assert any("cancelled, nothing was run or recorded" in n.message for n in app._notifications)
        inc = await declared(pilot)
        app.desk_do(app.desk.set_status, "resolved")
        await settle(pilot)
        # after resolve: asked again, and o reopens the same incident (no new declaration)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, IncidentChoice), 5, "the question after resolve")
        assert f"o  reopen {inc}" in str(app.screen.query_one("#choice-options").render())
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ActionConfirm), 5, "the plan dialog")
        await pilot.press("y")
        await wait_for(pilot, lambda: "action_outcome" in kinds(app), 10, "the rollback")
        assert app.desk.current == inc and app.desk.state().status == "acknowledged"
        events = app.journal.events(inc)
        reopened = next(e for e in events if e.kind == "status_changed" and e.payload["to"] == "acknowledged")
        assert "reopened to record Rollback" in reopened.payload["reason"]
        assert [e.kind for e in events].count("incident_declared") == 1


async def test_scale_asks_for_the_count_in_the_dialog(sim, tmp_path, moto_url):
    import boto3

    from cockpit.config import config_from_dict
    from cockpit.drill.demo import demo_raw

    ecs = boto3.client("ecs", endpoint_url=moto_url, region_name="us-east-1")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="api", containerDefinitions=[{"name": "a", "image": "x", "memory": 64}])
    ecs.create_service(cluster="prod", serviceName="api", taskDefinition="api:1", desiredCount=3)
    raw = demo_raw(sim.url)
    raw["aws"] = {"endpoint_url": moto_url, "region": "us-east-1"}
    raw["actions"] = [{"key": "s", "kind": "ecs_scale", "name": "Scale api", "target": "prod/api", "cluster": "prod",
                       "service": "api", "min": 2, "max": 8, "effect_after": 0, "verify_timeout": 5}]
    app = CockpitApp(config_from_dict(raw, "<t>", {}), mode="LIVE", armed=True, poll=False,
                     journal=SQLiteJournal(tmp_path / "j.db"))
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await open_dialog(pilot, "s")
        number = dialog.query_one("#action-number")
        assert number.value == "6" and app.screen.focused is number  # twice the current 3
        await pilot.press("y")  # typed into the box (not a letter it takes), never a confirmation
        number.value = "9"
        await pilot.press("enter")
        assert isinstance(app.screen, ActionConfirm) and "from 2 to 8" in str(dialog.query_one("#action-hint").render())
        number.value = "5"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "action_verified" in kinds(app), 10, "the scale to be verified")
        assert ecs.describe_services(cluster="prod", services=["api"])["services"][0]["desiredCount"] == 5
        outcome = next(e for e in app.journal.events(app.desk.current) if e.kind == "action_outcome").payload
        assert outcome["result"] == "ok" and outcome["undo"] == {"desired_count": 3}
