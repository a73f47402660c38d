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
    level: Level = Level.UNKNOWN


class CrossingTracker:
    """Emits a timeline event each time a signal moves between OK, WARN and CRIT.

    UNKNOWN (no data) does not count as a crossing: a gap is not a recovery.
    """

    def __init__(self) -> None:
        self.watches: dict[str, Watch] = {}

    def watch(self, key: str, signal: str, threshold: Threshold, fmt) -> None:
        self.watches[key] = Watch(signal, threshold, fmt)

    def update(self, key: str, value: float | None, ts: float) -> TimelineEvent | None:
        w = self.watches.get(key)
        if w is None:
            return None
        new = level_of(value, w.threshold)
        if new is Level.UNKNOWN or new == w.level:
            return None
        old, w.level = w.level, new
        if old is Level.UNKNOWN and new is Level.OK:
            return None  # first data and all is well: nothing to tell
        return TimelineEvent(ts, "alert", self._text(w, new, value), new, w.signal, {"from": old.name, "to": new.name})

    def _text(self, w: Watch, new: Level, value: float | None) -> str:
        t = w.threshold
        shown = w.fmt(value)
        if new is Level.OK:
            return f"{w.signal} back to OK ({shown})"
        limit = t.critical if new is Level.CRIT else t.warn
        rel = ">=" if t.direction == "above" else "<="
        return f"{w.signal} {new.word} {shown} ({rel} {w.fmt(limit)})"


class StateTracker:
    """Emits a timeline event when a health check or component changes state
    (healthy -> degraded -> unhealthy, unreachable, and back). The first state
    seen is the baseline, not an event; failed observations are not a state."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    def update(self, key: str, label: str, state: str | None, ts: float) -> TimelineEvent | None:
        if state is None:
            return None
        old = self.states.get(key)
        self.states[key] = state
        if old is None or old == state:
            return None
        level = state_level(state)
        return TimelineEvent(ts, "status", f"{label} {old} → {state}", level, label, {"from": old, "to": state})
