"""`cockpit check`: poll every source once and report."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from cockpit.config import CockpitConfig
from cockpit.model import Reading, Status
from cockpit.signals.sources import SourceContext, build_source, describe_error


@dataclass
class CheckResult:
    name: str
    kind: str
    ok: bool
    critical: bool
    latency: float
    text: str


def summarize(kind: str, readings: list[Reading]) -> tuple[bool, str]:
    """(ok, one line) for what a source returned: its kind's own summary (a module-level
    ``summarize`` in the kind's module) or the general one."""
    from cockpit import kinds

    return getattr(kinds.source_module(kind), "summarize", summarize_series)(readings)


def summarize_series(readings: list[Reading]) -> tuple[bool, str]:
    """Every series with its value, and every failing series with its own error (nothing
    hidden behind "+N more": a broken query is what `check` is for); history loaded at
    start-up is not a poll's answer."""
    live = [r for r in readings if not r.history]
    parts = []
    for r in live:
        if r.ok and r.value is not None:
            parts.append(f"{r.series} {r.value:.4g}")
        else:
            error = r.error or "no data"
            parts.append(error if error.startswith(f"{r.series}:") else f"{r.series}: {error}")
    return not any(r.status is Status.ERROR for r in live), ", ".join(parts) if parts else "no readings"


#: seconds `check` waits for a rate source's second scrape (its min_rate_window after the first)
MAX_WARMUP = 10.0


async def check_one(source, critical: bool) -> CheckResult:
    """Poll once; LATENCY is that poll's (the last one for a rate source). A rate source
    that is warming up is polled again when it can give a rate, never sooner: a rate over
    a fraction of a second is a wrong number. If that is more than MAX_WARMUP away, the
    line says so instead of showing a rate."""
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(source.prepare(), 30.0)
        source.checking()  # one answer now: no history loaded for sparklines
        readings = await asyncio.wait_for(source.poll(), source.deadline)
        waited = 0.0
        if not readings and not source.warming_up():  # nothing yet, for no stated reason: once more
            await asyncio.sleep(0.25)
            t0 = time.perf_counter()
            readings = await asyncio.wait_for(source.poll(), source.deadline)
        while source.warming_up() and waited + source.next_delay() <= MAX_WARMUP:
            delay = source.next_delay()
            await asyncio.sleep(delay)
            waited += delay
            t0 = time.perf_counter()
            readings = await asyncio.wait_for(source.poll(), source.deadline)
        if source.warming_up():  # (what a warming source gave, a version, is not its figures)
            ok, text = True, f"answered; {source.warming_up()} (check waits at most {MAX_WARMUP:g}s)"
        else:
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
