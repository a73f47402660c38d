"""Threshold levels, crossings and the severity they suggest.

A value's level against warn and critical; the crossings of each watched signal
and the state changes of health checks and components as timeline events, with
hold times and hysteresis so a steady fault gives one alert; and the seed
runbooks' severity definitions applied to the signals.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from cockpit.config import Threshold
from cockpit.model import CHANGE_PREFIX, Level, Reading, TimelineEvent, state_level


def level_of(value: float | None, threshold: Threshold) -> Level:
    if value is None or value != value:  # None or NaN
        return Level.UNKNOWN
    above = threshold.direction == "above"

    def worse(limit: float | None) -> bool:
        return limit is not None and (value >= limit if above else value <= limit)

    if worse(threshold.critical):
        return Level.CRIT
    if worse(threshold.warn):
        return Level.WARN
    return Level.OK


@dataclass
class Watch:
    """One signal watched for crossings."""

    signal: str  # e.g. "error rate"
    threshold: Threshold
    fmt: object  # callable(value) -> str
    level: Level = Level.UNKNOWN  # the alert's level as last announced
    pending: Level | None = None  # a different level waiting out its hold time
    pending_since: float = 0.0  # when the signal first moved that way


def _worse_than(value: float, limit: float, t: Threshold) -> bool:
    return value > limit if t.direction == "above" else value < limit


def target_level(value: float | None, current: Level, t: Threshold) -> Level:
    """The level a value asks for, with hysteresis: a raised alert falls only once the
    value is back past the clear level of the level it is at."""
    raw = level_of(value, t)
    if raw is Level.UNKNOWN or current <= raw:
        return raw
    if current is Level.CRIT and t.critical_clear is not None and _worse_than(value, t.critical_clear, t):
        return Level.CRIT
    if current >= Level.WARN > raw and t.clear_level is not None and _worse_than(value, t.clear_level, t):
        return Level.WARN
    return raw


class Pending:
    """A change of level waiting out its hold: worse must persist ``hold`` seconds, better
    ``clear_hold``. A move the same way (WARN then CRIT while rising) keeps the clock
    running; the announced level is the one asked for when the hold is over, and the
    announcement carries the time the move began."""

    @staticmethod
    def step(w, new: Level, ts: float, hold: float, clear_hold: float) -> tuple[Level, float] | None:
        """(level, since) to announce now, or None while waiting (``w`` has level/pending/pending_since)."""
        if new == w.level:
            w.pending = None
            return None
        rising = new > w.level
        same_way = w.pending is not None and (w.pending > w.level) == rising
        if not same_way:
            w.pending_since = ts
        w.pending = new
        if ts - w.pending_since < (hold if rising else clear_hold):
            return None
        since = w.pending_since
        w.level, w.pending = new, None
        return new, since


class CrossingTracker:
    """Emits a timeline event each time a signal's alert moves between OK, WARN and CRIT.

    A worse level must persist for the threshold's ``hold``, a better one for its
    ``clear_hold``, and a raised alert falls only past its clear level, so a noisy
    signal does not flap. UNKNOWN (no data) is not a change: a gap is not a recovery.
    The first reading is a change like any other when it is already WARN or CRIT (a
    cockpit started in the middle of an outage alerts on it).
    """

    def __init__(self) -> None:
        self.watches: dict[str, Watch] = {}

    def watch(self, key: str, signal: str, threshold: Threshold, fmt) -> None:
        self.watches[key] = Watch(signal, threshold, fmt)

    def level(self, key: str) -> Level:
        w = self.watches.get(key)
        return w.level if w else Level.UNKNOWN

    def settle(self, key: str, value: float | None) -> None:
        """Take ``value`` as the signal's level without announcing a change (a drill that
        moved elsewhere on its tape: what crossed before is not news)."""
        w = self.watches.get(key)
        if w is not None:
            w.level, w.pending = level_of(value, w.threshold) if value is not None else Level.UNKNOWN, None

    def update(self, key: str, value: float | None, ts: float) -> TimelineEvent | None:
        w = self.watches.get(key)
        if w is None:
            return None
        new = target_level(value, w.level, w.threshold)
        if new is Level.UNKNOWN:
            return None
        if w.level is Level.UNKNOWN and new is Level.OK:
            w.level, w.pending = Level.OK, None  # first data and all is well: nothing to tell
            return None
        old = w.level
        moved = Pending.step(w, new, ts, w.threshold.hold, w.threshold.clear_hold)
        if moved is None:
            return None
        level, since = moved
        return TimelineEvent(since, "alert", self._text(w, level, value, ts - since), level, w.signal,
                             {"from": old.name, "to": level.name, "value": value})

    def _text(self, w: Watch, new: Level, value: float | None, held: float) -> str:
        t = w.threshold
        shown = w.fmt(value)
        lasting = f" for {held:.0f}s" if held >= 1 else ""
        if new is Level.OK:
            return f"{w.signal} back to OK ({shown}){lasting}"
        if level_of(value, t) < new:  # held up by hysteresis, not by the value itself
            clear = t.critical_clear if new is Level.CRIT else t.clear_level
            return f"{w.signal} {new.word} {shown} (not yet back past {w.fmt(clear)})"
        limit = t.critical if new is Level.CRIT else t.warn
        rel = ">=" if t.direction == "above" else "<="
        return f"{w.signal} {new.word} {shown} ({rel} {w.fmt(limit)}){lasting}"


@dataclass
class _StateWatch:
    state: str
    level: Level
    pending: Level | None = None
    pending_since: float = 0.0
    pending_state: str = ""


class StateTracker:
    """Emits a timeline event when a health check or component changes state
    (healthy -> degraded -> unhealthy, unreachable, and back). A worse state is an
    alert after ``hold`` seconds (default at once), a better one after ``clear_hold``
    (so flapping gives one alert). The first state seen is an alert when it is already
    bad ("... unhealthy when first seen", from "unknown"); failed observations are not a state."""

    def __init__(self, hold: float = 0.0, clear_hold: float = 30.0) -> None:
        self.hold, self.clear_hold = hold, clear_hold
        self._watch: dict[str, _StateWatch] = {}
        #: since when each key has been in its state, where the readings said (a baseline after
        #: a seek has none): the components table's "Since", not when the table first drew it
        self._since: dict[str, float] = {}

    def since(self, key: str, state: str) -> float | None:
        """When ``key`` entered ``state`` (its state now), or None when not known."""
        w = self._watch.get(key)
        return self._since.get(key) if w is not None and w.state == state else None

    @property
    def states(self) -> dict[str, str]:
        """The state each key was last announced in (or, when fine, first seen in)."""
        return {k: w.state for k, w in self._watch.items() if w.level is not Level.UNKNOWN}

    def settle(self, states: dict[str, str]) -> None:
        """Take these states as the baseline, announcing nothing."""
        self._watch = {k: _StateWatch(s, state_level(s)) for k, s in states.items()}
        self._since = {}

    def update(self, key: str, label: str, state: str | None, ts: float) -> TimelineEvent | None:
        if state is None:
            return None
        level = state_level(state)
        w = self._watch.get(key)
        if w is None:
            w = self._watch[key] = _StateWatch("unknown", Level.UNKNOWN)
            if level <= Level.OK:
                w.state, w.level = state, level  # first seen and fine: the baseline
                self._since[key] = ts
                return None
        if state == w.state:
            w.pending = None
            return None
        if level == w.level:  # another word for the same level (up -> healthy): no alert
            w.state, w.pending = state, None
            self._since[key] = ts
            return None
        old = w.state
        moved = Pending.step(w, level, ts, self.hold, self.clear_hold)
        if moved is None:
            return None
        w.state = state
        self._since[key] = moved[1]
        text = f"{label} {state} when first seen" if old == "unknown" else f"{label} {old} → {state}"
        return TimelineEvent(moved[1], "status", text, level, label, {"from": old, "to": state})


class ChangeTracker:
    """Emits a timeline event of kind "change" (◆) when a ``change/<where>`` series says a
    new state (a version, a revision: see cockpit.model.CHANGE_PREFIX).

    The first state seen of a thing is its baseline; it is told too when the source knows
    it changed within ``window`` seconds (a deploy from a minute before the cockpit
    started is the first question of the incident). A (state, since) said before, or a
    state stamped earlier than the last one told, is old news (a deploy log says its last
    entries on every poll); the same state again is no change. An event is stamped when the
    change happened when the source knows, else when it was seen."""

    def __init__(self, window: float = 3600.0) -> None:
        self.window = window
        self._last: dict[str, tuple[str, float | None]] = {}
        self._looked: dict[str, float] = {}  # when each thing was last seen (a reading of it)
        #: each thing's newest (state, since) told, where the source knows since when
        self._seen: dict[str, deque[tuple[str, float]]] = {}

    def settle(self, states: dict[str, tuple[str, float | None]]) -> None:
        """Take these (state, since) as what each thing is, announcing nothing (a drill's seek)."""
        self._last = dict(states)
        self._seen = {k: deque([(state, since)], maxlen=64) for k, (state, since) in states.items()
                      if since is not None}

    def update(self, r: Reading) -> TimelineEvent | None:
        if not r.ok or not r.state:
            return None
        since = r.value if r.has_value else None
        if since is not None:
            seen = self._seen.setdefault(r.key, deque(maxlen=64))
            if (r.state, since) in seen:
                return None  # said before (a log read again)
            seen.append((r.state, since))
        last = self._last.get(r.key)
        if last is None:
            self._last[r.key] = (r.state, since)
            self._looked[r.key] = r.ts
            if since is None or not 0 <= r.ts - since <= self.window:
                return None
            return self._told(r, None, since)
        was, was_since = last
        after, self._looked[r.key] = self._looked.get(r.key), r.ts
        if r.state == was or (since is not None and was_since is not None and since < was_since):
            return None  # the same, or older than what was told
        self._last[r.key] = (r.state, since)
        return self._told(r, was, since, after if since is None else None)

    @staticmethod
    def _told(r: Reading, was: str | None, since: float | None, after: float | None = None) -> TimelineEvent:
        """The change's event; ``after``: when the thing was last seen as it was (a change
        seen by polling happened in between, and the postmortem says so)."""
        where = r.series.removeprefix(CHANGE_PREFIX)
        text = f"{where} {was} → {r.state}" if was is not None else f"{where} now {r.state}"
        # stamped when it happened, never later than it was seen (a clock ahead, a hostile log)
        at = min(since, r.ts) if since is not None else r.ts
        return TimelineEvent(at, "change", text + (f" ({r.detail})" if r.detail else ""), Level.OK, where, {"where": where, "from": was, "to": r.state, "by": r.detail,
                                               "source": r.source, "since": since,
                                               **({"after": after} if after is not None else {})})


# ---------------------------------------------------------------- severity

SEVERITIES = ("P0", "P1", "P2", "P3")
#: The seed runbooks' definitions (bedrock-ai-core's classification).
DEFINITIONS = {
    "P0": "complete outage: every critical health check is down",
    "P1": "major degradation: error rate or latency critical, or a critical alert firing",
    "P2": "minor issue, a workaround exists: cost threshold warning, error rate warning or a degraded component",
    "P3": "monitoring only: minor performance degradation",
}


@dataclass(frozen=True)
class Suggestion:
    """A suggested severity and the signal that drove it (None: nothing to suggest)."""

    severity: str | None
    driver: str = ""

    @property
    def definition(self) -> str:
        return DEFINITIONS.get(self.severity or "", "")

    def text(self) -> str:
        if self.severity is None:
            return "no severity suggested: all signals OK"
        return f"{self.severity} suggested: {self.driver} ({self.definition})"


@dataclass(frozen=True)
class Signal:
    """One input to the severity suggestion: what it is, its level, how it reads now."""

    role: str  # error_rate | latency | cost | health | component | alert
    name: str
    level: Level
    shown: str = ""
    critical: bool = True  # for health checks: counts toward P0

    @property
    def said(self) -> str:
        """How it reads in a line: "error rate CRIT 18.8%", "component api CRIT"."""
        return f"{self.name} {self.level.word}" + (f" {self.shown}" if self.shown else "")


def suggest_severity(signals: list[Signal]) -> Suggestion:
    """Apply the seed definitions, worst first, naming the signal that decided."""
    health = [s for s in signals if s.role == "health" and s.critical]
    if health and all(s.level is Level.CRIT for s in health):
        return Suggestion("P0", "every critical health check down: " + ", ".join(s.said for s in health))
    for role in ("error_rate", "latency", "alert"):  # an alert: the team's own rules called it critical
        for s in signals:
            if s.role == role and s.level is Level.CRIT:
                return Suggestion("P1", s.said)
    for s in signals:
        if s.role in ("cost", "error_rate") and s.level >= Level.WARN:
            return Suggestion("P2", s.said)
    rows = [s for s in signals if s.role in ("component", "health", "alert") and s.level >= Level.WARN]
    if rows:  # the worst of them names it (the first of the worst)
        return Suggestion("P2", max(rows, key=lambda s: s.level).said)
    for s in signals:
        if s.level >= Level.WARN:
            return Suggestion("P3", s.said)
    return Suggestion(None)
