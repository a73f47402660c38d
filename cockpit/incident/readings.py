"""The key signals' readings as the journal keeps them (every reading, in the incident's
snapshots), and the incident window they are read over: for the postmortem's figures and
its charts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cockpit.incident.journal import Event
from cockpit.incident.state import IncidentState
from cockpit.units import formatter


_LEGACY = {"error_rate": ("error_rate", "error rate", "ratio"), "latency_p95": ("latency", "p95 latency", "seconds"),
           "cost_per_day": ("cost", "cost", "usd_per_day")}


def window(st: IncidentState, now: float) -> tuple[float, float]:
    """The incident window: impact start to resolution (or now)."""
    start = st.milestones.get("impact_started", st.declared_at)
    return start, st.milestones.get("resolved", now)


@dataclass
class SignalSeries:
    """Every journaled reading of one key signal, with what it takes to show it."""

    role: str
    title: str
    unit: str
    warn: float | None = None
    critical: float | None = None
    direction: str = "above"
    series: str = ""
    points: list[tuple[float, float]] = field(default_factory=list)

    def fmt(self, v: float | None) -> str:
        try:
            return formatter(self.unit)(v)
        except KeyError:
            return "—" if v is None else f"{v:.4g}"

    def within(self, start: float, end: float) -> list[tuple[float, float]]:
        return [(t, v) for t, v in self.points if start <= t <= end]

    def extremes(self, start: float, end: float) -> dict[str, tuple[float, float]] | None:
        """max, min and worst (max when higher is worse) in the window, each with its time."""
        pts = self.within(start, end)
        if not pts:
            return None
        hi = max(pts, key=lambda p: p[1])
        lo = min(pts, key=lambda p: p[1])
        return {"max": hi, "min": lo, "worst": hi if self.direction == "above" else lo}


def signal_series(events: list[Event]) -> dict[str, SignalSeries]:
    """The key signals' readings from the journal's snapshots, in time order."""
    out: dict[str, SignalSeries] = {}
    points: dict[str, dict[float, float]] = {}
    for e in events:
        if e.kind != "metrics_snapshot":
            continue
        p = e.payload
        if "samples" in p:
            for role, meta in (p.get("signals") or {}).items():
                if role not in out and isinstance(meta, dict):
                    out[role] = SignalSeries(role, str(meta.get("title", role)), str(meta.get("unit", "")),
                                             _num(meta.get("warn")), _num(meta.get("critical")),
                                             "below" if meta.get("direction") == "below" else "above",
                                             str(meta.get("series", "")))
            for role, pts in (p.get("samples") or {}).items():
                for pt in pts if isinstance(pts, list) else []:
                    if isinstance(pt, list) and len(pt) == 2 and _num(pt[0]) is not None and _num(pt[1]) is not None:
                        points.setdefault(role, {})[float(pt[0])] = float(pt[1])
        else:  # the flat snapshots of older journals: one value per signal
            for key, v in p.items():
                if key in _LEGACY and _num(v) is not None:
                    role, title, unit = _LEGACY[key]
                    out.setdefault(role, SignalSeries(role, title, unit))
                    points.setdefault(role, {})[e.ts] = float(v)
    for role, pts in points.items():
        if role in out:
            out[role].points = sorted(pts.items())
    return out


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
