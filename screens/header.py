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
        self.incident = None  # IncidentState
        self.targets: dict[str, float] = {}
        self.update_due: float | None = None
        self.journal_error: str | None = None
        self.unsaved = 0  # events kept while the journal is away
        self.others: list[str] = []  # who else has a cockpit open on this incident
        self._shown_error: tuple | None = None
        self.now: float = 0.0
        self.drill = ""  # a replay's position, speed or pause ("" when not replaying)
        self.drill_short = ""  # the same in a word or two (x5, PAUSED), for a narrow terminal
        self._shown_drill = ""

    def tick(self, now: float, incident, targets: dict[str, float]) -> None:
        error = (self.journal_error, self.unsaved, tuple(self.others))
        changed = (int(now) != int(self.now) or incident is not self.incident
                   or error != self._shown_error or self.drill != self._shown_drill)
        self._shown_error, self._shown_drill = error, self.drill
        self.now, self.incident, self.targets = now, incident, targets
        if changed:
            self.refresh()

    def _badge(self, out: Text, text: str, var: str) -> None:
        out.append(f" {text} ", Style(color=theme_color(self, "background"), bgcolor=theme_color(self, var), bold=True))
        out.append(" ")

    def _ack_countdown(self, out: Text, inc, severity: str | None, short: bool) -> None:
        """Time left to acknowledge, against the severity's response target."""
        if inc.status != "declared" or severity not in self.targets:
            return
        left = inc.declared_at + self.targets[severity] - self.now
        if left >= 0:
            out.append(f"  {'ack' if short else 'ack due in'} {_left(left)}", Style(color=theme_color(self, "warning")))
        else:
            out.append(f"  ACK OVERDUE {format_duration(-left)}", Style(color=theme_color(self, "error"), bold=True))

    def render(self) -> Text:
        """The fullest line that fits: as the terminal narrows, the UTC clock goes first, then
        who else is here and the environment, then the incident id shortens to its tag, then
        the labels go to their values with the update countdown and the IC, then the service
        name is cut; the mode, READ-ONLY or ARMED, severity (and a graver one suggested since),
        status, T+ and the ack countdown stay (80 columns hold them)."""
        width = self.content_size.width
        for compact in range(COMPACT_LEVELS):
            line = self._line(compact, width)
            if line.cell_len <= width or compact == COMPACT_LEVELS - 1:
                return line
        return line  # pragma: no cover - the loop always returns

    def _line(self, compact: int, width: int) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(" ◉ ", Style(color=theme_color(self, "primary"), bold=True))
        service = self.service if compact < 5 or len(self.service) <= 14 else self.service[:13] + "…"
        out.append(service, Style(bold=True))
        out.append(f" · {self.environment}  " if compact < 2 else "  ")
        self._badge(out, self.mode, {"DEMO": "secondary", "DRILL": "warning"}.get(self.mode, "primary"))
        drill = self.drill if compact < 4 else self.drill_short
        if drill:
            out.append(f"{drill}  ", Style(color=theme_color(self, "warning"), bold=True))
        if self.armed:
            self._badge(out, "ARMED", "error")
        else:
            self._badge(out, "READ-ONLY", "success")
        if self.journal_error:  # what happens now is kept with its time, written when the journal answers
            self._badge(out, f"JOURNAL DOWN · {self.unsaved} kept" if self.unsaved else "JOURNAL DOWN", "error")
        inc = self.incident
        sev = "SEV " if compact < 4 else ""
        if inc is None:
            self._badge(out, f"{sev}—", "foreground-muted")
            out.append("no incident", "dim")
        else:
            suggested = inc.suggestion[0] if inc.suggestion else None
            if inc.severity:
                self._badge(out, f"{sev}{inc.severity}", "error")
                if graver := inc.graver_suggestion:  # set by hand, and since then worse is suggested
                    self._badge(out, f"{graver}?{' (S)' if compact < 4 else ''}", "warning")
            elif suggested:
                self._badge(out, f"{sev}{suggested}?{' (S)' if compact < 4 else ''}", "warning")
            else:
                self._badge(out, f"{sev}—", "foreground-muted")
            ident = inc.id if compact < 3 else "…" + inc.id.rsplit("-", 1)[-1]
            out.append(f"{ident} {inc.status.upper()} ", Style(bold=True))
            out.append(f"T+{format_duration(self.now - inc.declared_at)}")
            self._ack_countdown(out, inc, inc.severity or suggested, short=compact >= 4)
            commander = inc.holder("commander")
            if commander and compact < 4:
                out.append(f"  IC {commander}", Style(bold=True))
            if self.update_due is not None:
                left = self.update_due - self.now
                if left < 0:
                    out.append(f"  UPDATE OVERDUE {format_duration(-left)} (u)",
                               Style(color=theme_color(self, "warning"), bold=True))
                elif compact < 4:  # kept longer than the whole incident id (a duty, not a name)
                    out.append(f"  update in {_left(left)}", "dim")
        if self.others and compact < 2:  # the other responders' cockpits on this incident (their heartbeats)
            out.append(f"  with {', '.join(self.others)}", Style(color=theme_color(self, "accent")))
        clock = f"{hms(self.now)} UTC " if self.now and compact < 1 else ""
        gap = width - out.cell_len - len(clock)
        # padding as non-breaking spaces: plain trailing spaces are trimmed when drawn
        out.append("\u00a0" * max(1, gap))
        out.append(clock)
        return out


#: how many ways the header has to say less (see CockpitHeader.render)
COMPACT_LEVELS = 6


def _left(seconds: float) -> str:
    """A countdown: MM:SS under an hour, else HH:MM:SS (59:59.6 left reads 01:00:00, not 00:00)."""
    text = format_duration(seconds)
    return text[3:] if text.startswith("00:") else text
