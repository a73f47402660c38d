"""`cockpit check`: poll every source once and report."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from cockpit.config import CockpitConfig
from cockpit.model import Reading, Status
from cockpit.signals.sources import SourceContext, build_source, describe_error
from cockpit.units import fmt_ratio, fmt_seconds, fmt_usd_per_day


@dataclass
class CheckResult:
    name: str
    kind: str
    ok: bool
    critical: bool
    latency: float
    text: str


def summarize(kind: str, readings: list[Reading]) -> tuple[bool, str]:
    """(ok, one line) for what a source returned."""
    errors = [r for r in readings if r.status is Status.ERROR]
    if kind == "http_health":
        h = next((r for r in readings if r.series == "health"), None)
        if h is None:
            return False, "no reading"
        # the source answered: that is what check verifies; what it said is the value
        return True, f"{h.state} ({h.detail})" if h.detail else str(h.state)
    if kind in ("http_components", "pg_health", "aws_status"):
        readings = [r for r in readings if r.series.startswith("component/")]
        errors = [r for r in readings if r.status is Status.ERROR]
        if len(readings) == 1 and not errors:
            r = readings[0]
            return True, f"{r.series.removeprefix('component/')} {r.state}" + (f" ({r.detail})" if r.detail else "")
        healthy = sum(1 for r in readings if r.status is Status.OK and r.value == 1.0)
        text = f"{healthy}/{len(readings)} healthy"
        if errors:
            text += f", {len(errors)} unreachable ({errors[0].error})"
        return not errors, text
    if kind == "prom_scrape":
        by = {r.series: r.value for r in readings}
        parts = []
        if "error_rate" in by:
            parts.append(f"errors {fmt_ratio(by['error_rate'])}")
        if "latency_p95" in by:
            parts.append(f"p95 {fmt_seconds(by['latency_p95'])}")
        if by.get("cost_per_day") is not None:
            parts.append(f"cost {fmt_usd_per_day(by['cost_per_day'])}")
        return not errors, ", ".join(parts) or "scraped"
    live = [r for r in readings if not r.history]
    parts = [f"{r.series} {r.value:.4g}" if r.ok and r.value is not None else
             f"{r.series}: {r.error or 'no data'}" for r in live[:4]]
    more = f" (+{len(live) - 4} more)" if len(live) > 4 else ""
    return not errors, ", ".join(parts) + more if parts else "no readings"


async def check_one(source, critical: bool) -> CheckResult:
    """Poll once; LATENCY is that poll's (the second one for a rate source)."""
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(source.prepare(), 30.0)
        readings = await asyncio.wait_for(source.poll(), source.deadline)
        if not readings:  # a rate source needs a second sample
            await asyncio.sleep(0.25)
            t0 = time.perf_counter()
            readings = await asyncio.wait_for(source.poll(), source.deadline)
        ok, text = summarize(source.kind, readings)
    except Exception as e:  # noqa: BLE001 - reported in the table
        ok, text = False, describe_error(e, source.timeout)
    return CheckResult(source.name, source.kind, ok, critical, time.perf_counter() - t0, text)


async def check_sources(config: CockpitConfig) -> list[CheckResult]:
    ctx = SourceContext()
    try:
        await ctx.session()  # build the shared client first so it is not counted as a source's latency
        sources = [build_source(s, ctx) for s in config.sources]
        return list(await asyncio.gather(*(check_one(s, c.critical) for s, c in zip(sources, config.sources))))
    finally:
        await ctx.aclose()


def format_table(results: list[CheckResult]) -> str:
    rows = [("SOURCE", "KIND", "RESULT", "LATENCY", "VALUE OR ERROR")]
    for r in results:
        verdict = "ok" if r.ok else ("FAILED" if r.critical else "failed (not critical)")
        rows.append((r.name, r.kind, verdict, f"{r.latency * 1000:.0f}ms", r.text))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4] for row in rows
    )
