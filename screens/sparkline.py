"""A sparkline that draws a missing sample as a gap, never as a zero."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence

from rich.style import Style
from rich.text import Text

from cockpit.model import CHANGE_GLYPH

BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(
    values: Sequence[float | None],
    width: int,
    height: int = 1,
    style_for: Callable[[int], Style | str] | None = None,
    floor: float = 0.0,
    ceiling: float | None = None,
    marks: Collection[int] = (),
    mark_style: Style | str = "bold",
) -> list[Text]:
    """Rows of a sparkline, top row first, right-aligned to ``width`` columns.

    Each value is one column; None is a blank column. A present value, even
    zero, always draws at least the lowest block, so a gap and a zero differ.
    ``style_for(i)`` styles the column of ``values[i]``. The column of each index in
    ``marks`` (a change: a deploy, an action) has a ◆ in its top row, in ``mark_style``
    (with one row, the ◆ stands in for the value).
    """
    width = max(0, width)
    # a value that is not a finite number cannot be drawn: it is a gap
    shown = [v if v is not None and math.isfinite(v) else None for v in list(values)[-width:]] if width else []
    present = [v for v in shown if v is not None]
    top = max(present, default=0.0)
    if ceiling is not None:
        top = max(top, ceiling)
    span = top - floor
    eighths_total = height * 8
    # each row as runs of columns in one style: one span per run, not one per column (a
    # panel's sparkline is redrawn on every poll, and each span costs its own styling)
    cells: list[list[str]] = [[" " * (width - len(shown))] for _ in range(height)]
    runs: list[tuple[Style | str, int]] = [("", 1)]  # (style, how many cells of each row)
    offset = len(values) - len(shown)
    for i, v in enumerate(shown):
        if v is None:
            style: Style | str = ""
            for row in cells:
                row.append(" ")
        else:
            style = style_for(offset + i) if style_for else ""
            frac = (v - floor) / span if span > 0 else 0.0
            units = max(1, min(eighths_total, round(frac * eighths_total)))
            for r, row in enumerate(cells):
                level_from_bottom = height - 1 - r
                row.append(BLOCKS[max(0, min(8, units - level_from_bottom * 8))])
        if offset + i in marks:
            cells[0][-1] = CHANGE_GLYPH
            style = mark_style
        if style == runs[-1][0]:
            runs[-1] = (style, runs[-1][1] + 1)
        else:
            runs.append((style, 1))
    rows = []
    for row in cells:
        text, at = Text(), 0
        for style, n in runs:
            text.append("".join(row[at:at + n]), style)
            at += n
        rows.append(text)
    return rows
