"""Pilot tests: the real app, real poller, real simulator on loopback."""

from __future__ import annotations

import socket

import pytest
from apphelpers import wait_for

from screens.app import CockpitApp
from cockpit.clock import ManualClock
from cockpit.config import config_from_dict
from cockpit.drill.demo import demo_config, demo_raw
from cockpit.model import Level, Status
from cockpit.drill.simulator import Fault, Simulator, SimulatorServer
from screens.help import HelpScreen
from screens.panels import ComponentsPanel, HealthPanel, SignalPanelWidget, TimelinePane

PANEL_SERIES = ("health:health", "metrics:error_rate", "metrics:latency_p95", "metrics:cost_per_day",
                "components:component/api")


@pytest.fixture
def demo_server():
    server = SimulatorServer(Simulator(seed=3, faults=())).start()
    yield server
    server.stop()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def has_data(app: CockpitApp) -> bool:
    return all((r := app.store.latest(k)) is not None and r.status is Status.OK for k in PANEL_SERIES)


def panel_text(app: CockpitApp, selector: str) -> str:
    w = app.screen.query_one(selector)
    return w.render().plain + " " + str(w.border_title) + " " + str(w.border_subtitle)


async def test_demo_starts_and_every_panel_gets_data(demo_server):
    app = CockpitApp(demo_config(demo_server.url), mode="DEMO", armed=True, simulator=demo_server)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: has_data(app), 8, "all five panels to have data")
        # the first rates come from a 0.25 s window and can be noisy: calm within a few polls
        await wait_for(pilot, lambda: all("● OK" in panel_text(app, s) for s in ("#error-rate", "#latency", "#cost")),
                       5, "the calm service to read OK on every signal panel")
        for sel in ("#error-rate", "#latency", "#cost"):
            text = panel_text(app, sel)
            assert "updated" in text and "WAITING" not in text
        assert "1/1 up" in panel_text(app, "#health")
        table = app.screen.query_one(ComponentsPanel).table
        assert table.row_count == 4
        assert "4/4 healthy" in str(app.screen.query_one(ComponentsPanel).border_title)


async def test_dead_source_shows_error_with_age_while_the_rest_runs(demo_server):
    raw = demo_raw(demo_server.url)
    raw["sources"][2]["url"] = f"http://127.0.0.1:{closed_port()}/metrics"  # metrics source dead
    app = CockpitApp(config_from_dict(raw, "<test>", {}), mode="LIVE")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store.latest("metrics:error_rate") is not None, 5, "a metrics reading")
        await wait_for(pilot, lambda: "connection refused" in panel_text(app, "#error-rate"), 5,
                       "error rate panel to say the connection is refused")
        text = panel_text(app, "#error-rate")
        assert "connection refused" in text
        assert "no data yet" in text  # never had a good sample: says so rather than showing an age
        # the health panel, fed by a live source, keeps updating
        await wait_for(pilot, lambda: "1/1 up" in panel_text(app, "#health"), 5, "health to be up")
        assert not app.screen.query_one(HealthPanel).has_class("-stale")


async def test_killing_the_service_goes_error_then_recovers(demo_server):
    app = CockpitApp(demo_config(demo_server.url), mode="DEMO", armed=True, simulator=demo_server)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: has_data(app), 8, "data")
        # a latency value on screen first (on a busy machine an early poll can time out)
        await wait_for(pilot, lambda: "ms" in panel_text(app, "#latency").split("\n")[0], 8, "a latency value")
        await pilot.press("K")
        await wait_for(pilot, lambda: not demo_server.running, 3, "the simulator to stop")
        # within about one poll interval every panel says so, with the error text and the age (a poll
        # in flight when the service died may say "timed out" first; the next one is refused)
        await wait_for(pilot, lambda: "connection refused" in panel_text(app, "#latency"), 5,
                       "latency panel to show the refused connection")
        latency = panel_text(app, "#latency")
        assert "ERROR" in latency and "data" in latency and "old" in latency
        assert "UNREACHABLE" in panel_text(app, "#health")
        assert app.screen.query_one(HealthPanel).has_class("-crit")
        await wait_for(pilot, lambda: "unknown" in str(app.screen.query_one(ComponentsPanel).border_title), 3,
                       "components to go unknown")
        # and the level of an old value is never shown as current
        assert "● OK" not in latency
        await pilot.press("K")
        await wait_for(pilot, lambda: demo_server.running, 3, "the simulator to restart")
        await wait_for(pilot, lambda: "● OK" in panel_text(app, "#latency"), 8, "latency to recover")
        await wait_for(pilot, lambda: "4/4 healthy" in str(app.screen.query_one(ComponentsPanel).border_title), 8,
                       "components to recover")


