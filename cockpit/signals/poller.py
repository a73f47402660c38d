"""One asyncio task per source: poll, record, wait, repeat.

- A poll never overlaps the previous one of the same source: the next wait
  starts when a poll has finished (or was abandoned at its deadline).
- Every outcome becomes Readings handed to the sink; an exception from a
  source becomes error readings, never something the UI has to catch.
- After consecutive failures the wait grows (interval x 2^n) with +-20% jitter
  so many cockpits do not retry in step, never beyond the source's max_backoff.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cockpit.model import Reading
from cockpit.signals.sources._base import Source, describe_error

Sink = Callable[[str, list[Reading]], None]


@dataclass
class SourceState:
    """What the poller knows about one source right now."""

    polls: int = 0
    failures: int = 0  # consecutive
    in_flight: bool = False
    last_error: str = ""
    last_duration: float = 0.0


def backoff(interval: float, failures: int, cap: float, rng: random.Random) -> float:
    """Wait before the next poll after ``failures`` consecutive failures (>= 1); never more than ``cap``."""
    base = min(cap, interval * (2 ** min(failures - 1, 16)))
    return max(0.05, min(cap, base * rng.uniform(0.8, 1.2)))


PREPARE_TIMEOUT = 30.0  # seconds for a source's one-time setup (not its poll)


class Poller:
    def __init__(self, sources: Iterable[Source], sink: Sink, rng: random.Random | None = None) -> None:
        self.sources = list(sources)
        self.sink = sink
        self.state: dict[str, SourceState] = {s.name: SourceState() for s in self.sources}
        self._rng = rng or random.Random()
        self._wake: dict[str, asyncio.Event] = {}
        self.sink_errors = 0
        self.last_sink_error: Exception | None = None

    async def poll_once(self, source: Source) -> list[Reading]:
        """Poll one source now and hand the readings to the sink; returns them."""
        st = self.state[source.name]
        if st.in_flight:
            return []
        st.in_flight = True
        clock = source.ctx.clock
        t0 = clock.monotonic()
        try:
            await asyncio.wait_for(source.prepare(), timeout=PREPARE_TIMEOUT)
            readings = await asyncio.wait_for(source.poll(), timeout=source.deadline)
            st.failures = 0
            st.last_error = ""
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - every failure is recorded as data
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            st.failures += 1
            st.last_error = describe_error(e, source.timeout)
            source.reset()
            readings = source.failure(clock.now(), st.last_error)
        finally:
            st.in_flight = False
            st.polls += 1
            st.last_duration = clock.monotonic() - t0
        if readings:
            try:
                self.sink(source.name, readings)
            except Exception as e:  # noqa: BLE001 - a consumer's bug must not stop polling
                self.sink_errors += 1
                self.last_sink_error = e
        return readings

    def delay_after(self, source: Source) -> float:
        st = self.state[source.name]
        if st.failures:
            return backoff(source.interval, st.failures, source.max_backoff, self._rng)
        return source.next_delay()

    async def run_source(self, source: Source) -> None:
        wake = self._wake.setdefault(source.name, asyncio.Event())
        while True:
            await self.poll_once(source)
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=self.delay_after(source))
            except asyncio.TimeoutError:
                pass

    def poll_now(self, name: str | None = None) -> None:
        """Cut the current wait short for one source (or all): used by 'refresh now'."""
        for key, ev in self._wake.items():
            if name is None or key == name:
                ev.set()

    async def run(self) -> None:
        """Poll every source until cancelled."""
        tasks = [asyncio.create_task(self.run_source(s), name=f"poll:{s.name}") for s in self.sources]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for s in self.sources:
            try:
                await s.aclose()
            except Exception:  # noqa: BLE001 - closing must not fail shutdown
                pass
