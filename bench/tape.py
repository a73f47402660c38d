"""Tape size, open and seek: a synthetic recording of --series series at 1 Hz for --hours.

    .venv/bin/python bench/tape.py [--hours 24] [--series 50] [--runs 5]

The recording is written through cockpit.drill.tape.TapeWriter as a cockpit would write it
(frames of 10 s). Series are telemetry-like: rates that wander (a random walk with
noise, rounded as sources report them), latencies in seconds, counters, a cost per
day climbing through the day, and health checks (1.0 with state and detail words).
Seeded: the same tape every run.

Prints: the file size (target <= 30 MB for 24 h x 50 series), bytes per reading, the
time to write it, and medians of --runs for: opening the tape (header + frame index)
and seeking to a random time and reading the hour before it (what a replay needs to
fill its sparklines), each in a fresh Tape.open (target: open + seek within 1 s).
Prints figures only.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import checkout_state  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cockpit.model import Reading  # noqa: E402
from cockpit.drill.tape import Tape, TapeWriter  # noqa: E402

START = 1_795_300_000.0
TARGET_MB = 30.0


def series_plan(count: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(source, series, shape) for ``count`` series."""
    shapes = ("rate", "latency", "counter", "cost", "health")
    return [(f"src{i // 5}", f"{shapes[i % 5]}_{i}", shapes[i % 5]) for i in range(count)]


def write(path: Path, hours: float, count: int, seed: int = 1) -> tuple[int, float]:
    rng = random.Random(seed)
    plan = series_plan(count, rng)
    level = [rng.uniform(0.5, 2.0) for _ in plan]
    w = TapeWriter(path, {"service": "bench", "started": START})
    seconds = int(hours * 3600)
    t0 = time.perf_counter()
    for s in range(seconds):
        t = START + s
        batch = []
        for i, (source, series, shape) in enumerate(plan):
            level[i] = max(0.0, level[i] + rng.gauss(0, 0.01))
            if shape == "rate":
                batch.append(Reading(source, series, t, round(level[i] / 100 + rng.gauss(0, 0.0005), 5)))
            elif shape == "latency":
                batch.append(Reading(source, series, t, round(0.2 * level[i] + abs(rng.gauss(0, 0.02)), 4)))
            elif shape == "counter":
                batch.append(Reading(source, series, t, float(int(1000 * level[i]) + s)))
            elif shape == "cost":
                batch.append(Reading(source, series, t, round(40 + 60 * (s / seconds) + math.sin(s / 600), 2)))
            else:
                up = rng.random() > 0.001
                batch.append(Reading(source, "health", t, 1.0 if up else 0.0, state="up" if up else "down",
                                     detail="HTTP 200, status ok" if up else "HTTP 503", latency=round(
                                         0.003 + abs(rng.gauss(0, 0.001)), 6)))
        w.readings(batch)
    w.close()
    return seconds * count, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--series", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"checkout: {checkout_state(ROOT)}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tape"
        n, took = write(path, args.hours, args.series)
        size = path.stat().st_size
        print(f"{args.hours:g} h x {args.series} series at 1 Hz: {n:,} readings written in {took:.1f} s")
        print(f"  size: {size / 1e6:.2f} MB ({size / n:.2f} bytes per reading; target <= {TARGET_MB:g} MB "
              f"for 24 h x 50)")
        rng = random.Random(2)
        opens, seeks = [], []
        span = args.hours * 3600
        for _ in range(args.runs):
            t0 = time.perf_counter()
            tape = Tape.open(path)
            t1 = time.perf_counter()
            at = START + rng.uniform(min(3600, span), span)
            got = tape.readings(at - 3600, at)
            t2 = time.perf_counter()
            opens.append(t1 - t0)
            seeks.append(t2 - t1)
        print(f"  open (header + index of {len(tape.frames):,} frames): median {statistics.median(opens) * 1000:.1f} ms")
        print(f"  seek + read the hour before a random time ({len(got):,} readings): "
              f"median {statistics.median(seeks) * 1000:.1f} ms")
        print(f"  open + seek: median {statistics.median(o + s for o, s in zip(opens, seeks)) * 1000:.1f} ms "
              f"(target <= 1000 ms)")


if __name__ == "__main__":
    main()