async def test_bad_deploy_shows_on_every_panel_and_timeline():
    # the simulator runs on its own fast clock so the 20 s ramp takes about a second
    sim_clock = ManualClock()
    server = SimulatorServer(Simulator(clock=sim_clock, seed=5, faults=(Fault("bad_deploy", at=5.0),))).start()
    try:
        app = CockpitApp(demo_config(server.url), mode="DEMO", armed=True)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: has_data(app), 8, "data")

            def crit_everywhere() -> bool:
                sim_clock.advance(1.0)
                return all("✖ CRIT" in panel_text(app, s) for s in ("#error-rate", "#latency"))

            await wait_for(pilot, crit_everywhere, 15, "error rate and latency to go critical")
            await wait_for(pilot, lambda: "UNHEALTHY" in _row(app, "components:component/api"), 5, "api unhealthy")
            assert app.screen.query_one("#error-rate", SignalPanelWidget).has_class("-crit")
            # the alerts come once the levels have held for the default 5 s
            def both_alerts() -> bool:
                sim_clock.advance(0.2)  # traffic goes on, so every poll has a value to hold
                texts = [e.text for e in app.events]
                return all(any(t.startswith(f"{name} CRIT") for t in texts) for name in ("error rate", "latency"))

            await wait_for(pilot, both_alerts, 10, "both critical alerts")
            await app.journal_idle()  # alerts are journaled on the journal thread, then shown
            texts = [e.text for e in app.events]
            # the fast simulator clock may skip the short degraded phase
            assert any(t.startswith("component api healthy → ") for t in texts), texts
            await wait_for(pilot, lambda: app.incident_start is not None, 5, "the incident to be declared")
            timeline = app.screen.query_one(TimelinePane).query_one("OptionList")
            await wait_for(pilot, lambda: timeline.option_count == len(app.events), 5, "every event on the pane")
            assert any(e.level is Level.CRIT for e in app.events)
    finally:
        server.stop()


def _row(app, key: str) -> str:
    table = app.screen.query_one(ComponentsPanel).table
    return " ".join(str(c) for c in table.get_row(key))


async def test_help_lists_every_key_and_q_quits(demo_server):
    app = CockpitApp(demo_config(demo_server.url), mode="DEMO", armed=True, simulator=demo_server)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        listed = app.screen.query_one("#help-keys").render().plain
        for key, words in (("q", "Quit"), ("?", "Help"), ("ctrl+r", "Poll now"), ("K", "Kill or revive"),
                           ("ctrl+p", "Commands"), ("r", "Rollback"), ("A", "remediations"), ("z", "Undo")):
            assert key in listed and words in listed, (key, listed)
        # one column of descriptions however long a key's name (issue 17: ctrl+pageup broke it):
        # a label wider than the column has its description on the next line, in the column
        rows = [line for line in listed.splitlines() if line.startswith(" ")]
        column = rows[0].index("  ", len(rows[0]) - len(rows[0].lstrip())) + 2
        for line in rows:
            label, rest = line[:column], line[column:]
            assert rest and not rest.startswith(" "), (line, listed)
            assert label.endswith("  ") and (label.strip() == "" or not label.startswith(" " * (column - 1))), line
        assert any(line.strip() == "ctrl+c, q, ctrl+q" for line in listed.splitlines())  # wider than the column
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.press("q")  # on the help screen q closes help, it does not quit
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0 or app.return_code is None
    assert not app.is_running


async def test_kill_key_is_hidden_without_a_simulator(demo_server):
    app = CockpitApp(demo_config(demo_server.url), mode="LIVE")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert "Kill/revive" not in app.screen.query_one("#help-keys").render().plain


async def test_themes_registered_and_switchable(demo_server):
    app = CockpitApp(demo_config(demo_server.url), mode="DEMO", simulator=demo_server)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.theme == "cockpit-dark"
        assert {"cockpit-dark", "cockpit-high-contrast"} <= set(app.available_themes)
        await wait_for(pilot, lambda: has_data(app), 8, "data")
        app.theme = "cockpit-high-contrast"
        await pilot.pause(0.6)
        assert "OK" in panel_text(app, "#error-rate")
        # the command palette offers the theme switch
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"theme")
        await pilot.pause(0.5)
        from textual.command import CommandPalette

        assert isinstance(app.screen, CommandPalette)
        await pilot.press("enter")
        await pilot.pause(0.5)
        from textual.widgets import OptionList

        options = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
        assert any("cockpit-high-contrast" in o for o in options), options


async def test_unknown_theme_falls_back_with_a_notice(demo_server):
    app = CockpitApp(demo_config(demo_server.url), mode="DEMO", theme="no-such-theme")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.theme == "cockpit-dark"
        assert any("no-such-theme" in n.message for n in app._notifications)


