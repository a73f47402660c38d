"""The dashboard's panel widgets. They draw views from ``cockpit.signals.views``; they
hold no rules of their own about levels or freshness."""

from __future__ import annotations

from collections.abc import Iterable

from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.content import Content
from textual.containers import Vertical
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import Reactive
from textual.strip import Strip
from textual.visual import Visual
from textual.widget import Widget
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from cockpit.clock import hms
from cockpit.model import CHANGE_GLYPH, STALE_GLYPH, TIMELINE_KEPT, Level, TimelineEvent
from cockpit.signals.views import CheckView, SignalView, worst
from screens.sparkline import sparkline
from screens.statustable import StatusTable


DETAIL_MAX = 200  # characters of a component's detail kept (the table cuts it to the column)
_colors: dict[tuple[str, str], RichColor | None] = {}


def theme_color(widget, var: str) -> RichColor | None:
    """A theme variable as a Rich colour; translucent colours are blended over the background."""
    key = (widget.app.theme, var)
    if key not in _colors:
        _colors[key] = _theme_color(widget.app.theme_variables, var)
    return _colors[key]


def _theme_color(tv: dict[str, str], var: str) -> RichColor | None:
    value = tv.get(var)
    if value is None:
        return None
    try:
        color = Color.parse(value)
        if color.a < 1:
            color = Color.parse(tv.get("background", "#000000")) + color
    except Exception:  # noqa: BLE001 - a theme with an odd value must not crash the dashboard
        return None
    return color.rich_color


def level_style(widget, level: Level, bold: bool = False) -> Style:
    return Style(color=theme_color(widget, level.style_var), bold=bold)


def set_level_classes(widget, level: Level, fresh: str) -> None:
    widget.set_class(fresh == "ok" and level is Level.WARN, "-warn")
    widget.set_class(fresh == "ok" and level is Level.CRIT or fresh == "unreachable", "-crit")
    widget.set_class(fresh in ("stale", "error"), "-stale")


class LinePanel(Widget, can_focus=True):
    """A panel whose body (:meth:`render`, a few lines of text) is drawn line by line: each
    line is kept as drawn until its text changes, and :meth:`redraw` repaints only the rows
    that look different. A poll changes a value and a sparkline, not the thresholds, the
    blank rows or the border, and those were drawn again on every poll, each time through
    the whole body's layout as text.

    A line that fits its row is drawn as Textual draws a line of text (the same segments,
    styles and offsets for a mouse selection); a body with a line that wraps, or under a
    mouse selection, is drawn whole, as Textual draws it."""

    BINDINGS = [Binding("enter", "choose", "Whole text", show=False)]

    class Chosen(Message):
        """Enter on a panel: the app shows its whole text."""

        def __init__(self, panel: LinePanel) -> None:
            super().__init__()
            self.panel = panel

    def action_choose(self) -> None:
        self.post_message(self.Chosen(self))

    def subtitle_room(self) -> int | None:
        """Cells the border's subtitle has ("┗━ " and " ━┛" around it), None before layout."""
        width = self.outer_size.width
        return width - 6 if width > 6 else None

    def whole_text(self) -> tuple[str, str]:
        """(title, the panel's whole text: what its rows cut)."""
        return str(self.border_title or ""), self.render().plain

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._rows: list[Strip] = []  # the body as drawn, row by row
        self._lines: list[tuple[Text, Strip]] = []  # each line of it with its row
        self._drawn_as: tuple | None = None  # (width, style, selection) the rows were drawn with

    def redraw(self) -> None:
        """The body changed: draw it and repaint the rows that look different."""
        if not self.size.width:
            self.refresh()  # not laid out yet: drawn when it is
            return
        for y in self._draw():
            self.refresh(Region(0, y, self.size.width, 1))

    def _draw(self) -> list[int]:
        """Draw the body's rows; returns the rows that changed."""
        width, style, selection = self.size.width, self.visual_style, self.text_selection
        if (width, style, selection) != self._drawn_as:
            self._lines, self._drawn_as = [], (width, style, selection)
        body = self.render()
        lines = self._line_by_line(body, width, style) if selection is None else None
        if lines is None:  # a line wraps, or a selection: the whole body, as Textual draws it
            self._lines, rows = [], Visual.to_strips(self, Content.from_rich_text(body), width, None, style)
        else:
            self._lines, rows = lines, [row for _, row in lines]
        old, self._rows = self._rows, rows
        return [y for y in range(max(len(old), len(rows))) if y >= len(old) or y >= len(rows) or old[y] != rows[y]]

    def _line_by_line(self, body: Text, width: int, style) -> list[tuple[Text, Strip]] | None:
        """Each line of the body with its row: kept when its text is the same, drawn when
        not; None when a line does not fit its row."""
        lines = []
        for y, line in enumerate(body.split("\n", allow_blank=True)):
            kept = self._lines[y] if y < len(self._lines) else None
            row = kept[1] if kept is not None and kept[0] == line else self._row(line, y, width, style)
            if row is None:
                return None
            lines.append((line, row))
        return lines

    @staticmethod
    def _row(line: Text, y: int, width: int, style) -> Strip | None:
        """Line ``y`` of the body drawn on its row, as Textual's Content draws a left-aligned
        line that fits: each piece in the base style plus its own, with its offset (a mouse
        selection finds the text by it). None when it does not fit (it wraps) or holds a tab."""
        content = Content.from_rich_text(line)
        if content.cell_length > width or "\t" in content.plain:
            return None
        segments, x = [], 0
        for text, text_style in content.render(style, end=""):
            segments.append(Segment(text, (style + text_style).rich_style_with_offset(x, y)))
            x += len(text)
        return Strip(segments, content.cell_length)

    def render_line(self, y: int) -> Strip:
        if (self.size.width, self.visual_style, self.text_selection) != self._drawn_as:
            self._draw()  # resized, restyled (a theme) or selected: every row is being painted anyway
        if y < len(self._rows):
            return self._rows[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)


