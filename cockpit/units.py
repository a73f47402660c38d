"""How values are shown, per unit. Every formatter takes what a source may send: None (no
value: "—"), NaN ("—"), infinities ("+Inf" / "-Inf", as Prometheus writes them) and
absurd magnitudes (1e308 seconds is shown in a few characters, never a panel's width)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps

HUGE = 1e12  # beyond this a value is shown in scientific notation


def _bounded(suffix: str = "", prefix: str = "", scale: float = 1.0) -> Callable[[Callable[[float], str]],
                                                                           Callable[[float | None], str]]:
    """Wrap a formatter of ordinary numbers so that every other value reads sensibly."""

    def wrap(fmt: Callable[[float], str]) -> Callable[[float | None], str]:
        @wraps(fmt)
        def show(v: float | None) -> str:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "—"
            if math.isinf(v) or math.isinf(v * scale):
                return "+Inf" if v > 0 else "-Inf"
            if abs(v) >= HUGE:
                return f"{prefix}{v * scale:.3g}{suffix}"
            return fmt(v)

        return show

    return wrap


def _pct(p: float) -> str:
    """A percentage with the digits that keep it honest: one decimal from 1 % up, two
    significant digits below (0.04 % is not 0.0 %), "<0.001%" for what is left."""
    if p == 0 or abs(p) >= 1:
        return f"{p:.1f}%"
    if abs(p) < 0.001:
        return "<0.001%" if p > 0 else ">-0.001%"
    decimals = min(3, 1 - math.floor(math.log10(abs(p))))
    text = f"{p:.{decimals}f}".rstrip("0")
    return (text + "0" if text.endswith(".") else text) + "%"


@_bounded(suffix="%", scale=100.0)
def fmt_ratio(v: float) -> str:
    return _pct(v * 100)


@_bounded(suffix="s")
def fmt_seconds(v: float) -> str:
    if v < 1:
        return f"{v * 1000:.0f}ms"
    return f"{v:.2f}s" if v < 10 else f"{v:.1f}s"


@_bounded(prefix="$", suffix="/day")
def fmt_usd_per_day(v: float) -> str:
    return f"${v:,.0f}/day" if v >= 10 else f"${v:,.2f}/day"


@_bounded(prefix="$")
def fmt_usd(v: float) -> str:
    return f"${v:,.2f}"


@_bounded()
def fmt_count(v: float) -> str:
    return f"{v:,.0f}"


@_bounded(suffix="/s")
def fmt_per_second(v: float) -> str:
    return f"{v:,.1f}/s"


@_bounded(suffix="%")
def fmt_percent(v: float) -> str:
    return _pct(v)


FORMATS: dict[str, Callable[[float | None], str]] = {
    "ratio": fmt_ratio,
    "seconds": fmt_seconds,
    "usd_per_day": fmt_usd_per_day,
    "usd": fmt_usd,
    "count": fmt_count,
    "per_second": fmt_per_second,
    "percent": fmt_percent,
}


def formatter(unit: str) -> Callable[[float | None], str]:
    return FORMATS[unit]
