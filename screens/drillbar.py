"""The drill's progress bar: where the replay is on its tape, with the recorded
incident's milestones marked (D declared, A acknowledged, M mitigated, R resolved)."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from cockpit.clock import hms
from screens.panels import theme_color


def bar_cells(width: int, begin: float, end: float, position: float,
              marks: list[tuple[float, str]]) -> list[tuple[str, bool]]:
    """``width`` cells: (character, passed). Milestones take the cell of their time."""
    span = max(end - begin, 1e-9)
    done = round((position - begin) / span * width)
    cells = [("━" if i < done else "─", i < done) for i in range(width)]
    for t, mark in marks:
        i = min(width - 1, max(0, int((t - begin) / span * width)))
        cells[i] = (mark, i < done)
    return cells


class DrillBar(Widget):
    """One line under the header, only in a drill replaying a tape."""

    DEFAULT_CSS = "DrillBar { height: 1; padding: 0 1; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.state: tuple = ()

    def show(self, begin: float, end: float, position: float, marks: list[tuple[float, str]]) -> None:
        state = (begin, end, round(position, 1), tuple(marks))
        if state != self.state:
            self.state = state
            self.refresh()

    def render(self) -> Text:
        out = Text(no_wrap=True)
        if not self.state:
            return out
        begin, end, position, marks = self.state
        left, right = f"DRILL {hms(begin)} ", f" {hms(position)} / {hms(end)}"
        width = max(10, self.content_size.width - len(left) - len(right))
        warn = Style(color=theme_color(self, "warning"), bold=True)
        out.append(left, warn)
        for ch, passed in bar_cells(width, begin, end, position, list(marks)):
            if ch.isalpha():
                out.append(ch, Style(color=theme_color(self, "error"), bold=True, reverse=passed))
            else:
                out.append(ch, warn if passed else "dim")
        out.append(right, warn)
        return out
