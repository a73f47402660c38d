"""Dashboard tick benchmark: main-thread cost of one DashboardScreen.refresh_data()
(what the app's refresh timer calls) with 1,000 components.

    .venv/bin/python bench/tick.py [--components 1000] [--samples 300] [--rounds 40] [--profile]

Config: the demo's shape (cockpit/drill/demo.py demo_raw: health, components, metrics
sources and the five panels) with the http_components source listing N
components. The store is pre-filled with --samples readings per series (one a
second, the sources' interval), then CockpitApp(config, poll=False, store=store,
clock=ManualClock) runs under App.run_test(size=(120, 40)). The app's own refresh
timer is paused; every refresh below is a direct call, timed with perf_counter.

Each round is one simulated second: the clock advances 0.5 s, a "poll" appends a
reading to every series (through app.on_readings, the poller's sink), one tick;
the clock advances 0.5 s again, one tick with no new data. Cases:

  (a)  tick with no new data since the previous refresh (clock +0.5 s)
  (a0) frozen: clock not advanced, store unchanged (the floor)
  (b)  tick after a poll that appended a reading to every component, same states
  (c)  tick after a poll in which 10% of the components changed state

Figures per case: the synchronous refresh_data() call (the required figure: wall
time by perf_counter, and the main thread's CPU time, steadier on a busy machine), and
for information the wall time until the next frame is composed (call_after_refresh)
and the process CPU time until the screen settled (refresh + layout + compositor +
idle work; minus the "settle overhead" printed with it). Headless: the
escape-sequence encoding of a frame for a real terminal is not included.

Prints figures only; nothing here passes or fails. Target: median <= 8 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

from _common import checkout_state, report  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from screens.app import CockpitApp  # noqa: E402
from cockpit.signals.watch import capacity_for  # noqa: E402
from cockpit.clock import ManualClock  # noqa: E402
from cockpit.config import CockpitConfig, config_from_dict  # noqa: E402
from cockpit.drill.demo import demo_raw  # noqa: E402
from cockpit.model import Reading  # noqa: E402
from cockpit.signals.store import Store  # noqa: E402

TARGET_MS = 8.0
SIZE = (120, 40)
TICK = 0.5  # seconds of clock per refresh, the demo's refresh setting
INTERVAL = 1.0  # seconds between polls, the demo's source interval

STATES = {
    "healthy": (1.0, "HTTP 200"),
    "degraded": (0.5, "connection pool near limit"),
    "unhealthy": (0.0, "HTTP 503: component not responding"),
}


# ---------------------------------------------------------------- fixture


def build_config(n: int) -> CockpitConfig:
    raw = demo_raw("http://127.0.0.1:9")
    for src in raw["sources"]:
        if src["kind"] == "http_components":
            src["components"] = [f"svc-{i:04d}" for i in range(n)]
    for action in raw.get("actions", []):  # the demo's actions name its four components
        action["components"] = ["svc-0000"]
    return config_from_dict(raw, "<bench>", {})


class Feed:
    """Readings for every series of the demo-shaped config, one 'poll' at a time."""

    def __init__(self, cfg: CockpitConfig, rng: random.Random) -> None:
        self.rng = rng
        self.health = cfg.panels.health_sources
        self.metrics_source = cfg.panels.error_rate.series.split(":", 1)[0]
        self.metric_series = ["request_rate", "error_rate", "latency_p50", "latency_p95", "latency_p99",
                              "cost_per_day"]
        self.components = [(name, c) for name in cfg.panels.component_sources for c in cfg.source(name).components]
        self.state = {key: "healthy" for key in self.components}

    def flip(self, fraction: float) -> int:
        """Change the state of ``fraction`` of the components (healthy <-> degraded/unhealthy)."""
        k = max(1, round(len(self.components) * fraction))
        for key in self.rng.sample(self.components, k):
            self.state[key] = self.rng.choice(("degraded", "unhealthy")) if self.state[key] == "healthy" else "healthy"
        return k

    def poll(self, ts: float) -> list[tuple[str, list[Reading]]]:
        """(source, readings) batches as the poller would hand them to app.on_readings."""
        r = self.rng
        out = []
        for name in self.health:
            lat = r.uniform(0.008, 0.02)
            out.append((name, [
                Reading(name, "health", ts, 1.0, state="healthy", detail="HTTP 200, status healthy", latency=lat),
                Reading(name, "response_time", ts, lat, latency=lat),
            ]))
        m = self.metrics_source
        vals = {"request_rate": r.uniform(110, 130), "error_rate": r.uniform(0.002, 0.006),
                "latency_p50": r.uniform(0.07, 0.08), "latency_p95": r.uniform(0.18, 0.22),
                "latency_p99": r.uniform(0.3, 0.4), "cost_per_day": r.uniform(55, 65)}
        out.append((m, [Reading(m, s, ts, vals[s]) for s in self.metric_series]))
        by_source: dict[str, list[Reading]] = {}
        for (src, comp) in self.components:
            value, detail = STATES[self.state[(src, comp)]]
            by_source.setdefault(src, []).append(
                Reading(src, f"component/{comp}", ts, value, state=self.state[(src, comp)], detail=detail,
                        latency=r.uniform(0.002, 0.03)))
        out.extend(by_source.items())
        return out


def filled_store(cfg: CockpitConfig, feed: Feed, now: float, samples: int) -> Store:
    store = Store(capacity_for(cfg))
    for k in range(samples):
        for _source, readings in feed.poll(now - (samples - k) * INTERVAL):
            store.extend(readings)
    return store


# ---------------------------------------------------------------- measuring


class Series:
    def __init__(self) -> None:
        self.sync: list[float] = []
        self.sync_cpu: list[float] = []
        self.frame: list[float] = []
        self.cpu: list[float] = []
        self.paint: list[float] = []


PAINT = {"s": 0.0}


def instrument_paint() -> bool:
    """Accumulate time spent in Screen._on_timer_update (layout + compositor + render).
    A private Textual method: skipped when absent."""
    from textual.screen import Screen

    original = getattr(Screen, "_on_timer_update", None)
    if original is None:
        return False

    def timed(self):
        t = time.perf_counter()
        try:
            return original(self)
        finally:
            PAINT["s"] += time.perf_counter() - t

    Screen._on_timer_update = timed
    return True


async def next_frame(screen, timeout: float = 5.0) -> None:
    done = asyncio.Event()
    screen.call_after_refresh(done.set)
    await asyncio.wait_for(done.wait(), timeout)


async def settle(screen) -> None:
    """Until the screen has composed the update and follow-up idle work is done."""
    await next_frame(screen)
    await asyncio.sleep(0.02)
    await next_frame(screen)


async def tick(screen, out: Series | None, profiler: cProfile.Profile | None = None,
               frame_profiler: cProfile.Profile | None = None, call: bool = True) -> None:
    paint0 = PAINT["s"]
    cpu0 = time.process_time()
    if frame_profiler is not None:
        frame_profiler.enable()
    c0 = time.thread_time()
    t0 = time.perf_counter()
    if call:
        if profiler is not None:
            profiler.enable()
        screen.refresh_data()
        if profiler is not None:
            profiler.disable()
    t1 = time.perf_counter()
    c1 = time.thread_time()
    await next_frame(screen)
    t2 = time.perf_counter()
    await asyncio.sleep(0.02)  # let follow-up idle work run and be painted
    await next_frame(screen)
    if frame_profiler is not None:
        frame_profiler.disable()
    cpu = time.process_time() - cpu0
    if out is not None:
        out.sync.append((t1 - t0) * 1000)
        out.sync_cpu.append((c1 - c0) * 1000)
        out.frame.append((t2 - t0) * 1000)
        out.cpu.append(cpu * 1000)
        out.paint.append((PAINT["s"] - paint0) * 1000)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def row(label: str, values: list[float]) -> str:
    if not values:
        return f"  {label:<44} (no samples)"
    return (f"  {label:<44} {statistics.median(values):8.2f} {pct(values, 0.9):8.2f} {max(values):8.2f}"
            f"   n={len(values)}")


def print_profile(title: str, prof: cProfile.Profile, calls: int, top: int) -> None:
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.strip_dirs()
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    print(f"\n--- cProfile: {title} ({calls} calls, {total * 1000 / max(calls, 1):.2f} ms/call of own time "
          "under the profiler) ---")
    for order in ("cumulative", "tottime"):
        entries = sorted(st.stats.items(), key=lambda kv: -(kv[1][3] if order == "cumulative" else kv[1][2]))  # type: ignore[attr-defined]
        print(f"  top {top} by {order} (ms per tick: cumulative / own; calls per tick)")
        shown = 0
        for (file, line, fn), (cc, nc, tt, ct, _callers) in entries:
            if file == "tick.py" or file == "~" and fn.startswith(("<method 'enable'", "<method 'disable'")):
                continue  # this script's own wrappers
            print(f"    {ct * 1000 / calls:8.2f} {tt * 1000 / calls:8.2f} {nc / calls:9.0f}  {file}:{line}({fn})")
            shown += 1
            if shown >= top:
                break


# ---------------------------------------------------------------- main


async def run(args) -> None:
    rng = random.Random(args.seed)
    t = time.perf_counter()
    cfg = build_config(args.components)
    t_cfg = time.perf_counter() - t
    feed = Feed(cfg, rng)
    clock = ManualClock()
    t = time.perf_counter()
    store = filled_store(cfg, feed, clock.now(), args.samples)
    t_fill = time.perf_counter() - t
    print(f"fixture: {args.components} components, {len(store)} series, {args.samples} samples each "
          f"(config {t_cfg * 1000:.0f} ms, fill {t_fill:.1f} s)")

    from screens.dashboard import DashboardScreen

    painted = instrument_paint()
    calls = {"n": 0, "first": None}
    original = DashboardScreen.refresh_data

    def counted(self) -> None:
        t = time.perf_counter()
        original(self)
        if calls["first"] is None:
            calls["first"] = (time.perf_counter() - t) * 1000
        calls["n"] += 1

    DashboardScreen.refresh_data = counted

    app = CockpitApp(cfg, poll=False, store=store, clock=clock)
    t = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        paused = [tm for tm in list(getattr(app, "_timers", ())) if getattr(tm, "name", "") == "refresh"]
        for tm in paused:
            tm.pause()
        screen = app.screen
        if not isinstance(screen, DashboardScreen):
            raise SystemExit(f"expected the dashboard on top, got {screen!r}")
        await pilot.pause()
        await settle(screen)
        print(f"mount: run_test ready + first refresh settled in {(time.perf_counter() - t) * 1000:.0f} ms; "
              f"first refresh_data (on mount, adds {args.components} rows) {calls['first']:.1f} ms")
        if not paused:
            print("note: the app's 'refresh' timer was not found, so it was not paused; its refreshes are untimed")
        # warm up: a few rounds of every kind, untimed
        for _ in range(args.warmup):
            clock.advance(TICK)
            feed.flip(args.change)
            for src, rs in feed.poll(clock.now()):
                app.on_readings(src, rs)
            await tick(screen, None)
            clock.advance(TICK)
            await tick(screen, None)
        # back to a steady state
        feed.state = dict.fromkeys(feed.state, "healthy")
        for _ in range(2):
            clock.advance(TICK)
            for src, rs in feed.poll(clock.now()):
                app.on_readings(src, rs)
            await tick(screen, None)
            clock.advance(TICK)
            await tick(screen, None)

        calls["n"] = 0
        prof = {k: cProfile.Profile() for k in "a b c".split()} if args.profile else {}
        fprof = {k: cProfile.Profile() for k in "a b c".split()} if args.profile else {}
        res = {k: Series() for k in ("a0", "a", "b", "c", "idle")}
        sink_ms: list[float] = []

        for _ in range(args.rounds):  # settle overhead: no refresh call at all
            await tick(screen, res["idle"], call=False)
        for _ in range(args.rounds):  # (a0) frozen clock, nothing changed
            await tick(screen, res["a0"])

        gc_was = gc.isenabled()
        if args.no_gc:
            gc.disable()
        for case in ("b", "c"):
            for _ in range(args.rounds):
                clock.advance(TICK)
                if case == "c":
                    feed.flip(args.change)
                batches = feed.poll(clock.now())
                t = time.perf_counter()
                for src, rs in batches:
                    app.on_readings(src, rs)
                sink_ms.append((time.perf_counter() - t) * 1000)
                if args.profile_frames:  # one profiler at a time: cProfile hooks are per thread
                    await tick(screen, res[case], None, fprof.get(case))
                else:
                    await tick(screen, res[case], prof.get(case))
                clock.advance(TICK)
                if case != "b":
                    await tick(screen, None)
                elif args.profile_frames:
                    await tick(screen, res["a"], None, fprof.get("a"))
                else:
                    await tick(screen, res["a"], prof.get("a"))
        if gc_was:
            gc.enable()
        timer_calls = calls["n"] - args.rounds * 5

    n = args.components
    print(f"\nrefresh_data() with {n} components, {args.rounds} ticks per case, clock +{TICK}s per tick, "
          f"polls every {INTERVAL}s; target median <= {TARGET_MS:g} ms")
    print(f"  {'synchronous refresh_data() call, ms':<44} {'median':>8} {'p90':>8} {'max':>8}")
    labels = {
        "a": "(a) no new data since last refresh",
        "a0": "(a0) frozen clock, nothing changed",
        "b": f"(b) after a poll, all {n} same state",
        "c": f"(c) after a poll, {round(n * args.change)} changed state",
    }
    for k in ("a", "a0", "b", "c"):
        print(row(labels[k], res[k].sync))
    print(f"  {'same calls, main-thread CPU ms (thread_time)':<44} {'median':>8} {'p90':>8} {'max':>8}")
    for k in ("a", "a0", "b", "c"):
        print(row(labels[k], res[k].sync_cpu))
    print("\n  for information (not main-thread-exact):")
    print(f"  {'wall ms from call to next composed frame':<44} {'median':>8} {'p90':>8} {'max':>8}")
    for k in ("a", "a0", "b", "c"):
        print(row(labels[k], res[k].frame))
    print(row("settle overhead: no refresh_data call", res["idle"].frame))
    print(f"  {'process CPU ms from call until settled':<44} {'median':>8} {'p90':>8} {'max':>8}")
    for k in ("a", "a0", "b", "c"):
        print(row(labels[k], res[k].cpu))
    print(row("settle overhead: no refresh_data call", res["idle"].cpu))
    if painted:
        print(f"  {'of which Screen._on_timer_update (layout+compositor)':<44} {'median':>8} {'p90':>8} {'max':>8}")
        for k in ("a", "a0", "b", "c"):
            print(row(labels[k], res[k].paint))
    print(f"  {'poll sink app.on_readings, all batches, ms':<44} {'median':>8} {'p90':>8} {'max':>8}")
    print(row(f"({n + 8} readings per poll; before (b)/(c))", sink_ms))
    if args.profile:
        print("\n  NOTE: --profile was on, so the figures above include cProfile overhead (about 2-3x)")
    else:
        report("tick", {"components": n, "rounds": args.rounds,
                        "b_median_ms": statistics.median(res["b"].cpu), "b_p90_ms": pct(res["b"].cpu, 0.9),
                        "c_median_ms": statistics.median(res["c"].cpu), "c_p90_ms": pct(res["c"].cpu, 0.9)})
    print(f"\n  GC {'disabled' if args.no_gc else 'enabled'} during (a)-(c); untimed refresh_data calls by the app "
          f"itself during the cases: {max(0, timer_calls)}")

    if args.profile and not args.profile_frames:
        for k in ("a", "b", "c"):
            print_profile(f"refresh_data() case {labels[k]}", prof[k], args.rounds, args.top)
    if args.profile and args.profile_frames:
        for k in ("a", "b", "c"):
            print_profile(f"whole tick until settled, case {labels[k]} (includes idle waits)", fprof[k],
                          args.rounds, args.top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--components", type=int, default=1000, help="components in the table (default 1000)")
    ap.add_argument("--samples", type=int, default=300, help="history samples per series (default 300)")
    ap.add_argument("--rounds", type=int, default=40, help="ticks measured per case (default 40)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    ap.add_argument("--change", type=float, default=0.10, help="fraction changing state in case (c) (default 0.10)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-gc", action="store_true", help="disable the garbage collector during the cases")
    ap.add_argument("--profile", action="store_true", help="cProfile the refresh_data() calls of each case")
    ap.add_argument("--profile-frames", action="store_true",
                    help="with --profile: profile whole ticks (a)-(c) until settled (refresh + paint + DataTable "
                    "idle work) instead of the refresh_data() calls alone")
    ap.add_argument("--top", type=int, default=15, help="profile rows to print (default 15)")
    args = ap.parse_args(argv)
    import textual

    print(f"tick benchmark: python {sys.version.split()[0]}, textual {textual.__version__}, size {SIZE[0]}x{SIZE[1]}, "
          f"headless\ncheckout {ROOT} at {checkout_state(ROOT)}")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
