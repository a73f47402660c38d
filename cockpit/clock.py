"""Clocks. Every timestamp in the cockpit comes from an injected clock.

``now()`` is wall time in epoch seconds (what gets shown and journaled);
``monotonic()`` measures durations (poll latency, ages) and never jumps.
The system clock is for live use; the manual clock makes tests, snapshots and
drills deterministic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def monotonic(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Now:
    """One moment on both scales: ``wall`` to show, ``mono`` to measure ages."""

    wall: float
    mono: float | None = None

    @classmethod
    def of(cls, clock: Clock) -> "Now":
        return cls(clock.now(), clock.monotonic())

    def age(self, ts: float, received: float | None) -> float:
        """Seconds since a reading; from the monotonic scale whenever the reading has it."""
        if received is not None and self.mono is not None:
            return self.mono - received
        return self.wall - ts


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to; frozen unless advanced."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        self._mono += seconds

    def set(self, epoch: float) -> None:
        self.advance(max(0.0, epoch - self._now))


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def hms(ts: float) -> str:
    """Wall time as HH:MM:SS in UTC, the timeline's format."""
    return utc(ts).strftime("%H:%M:%S")


def format_age(seconds: float) -> str:
    """A short human age: 3s, 2m05s, 1h02m."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def format_duration(seconds: float) -> str:
    """An elapsed clock: 00:04:17."""
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{(s % 3600) // 60:02d}:{s % 60:02d}"
