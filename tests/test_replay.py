"""Drill replay: a recorded run played back on a drill clock shows, at the same drill
time, what the panels showed when it was recorded; pause, speed and step work from
the keyboard; the drill app only has sandbox executors and never polls."""

from __future__ import annotations

import subprocess
import sys

from actions.sandbox import SandboxExecutor
from apphelpers import frozen_demo, poll_each, settle
from screens.app import CockpitApp
from cockpit.config import config_from_dict
from cockpit.drill.demo import demo_config, demo_raw
from cockpit.signals.poller import Poller
from cockpit.signals.sources import SourceContext, build_source
from cockpit.drill.tape import Tape, start_recording
from screens.panels import ComponentsPanel

PANELS = ("#health", "#error-rate", "#latency", "#cost")
MOMENTS = (12, 26, 39)  # seconds into the run: calm, the bad deploy landing, the incident


def shown(app: CockpitApp) -> dict[str, str]:
    """The value line of every panel and the component rows, as drawn."""
    out = {sel: app.screen.query_one(sel).render().plain.split("\n")[0] for sel in PANELS}
    table = app.screen.query_one(ComponentsPanel).table
    out["components"] = " | ".join(" ".join(getattr(c, "plain", str(c)) for c in table.get_row(k)[:2])
                                   for k in table.rows)
    return out


async def record(tmp_path, tweak=None) -> tuple[object, dict[int, dict[str, str]]]:
    """40 s of the seeded demo (bad deploy at 20 s) on a manual clock, every source polled
    once a simulated second, recorded; and what the panels showed at MOMENTS. ``tweak``
    may change the demo's config (as a dict) first."""
    server, clock = frozen_demo(seed=7, fault_at=20.0)
    raw = demo_raw(server.url)
    if tweak is not None:
        tweak(raw)
    config = config_from_dict(raw, "<recorded>", {})
    tape = start_recording(tmp_path / "run.tape", config, "DEMO", clock.now())
    app = CockpitApp(config, mode="DEMO", clock=clock, poll=False, tape=tape)
    seen = {}
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            ctx = SourceContext(clock)
            poller = Poller([build_source(s, ctx) for s in config.sources], app.on_readings)
            for second in range(1, 41):
                clock.advance(1.0)
                await poll_each(poller)
                if second == 33:  # the responder's own act: it comes back as the ghost
                    await pilot.press("n", *"rolling back v1.5.0", "enter")
                    await settle(pilot)
                if second in MOMENTS:
                    app.refresh_dashboard()
                    await pilot.pause()
                    seen[second] = shown(app)
            await ctx.aclose()
    finally:
        server.stop()
    return tmp_path / "run.tape", seen


def drill_app(path, journal_file=None) -> CockpitApp:
    """The app `cockpit drill TAPE` builds; with ``journal_file``, the drill journal is a
    real file (the trainee "trainee"), otherwise in memory."""
    from cockpit.incident.journal import SQLiteJournal

    from cockpit.cli import tape_drill

    tape = Tape.open(path)
    return tape_drill(tape, SQLiteJournal(journal_file or ":memory:", actor="trainee"))


async def test_replay_shows_what_the_panels_showed_at_the_same_drill_times(tmp_path):
    path, seen = await record(tmp_path)
    assert "CRIT" in seen[39]["#error-rate"] and "OK" in seen[12]["#error-rate"]  # the run had its incident
    app = drill_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.replay.paused = True
        assert app.poller is None  # a drill never polls the systems the tape came from
        assert all(isinstance(e, SandboxExecutor) for e in app.runner.executors.values())
        for second in MOMENTS:
            app.replay.advance_to(app.replay.begin + second)
            app.refresh_dashboard()
            await pilot.pause()
            assert shown(app) == seen[second], second


async def test_pause_speed_and_step_from_the_keyboard(tmp_path):
    path, _ = await record(tmp_path)
    app = drill_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        replay = app.replay
        await pilot.press("space")
        assert replay.paused
        at = replay.position
        await pilot.pause(0.5)
        assert replay.position == at, "paused: the drill clock stands still"
        header = lambda: app.screen.query_one("CockpitHeader").render().plain  # noqa: E731
        assert "PAUSED" in header()
        await pilot.press("right_square_bracket")
        assert replay.position == at + 1.0 and app.clock.now() == at + 1.0  # one interval of the demo's sources
        await pilot.press("plus", "plus")
        assert replay.speed == 5
        await pilot.press("minus")
        assert replay.speed == 2
        await pilot.press("space")
        await pilot.pause(0.6)
        assert replay.position >= at + 1.0 + 0.8, "running at x2"
        assert "x2" in header()


