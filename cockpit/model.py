"""The cockpit's data types. Plain dataclasses; nothing here does I/O."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    """How fresh and trustworthy a reading is."""

    OK = "ok"
    STALE = "stale"
    ERROR = "error"


class Level(enum.IntEnum):
    """Threshold level of a signal. Every level has a glyph and a word, so
    nothing is conveyed by colour alone."""

    UNKNOWN = -1
    OK = 0
    WARN = 1
    CRIT = 2

    @property
    def glyph(self) -> str:
        return _GLYPHS[self]

    @property
    def word(self) -> str:
        return _WORDS[self]

    @property
    def style_var(self) -> str:
        """Theme variable that colours this level."""
        return _STYLE_VARS[self]


_GLYPHS = {Level.UNKNOWN: "?", Level.OK: "●", Level.WARN: "▲", Level.CRIT: "✖"}
_WORDS = {Level.UNKNOWN: "NO DATA", Level.OK: "OK", Level.WARN: "WARN", Level.CRIT: "CRIT"}
_STYLE_VARS = {
    Level.UNKNOWN: "foreground-muted",
    Level.OK: "success",
    Level.WARN: "warning",
    Level.CRIT: "error",
}

#: Glyph and word for a source whose data is no longer fresh.
STALE_GLYPH = "◌"


@dataclass(frozen=True, slots=True)
class Reading:
    """One observation of one series, or the failure to observe it.

    ``value`` is None when there is no number (a gap: no traffic in the window,
    or the poll failed). ``state`` carries categorical health ("up", "degraded",
    "down", "unreachable") for health and component series. A failed poll is a
    Reading with ``status=ERROR`` and the error text, never an exception.
    """

    source: str
    series: str
    ts: float
    value: float | None = None
    status: Status = Status.OK
    error: str = ""
    state: str | None = None
    detail: str = ""
    latency: float | None = None
    #: monotonic time the reading was taken; ages come from it, so a wall-clock
    #: step (NTP, VM resume) never makes old data look fresh
    received: float | None = None
    #: loaded from the past at start-up (a range query): stored and drawn, never alerted on
    history: bool = False

    @property
    def key(self) -> str:
        return series_key(self.source, self.series)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def has_value(self) -> bool:
        return self.value is not None and not math.isnan(self.value)


def quantile_series(q: float) -> str:
    """Series name of a latency quantile: 0.95 -> latency_p95, 0.999 -> latency_p999."""
    return "latency_p" + f"{q * 100:g}".replace(".", "")


def series_key(source: str, series: str) -> str:
    """The store's key for a series: ``source:series``."""
    return f"{source}:{series}"


#: Health and component states and the level each one means.
STATE_LEVELS: dict[str, Level] = {
    "up": Level.OK,
    "healthy": Level.OK,
    "ok": Level.OK,
    "pass": Level.OK,
    "degraded": Level.WARN,
    "warn": Level.WARN,
    "down": Level.CRIT,
    "unhealthy": Level.CRIT,
    "fail": Level.CRIT,
    "unreachable": Level.CRIT,
}


def state_level(state: str | None) -> Level:
    if state is None:
        return Level.UNKNOWN
    return STATE_LEVELS.get(state.lower(), Level.WARN)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """Something the incident timeline shows. The journal (issue 3) persists these."""

    ts: float
    kind: str
    text: str
    level: Level = Level.OK
    signal: str = ""
    payload: dict = field(default_factory=dict)
