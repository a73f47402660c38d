"""Helpers for Pilot and snapshot tests: apps over a real simulator on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from screens.app import CockpitApp
from cockpit.clock import ManualClock
from cockpit.drill.demo import demo_config
from cockpit.signals.poller import Poller
from cockpit.drill.simulator import Fault, Simulator, SimulatorServer
from cockpit.signals.sources import SourceContext, build_source


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds; fail clearly after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


async def prefilled_app(server: SimulatorServer, clock: ManualClock, seconds: int, **kw) -> CockpitApp:
    """An app (poller off) whose store was filled by really polling the simulator,
    one poll of every source per simulated second, on a manual clock."""
    app = CockpitApp(demo_config(server.url), mode="DEMO", armed=True, clock=clock, poll=False,
                     simulator=server, **kw)
    ctx = SourceContext(clock)
    poller = Poller([build_source(s, ctx) for s in app.config.sources], app.on_readings)
    try:
        for _ in range(seconds):
            clock.advance(1.0)
            await poll_each(poller)
    finally:
        await ctx.aclose()
    return app


async def poll_each(poller: Poller) -> None:
    """One poll of every source, one after another in the config's order: polled at once,
    their answers (and so the timeline's lines of one second) would come in any order."""
    for source in poller.sources:
        await poller.poll_once(source)


def frozen_demo(seed: int = 7, fault_at: float = 20.0, port: int = 0) -> tuple[SimulatorServer, ManualClock]:
    clock = ManualClock()
    sim = Simulator(clock=clock, seed=seed, faults=(Fault("bad_deploy", at=fault_at, version="v1.5.0"),))
    return SimulatorServer(sim, port=port).start(), clock


async def settle(pilot) -> None:
    """Let a key's journal operation finish (on the journal thread) and its result show."""
    await pilot.pause()
    await pilot.app.journal_idle()
    await pilot.pause()


@contextlib.asynccontextmanager
async def accelerated(clock: ManualClock, step: float = 0.5, every: float = 0.1):
    """Simulated time runs ``step / every`` times real time while inside, so every
    poll of a simulator on ``clock`` sees traffic."""
    async def tick() -> None:
        while True:
            clock.advance(step)
            await asyncio.sleep(every)

    ticker = asyncio.create_task(tick())
    try:
        yield
    finally:
        ticker.cancel()


def error_rate_below(app: CockpitApp, level: float) -> Callable[[], bool]:
    def check() -> bool:
        latest = app.store.latest("metrics:error_rate")
        return latest is not None and latest.ok and latest.value < level
    return check
