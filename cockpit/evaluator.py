"""Threshold levels and crossings.

This is the first slice of the evaluator: a value's level against warn and
critical, and the crossings of each watched signal as timeline events. Hold
times, hysteresis and severity suggestion build on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cockpit.config import Threshold
from cockpit.model import Level, TimelineEvent, state_level


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
    pending: Level | None = None  # a different level waiting out the hold time
    pending_since: float = 0.0


def target_level(value: float | None, current: Level, t: Threshold) -> Level:
    """The level a value asks for, with hysteresis: a raised alert stays at least WARN
    until the value is back past the clear level."""
    raw = level_of(value, t)
    if raw is Level.UNKNOWN or current < Level.WARN or raw >= Level.WARN:
        return raw
    clear = t.clear_level
    if clear is None:
        return raw
    still_bad = value > clear if t.direction == "above" else value < clear
    return Level.WARN if still_bad else raw


class CrossingTracker:
    """Emits a timeline event each time a signal's alert moves between OK, WARN and CRIT.

    A change must persist for the threshold's ``hold`` seconds (rising and falling
    alike) and a raised alert clears only past its ``clear`` level, so a flapping
    signal does not spam. UNKNOWN (no data) is not a change: a gap is not a recovery.
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
        if new == w.level:
            w.pending = None
            return None
        first_and_fine = w.level is Level.UNKNOWN and new is Level.OK
        if w.threshold.hold > 0 and not first_and_fine:
            if w.pending != new:
                w.pending, w.pending_since = new, ts
                return None
            if ts - w.pending_since < w.threshold.hold:
                return None
        old, w.level, w.pending = w.level, new, None
        if old is Level.UNKNOWN and new is Level.OK:
            return None  # first data and all is well: nothing to tell
        return TimelineEvent(ts, "alert", self._text(w, new, value), new, w.signal, {"from": old.name, "to": new.name})

    def _text(self, w: Watch, new: Level, value: float | None) -> str:
        t = w.threshold
        shown = w.fmt(value)
        if new is Level.OK:
            return f"{w.signal} back to OK ({shown})"
        if level_of(value, t) < new:  # held up by hysteresis, not by the value itself
            return f"{w.signal} {new.word} {shown} (not yet back past {w.fmt(t.clear_level)})"
        limit = t.critical if new is Level.CRIT else t.warn
        rel = ">=" if t.direction == "above" else "<="
        return f"{w.signal} {new.word} {shown} ({rel} {w.fmt(limit)})"


class StateTracker:
    """Emits a timeline event when a health check or component changes state
    (healthy -> degraded -> unhealthy, unreachable, and back). The first state
    seen is the baseline, not an event; failed observations are not a state."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    def settle(self, states: dict[str, str]) -> None:
        """Take these states as the baseline, announcing nothing."""
        self.states = dict(states)

    def update(self, key: str, label: str, state: str | None, ts: float) -> TimelineEvent | None:
        if state is None:
            return None
        old = self.states.get(key)
        self.states[key] = state
        if old is None or old == state:
            return None
        level = state_level(state)
        return TimelineEvent(ts, "status", f"{label} {old} → {state}", level, label, {"from": old, "to": state})


# ---------------------------------------------------------------- severity

SEVERITIES = ("P0", "P1", "P2", "P3")
#: The seed runbooks' definitions (bedrock-ai-core's classification).
DEFINITIONS = {
    "P0": "complete outage: every critical health check is down",
    "P1": "major degradation: error rate or latency critical",
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

    role: str  # error_rate | latency | cost | health | component
    name: str
    level: Level
    shown: str = ""
    critical: bool = True  # for health checks: counts toward P0


def suggest_severity(signals: list[Signal]) -> Suggestion:
    """Apply the seed definitions, worst first, naming the signal that decided."""
    def named(s: Signal) -> str:
        return f"{s.name} {s.level.word}" + (f" {s.shown}" if s.shown else "")

    health = [s for s in signals if s.role == "health" and s.critical]
    if health and all(s.level is Level.CRIT for s in health):
        return Suggestion("P0", "every critical health check down: " + ", ".join(named(s) for s in health))
    for role in ("error_rate", "latency"):
        for s in signals:
            if s.role == role and s.level is Level.CRIT:
                return Suggestion("P1", named(s))
    for s in signals:
        if s.role in ("cost", "error_rate") and s.level >= Level.WARN:
            return Suggestion("P2", named(s))
    for s in signals:
        if s.role in ("component", "health") and s.level >= Level.WARN:
            return Suggestion("P2", named(s))
    for s in signals:
        if s.level >= Level.WARN:
            return Suggestion("P3", named(s))
    return Suggestion(None)