class SignalPanelWidget(LinePanel):
    """A numeric signal: badge (glyph + word), value, thresholds, sparkline, freshness."""

    def __init__(self, role: str, **kw) -> None:
        super().__init__(**kw, classes="panel")
        self.role = role
        self.view: SignalView | None = None

    def show(self, view: SignalView) -> None:
        label = view.fresh.label(self.subtitle_room())
        if self.border_subtitle != label:
            self.border_subtitle = label
        if self.view is not None and view.drawn() == self.view.drawn():
            return
        if self.view is None or view.title != self.view.title:
            self.border_title = Content(view.title)  # plain text: a '[' in a title is not markup
        self.view = view
        set_level_classes(self, view.level, view.fresh.status)
        self.redraw()

    def render(self) -> Text:
        return self._render_view(self.view) if self.view is not None else Text("waiting for first poll", "dim")

    def whole_text(self) -> tuple[str, str]:
        v = self.view
        if v is None:
            return super().whole_text()
        lines = [f"{v.badge}  {v.value_text}", *(f"{k} {val}" for k, val in v.extras), v.threshold_text,
                 v.fresh.label()]
        if v.fresh.error:
            lines += ["", v.fresh.error]
        return v.title, "\n".join(lines)

    def _render_view(self, v: SignalView) -> Text:
        width = max(10, self.content_size.width)
        fresh_ok = v.fresh.status == "ok"
        badge_level = v.level if fresh_ok else Level.UNKNOWN
        out = Text()
        out.append(v.badge, level_style(self, badge_level, bold=True))
        out.append("  ")
        out.append(v.value_text, Style(bold=fresh_ok, dim=not fresh_ok))
        out.append("\n")
        if v.extras:
            out.append("  ".join(f"{k} {val}" for k, val in v.extras) + "\n", Style(dim=not fresh_ok))
        else:
            out.append("\n")
        out.append(v.threshold_text + "\n", "dim")
        styles = {lv: level_style(self, lv) for lv in Level}
        styles[Level.OK] = Style(color=theme_color(self, "primary"))
        rows = sparkline(v.samples, width, height=2, style_for=lambda i: styles[v.sample_levels[i]],
                         ceiling=v.ceiling, marks=v.marks,
                         mark_style=Style(bold=True, color=theme_color(self, "accent")))
        for row in rows:
            out.append_text(row)
            out.append("\n")
        if v.fresh.status in ("error", "stale") and v.fresh.error:
            out.append(_clip(v.fresh.error, width), level_style(self, Level.CRIT if v.fresh.status == "error" else Level.WARN))
        return out


