"""The cockpit's one-line header: what, where, which mode, how armed, how bad, how long."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from cockpit.clock import format_duration, hms
from screens.panels import theme_color


class CockpitHeader(Widget):
    """Service · environment · mode badge · READ-ONLY/ARMED · severity · incident clock · UTC time."""

    def __init__(self, service: str, environment: str, mode: str, armed: bool, **kw) -> None:
        super().__init__(**kw)
        self.service = service
        self.environment = environment
        self.mode = mode
        self.armed = armed
        self.severity: str | None = None
        self.incident_start: float | None = None
        self.now: float = 0.0

    def tick(self, now: float, incident_start: float | None) -> None:
        changed = int(now) != int(self.now) or incident_start != self.incident_start
        self.now = now
        self.incident_start = incident_start
        if changed:
            self.refresh()

    def _badge(self, out: Text, text: str, var: str) -> None:
        out.append(f" {text} ", Style(color=theme_color(self, "background"), bgcolor=theme_color(self, var), bold=True))
        out.append(" ")

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(" ◉ ", Style(color=theme_color(self, "primary"), bold=True))
        out.append(self.service, Style(bold=True))
        out.append(f" · {self.environment}  ")
        self._badge(out, self.mode, {"DEMO": "secondary", "DRILL": "warning"}.get(self.mode, "primary"))
        if self.armed:
            self._badge(out, "ARMED", "error")
        else:
            self._badge(out, "READ-ONLY", "success")
        self._badge(out, f"SEV {self.severity or '—'}", "foreground-muted" if self.severity is None else "error")
        if self.incident_start is not None:
            out.append(f"incident T+{format_duration(self.now - self.incident_start)}", Style(bold=True))
        else:
            out.append("no incident", "dim")
        clock = f"{hms(self.now)} UTC " if self.now else ""
        gap = self.content_size.width - out.cell_len - len(clock)
        # padding as non-breaking spaces: plain trailing spaces are trimmed when drawn
        out.append("\u00a0" * max(1, gap))
        out.append(clock)
        return out
