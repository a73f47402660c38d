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


def screen_lines(table: StatusTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_rows_by_key_header_on_top_and_scrolled_rows_drawn():
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(StatusTable)
        for i in range(100):
            table.set_row(f"c{i}", f"comp-{i}", "OK", "fine")
        await pilot.pause()
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
        table = app.query_one(StatusTable)
        for i in range(5):
            table.set_row(f"c{i}", f"comp-{i}", "OK", "fine")
        await pilot.pause()
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