class HealthPanel(LinePanel):
    """Health checks: one line per check (glyph + word + detail), response-time sparkline."""

    def __init__(self, title: str = "Health", **kw) -> None:
        super().__init__(**kw, classes="panel")
        self.border_title = Content(title)
        self.checks: list[CheckView] = []
        self.response_times: list[float | None] = []
        self._drawn: tuple | None = None

    def show(self, checks: list[CheckView], response_times: list[float | None]) -> None:
        label = checks[0].fresh.label(self.subtitle_room()) if checks else ""
        if self.border_subtitle != label:
            self.border_subtitle = label
        drawn = ([c.drawn() for c in checks], response_times)
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.checks, self.response_times = checks, response_times
        overall = worst([c.level for c in checks])
        unreachable = any(c.state == "UNREACHABLE" for c in checks)
        all_stale = bool(checks) and all(c.fresh.status in ("stale", "error") and c.state != "UNREACHABLE" for c in checks)
        set_level_classes(self, overall, "unreachable" if unreachable else "stale" if all_stale else "ok")
        self.redraw()

    def whole_text(self) -> tuple[str, str]:
        return str(self.border_title or "Health"), "\n\n".join(
            f"{c.name}: {c.state}" + (f"\n{c.detail}" if c.detail else "") + (f"\n{c.fresh.error}" if c.fresh.error
                                                                           and c.fresh.error != c.detail else "")
            for c in self.checks) or "no checks yet"

    def render(self) -> Text:
        checks, width = self.checks, max(10, self.content_size.width)
        overall = worst([c.level for c in checks])
        out = Text()
        up = sum(1 for c in checks if c.level is Level.OK)
        out.append(f"{overall.glyph} {up}/{len(checks)} up" if checks else "no checks", level_style(self, overall, True))
        out.append("\n")
        shown = 2 if len(checks) <= 2 else 3
        for c in checks[:shown]:
            out.append(f"{c.level.glyph} {c.state} ", level_style(self, c.level, True))
            lat = f" · {c.latency * 1000:.0f}ms" if c.latency is not None else ""
            out.append(_clip(f"{c.name}{lat}", width - len(c.state) - 3) + "\n")
            if shown == 2:
                out.append(_clip(c.detail, width) + "\n", "dim")
        if len(checks) > shown:
            out.append(f"… {len(checks) - shown} more\n", "dim")
        while out.plain.count("\n") < 4:
            out.append("\n")
        peak = max((v for v in self.response_times[-width:] if v is not None), default=None)
        out.append(_clip(f"response time, peak {peak * 1000:.0f}ms" if peak is not None else "response time", width)
                   + "\n", "dim")
        style = Style(color=theme_color(self, "primary"))
        for row in sparkline(self.response_times, width, height=2, style_for=lambda i: style):
            out.append_text(row)
            out.append("\n")
        return out


class ComponentsPanel(Vertical):
    """Component status table, updated row by row by key."""

    def __init__(self, title: str = "Components", **kw) -> None:
        super().__init__(**kw, classes="panel")
        self._title = title
        self.border_title = Content(title)
        self._shown: dict[str, tuple] = {}
        self._changed: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        # the names as wide as the widest (up to 40, leaving the detail 12): never cut when there is room
        yield StatusTable([("name", "Component", -40), ("status", "Status", 13), ("since", "Since", 8),
                           ("detail", "Detail", None)], id="components-table")

    @property
    def table(self) -> StatusTable:
        return self.query_one(StatusTable)

    def shown(self, key: str) -> tuple | None:
        """(level, state, whole detail) of a row as last shown (the table cuts the detail)."""
        return self._shown.get(key)

    def set_subtitle(self, subtitle: str) -> None:
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle

    def show_rows(self, rows: list[tuple[str, CheckView]], every: Iterable[CheckView], now: float,
                  since=lambda key, state: None) -> None:
        """Add new rows and update the cells of changed ones; ``every`` is the current view
        of all rows, for the summary in the title. ``since(key, state)``: when the readings
        say the row entered its state (else it is when the row first shows it)."""
        table = self.table
        for key, v in rows:
            cells = (v.level, v.state, v.detail)
            old = self._shown.get(key)
            if old == cells:
                continue
            if old is None or old[1] != v.state:
                self._changed[key] = since(key, v.state.lower()) or now
            glyph = STALE_GLYPH if v.state in ("STALE", "ERROR") else v.level.glyph
            status = Text(f"{glyph} {v.state}", level_style(self, v.level, bold=v.level >= Level.WARN))
            table.set_row(key, v.name, status, hms(self._changed[key]), _clip(v.detail, DETAIL_MAX))
            self._shown[key] = cells
        counts = {lv: 0 for lv in Level}
        total = 0
        for v in every:
            counts[v.level] += 1
            total += 1
        overall = worst([lv for lv in Level if counts[lv]])
        set_level_classes(self, overall, "ok")
        self.border_title = Content(
            f"{self._title} {overall.glyph} {counts[Level.OK]}/{total} healthy"
            + (f" · {counts[Level.CRIT]} down" if counts[Level.CRIT] else "")
            + (f" · {counts[Level.WARN]} degraded" if counts[Level.WARN] else "")
            + (f" · {counts[Level.UNKNOWN]} unknown" if counts[Level.UNKNOWN] else "")
        )


TIMELINE_FILTERS = {
    "all": None,
    "alerts": {"alert", "incident", "severity"},
    "changes": {"change", "action"},
    "actions": {"action", "status"},
    "notes": {"note"},
}


class TimelineList(OptionList):
    """The timeline's lines. Its size is the pane's (``1fr``), whatever it holds, so a line
    added changes only how far it scrolls: the list and its scrollbar are redrawn, the
    screen is not laid out again (an OptionList's growing virtual size asks for a layout of
    the whole screen, which then repaints every panel: most of a frame's cost when a
    hundred alerts land at once). A scrollbar appearing or going still lays out (the
    content narrows by its width)."""

    virtual_size = Reactive(Size(0, 0), layout=False)

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        """The scrollbar came or went: the lines are wrapped again to the width left (wrapped
        before it came, the ends of the longest lines were drawn under it)."""
        self._clear_caches()


