"""The cockpit's data types. Plain dataclasses; nothing here does I/O."""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Callable, Iterator
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
#: Glyph of a change (a deploy, a configuration edit) on the timeline and the sparklines.
CHANGE_GLYPH = "◆"


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


#: A change (a deploy, a configuration edit, a rollback) is told by a reading of the series
#: ``change/<where>`` (``where``: what changed, in words: "api task definition", "checkout
#: version"). Its ``state`` is what that thing is now (a version, a revision, a digest), its
#: ``value`` when it became that (epoch seconds) when the source knows, else None, and its
#: ``detail`` who or what changed it ("by ci-bot · deploy 812"), "" when unknown. The
#: watcher (cockpit.signals.watch) turns a new ``state`` into a timeline event of kind
#: "change" (◆); the same state again, or one stamped no later than the last told, is not
#: news, so a source may say the same change on every poll (a deploy log's last entries).
CHANGE_PREFIX = "change/"


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
    # an Alertmanager alert's severity (cockpit/signals/sources/alertmanager.py maps its label to one of
    # these three), and what an alert that stopped firing is: info is listed, not alerted on
    "critical": Level.CRIT,
    "warning": Level.WARN,
    "info": Level.OK,
    "resolved": Level.OK,
    "silenced": Level.OK,
    "inhibited": Level.OK,
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


#: Timeline lines kept in memory: as many as the timeline pane shows (screens.panels). A
#: line costs about 0.5 KB here and 3.5 KB more drawn in the pane (measured), so at most
#: 8 MB however long the cockpit runs, a busy day's lines (the soak's day: about 1,000)
#: all still on screen; every journaled line stays in the journal, where the postmortem
#: (x) and ``cockpit export`` read it.
TIMELINE_KEPT = 2000


class RecentLines:
    """The newest ``keep`` timeline lines of this run, oldest first; older ones are let go
    (``dropped`` counts them). Appended on the journal thread, read on the UI thread.

    Indexing, slicing, ``len`` and iteration see the lines kept. ``total`` counts every
    line appended, so a reader that remembers how many it has taken gets the new ones from
    :meth:`since` whatever was let go meanwhile."""

    def __init__(self, keep: int = TIMELINE_KEPT) -> None:
        if keep < 1:
            raise ValueError("keep at least one line")
        self.keep = keep
        self.dropped = 0
        #: changes when lines were taken away (keep_only): a reader then takes them all again
        self.generation = 0
        self._lines: list[TimelineEvent] = []
        self._lock = threading.Lock()

    def keep_only(self, wanted: Callable[[TimelineEvent], bool]) -> None:
        """Let go of the lines ``wanted`` says no to (a drill rewound: what came later)."""
        with self._lock:
            self._lines = [line for line in self._lines if wanted(line)]
            self.dropped = 0
            self.generation += 1

    def append(self, line: TimelineEvent) -> None:
        with self._lock:
            self._lines.append(line)
            if len(self._lines) > self.keep:
                del self._lines[0]  # a few microseconds: the list is at most `keep` long
                self.dropped += 1

    @property
    def total(self) -> int:
        """Every line appended since the start (kept or let go)."""
        return self.dropped + len(self._lines)

    def snapshot(self) -> tuple[list[TimelineEvent], int, int]:
        """(the lines kept, the total, the generation), read together."""
        with self._lock:
            return list(self._lines), self.dropped + len(self._lines), self.generation

    def since(self, taken: int) -> tuple[list[TimelineEvent], int]:
        """The lines after the first ``taken`` ones (those still kept), and the new total."""
        with self._lock:
            return self._lines[max(0, taken - self.dropped):], self.dropped + len(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, index):
        with self._lock:
            return self._lines[index]

    def __iter__(self) -> Iterator[TimelineEvent]:
        with self._lock:
            return iter(list(self._lines))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, RecentLines)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"RecentLines({len(self._lines)} kept of {self.total}, keep={self.keep})"
