"""A table drawn line by line, for a fleet's statuses: only the rows in view are rendered,
each row's line is kept until that row changes, and a changed row repaints its own line.

When a hundred components flip during an outage, Textual's DataTable dropped its whole
render cache on every cell update and re-rendered every visible cell, several frames in a
row; here a flip costs one cached line per changed row in view. Rows are added and updated
by key, never reordered; the header stays on top while the rows scroll under it.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

PAD = 1  # blank cells either side of a column
REST_AT_LEAST = 12  # columns a fitted column leaves to the one that takes the rest (a detail)


class StatusTable(ScrollView, can_focus=True):
    """Columns of fixed width, of the width of their widest cell (``width`` negative: at
    most ``-width`` columns, leaving REST_AT_LEAST to the last), and one that takes
    what is left (``width`` None). Focused, up/down move a cursor and enter posts
    :class:`StatusTable.Chosen` with the row's key (its whole text is the app's to show)."""

    BINDINGS = [Binding("up", "cursor(-1)", show=False), Binding("down", "cursor(1)", show=False),
                Binding("enter", "choose", "Whole row", show=False)]

    class Chosen(Message):
        def __init__(self, table: StatusTable, key: str) -> None:
            super().__init__()
            self.table, self.key = table, key

    COMPONENT_CLASSES = {"status-table--header", "status-table--odd-row"}
    DEFAULT_CSS = """
    StatusTable {
        background: $surface;
        overflow-x: hidden;
    }
    StatusTable > .status-table--header {
        text-style: bold;
        background: $panel;
        color: $foreground;
    }
    StatusTable > .status-table--odd-row {
        background: $surface-lighten-1;
    }
    """

    def __init__(self, columns: list[tuple[str, str, int | None]], **kw) -> None:
        super().__init__(**kw)
        self.columns = columns  # (key, label, width or None for the rest)
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._lines: dict[str, Strip] = {}  # each row's line at the current width and styles
        self._header: Strip | None = None
        self._width = -1
        self._fit: dict[int, int] = {}  # a fitted column's widest cell so far
        self.cursor: int | None = None  # the row the cursor is on (shown while focused)

    # ------------------------------------------------------------ rows

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def rows(self) -> dict[str, None]:
        """The row keys, in the order the rows were added."""
        return dict.fromkeys(self._keys)

    def get_row(self, key: str) -> list[Text]:
        return list(self._cells[key])

    def set_row(self, key: str, *cells: Text | str) -> None:
        """Add a row at the bottom, or replace the cells of an existing one."""
        row = tuple(c if isinstance(c, Text) else Text(c) for c in cells)
        for n, (_, label, w) in enumerate(self.columns):
            if w is not None and w < 0 and row[n].cell_len > self._fit.get(n, len(label)):
                self._fit[n] = row[n].cell_len  # wider: every line again
                self._lines.clear()
                self._header = None
                self.refresh()
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._keys)
            self._keys.append(key)
            self._cells[key] = row
            if self.cursor is None and self.has_focus:  # focused while empty: the cursor on the first row
                self.cursor = i
            self.virtual_size = Size(self.virtual_size.width, len(self._keys) + 1)  # + the header
        else:
            if self._cells[key] == row:
                return
            self._cells[key] = row
            self._lines.pop(key, None)
        y = i + 1 - self.scroll_offset.y  # the row's line on screen, under the header
        if 0 < y < self.size.height or not self.size.height:
            self.refresh_line(i + 1)  # a row out of view is drawn when scrolled to

    def remove_row(self, key: str) -> None:
        """Take a row out (an alert that is over); the rows under it move up one line.
        Rare, so every line is drawn again (the odd rows' shading moves)."""
        i = self._index.pop(key, None)
        if i is None:
            return
        del self._keys[i]
        del self._cells[key]
        for k in self._keys[i:]:
            self._index[k] -= 1
        self._lines.clear()
        if self.cursor is not None and (self.cursor > i or self.cursor >= len(self._keys)):
            self.cursor = self.cursor - 1 if self._keys else None
        self.virtual_size = Size(self.virtual_size.width, len(self._keys) + 1)
        self.refresh()

    @property
    def highlighted(self) -> str | None:
        """The key of the row the cursor is on (None: no row, or the cursor never came)."""
        if self.cursor is None or not 0 <= self.cursor < len(self._keys):
            return None
        return self._keys[self.cursor]

    def clear(self) -> None:
        self.cursor = None
        self._keys.clear()
        self._index.clear()
        self._cells.clear()
        self._lines.clear()
        self.virtual_size = Size(self.virtual_size.width, 1)
        self.refresh()

    # ------------------------------------------------------------ drawing

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()  # a theme change: every line again
        self._header = None

    def _widths(self, width: int) -> list[int]:
        room = max(1, width - 2 * PAD * len(self.columns))
        spare = room - sum(w for _, _, w in self.columns if w is not None and w >= 0) - REST_AT_LEAST
        sized = [w if w is None or w >= 0 else
                 max(len(label), min(-w, spare, self._fit.get(n, len(label))))
                 for n, (_, label, w) in enumerate(self.columns)]
        rest = max(1, room - sum(w for w in sized if w is not None))
        return [w if w is not None else rest for w in sized]

    # ------------------------------------------------------------ the cursor

    def action_cursor(self, step: int) -> None:
        if not self._keys:
            return
        was = self.cursor
        self.cursor = max(0, min(len(self._keys) - 1, (self.cursor if self.cursor is not None else -1) + step))
        for i in {was, self.cursor} - {None}:
            self._repaint_row(i)
        top, rows = self.scroll_offset.y, max(1, self.size.height - 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False)

    def action_choose(self) -> None:
        if self._keys:
            self.post_message(self.Chosen(self, self._keys[self.cursor or 0]))

    def on_focus(self) -> None:
        if self.cursor is None and self._keys:
            self.action_cursor(0)
        self._repaint_row(self.cursor)

    def on_blur(self) -> None:
        self._repaint_row(self.cursor)

    def _repaint_row(self, i: int | None) -> None:
        """Draw row ``i`` again (the cursor came or went)."""
        if i is not None and i < len(self._keys):
            self._lines.pop(self._keys[i], None)
            self.refresh_line(i + 1)

    def _strip(self, cells: tuple[Text, ...] | list[Text], width: int, base: Style) -> Strip:
        segments: list[Segment] = []
        pad = Segment(" " * PAD)
        for cell, w in zip(cells, self._widths(width)):
            text = cell.copy()
            text.no_wrap = True
            text.truncate(w, overflow="ellipsis", pad=True)
            segments.append(pad)
            segments.extend(text.render(self.app.console))
            segments.append(pad)
        return Strip(segments).apply_style(base).adjust_cell_length(width, base)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if width != self._width:
            self._width = width
            self._lines.clear()
            self._header = None
        base = self.rich_style
        if y == 0:
            if self._header is None:
                style = base + self.get_component_rich_style("status-table--header")
                self._header = self._strip([Text(label) for _, label, _ in self.columns], width, style)
            return self._header
        i = y - 1 + self.scroll_offset.y
        if i >= len(self._keys):
            return Strip.blank(width, base)
        key = self._keys[i]
        line = self._lines.get(key)
        if line is None:
            style = base + self.get_component_rich_style("status-table--odd-row") if i % 2 else base
            if i == self.cursor and self.has_focus:
                style = style + Style(reverse=True)
            line = self._lines[key] = self._strip(self._cells[key], width, style)
        return line
