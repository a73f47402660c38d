"""Replaying a tape on a drill clock: the readings of a recorded run are handed to the
dashboard at the drill time they were taken, at 1x to 60x, paused, stepped or moved.

The drill clock is a ManualClock the replayer moves; the app built on it never polls
(a drill must not contact the systems it was recorded from) and runs with the sandbox
executors only. Readings are handed over with ``received`` set on the drill clock's
monotonic scale, so ages and staleness are those of the recorded moment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import re

from cockpit.clock import DrillClock, parse_when
from cockpit.model import Reading, TimelineEvent
from cockpit.drill.tape import Tape

SPEEDS = (1, 2, 5, 10, 30, 60)
#: journal kinds that are a responder's own act (not computed from the readings)
HUMAN = {"incident_declared", "severity_set", "status_changed", "milestone_set", "note", "update_sent",
         "action_intent", "action_outcome", "action_verified"}


MILESTONE_MARKS = {"acknowledged": "A", "mitigated": "M", "resolved": "R"}


def milestones(events: list[TimelineEvent]) -> list[tuple[float, str]]:
    """(time, mark) of the recorded incident's milestones: D declared, A acknowledged,
    M mitigated, R resolved (the first of each)."""
    out: dict[str, float] = {}
    for ev in events:
        kind = ev.payload.get("journal")
        mark = "D" if kind == "incident_declared" else MILESTONE_MARKS.get(ev.payload.get("to", "")) \
            if kind == "status_changed" else None
        if mark and mark not in out:
            out[mark] = ev.ts
    return sorted((t, m) for m, t in out.items())


def is_ghost(ev: TimelineEvent) -> bool:
    """Whether a recorded timeline line was the original responders' doing."""
    return ev.payload.get("journal") in HUMAN and not ev.payload.get("auto")
CHUNK = 10.0  # seconds of tape handed over per read ahead (frames are decoded once, cached): no hitch at 60x


class Replayer:
    """Moves a drill clock along a tape and hands each reading to ``sink`` once its
    time has come. Not thread-safe: the app drives it from its event loop."""

    def __init__(self, tape: Tape, clock: DrillClock, speed: float = 1.0, start: float | None = None) -> None:
        self.tape = tape
        self.clock = clock
        self.sink: Callable[[str, list[Reading]], None] = lambda source, readings: None
        self.start = start
        self.speed = float(speed)
        self.paused = False
        self.begin, self.end = tape.start, tape.end
        self._pending: list[Reading] = []
        self._loaded_to = self.begin
        self.position = self.begin
        clock.set(self.begin)
        #: the original responders' acts, in time order, and how many have been passed
        recorded = tape.events()
        self.ghosts: list[TimelineEvent] = [e for e in recorded if is_ghost(e)]
        self.milestones = milestones(recorded)
        self._ghosts_passed: set[int] = set()
        self.on_ghost: Callable[[TimelineEvent], None] = lambda ev: None

    def attach(self, sink: Callable[[str, list[Reading]], None], window: float) -> None:
        """Start handing readings to ``sink``: the recorded past first (what a source
        backfilled when the recording began, up to ``window`` seconds of it: drawn as the live
        cockpit drew it, never alerted on), then everything up to the start point at once."""
        self.sink = sink
        self._hand_over([r for r in self.tape.readings(self.begin - window, self.begin) if r.ts < self.begin],
                        history=True)
        if self.start is not None and self.start > self.begin:
            self.advance_to(min(self.start, self.end))

    @property
    def finished(self) -> bool:
        return self.position >= self.end

    def tick(self, wall_seconds: float) -> None:
        """Called with the wall time since the last tick: moves ``speed`` times as far."""
        if not self.paused and not self.finished:
            self.advance_to(min(self.end, self.position + wall_seconds * self.speed))

    def step(self, seconds: float) -> None:
        """One interval forward, paused (backwards is a seek)."""
        self.paused = True
        self.advance_to(min(self.end, self.position + seconds))

    def faster(self) -> float:
        self.speed = next((s for s in SPEEDS if s > self.speed), SPEEDS[-1])
        return self.speed

    def slower(self) -> float:
        self.speed = next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0])
        return self.speed

    def seek(self, t: float, window: float) -> None:
        """Move to ``t`` (either way), handing over the ``window`` seconds before it as
        the past: drawn, never alerted on (what crossed before ``t`` is not news)."""
        t = min(self.end, max(self.begin, t))
        self.clock.jump(t)
        self.position, self._pending, self._loaded_to = t, [], t
        self._hand_over(self.tape.readings(t - window, t), history=True)
        self._ghosts_passed = {i for i in self._ghosts_passed if self.ghosts[i].ts <= t}  # later ones come again
        self._pass_ghosts(t)

    def advance_to(self, t: float) -> None:
        """Hand over every reading with ts <= t, grouped by source, in time order."""
        if t < self.position:
            raise ValueError("a replay only moves forward")
        while self._loaded_to < t:
            upto = min(self.end, self._loaded_to + CHUNK)
            self._pending += [r for r in self.tape.readings(self._loaded_to, upto) if r.ts > self._loaded_to
                              or (r.ts == self.begin and self._loaded_to == self.begin)]
            self._loaded_to = upto if upto > self._loaded_to else t
        due = [r for r in self._pending if r.ts <= t]
        self._pending = [r for r in self._pending if r.ts > t]
        self.clock.set(t)
        self.position = t
        self._hand_over(due)
        self._pass_ghosts(t)

    def _pass_ghosts(self, t: float) -> None:
        for i, ev in enumerate(self.ghosts):
            if ev.ts <= t and i not in self._ghosts_passed:
                self._ghosts_passed.add(i)
                self.on_ghost(TimelineEvent(ev.ts, "ghost", ev.text, ev.level, ev.signal,
                                            {"by": ev.payload.get("by", "")}))

    def _hand_over(self, readings: list[Reading], history: bool = False) -> None:
        """To the sink, grouped by source, received on the drill clock's monotonic scale."""
        by_source: dict[str, list[Reading]] = {}
        mono, now = self.clock.monotonic(), self.clock.now()
        for r in readings:
            by_source.setdefault(r.source, []).append(
                dataclasses.replace(r, received=mono - (now - r.ts), history=r.history or history))
        for source, batch in by_source.items():
            self.sink(source, batch)


_OFFSET = re.compile(r"\+?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?")


def parse_position(text: str, begin: float, end: float) -> float:
    """A place on a tape a trainee typed: an offset from its start (``90``, ``5m``,
    ``1h30m``) or a time (``03:12`` UTC on the tape's last day, ISO 8601). Raises
    ValueError saying what to type."""
    m = _OFFSET.fullmatch(text.strip())
    if m and any(m.groups()):
        h, mi, s = (int(g or 0) for g in m.groups())
        at = begin + h * 3600 + mi * 60 + s
    else:
        at = parse_when(text, end)
    if not begin <= at <= end:
        raise ValueError(f"{text!r} is outside the tape ({end - begin:.0f} s long)")
    return at