async def test_titles_with_brackets_are_text_not_markup(demo_server):
    raw = demo_raw(demo_server.url)
    raw["panels"]["cost"]["title"] = "Cost [/]"
    raw["panels"]["latency"]["title"] = "Latency [p95]"
    raw["panels"]["components"]["title"] = "Parts [b]"
    app = CockpitApp(config_from_dict(raw, "<test>", {}), mode="LIVE")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: has_data(app), 8, "data")
        await pilot.pause(0.6)
        from textual.content import Content

        def shown(selector) -> str:  # the title as drawn (the getter returns it as markup)
            return Content.from_markup(app.screen.query_one(selector).border_title).plain

        assert shown("#cost") == "Cost [/]"
        assert shown("#latency") == "Latency [p95]"
        assert shown("#components").startswith("Parts [b] ")


async def test_timeline_pane_stays_bounded_and_shows_the_newest(demo_server):
    from cockpit.model import TimelineEvent

    app = CockpitApp(demo_config(demo_server.url), mode="LIVE", poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.screen.query_one(TimelinePane)
        for batch in range(5):
            for i in range(700):
                app.record(TimelineEvent(1000.0 + batch * 700 + i, "status", f"event {batch * 700 + i}"))
            app.refresh_dashboard()
            await pilot.pause()
        ol = pane.query_one("OptionList")
        assert ol.option_count <= pane.MAX_SHOWN
        assert str(ol.get_option_at_index(ol.option_count - 1).prompt).endswith("event 3499")
        assert app.events.total == 3500  # every line was taken; the newest TIMELINE_KEPT of them are kept


async def test_timeline_lines_are_drawn_and_in_view_in_the_frame_that_adds_them(demo_server):
    """The timeline list's size is its pane's however many lines it holds: lines added are
    drawn in the next frame, scrolled to when the list was at its end (its scroll range
    grown with it), and a line the responder scrolled back to stays in view."""
    from cockpit.model import TimelineEvent

    app = CockpitApp(demo_config(demo_server.url), mode="LIVE", poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        ol = app.screen.query_one(TimelinePane).query_one("OptionList")
        await pilot.pause()
        for n in (3, 100, 1):
            start = len(app.events)
            for i in range(start, start + n):
                app.record(TimelineEvent(1000.0 + i, "status", f"line-{i:03d}"))
            app.refresh_dashboard()
            assert ol.scroll_y == ol.max_scroll_y  # scrolled as the lines were added, not a frame later
            await pilot.pause()
            assert ol.option_count == len(app.events)
            assert ol.virtual_size.height == ol.option_count
            assert ol.scroll_y == ol.max_scroll_y == max(0, ol.option_count - ol.scrollable_content_region.height)
            assert f"line-{len(app.events) - 1:03d}" in app.export_screenshot()  # drawn, not only listed
        app.record(TimelineEvent(1050.5, "status", "late-line"))  # stamped earlier: goes where its time puts it
        app.refresh_dashboard()
        assert ol.scroll_y == ol.max_scroll_y
        await pilot.pause()
        shown = [str(ol.get_option_at_index(i).prompt).split()[-1] for i in range(ol.option_count)]
        assert shown[49:53] == ["line-049", "line-050", "late-line", "line-051"] and shown[-1] == "line-103"
        ol.highlighted = 10  # the responder went back to an early line
        ol.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        for i in range(len(app.events), len(app.events) + 20):
            app.record(TimelineEvent(1000.0 + i, "status", f"line-{i:03d}"))
        app.refresh_dashboard()
        await pilot.pause()
        assert ol.scroll_y == 0 and ol.highlighted == 10
        assert "line-010" in app.export_screenshot()


async def test_a_database_only_cockpit_with_panels_of_its_own(pg_url):
    """Exactly five panels before: to show CPU the cost panel was reused. Now no health panel
    (a database-only cockpit), extra panels with their own title, unit and thresholds
    (alerting like the others), and the components table from the database's checks."""
    import psycopg

    from cockpit.config import config_from_dict
    from screens.panels import ComponentsPanel, HealthPanel, SignalPanelWidget

    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE load (cpu float, queue int)")
        db.execute("INSERT INTO load VALUES (97.5, 12)")
    raw = {
        "service": {"name": "ledger-db", "environment": "production"},
        "sources": [{"name": "db", "kind": "pg_query", "database": pg_url, "interval": 0.5, "timeout": 2.0,
                     "queries": {"errors": "SELECT 0.01", "p95": "SELECT 0.2", "cost": "SELECT 40",
                                 "cpu": "SELECT cpu FROM load", "queue": "SELECT queue FROM load"}},
                    {"name": "dbhealth", "kind": "pg_health", "database": pg_url, "interval": 0.5, "timeout": 2.0}],
        "panels": {"error_rate": {"series": "db:errors", "unit": "ratio"},
                   "latency": {"series": "db:p95", "unit": "seconds"},
                   "cost": {"series": "db:cost", "unit": "usd_per_day"},
                   "extra": [{"title": "CPU", "series": "db:cpu", "unit": "percent",
                              "threshold": {"warn": 80.0, "critical": 95.0, "hold": 0}},
                             {"title": "Queue", "series": "db:queue", "unit": "count"}],
                   "components": {"sources": ["dbhealth"]}},
    }
    app = CockpitApp(config_from_dict(raw, "<t>", {}), mode="LIVE")
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.store.latest("db:cpu") is not None, 8, "the cpu reading")
        await wait_for(pilot, lambda: any(e.text.startswith("CPU CRIT 97.5% (>= 95.0%)") for e in app.events), 8,
                       "the CPU panel's own alert, its title as written")
        app.refresh_dashboard()
        await pilot.pause(0.2)
        assert not app.screen.query(HealthPanel)
        cpu = app.screen.query_one("#extra-0", SignalPanelWidget)
        assert str(cpu.border_title) == "CPU" and "97.5%" in cpu.render().plain and cpu.has_class("-crit")
        assert str(app.screen.query_one("#extra-1", SignalPanelWidget).border_title) == "Queue"
        assert app.screen.query_one(ComponentsPanel)
    with pytest.raises(Exception, match="title 'cpu' is used twice"):
        raw["panels"]["extra"].append({"title": "cpu", "series": "db:queue", "unit": "count"})
        config_from_dict(raw, "<t>", {})


async def test_a_poll_with_every_component_as_it_was_looks_at_no_row_and_a_change_is_drawn(demo_server):
    """A poll whose components all say what they said (their latencies aside) leaves every row
    of the table alone; one component that changes is drawn again, in the same refresh."""
    from cockpit.model import Reading

    clock = ManualClock(1_767_225_600.0)
    app = CockpitApp(demo_config(demo_server.url), mode="LIVE", poll=False, clock=clock)
    names = app.config.source("components").components

    def poll(states: dict[str, str]) -> None:
        clock.advance(1.0)
        app.on_readings("components", [
            Reading("components", f"component/{n}", clock.now(), 1.0, state=states.get(n, "healthy"),
                    detail="HTTP 200", latency=0.001 * clock.now() % 0.05) for n in names])
        app.refresh_dashboard()

    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one(ComponentsPanel).table
        poll({})
        await pilot.pause()
        drawn, looked_at = [], []
        set_row, get, refresh = table.set_row, app.store.get, app.screen.refresh_data
        table.set_row = lambda key, *cells: (drawn.append(key), set_row(key, *cells))

        def refresh_looking() -> None:  # the rows' series the refresh reads
            app.store.get = lambda key: (looked_at.append(key), get(key))[1]
            try:
                refresh()
            finally:
                app.store.get = get

        app.screen.refresh_data = refresh_looking
        for _ in range(3):
            poll({})
        assert drawn == []
        rows_looked_at = [k for k in looked_at if ":component/" in k]
        assert len(rows_looked_at) <= 3, rows_looked_at  # the freshness probe, not every row
        poll({names[1]: "degraded"})
        assert drawn == [f"components:component/{names[1]}"]
        assert "DEGRADED" in _row(app, f"components:component/{names[1]}")


async def test_the_palette_offers_the_cockpits_commands_and_only_this_modes_themes(demo_server):
    """Issue 17: the command palette had no cockpit commands and offered the drill theme in
    live mode. It offers every key that acts now by what it does (each action by its name);
    one that cannot act now (acknowledge, with no incident) is not offered."""
    from screens.confirm import ActionConfirm
    from screens.prompt import TextPrompt
    from themes import DRILL_THEME

    app = CockpitApp(demo_config(demo_server.url), mode="LIVE", armed=True, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert DRILL_THEME not in app.available_themes and "cockpit-high-contrast" in app.available_themes
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Declare", "Note", "Emergency mode", "Rollback", "Scale out", "Restore backup"} <= set(commands)
        assert "Acknowledge the incident" not in commands and "Export" not in commands
        assert commands["Rollback"].help == "key r"
        app.call_later(commands["Declare"].callback)
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"checkout slow", "enter")
        await pilot.pause()
        await app.journal_idle()
        await pilot.pause()
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Acknowledge the incident", "Export"} <= set(commands) and "Declare" not in commands
        app.call_later(commands["Rollback"].callback)
        await pilot.pause()
        assert isinstance(app.screen, ActionConfirm)
    drill = CockpitApp(demo_config(demo_server.url), mode="DRILL", armed=True, poll=False)
    async with drill.run_test(size=(120, 40)) as pilot:
        assert DRILL_THEME in drill.available_themes
