"""What each panel shows, computed from the store without any UI code.

The widgets in ``screens/`` only draw these views, so the rules that matter
(when data is stale, what level a value is, what a failure looks like) are
plain functions with plain tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from dataclasses import dataclass, field

from cockpit.clock import Now, format_age
from cockpit.config import CockpitConfig, SignalPanel
from cockpit.model import STALE_GLYPH, Level, Reading, Status, series_key, state_level
from cockpit.signals.evaluator import level_of
from cockpit.signals.store import RingBuffer, Store
from cockpit.units import formatter


@dataclass(frozen=True)
class Freshness:
    """How fresh a series is: 'ok', 'stale', 'error' or 'waiting' (no poll finished yet)."""

    status: str
    age: float | None = None  # seconds since the newest good sample
    error: str = ""

    def label(self, width: int | None = None) -> str:
        """"updated 4s ago", "◌ ERROR · data 20s old"; in ``width`` cells when given, the
        age kept to the last (a narrow panel's border cut "◌ ERROR · d…": how old was it?)."""
        age = format_age(self.age) if self.age is not None else None
        if self.status == "waiting":
            forms = ["waiting for first poll", "waiting", "…"]
        elif self.status == "ok":
            forms = [f"updated {age} ago", f"{age} ago", age] if age else ["updated"]
        else:
            word = f"{STALE_GLYPH} {self.status.upper()}"
            forms = [f"{word} · data {age} old", f"{word} · {age} old", f"{STALE_GLYPH} {age} old",
                     f"{STALE_GLYPH} {age}"] if age else [f"{word} · no data yet", word]
        return next((f for f in forms if width is None or len(f) <= width), forms[-1])


def as_now(now: Now | float) -> Now:
    return now if isinstance(now, Now) else Now(now)


def freshness(buf: RingBuffer | None, now: Now | float, stale_after: float) -> Freshness:
    if buf is None or buf.latest is None:
        return Freshness("waiting")
    latest, good = buf.latest, buf.last_ok
    age = as_now(now).age(good.ts, good.received) if good is not None else None
    if latest.status is Status.ERROR:
        return Freshness("error", age, latest.error)
    if age is None or age > stale_after:
        return Freshness("stale", age, "no new data")
    return Freshness("ok", age)


def stale_after(cfg: CockpitConfig, source_name: str) -> float:
    src = cfg.source(source_name)
    return cfg.settings.stale_factor * src.interval + src.timeout


@dataclass
class SignalView:
    title: str
    level: Level
    value_text: str
    fresh: Freshness
    threshold_text: str
    extras: list[tuple[str, str]] = field(default_factory=list)
    samples: list[float | None] = field(default_factory=list)
    sample_levels: list[Level] = field(default_factory=list)
    #: the sparkline's scale reaches at least this (the warn level, where higher is worse):
    #: noise far under it stays low instead of filling the panel
    ceiling: float | None = None
    #: the samples at which something changed (a deploy, an action): a ◆ over their column
    marks: frozenset[int] = frozenset()

    def drawn(self) -> tuple:
        """Everything the panel body shows (the age in the subtitle aside)."""
        return (self.title, self.level, self.value_text, self.fresh.status, self.fresh.error,
                self.threshold_text, tuple(self.extras), self.samples, self.marks)

    @property
    def badge(self) -> str:
        """Glyph and word: the level when fresh, STALE/ERROR otherwise (never an old level as current)."""
        if self.fresh.status in ("ok",):
            return f"{self.level.glyph} {self.level.word}"
        if self.fresh.status == "waiting":
            return f"{Level.UNKNOWN.glyph} WAITING"
        return f"{STALE_GLYPH} {self.fresh.status.upper()}"


TITLES = {
    "health": "Health",
    "error_rate": "Error rate",
    "latency": "Latency",
    "cost": "Cost burn",
    "components": "Components",
}


def signal_view(
    cfg: CockpitConfig, role: str, store: Store, now: Now | float, samples: int = 240, cache: dict | None = None,
    changes: Sequence[float] = (),
) -> SignalView:
    """The view of one signal panel. ``cache`` (a dict the caller keeps) saves
    re-reading the samples while the buffer has not changed. ``changes``: when things
    changed (deploys, actions), oldest first; each marks the first sample taken at or
    after it."""
    panel: SignalPanel = cfg.panels.signal(role)
    fmt = formatter(panel.unit)
    source = panel.series.split(":", 1)[0]
    buf = store.get(panel.series)
    fresh = freshness(buf, now, stale_after(cfg, source))
    good = buf.last_ok if buf else None
    value = good.value if good is not None else None
    if fresh.status == "ok":
        level = level_of(value, panel.threshold)
        value_text = fmt(value) if value is not None else "no traffic" if good and good.detail else "—"
    else:
        level = Level.UNKNOWN
        value_text = f"last {fmt(value)}" if value is not None else "—"
    extras = []
    labels = also_labels(panel.also)
    for ref in panel.also:
        other = store.get(ref)
        v = other.last_ok.value if other is not None and other.last_ok is not None else None
        fresh_other = freshness(other, now, stale_after(cfg, ref.split(":", 1)[0])).status == "ok"
        extras.append((labels[ref], fmt(v) if fresh_other else "—"))
    hit = cache.get(role) if cache is not None else None
    version = buf.version if buf else -1
    if hit is not None and hit[0] == version:
        values, levels = hit[1], hit[2]
    else:
        values = buf.values(samples) if buf else []
        levels = _levels(values, panel.threshold, hit[1:] if hit is not None else ([], []))
        if cache is not None:
            cache[role] = (version, values, levels)
    return SignalView(
        title=panel.title or TITLES.get(role, role),
        level=level,
        value_text=value_text,
        fresh=fresh,
        threshold_text=_threshold_text(panel, fmt),
        extras=extras,
        samples=values,
        sample_levels=levels,
        ceiling=_ceiling(panel.threshold),
        marks=_marks(role, buf, len(values), changes, cache),
    )


def _marks(role: str, buf: RingBuffer | None, n: int, changes: Sequence[float],
           cache: dict | None) -> frozenset[int]:
    """The marks of a panel's sparkline, worked out again only when its samples or the
    changes moved (not on every refresh: the sample times are read from the buffer)."""
    if buf is None or not changes:
        return frozenset()
    key = (buf.version, n, len(changes), changes[-1], changes[0])
    hit = cache.get(("marks", role)) if cache is not None else None
    if hit is not None and hit[0] == key:
        return hit[1]
    marks = change_marks(buf.times(n), changes)
    if cache is not None:
        cache[("marks", role)] = (key, marks)
    return marks


def change_marks(times: Sequence[float], changes: Sequence[float]) -> frozenset[int]:
    """The indices of ``times`` (sample times, oldest first) each change time falls on: the
    first sample at or after it; a change before the first sample or after the last marks
    nothing (it is not on the sparkline)."""
    from bisect import bisect_left

    if not times:
        return frozenset()
    out = set()
    for t in changes:
        if times[0] <= t <= times[-1]:
            out.add(bisect_left(times, t))
    return frozenset(out)


def _ceiling(t) -> float | None:
    """Where a sparkline's scale tops out at least: the first level that matters."""
    if t.direction != "above":
        return None
    return t.warn if t.warn is not None else t.critical


def _levels(values: list[float | None], threshold, before: tuple[list, list]) -> list[Level]:
    """Each sample's level. A poll shifts the window by a sample or two: the levels of the
    samples still in it are taken from ``before`` (the last window's values and levels)
    when those values are the same, and only the new ones are worked out."""
    old_values, old_levels = before
    for new in range(1, min(len(values), 4) + 1):  # samples appended since the last window
        keep = len(values) - new
        if keep <= len(old_values) and values[:keep] == old_values[len(old_values) - keep:]:
            return old_levels[len(old_levels) - keep:] + [level_of(v, threshold) for v in values[keep:]]
    return [level_of(v, threshold) for v in values]


def also_labels(refs: list[str]) -> dict[str, str]:
    """Each ``also`` series' label: its series name (``latency_`` dropped), or
    ``source:series`` where two would read the same (p99 of two services)."""
    short = {ref: ref.split(":", 1)[1].removeprefix("latency_") for ref in refs}
    seen: dict[str, int] = {}
    for label in short.values():
        seen[label] = seen.get(label, 0) + 1
    return {ref: label if seen[label] == 1 else f"{ref.split(':', 1)[0]}:{label}" for ref, label in short.items()}


def _threshold_text(panel: SignalPanel, fmt) -> str:
    t = panel.threshold
    short = lambda v: fmt(v).removesuffix("/day")  # noqa: E731 - the value line carries the unit
    rel = "≥" if t.direction == "above" else "≤"  # as they fire: a value at the limit is at that level
    parts = []
    if t.warn is not None:
        parts.append(f"warn {rel}{short(t.warn)}")
    if t.critical is not None:
        parts.append(f"crit {rel}{short(t.critical)}")
    return " · ".join(parts) if parts else "no thresholds"


@dataclass
class CheckView:
    """One health check or component row."""

    name: str
    level: Level
    state: str  # word shown: UP, DEGRADED, DOWN, UNREACHABLE, STALE, WAITING
    detail: str
    fresh: Freshness
    latency: float | None = None
    changed_at: float | None = None

    def drawn(self) -> tuple:
        """What the health panel shows of this check (the age aside)."""
        return (self.name, self.level, self.state, self.detail, self.fresh.status,
                None if self.latency is None else round(self.latency * 1000))


def check_view(name: str, buf: RingBuffer | None, now: Now | float, stale_for: float) -> CheckView:
    fresh = freshness(buf, now, stale_for)
    latest: Reading | None = buf.latest if buf else None
    if latest is None:
        return CheckView(name, Level.UNKNOWN, "WAITING", "", fresh)
    if latest.state is not None and latest.status is Status.ERROR and latest.state == "unreachable":
        # a health endpoint that cannot be reached is an outage signal in itself
        return CheckView(name, Level.CRIT, "UNREACHABLE", latest.error, fresh)
    if fresh.status != "ok":
        was = buf.last_ok.state if buf.last_ok is not None else None
        detail = fresh.error + (f" (was {was})" if was else "")
        return CheckView(name, Level.UNKNOWN, fresh.status.upper(), detail, fresh)
    return CheckView(
        name, state_level(latest.state), (latest.state or "?").upper(), latest.detail, fresh, latest.latency
    )


def health_views(cfg: CockpitConfig, store: Store, now: Now | float) -> list[CheckView]:
    out = []
    for src in cfg.panels.health_sources:
        buf = store.get(series_key(src, "health"))
        out.append(check_view(src, buf, now, stale_after(cfg, src)))
    return out


def worst(levels: list[Level]) -> Level:
    known = [lv for lv in levels if lv is not Level.UNKNOWN]
    if not known:
        return Level.UNKNOWN
    return max(known)