class TimelinePane(Vertical):
    """The incident timeline, newest at the bottom, filtered by kind."""

    MAX_SHOWN = TIMELINE_KEPT  # lines at most; older ones are in the journal (and the postmortem)
    OLDER = "older lines: in the journal · x postmortem"  # said once older lines are not shown
    filter = "all"
    ghosts = False  # a drill's ghost lines (the original responders' acts), shown with G

    def shows(self, ev: TimelineEvent) -> bool:
        if ev.kind == "ghost":
            return self.ghosts
        kinds = TIMELINE_FILTERS[self.filter]
        return kinds is None or ev.kind in kinds

    def set_filter(self, name: str, events: list[TimelineEvent]) -> None:
        """Show only one kind of line; rebuilt from the app's record (its newest lines)."""
        self.filter = name
        self.border_title = "Timeline" if name == "all" else f"Timeline · {name} only (f: next filter)"
        self.query_one(OptionList).clear_options()
        self._times, self._events = [], []
        self.add(events[-self.MAX_SHOWN:])
        self.border_subtitle = self.OLDER if getattr(events, "dropped", 0) or len(events) > self.MAX_SHOWN else ""

    def __init__(self, **kw) -> None:
        super().__init__(**kw, classes="panel")
        self.border_title = "Timeline"
        self._times: list[float] = []  # each shown line's time, in the pane's order
        self._events: list[TimelineEvent] = []  # each shown line's event, in the pane's order

    def event_at(self, index: int) -> TimelineEvent | None:
        return self._events[index] if 0 <= index < len(self._events) else None

    def compose(self) -> ComposeResult:
        yield TimelineList(id="timeline-list")

    def add(self, events: list[TimelineEvent]) -> None:
        """Add events in one batch (a flapping fleet can bring hundreds at once), in the order
        they happened: an alert that says when its crossing began, or what was written late
        after a journal outage, goes where its time puts it, not at the bottom."""
        events = [ev for ev in events if self.shows(ev)]
        if not events:
            return
        ol = self.query_one(OptionList)
        at_end = ol.highlighted is None or ol.highlighted >= ol.option_count - 1
        new = [(ev.ts, Option(self._line(ev), id=ev.payload.get("id")), ev) for ev in events]
        times = [t for t, _, _ in new]
        in_order = times == sorted(times) and (not self._times or times[0] >= self._times[-1])
        if in_order and ol.option_count + len(new) <= self.MAX_SHOWN:
            ol.add_options([o for _, o, _ in new])
            self._times += times
            self._events += [ev for _, _, ev in new]
        else:
            highlighted = self.highlighted_event_id()
            old = list(zip(self._times, (ol.get_option_at_index(i) for i in range(ol.option_count)), self._events))
            merged = sorted(old + new, key=lambda row: row[0])  # stable: arrival breaks ties
            if len(merged) > self.MAX_SHOWN:  # the whole record is in the journal; the pane keeps the newest half
                merged = merged[-(self.MAX_SHOWN // 2):]
                self.border_subtitle = self.OLDER
            # in one go: clearing first would hide the scrollbar and adding show it again, two
            # changes that each lay out the whole screen
            ol.set_options([o for _, o, _ in merged])
            self._times = [t for t, _, _ in merged]
            self._events = [ev for _, _, ev in merged]
            if highlighted is not None and not at_end:
                ids = [o.id for _, o, _ in merged]
                if highlighted in ids:
                    ol.highlighted = ids.index(highlighted)
        if at_end:  # at once, in the frame that draws the new lines (not in a frame after it)
            ol.scroll_end(animate=False, immediate=bool(ol.scrollable_content_region))

    def highlighted_event_id(self) -> str | None:
        """The journal id of the highlighted line (lines from before an incident have none)."""
        ol = self.query_one(OptionList)
        if ol.highlighted is None:
            return None
        return ol.get_option_at_index(ol.highlighted).id

    def _line(self, ev: TimelineEvent) -> Text:
        text = Text()
        if ev.kind == "ghost":  # what the original responders did at this time, set apart
            text.append(f"{hms(ev.ts)} ◇ was: {ev.text}", "italic dim")
            return text
        text.append(hms(ev.ts) + " ", "dim")
        if ev.kind == "change":  # a deploy, a configuration edit: not a level, a marker of its own
            text.append(f"{CHANGE_GLYPH} ", "bold")
        else:
            text.append(f"{ev.level.glyph} ", level_style(self, ev.level, bold=True))
        text.append(ev.text)
        return text


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"

