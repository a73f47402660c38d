"""Issue 17: nothing cut without a way to read it. Enter on a panel, a component row or a
timeline line opens its whole text (scrollable, selectable); component names are as wide
as the widest, and the Component and Status columns never scroll out of view."""

from __future__ import annotations

import pytest
from apphelpers import frozen_demo, prefilled_app, settle

from screens.detail import DetailScreen
from screens.panels import SignalPanelWidget, TimelinePane
from screens.statustable import StatusTable

LONG = "monitoring-api-production-eu-west-1"


@pytest.fixture
def app():
    server, clock = frozen_demo(seed=7, fault_at=20.0)
    try:
        import asyncio

        yield asyncio.run(prefilled_app(server, clock, seconds=40))
    finally:
        server.stop()


async def test_enter_opens_the_whole_text_of_a_row_a_line_and_a_panel(app):
    async with app.run_test(size=(80, 24)) as pilot:
        app.refresh_dashboard()
        await settle(pilot)
        table = app.screen.query_one(StatusTable)
        assert app.focused is table  # the lists have the focus first
        api = [table.render_line(y).text for y in range(table.size.height) if " api " in table.render_line(y).text]
        assert api and "v1.5.0: 5xx on /api/v1/process" not in api[0]  # the row cuts it at 80 columns
        await pilot.press("enter")  # the cursor starts on the first row: api
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        shown = app.screen.query_one("#detail-text").text
        assert shown.startswith("api: UNHEALTHY since ") and shown.endswith("v1.5.0: 5xx on /api/v1/process")
        await pilot.press("escape")
        await settle(pilot)

        await pilot.press("tab")  # the timeline: enter on a journaled line shows what the journal holds
        timeline = app.screen.query_one(TimelinePane)
        ol = timeline.query_one("TimelineList")
        declared = next(i for i in range(ol.option_count) if "declared automatically" in timeline.event_at(i).text)
        ol.highlighted = declared
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        shown = app.screen.query_one("#detail-text").text
        assert "incident_declared by " in shown and '"auto": true' in shown and '"title": ' in shown
        await pilot.press("escape")
        await settle(pilot)

        panel = app.screen.query_one("#error-rate", SignalPanelWidget)
        panel.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        shown = app.screen.query_one("#detail-text").text
        assert "CRIT" in shown and "warn ≥5.0%" in shown and "updated" in shown


@pytest.mark.parametrize("size,name", [((120, 40), "monitoring-api-prod-eu-1"), ((200, 60), LONG)])
async def test_component_names_are_never_cut_when_there_is_room(app, size, name):
    """(They were cut at 16: `monitoring-api-p`.)"""
    async with app.run_test(size=size) as pilot:
        table = app.screen.query_one(StatusTable)
        table.set_row("components:long", name, "● HEALTHY", "00:00:01", "HTTP 200")
        await settle(pilot)
        lines = [table.render_line(y).text for y in range(table.size.height)]
        assert any(name in line and "HEALTHY" in line for line in lines), lines
        assert lines[0].lstrip().startswith("Component") and "Status" in lines[0]
        await pilot.press("end")  # no sideways scroll hides the Component and Status columns
        await settle(pilot)
        assert table.scroll_offset.x == 0
        assert table.render_line(0).text.lstrip().startswith("Component")


@pytest.mark.parametrize("width, clock", [(160, True), (120, False)])
async def test_with_an_incident_the_header_drops_its_utc_clock_first(app, width, clock):
    """At 120 columns with an incident open the UTC clock is the first part to go (the least
    needed); everything else of the widest header still fits."""
    from screens.header import CockpitHeader

    async with app.run_test(size=(width, 40)) as pilot:
        app.refresh_dashboard()
        await settle(pilot)
        line = app.screen.query_one(CockpitHeader).render().plain
        assert app.desk.current is not None and f"{app.desk.current} DECLARED T+" in line, line
        assert ("UTC" in line) is clock, line
        assert "checkout-api · demo" in line and "SEV P1? (S)" in line and "ack due in" in line, line


