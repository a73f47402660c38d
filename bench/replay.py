"""Replay tick cost: a drill replaying at 60x, each tick handing 6 s of tape to the
dashboard, with the demo's panels and --components components.

    .venv/bin/python bench/replay.py [--components 100] [--minutes 30] [--ticks 200]

A synthetic tape (the demo config, every series at 1 Hz, seeded; a bad deploy half
way) is written with cockpit.drill.tape, then opened as `cockpit drill TAPE --speed 60`
would: CockpitApp in DRILL mode with a Replayer, headless (App.run_test, 120x40). The
app's own replay timer is paused; each measured tick is a direct call of what the
timer runs (CockpitApp._replay_tick: decode what is due, hand it to the store and
the alert evaluator, refresh the dashboard) with the wall clock of a 0.1 s tick at
60x, timed by perf_counter. The timer fires every 100 ms: a tick must stay well
under that for keys to answer at once. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import checkout_state  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from screens.app import CockpitApp  # noqa: E402
from cockpit.clock import DrillClock  # noqa: E402
from cockpit.config import config_from_dict  # noqa: E402
from cockpit.drill.demo import demo_raw  # noqa: E402
from cockpit.model import Reading, Status  # noqa: E402
from cockpit.drill.replay import Replayer  # noqa: E402
from cockpit.drill.tape import Tape, start_recording  # noqa: E402

START = 1_795_300_000.0


def make_tape(path: Path, components: int, minutes: int):
    raw = demo_raw("http://127.0.0.1:9")
    names = ["api", "worker", "database", "ai-gateway"] + [f"svc-{i:04d}" for i in range(max(0, components - 4))]
    raw["sources"][1]["components"] = names
    config = config_from_dict(raw, "<bench>", {})
    rng = random.Random(3)
    writer = start_recording(path, config, "DEMO", START)
    seconds = minutes * 60
    for s in range(seconds):
        t, bad = START + s, s > seconds // 2
        err = (0.12 if bad else 0.008) + rng.gauss(0, 0.003)
        lat = (1.4 if bad else 0.25) + abs(rng.gauss(0, 0.05))
        batch = [Reading("health", "health", t, 1.0, state="up", detail="HTTP 200, status ok", latency=0.002),
                 Reading("health", "response_time", t, 0.002),
                 Reading("metrics", "error_rate", t, err), Reading("metrics", "latency_p50", t, lat / 3),
                 Reading("metrics", "latency_p95", t, lat), Reading("metrics", "latency_p99", t, lat * 1.2),
                 Reading("metrics", "cost_per_day", t, 60 + 70 * bad + rng.gauss(0, 2))]
        for i, n in enumerate(names):
            sick = bad and i % 10 == 0
            batch.append(Reading("components", f"component/{n}", t, 0.0 if sick else 1.0, Status.OK,
                                 state="unhealthy" if sick else "healthy", detail="5xx on /api" if sick else "ok"))
        writer.readings(batch)
    writer.close()
    return config


async def measure(path: Path, ticks: int) -> list[float]:
    tape = Tape.open(path)
    clock = DrillClock(tape.start)
    app = CockpitApp(config_from_dict(tape.header["config"], "<tape>", {}), mode="DRILL", armed=True,
                     clock=clock, poll=False, replay=Replayer(tape, clock, speed=60))
    times = []
    async with app.run_test(size=(120, 40)) as pilot:
        app.replay.paused = True  # the app's own timer idles; the ticks below are ours
        await pilot.pause()
        app.replay.paused = False
        for _ in range(ticks):
            if app.replay.finished:
                break
            app._replay_wall = time.monotonic() - 0.1  # one 100 ms timer period has passed
            t0 = time.perf_counter()
            app._replay_tick()
            times.append(time.perf_counter() - t0)
            await pilot.pause()  # let the frame be composed, as between two timer ticks
            app.replay.paused = True
            await app.journal_idle()
            app.replay.paused = False
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--components", type=int, default=100)
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--ticks", type=int, default=200)
    args = ap.parse_args()
    print(f"checkout: {checkout_state(ROOT)}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tape"
        make_tape(path, args.components, args.minutes)
        times = asyncio.run(measure(path, args.ticks))
    ms = sorted(t * 1000 for t in times)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(f"replay at 60x, {args.components} components, {len(ms)} ticks of 6 s of tape each "
          f"({(7 + args.components) * 6} readings a tick):")
    print(f"  tick (decode + store + alerts + dashboard refresh): median {statistics.median(ms):.1f} ms, "
          f"p95 {p95:.1f} ms, max {ms[-1]:.1f} ms (the timer fires every 100 ms)")


if __name__ == "__main__":
    main()