def test_drill_keys_are_not_offered_outside_a_drill():
    from cockpit.drill.demo import demo_config

    app = CockpitApp(demo_config("http://127.0.0.1:9"), mode="LIVE", poll=False)
    assert not app.check_action("drill_pause", ())


def test_drill_command_refuses_a_bad_tape_in_one_line(tmp_path):
    (tmp_path / "x.tape").write_bytes(b"not a tape")
    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "drill", str(tmp_path / "x.tape")],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2 and "not a cockpit tape" in out.stderr and "Traceback" not in out.stderr


def header(app: CockpitApp) -> str:
    return app.screen.query_one("CockpitHeader").render().plain


async def test_seeking_back_and_to_a_typed_time_shows_the_tape_as_it_was_then(tmp_path):
    path, seen = await record(tmp_path)
    app = drill_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.replay.paused = True
        app.drill_seek(app.replay.begin + 39)  # forward: played at once, the incident declared on the way
        await settle(pilot)
        assert shown(app) == seen[39]
        first = app.desk.current
        assert first is not None and "DECLARED" in header(app)
        # back to the calm: the panels, the timeline and the header as they were; no alert again
        app.drill_seek(app.replay.begin + 13)
        await settle(pilot)
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert app.replay.position == app.replay.begin + 12 and app.clock.now() == app.replay.begin + 12
        assert shown(app) == seen[12]
        assert app.desk.current is None and "no incident" in header(app) and "DECLARED" not in header(app)
        assert all(line.ts <= app.replay.begin + 12 for line in app.events)
        assert not any(line.kind == "alert" for line in app.events)
        assert [e.kind for e in app.journal.events(first)][-1] == "drill_marker"  # attempt 1 ended, on record
        # g: a place typed as an offset into the tape; forward, the crossing comes as it came
        await pilot.press("g", *"26", "enter")
        await settle(pilot)
        assert app.replay.position == app.replay.begin + 26
        assert shown(app) == seen[26]
        assert any(line.kind == "alert" for line in app.events)
        await pilot.press("g", *"99h", "enter")  # off the tape: said, and nothing moves
        await pilot.pause()
        assert app.replay.position == app.replay.begin + 26
        assert any("outside the tape" in n.message for n in app._notifications)


async def test_rewinding_past_the_trainees_acts_starts_a_new_attempt_kept_for_the_scorecard(tmp_path):
    from cockpit.drill.scenario import load
    from cockpit.incident.state import fold
    from screens.scorecard import ScorecardScreen

    path, _ = await record(tmp_path)
    app = drill_app(path, tmp_path / "drill.db")
    begin = app.replay.begin
    async with app.run_test(size=(120, 40)) as pilot:
        app.replay.paused = True
        app.drill_seek(begin + 35)  # the incident was declared on the way (at about +30)
        await settle(pilot)
        first = app.desk.state()
        assert first is not None and first.status == "declared"
        await pilot.press("a")  # acknowledged at +35
        await settle(pilot)
        app.drill_seek(begin + 39)
        await settle(pilot)
        assert "ACKNOWLEDGED" in header(app)
        declared_at = first.declared_at
        assert declared_at < begin + 33
        app.drill_seek(begin + 33)  # after the declaration, before the acknowledgement
        await settle(pilot)
        second = app.desk.state()
        assert second is not None and second.id != first.id
        assert second.status == "declared" and second.declared_at == declared_at  # as it stood at +33
        assert "DECLARED" in header(app) and "ACKNOWLEDGED" not in header(app)
        assert all(line.ts <= begin + 33 for line in app.events)
        assert not any("acknowledged" in line.text for line in app.events)
        declared = next(e for e in second.events if e.kind == "incident_declared")
        assert declared.payload["attempt"] == 2 and declared.payload["carried_from"] == first.id
        ended = fold(first.id, app.journal.events(first.id))
        marker = next(e for e in ended.events if e.kind == "drill_marker")
        assert marker.payload["attempt_ended"] == 1 and marker.payload["rewound_to"] == begin + 33
        app.drill.expect = load("bad-deploy")  # targets for every measure (--expect): acknowledge within 2 min
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, ScorecardScreen)
        doc = app.screen.doc
        assert doc["attempt"] == 2 and [a["incident"] for a in doc["earlier"]] == [first.id]
        now = {r["measure"]: r for r in doc["rows"]}
        assert (now["time to acknowledge"]["got"], now["time to acknowledge"]["verdict"]) == ("not done", "missed")
        earlier = {r["measure"]: r for r in doc["earlier"][0]["rows"]}
        assert (earlier["time to acknowledge"]["got"], earlier["time to acknowledge"]["verdict"]) == \
            ("after 00:00:35", "kept")
        await pilot.press("q")
        await settle(pilot)
    md_events = app.journal.events(second.id)
    from cockpit.incident.postmortem import to_markdown

    md = to_markdown(fold(second.id, md_events), app.clock.now())
    assert f"Attempt 1 ({first.id}), ended by a rewind" in md