@pytest.mark.parametrize("width", [120, 80])
async def test_a_graver_suggestion_after_a_severity_set_by_hand_is_shown_beside_it(app, width):
    """Seen under QA: severity set to P2 by hand, then the service went down and P0 was
    suggested; the timeline said so, the header still said only SEV P2."""
    from screens.header import CockpitHeader

    async with app.run_test(size=(width, 40)) as pilot:
        app.desk_do(app.desk.set_severity, "P2", "only EU affected")
        await settle(pilot)

        def header() -> str:
            app.refresh_dashboard()
            return app.screen.query_one(CockpitHeader).render().plain

        assert "P2" in header() and "?" not in header()
        app.clock.advance(5)
        app.desk_do(app.desk.suggest, "P0", "every critical health check down")
        await settle(pilot)
        line = header()
        said = ("SEV P2", "P0? (S)") if width == 120 else ("P2", "P0?")
        assert all(w in line for w in said) and line.index(said[0]) < line.index(said[1]), line
        if width == 120:  # the update countdown outlasts the whole incident id (it went first, with room left)
            assert "update in" in line and app.desk.current not in line, line
        app.desk_do(app.desk.set_severity, "P0", "", True)  # taken: no question left
        await settle(pilot)
        line = header()
        assert "P0" in line and "?" not in line, line
        app.clock.advance(5)
        app.desk_do(app.desk.suggest, "P3", "cost warning")  # milder than the one set: nothing to say
        await settle(pilot)
        assert "?" not in header()


@pytest.mark.parametrize("size", [(80, 24), (70, 20)])
async def test_a_failing_source_keeps_the_age_of_its_last_value_on_a_narrow_panel(app, size):
    """Seen under QA at 80x24: the borders read "◌ ERROR · d…", the age of the "last 21.6%"
    shown cut off. The age stays; the words go first."""
    from cockpit.model import Reading, Status

    async with app.run_test(size=size) as pilot:
        app.clock.advance(20)
        for series in ("error_rate", "latency_p95", "cost_per_day"):
            app.on_readings("metrics", [Reading("metrics", series, app.clock.now(), status=Status.ERROR,
                                                error="connection refused")])
        app.refresh_dashboard()
        await settle(pilot)
        for selector in ("#error-rate", "#latency", "#cost"):
            panel = app.screen.query_one(selector)
            subtitle = str(panel.border_subtitle)
            assert subtitle.endswith("20s old") and len(subtitle) <= panel.outer_size.width - 6, subtitle


async def test_resolving_while_signals_still_fire_says_so_first(app):
    """Seen under QA: R while error rate, latency and cost were CRIT asked only about the
    acknowledgement; resolved, a new incident was declared 4 s later on the same alerts."""
    from screens.prompt import Confirm

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        assert isinstance(app.screen, Confirm)
        notes = str(app.screen.query_one("#confirm-notes").render())
        assert "still firing: error rate CRIT" in notes and "still firing: latency CRIT" in notes, notes
        assert notes.index("still firing") < notes.index("never acknowledged"), notes
        await pilot.press("escape")


async def test_a_rows_since_is_when_the_readings_said_it_changed_not_when_it_was_drawn(app):
    """Seen under QA: after a drill's seek forward the components table said api UNHEALTHY
    since the seek's time, while the timeline said when it happened. The cockpit drawn late
    (here: its first frame after 40 polls) showed the same."""
    from cockpit.clock import hms
    from screens.panels import ComponentsPanel

    async with app.run_test(size=(120, 40)) as pilot:
        app.refresh_dashboard()
        await settle(pilot)
        went = [line for line in app.events if line.text.startswith("component api ") and "→" in line.text]
        assert went, [line.text for line in app.events]
        table = app.screen.query_one(ComponentsPanel).table
        row = next(k for k in table.rows if str(getattr(k, "value", k)).endswith("component/api"))
        cells = [getattr(c, "plain", str(c)) for c in table.get_row(row)]
        assert cells[2] == hms(went[-1].ts) != hms(app.clock.now()), (cells, [line.text for line in went])
