"""Clocks. Every timestamp in the cockpit comes from an injected clock.

``now()`` is wall time in epoch seconds (what gets shown and journaled);
``monotonic()`` measures durations (poll latency, ages) and never jumps.
The system clock is for live use; the manual clock makes tests, snapshots and
drills deterministic.
"""

from __future__ import annotations

import re
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


class DrillClock(ManualClock):
    """A drill's clock: the replay moves it forward, and a seek moves it anywhere on the
    tape, backwards too. Its monotonic time never goes back, so ages stay true."""

    def jump(self, epoch: float) -> None:
        self._now = float(epoch)


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
    """An elapsed clock, rounded to the second: 00:04:17 (12.84 s reads 00:00:13)."""
    s = max(0, int(round(seconds)))
    return f"{s // 3600:02d}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def spoken_duration(seconds: float) -> str:
    """A length of time in words, for prose (a postmortem): 6 h 44 min 33 s, 4 min 17 s,
    13 s; never mistaken for a time of day as 06:44:33 can be."""
    s = max(0, int(round(seconds)))
    h, m, sec = s // 3600, (s % 3600) // 60, s % 60
    parts = [f"{h} h"] if h else []
    parts += [f"{m} min"] if m or h else []
    return " ".join([*parts, f"{sec} s"])


_AGO = re.compile(r"^-?\s*((?:\d+\s*[hms]\s*)+)(?:ago)?$")
_HM = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_when(text: str, now: float) -> float:
    """A moment a responder typed, as epoch seconds. Accepts ``-15m`` / ``1h30m ago``
    (before now), ``HH:MM[:SS]`` (UTC, today; yesterday if that is still ahead) and ISO
    8601 (``2026-11-23T03:12Z``; no zone means UTC). Raises ValueError saying what to type."""
    t = text.strip().lower()
    m = _AGO.match(t)
    if m and (t.startswith("-") or t.endswith("ago")):
        secs = sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)\s*([hms])", m.group(1)))
        return now - secs
    m = _HM.match(t)
    if m:
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if h > 23 or mi > 59 or s > 59:
            raise ValueError(f"{text!r} is not a time of day (HH:MM or HH:MM:SS, UTC)")
        day = utc(now).replace(hour=h, minute=mi, second=s, microsecond=0)
        at = day.timestamp()
        return at - 86400 if at > now else at
    try:
        dt = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read {text!r}: type -15m, 1h ago, 03:12 (UTC) or 2026-11-23T03:12Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    at = dt.timestamp()
    if at > now + 1:
        raise ValueError(f"{text!r} is in the future")
    return at