async def test_ghost_shows_the_original_responders_acts_at_their_times(tmp_path):
    from screens.panels import TimelinePane

    path, _ = await record(tmp_path)
    app = drill_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.replay.paused = True
        pane = app.screen.query_one(TimelinePane)

        def lines() -> list[str]:
            ol = pane.query_one("OptionList")
            return [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]

        ghosts = [e for e in app.replay.ghosts]
        assert [e.payload["journal"] for e in ghosts] == ["note"], "auto-declaration and alerts are not ghosts"
        app.replay.advance_to(app.replay.begin + 32)
        app.refresh_dashboard()
        await pilot.pause()
        await pilot.press("G")
        await pilot.pause()
        assert not any("◇ was:" in line for line in lines()), "not yet: the note came at 33 s"
        app.replay.advance_to(app.replay.begin + 34)
        app.refresh_dashboard()
        await pilot.pause()
        assert any("◇ was:" in line and "rolling back v1.5.0" in line for line in lines()), lines()
        await pilot.press("G")  # off again: the trainee's own timeline only
        await pilot.pause()
        assert not any("◇ was:" in line for line in lines())


async def test_a_drill_is_journaled_as_a_drill_and_its_actions_never_leave_the_sandbox(tmp_path, monkeypatch,
                                                                                      closed_port):
    """The trainee's incident, notes and actions are kept (a drill journal file) and
    marked as a drill; with every real executor made to fail loudly and the recorded
    targets gone (the simulator is stopped: its port refuses), an action key still
    runs: against the sandbox, nothing real attempted."""
    import actions

    from cockpit.incident.state import fold
    from cockpit.incident.postmortem import to_markdown

    def real_executors_called():
        raise AssertionError("a drill built real executors")

    def with_aws_action(raw: dict) -> None:  # production AWS, as far as the drill can tell: a port nobody answers
        raw["aws"] = {"endpoint_url": f"http://127.0.0.1:{closed_port}", "region": "us-east-1", "max_attempts": 1}
        raw["actions"].append({"kind": "ecs_scale", "key": "c", "name": "Scale ECS", "target": "api",
                               "cluster": "prod", "service": "api", "max": 10})

    path, _ = await record(tmp_path, with_aws_action)
    monkeypatch.setattr(actions, "real_executors", real_executors_called)
    app = drill_app(path, tmp_path / "drill-journal.db")
    journal, clock = app.journal, app.clock
    async with app.run_test(size=(120, 40)) as pilot:
        app.replay.paused = True
        app.replay.advance_to(app.replay.begin + 39)  # the incident, declared automatically by the drill
        await settle(pilot)
        await pilot.press("n", *"trying emergency mode", "enter")
        await settle(pilot)
        await pilot.press("c")  # scale the ECS service the tape's config names
        await pilot.pause()
        await pilot.press("y")
        for _ in range(50):
            await settle(pilot)
            st = app.desk.state()
            if st is not None and any(e.kind == "action_outcome" for e in journal.events(st.id)):
                break
        st = app.desk.state()
    assert st is not None and st.drill
    kinds = [e.kind for e in journal.events(st.id)]
    assert "note" in kinds and "action_intent" in kinds and "action_outcome" in kinds
    outcome = next(e for e in journal.events(st.id) if e.kind == "action_outcome")
    assert outcome.payload["result"] == "ok" and "nothing real was called" in outcome.payload["details"]
    intent = next(e for e in journal.events(st.id) if e.kind == "action_intent")
    assert intent.payload["plan"]["kind"] == "ecs_scale" and intent.payload["plan"]["sandbox"] is True
    assert "# Postmortem: " in (md := to_markdown(fold(st.id, journal.events(st.id)), clock.now())) and \
        "(DRILL)" in next(line for line in md.splitlines() if line.startswith("# Postmortem"))


