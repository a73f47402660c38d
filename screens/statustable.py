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
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

PAD = 1  # blank cells either side of a column


class StatusTable(ScrollView, can_focus=True):
    """Columns of fixed width and one that takes what is left (``width`` None)."""

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
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._keys)
            self._keys.append(key)
            self._cells[key] = row
            self.virtual_size = Size(self.virtual_size.width, len(self._keys) + 1)  # + the header
        else:
            if self._cells[key] == row:
                return
            self._cells[key] = row
            self._lines.pop(key, None)
        y = i + 1 - self.scroll_offset.y  # the row's line on screen, under the header
        if 0 < y < self.size.height or not self.size.height:
            self.refresh_line(i + 1)  # a row out of view is drawn when scrolled to

    def clear(self) -> None:
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
        fixed = sum(w for _, _, w in self.columns if w is not None)
        rest = max(1, width - fixed - 2 * PAD * len(self.columns))
        return [w if w is not None else rest for _, _, w in self.columns]

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
            line = self._lines[key] = self._strip(self._cells[key], width, style)
        return line
