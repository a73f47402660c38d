"""Charts of the key signals over an incident, for the postmortem: SVG files drawn with
matplotlib (imported here only, when a postmortem is written to a file; never at
start-up). Each chart shows every journaled reading of one signal, its warn and
critical levels, the incident window shaded from the first symptom, and the
milestones marked D (declared), A (acknowledged), M (mitigated), R (resolved).
The files are deterministic: the same journal gives the same bytes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cockpit.incident.state import IncidentState
    from cockpit.incident.readings import SignalSeries

MARKS = (("detected", "D"), ("acknowledged", "A"), ("mitigated", "M"), ("resolved", "R"))
CONTEXT = 120.0  # seconds shown before the first symptom


def draw_signals(st: IncidentState, now: float, stem: Path, series: dict[str, SignalSeries]) -> dict[str, Path]:
    """One SVG per key signal with readings, named ``<stem>-<role>.svg``; {role: path}."""
    from cockpit.incident.readings import window

    start, end = window(st, now)
    out: dict[str, Path] = {}
    for role, s in series.items():
        if s.warn is None and s.critical is None and role == "requests":
            continue  # the request rate only counts failed requests: not a key signal of its own
        pts = s.within(start - CONTEXT, end + CONTEXT)
        if len(pts) < 2:
            continue
        path = stem.parent / f"{stem.name}-{role}.svg"
        _draw(s, pts, st, start, end, path)
        out[role] = path
    return out


def _draw(s: SignalSeries, pts: list[tuple[float, float]], st: IncidentState, start: float, end: float,
          path: Path) -> None:
    from matplotlib import dates as mdates
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    def at(t: float) -> datetime:
        return datetime.fromtimestamp(t, tz=timezone.utc)

    with rc_context({"svg.hashsalt": "cockpit", "svg.fonttype": "none", "font.size": 9,
                     "axes.spines.top": False, "axes.spines.right": False}):
        fig = Figure(figsize=(8.0, 2.6), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        ax.axvspan(at(start), at(end), color="#d62728", alpha=0.06, lw=0)
        ax.plot([at(t) for t, _ in pts], [v for _, v in pts], color="#1f77b4", lw=1.4, drawstyle="steps-post")
        for level, colour, name in ((s.warn, "#ff7f0e", "warn"), (s.critical, "#d62728", "critical")):
            if level is not None:
                ax.axhline(level, color=colour, lw=1, ls="--")
                ax.annotate(f"{name} {s.fmt(level)}", (1.0, level), xycoords=("axes fraction", "data"),
                            xytext=(-4, 2), textcoords="offset points", ha="right", va="bottom", color=colour,
                            fontsize=8)
        lo = min(v for _, v in pts)
        hi = max([v for _, v in pts] + [x for x in (s.warn, s.critical) if x is not None])
        ax.set_ylim(min(0.0, lo), hi * 1.15 if hi > 0 else 1.0)
        placed: list[float] = []  # the milestones marked so far: one at (about) the same time goes under it
        for name, letter in MARKS:
            t = st.milestones.get(name)
            if t is None:
                continue
            under = sum(1 for p in placed if abs(p - t) <= (end - start + 2 * CONTEXT) * 0.02)
            placed.append(t)
            ax.axvline(at(t), color="#444444", lw=0.8, ls=":")
            ax.annotate(letter, (at(t), 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10 - 10 * under),
                        textcoords="offset points", fontsize=9, fontweight="bold", color="#222222")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: s.fmt(v)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=timezone.utc))
        ax.set_title(f"{s.title} (UTC)", loc="left", fontsize=10)
        ax.grid(axis="y", color="#dddddd", lw=0.6)
        fig.savefig(path, format="svg", metadata={"Date": None})
