"""The components table: rows by key, only the lines of changed rows drawn again, the header
kept on top while the rows scroll, long details cut to the column."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from screens.statustable import StatusTable

COLUMNS = [("name", "Component", 10), ("status", "Status", 8), ("detail", "Detail", None)]


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield StatusTable(COLUMNS)


async def filled(pilot, n: int) -> StatusTable:
    """The app's table with ``n`` rows c0.. ("comp-i", "OK", "fine"), drawn."""
    table = pilot.app.query_one(StatusTable)
    for i in range(n):
        table.set_row(f"c{i}", f"comp-{i}", "OK", "fine")
    await pilot.pause()
    return table


def screen_lines(table: StatusTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_rows_by_key_header_on_top_and_scrolled_rows_drawn():
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = await filled(pilot, 100)
        assert table.row_count == 100 and list(table.rows)[:2] == ["c0", "c1"]
        lines = screen_lines(table)
        assert lines[0].split() == ["Component", "Status", "Detail"]
        assert lines[1].split() == ["comp-0", "OK", "fine"]

        table.set_row("c50", "comp-50", Text("DOWN"), "refused")  # out of view
        assert [str(c) for c in table.get_row("c50")] == ["comp-50", "DOWN", "refused"]
        table.scroll_to(y=50, animate=False)
        await pilot.pause()
        lines = screen_lines(table)
        assert lines[0].split() == ["Component", "Status", "Detail"]  # the header stays
        assert lines[1].split() == ["comp-50", "DOWN", "refused"]

        table.clear()
        await pilot.pause()
        assert table.row_count == 0


async def test_an_unchanged_row_keeps_its_line_and_a_changed_one_is_drawn_again():
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = await filled(pilot, 5)
        before = [table.render_line(y) for y in range(1, 6)]
        table.set_row("c1", "comp-1", "OK", "fine")  # the same cells: nothing to draw
        table.set_row("c3", "comp-3", "WARN", "slow")
        after = [table.render_line(y) for y in range(1, 6)]
        assert [a is b for a, b in zip(before, after)] == [True, True, True, False, True]
        assert after[3].text.split() == ["comp-3", "WARN", "slow"]
        # zebra stripes: odd rows have their own background
        assert before[0].text != "" and before[0]._segments[0].style != before[1]._segments[0].style


async def test_a_long_detail_is_cut_to_the_column_and_redrawn_at_a_new_width():
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(StatusTable)
        table.set_row("c", "a-very-long-component-name", "DEGRADED-LONG", "x" * 300)
        await pilot.pause()
        line = table.render_line(1)
        assert line.cell_length == table.size.width
        assert "…" in line.text and "x" * 30 in line.text
        await pilot.resize_terminal(40, 10)
        await pilot.pause()
        assert table.render_line(1).cell_length == table.size.width == 40


# ---------------------------------------------------------------- panels drawn line by line

from textual.content import Content  # noqa: E402
from textual.geometry import Region  # noqa: E402
from textual.visual import Visual  # noqa: E402

from cockpit.model import Level  # noqa: E402
from cockpit.signals.views import Freshness, SignalView  # noqa: E402
from screens.panels import SignalPanelWidget  # noqa: E402


class PanelApp(App):
    CSS = "SignalPanelWidget { border: round $primary; padding: 0 1; width: 32; height: 9; }"

    def compose(self) -> ComposeResult:
        yield SignalPanelWidget("error_rate")


def a_view(value: float, samples: list[float], threshold: str = "warn ≥5.0% · crit ≥10.0%") -> SignalView:
    level = Level.CRIT if value >= 0.1 else Level.WARN if value >= 0.05 else Level.OK
    return SignalView("Error rate", level, f"{value:.1%}", Freshness("ok", 1.0), threshold,
                      [("p99", f"{value * 3:.1%}")], samples,
                      [Level.CRIT if v >= 0.1 else Level.WARN if v >= 0.05 else Level.OK for v in samples])


def as_textual_draws_it(panel) -> list[list]:
    """The panel's body drawn whole, as Textual draws a widget's text."""
    strips = Visual.to_strips(panel, Content.from_rich_text(panel.render()), panel.size.width, None,
                              panel.visual_style)
    return [list(s) for s in strips]


async def test_a_panel_draws_again_only_the_rows_whose_lines_changed():
    app = PanelApp()
    async with app.run_test(size=(40, 12)) as pilot:
        panel = app.query_one(SignalPanelWidget)
        await pilot.pause()
        samples = [0.01, 0.02, 0.03] * 8
        panel.show(a_view(0.02, samples))
        await pilot.pause()
        height = panel.size.height
        before = [panel.render_line(y) for y in range(height)]
        assert [list(s) for s in before[:6]] == as_textual_draws_it(panel)[:6]

        panel.show(a_view(0.12, samples[1:] + [0.12]))  # a poll: new value, the sparkline moves
        after = [panel.render_line(y) for y in range(height)]
        kept = [a is b for a, b in zip(before, after)]
        assert kept[:6] == [False, False, True, False, False, True]  # thresholds and the blank row kept
        assert [list(s) for s in after[:6]] == as_textual_draws_it(panel)[:6]
        await pilot.pause()
        width, outer = panel.outer_size.width, panel.outer_size.height
        drawn = [strip.text for strip in panel.render_lines(Region(0, 0, width, outer))]
        assert "✖ CRIT  12.0%" in drawn[1] and "p99 36.0%" in drawn[2], drawn


async def test_a_panel_whose_line_wraps_is_drawn_as_textual_draws_it():
    app = PanelApp()
    async with app.run_test(size=(40, 12)) as pilot:
        panel = app.query_one(SignalPanelWidget)
        await pilot.pause()
        long = "warn ≥5.0% · crit ≥10.0% · page the database team first"
        panel.show(a_view(0.06, [0.06] * 30, long))
        rows = [list(panel.render_line(y)) for y in range(panel.size.height)]
        whole = as_textual_draws_it(panel)
        assert len(whole) > len(panel.render().plain.split("\n"))  # the threshold line wraps
        assert rows[:len(whole)] == whole[:panel.size.height]
