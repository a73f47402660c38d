"""How values are shown, per unit."""

from __future__ import annotations

from collections.abc import Callable


def fmt_ratio(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v * 100:.1f}%"


def fmt_seconds(v: float | None) -> str:
    if v is None:
        return "—"
    if v < 1:
        return f"{v * 1000:.0f}ms"
    return f"{v:.2f}s" if v < 10 else f"{v:.1f}s"


def fmt_usd_per_day(v: float | None) -> str:
    if v is None:
        return "—"
    return f"${v:,.0f}/day" if v >= 10 else f"${v:,.2f}/day"


def fmt_usd(v: float | None) -> str:
    return "—" if v is None else f"${v:,.2f}"


def fmt_count(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def fmt_per_second(v: float | None) -> str:
    return "—" if v is None else f"{v:,.1f}/s"


def fmt_percent(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}%"


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