def test_progress_bar_marks_the_recorded_milestones_where_they_happened():
    from cockpit.model import TimelineEvent
    from cockpit.drill.replay import milestones
    from screens.drillbar import bar_cells

    def ev(ts, journal, **kw):
        return TimelineEvent(ts, "status", "", payload={"journal": journal, **kw})

    events = [ev(110, "incident_declared", auto=True), ev(150, "status_changed", to="acknowledged"),
              ev(160, "note"), ev(170, "status_changed", to="acknowledged"), ev(190, "status_changed", to="resolved")]
    marks = milestones(events)
    assert marks == [(110, "D"), (150, "A"), (190, "R")]  # the first of each; notes are not milestones
    cells = bar_cells(10, 100, 200, 155, marks)
    assert "".join(c for c, _ in cells) == "━D━━━A───R"  # cell i covers 100 + 10i .. 110 + 10i
    assert [passed for _, passed in cells][:7] == [True] * 6 + [False]  # 155 s: five and a half cells


async def test_the_drill_has_its_banner_bar_and_theme_and_live_has_none(tmp_path):
    from screens.drillbar import DrillBar

    path, _ = await record(tmp_path)
    app = drill_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        assert app.theme == "cockpit-drill"
        assert app.screen.query_one(DrillBar).render().plain.startswith("DRILL ")
    live = CockpitApp(demo_config("http://127.0.0.1:9"), mode="LIVE", poll=False)
    async with live.run_test(size=(120, 40)) as pilot:
        assert not live.screen.query(DrillBar) and live.theme != "cockpit-drill"


async def test_q_in_a_drill_shows_the_scorecard_which_goes_into_the_postmortem(tmp_path):
    from cockpit.incident.state import fold
    from cockpit.incident.postmortem import to_markdown
    from screens.scorecard import ScorecardScreen

    path, _ = await record(tmp_path)  # its responder wrote a note at 33 s, nothing else
    app = drill_app(path, tmp_path / "drill.db")
    journal, clock = app.journal, app.clock
    async with app.run_test(size=(120, 40)) as pilot:
        app.replay.paused = True
        app.replay.advance_to(app.replay.begin + 39)
        await settle(pilot)
        await pilot.press("a")  # the trainee acknowledges the drill's incident
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ScorecardScreen) and app.is_running
        doc = app.screen.doc
        assert doc["against"] == "the original responders" and doc["why"] == "ended with q"
        # the original responders never acknowledged: the trainee's time is said, not scored
        assert "time to acknowledge" not in {r["measure"] for r in doc["rows"]}
        assert any(line.startswith("time to acknowledge: after ") and "not scored" in line for line in doc["unscored"])
        await pilot.press("escape")  # back to the drill
        await pilot.pause()
        assert not isinstance(app.screen, ScorecardScreen) and app.is_running
        await pilot.press("q")  # scored already: q quits
        await settle(pilot)
    st = fold(app.desk.current, journal.events(app.desk.current))
    md = to_markdown(st, clock.now())
    assert "## Drill scorecard" in md and "- time to acknowledge: after " in md


async def test_rewinding_to_between_the_first_alert_and_the_declaration_keeps_the_alerts(tmp_path):
    """Seen under QA: rewound to a moment after the first alerts but before the incident was
    declared, the timeline lost those alerts (they had gone into the incident, whose attempt
    ended), and the next declaration journaled without them."""
    path, _ = await record(tmp_path)
    app = drill_app(path, tmp_path / "drill.db")
    begin = app.replay.begin
    async with app.run_test(size=(120, 40)) as pilot:
        app.replay.paused = True
        app.drill_seek(begin + 39)
        await settle(pilot)
        first = app.desk.state()
        alerts = sorted(e.ts for e in first.events if e.kind == "alert_raised")
        assert alerts and alerts[0] < first.declared_at - 1, (alerts, first.declared_at)
        at = first.declared_at - 1
        before = [(line.ts, line.text) for line in app.events if line.kind == "alert" and line.ts <= at]
        assert before
        app.drill_seek(at)
        await settle(pilot)
        assert app.desk.current is None
        assert [(line.ts, line.text) for line in app.events if line.kind == "alert"] == before
        app.drill_seek(begin + 39)  # declared again on the way: with the symptoms from before the rewind
        await settle(pilot)
        second = app.desk.state()
        assert second is not None and second.id != first.id
        assert sorted(e.ts for e in second.events if e.kind == "alert_raised" and e.ts <= at) == \
            sorted(ts for ts in alerts if ts <= at)
        lines = [(line.ts, line.text) for line in app.events]
        assert len(lines) == len(set(lines)), "no line shown twice"
