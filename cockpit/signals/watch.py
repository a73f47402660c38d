"""What the cockpit watches: readings into the store, crossings and state changes out as
alerts, the key signals' record for the journal, the severity they suggest.

UI-free: the app feeds :meth:`SignalWatch.take` with the poller's (or a tape's) readings
and journals what comes back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cockpit.model import CHANGE_PREFIX, Level, Reading, state_level
from cockpit.signals.evaluator import ChangeTracker, CrossingTracker, StateTracker
from cockpit.signals.store import Store
from cockpit.units import formatter

MAX_SAMPLES = 200_000  # per series: 17 bytes each, 3.4 MB at most


def capacity_for(config) -> Callable[[str], int]:
    """Ring-buffer size per series: the configured history at the source's interval."""
    intervals = {s.name: s.interval for s in config.sources}

    def size(key: str) -> int:
        interval = intervals.get(key.split(":", 1)[0], 1.0)
        return max(16, min(MAX_SAMPLES, int(config.settings.history / interval) + 1))

    return size


@dataclass
class Taken:
    """What a batch of readings did: ``first`` a series got its first reading (draw now),
    ``alerts`` the crossings and state changes to journal, in order."""

    first: bool = False
    alerts: list = field(default_factory=list)


class SignalWatch:
    """The store and the alert trackers of one cockpit, set up from its config."""

    def __init__(self, config, store: Store | None = None) -> None:
        self.config = config
        self.store = store if store is not None else Store(capacity_for(config))
        self.tracker = CrossingTracker()
        self.states = StateTracker(config.settings.state_hold, config.settings.state_clear_hold)
        self.changes = ChangeTracker(float(config.settings.history))
        for _, panel, name in self.panels():
            self.tracker.watch(panel.series, name, panel.threshold, formatter(panel.unit))
        self._row_word = {s.name: s.row_word for s in config.sources}  # "component api", "alert HighErrorRate{…}"
        self._marks: dict[str, int] = {}  # series -> its buffer's version when last recorded
        self._recorded_until: float | None = None

    def panels(self) -> Iterator[tuple[str, object, str]]:
        """(key, panel config, name on the timeline) of every numeric signal: the three key
        signals by role, then the extra panels (``extra.0``…). A panel's title is its name
        as written ("CPU", "DB connections"); without one, the role ("error rate")."""
        for key, panel in self.config.panels.signals():
            yield key, panel, panel.title or key.replace("_", " ")

    def take(self, readings: list[Reading]) -> Taken:
        """Store the readings and evaluate them. History (a backfill) is drawn, never alerted on."""
        out = Taken()
        store = self.store
        for r in readings:
            store.add(r)
            out.first = out.first or len(store.get(r.key)) == 1
        for r in readings:
            if r.history:
                continue
            if r.series.startswith(CHANGE_PREFIX):
                if (ev := self.changes.update(r)) is not None:
                    out.alerts.append(ev)
                continue
            ev = self.tracker.update(r.key, r.value if r.ok else None, r.ts)
            if ev is None and r.state is not None:
                ev = self.states.update(r.key, state_label(r, self._row_word.get(r.source, "component")), r.state, r.ts)
            if ev is not None:
                out.alerts.append(ev)
        return out

    def settle(self) -> None:
        """Set the trackers to what the store holds now without announcing it (after a seek)."""
        latest = {key: r for key in self.store.keys() if (r := self.store.latest(key)) is not None}
        for key in self.tracker.watches:
            r = latest.get(key)
            self.tracker.settle(key, r.value if r is not None and r.ok else None)
        changes = {key: r for key, r in latest.items() if f":{CHANGE_PREFIX}" in key}
        self.states.settle({key: r.state for key, r in latest.items() if r.state is not None and key not in changes})
        self.changes.settle({key: (r.state, r.value if r.has_value else None) for key, r in changes.items()
                             if r.ok and r.state})

    def values(self) -> dict[str, float]:
        """The key signals as they read now, by series name."""
        out = {}
        for _, panel, _ in self.panels():
            latest = self.store.latest(panel.series)
            if latest is not None and latest.ok and latest.has_value:
                out[panel.series.split(":", 1)[1]] = round(latest.value, 6)
        return out

    def units(self) -> dict[str, str]:
        """Each key signal's unit, by the name :meth:`values` gives it."""
        return {panel.series.split(":", 1)[1]: panel.unit for _, panel, _ in self.panels()}

    def shown(self) -> dict[str, str]:
        """The key signals as they read now, each as its panel shows it (21.3%, 993ms, $62/day)."""
        from cockpit.units import formatter

        units = self.units()
        return {name: formatter(units[name])(value) for name, value in self.values().items()}

    def record(self, since: float, until: float) -> dict:
        """Every reading of the key signals since the last record, with what the postmortem's
        charts need to draw them (title, unit, thresholds).

        Continuing the last record (``since`` is where it ended): every reading appended since
        then, by arrival, so a value stamped with its own earlier time (a CloudWatch period's
        end, Prometheus's evaluation time) is not lost between two records; at most
        ``settings.history`` old. Otherwise (the first record of an incident): the readings
        stamped in (since, until]."""
        continuing = self._recorded_until is not None and since == self._recorded_until
        oldest = since - float(self.config.settings.history)
        signals, samples = {}, {}

        def take(series: str) -> list[list[float]]:
            buf = self.store.get(series)
            if buf is None:
                return []
            mark = self._marks.get(series) if continuing else None
            self._marks[series] = buf.version
            if mark is None:
                return finite(buf.samples_after(since), until)
            return finite([p for p in buf.appended_since(mark) if p[0] > oldest], float("inf"))

        for role, panel, name in self.panels():
            t = panel.threshold
            signals[role] = {"title": name, "series": panel.series, "unit": panel.unit, "warn": t.warn,
                             "critical": t.critical, "direction": t.direction}
            samples[role] = take(panel.series)
            if role == "error_rate":  # with the request rate, the postmortem counts failed requests
                rate = f"{panel.series.split(':', 1)[0]}:request_rate"
                if self.store.get(rate) is not None:
                    signals["requests"] = {"title": "requests", "series": "request_rate", "unit": "per_second"}
                    samples["requests"] = take(rate)
        self._recorded_until = until
        return {"signals": signals, "samples": samples}

    def suggestion(self) -> tuple[str | None, str]:
        """The severity the seed definitions suggest from the signals now, and why."""
        from cockpit.signals.evaluator import suggest_severity

        s = suggest_severity(self.signals_now())
        return s.severity, s.driver

    def firing(self) -> list[str]:
        """What is at WARN or worse now, worst first: "error rate CRIT 18.8%", "component api CRIT"."""
        bad = sorted((s for s in self.signals_now() if s.level >= Level.WARN), key=lambda s: -s.level)
        return [s.said for s in bad]

    def signals_now(self) -> list:
        """Every key signal, health check and component (or alert row) with its level now."""
        from cockpit.signals.evaluator import Signal

        signals = []
        for role, panel, name in self.panels():
            latest = self.store.latest(panel.series)
            shown = formatter(panel.unit)(latest.value) if latest is not None and latest.ok else ""
            signals.append(Signal(role.split(".")[0], name, self.tracker.level(panel.series), shown))
        for src in self.config.panels.health_sources:
            latest = self.store.latest(f"{src}:health")
            level = state_level(latest.state) if latest is not None else Level.UNKNOWN
            signals.append(Signal("health", f"health check {src}", level, critical=self.config.source(src).critical))
        for key, state in self.states.states.items():
            if ":component/" in key:
                word = self._row_word.get(key.split(":", 1)[0], "component")
                signals.append(Signal("alert" if word == "alert" else "component",
                                      f"{word} {key.split(':component/', 1)[1]}", state_level(state)))
        return signals


def state_label(r: Reading, row_word: str = "component") -> str:
    if r.series.startswith("component/"):
        return f"{row_word} {r.series.removeprefix('component/')}"
    return f"health check {r.source}"


def finite(points: list[tuple[float, float | None]], until: float) -> list[list[float]]:
    """[time, value] pairs up to ``until``, gaps and non-finite values left out, rounded."""
    return [[round(ts, 3), float(f"{v:.6g}")] for ts, v in points if v is not None and ts <= until
            and math.isfinite(v)]
