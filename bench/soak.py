"""Memory soak: the demo for a simulated day at 1 Hz on a manual clock, headless; RSS at
1 h, 6 h, 12 h and 24 h and the ratio of the last to the first (issue 15's goal: 24 h
<= 1.1x the 1 h figure).

    .venv/bin/python bench/soak.py [--hours 24] [--cycle 1800] [--frame-every 10] [--types] [--trace]

What runs, as `cockpit demo` does: the demo's config (cockpit/drill/demo.py) against its
simulated service (a Simulator served over loopback HTTP by SimulatorServer, in this
process) and CockpitApp in DEMO mode, armed, under App.run_test (120x40), with a SQLite
journal file (WAL, heads file) in a temporary directory (XDG_DATA_HOME and
XDG_STATE_HOME point there too). The clock is a ManualClock; the simulator runs on it.

Each simulated second: the clock advances 0.5 s and the app's tick runs
(CockpitApp._tick: follow the journal, refresh the dashboard); the clock advances 0.5 s,
each source whose poll is due is polled (Poller.poll_once: the real http_health,
http_components and prom_scrape sources over HTTP, readings into app.on_readings: store,
alert trackers, the desk on the journal thread, snapshots) and the tick runs again. A
source's next poll is the poller's own delay (its interval, or its backoff after
failures) in simulated seconds. Every KEEP_ALIVE simulated seconds the desk's heartbeat
runs, as the app's timer would. The journal thread is waited for once a simulated second.

The day's story (the simulator's fault script and a scripted responder at the keys,
through Pilot, so the dialogs, workers and the action runner run as they would for a
person): every --cycle seconds (default 1800: 48 incidents a day) a fault starts 20 s
into the cycle, in turn a bad deploy, database pool exhaustion and data corruption. The
critical alert declares the incident; at +60 s the responder presses a (acknowledge), at
+90 s n and a note, at +120 s the remedy's key and confirms it in the plan dialog (r
rollback, s scale out, b restore with the target's name typed; the action runs, is
verified and its effect read), at +300 s the remedy once more if the fault is still there
(an action that failed, as a responder watching the panels would), at +600 s m
(mitigated, y), at +900 s R (resolve, y).
Every sixth cycle the simulated service is also killed with K at +1200 s and revived with
K 45 s later: the sources fail (error readings, an unreachable health check, a critical
alert, an automatic incident), and that incident is acknowledged at +1300 s and resolved
at +1500 s. Alerts fire and clear, the timeline (about 1,000 lines) and the journal grow
all day. The summary says how the steps and the journaled actions went.

What is not exercised, or not as a person would see it:
- Every frame. The app refreshes its widgets on every tick, but the screen is composed
  (layout, compositor, rendering every changed line) only every --frame-every simulated
  seconds (default 10) and around each of the responder's steps: a gate on Textual's
  Screen._on_timer_update holds the changes in between, which are then composed together,
  as a slow terminal would see them. The frame count is printed. Headless: no escape
  sequences are written to a terminal.
- Real-time waits: the app's own refresh and keep-alive timers are stopped (their work is
  called as above) and so is the poller's own loop (Poller.run); the action runner's wait
  before reading an action's effect (effect_after) waits for that much simulated time.
- Toasts expire by wall time (Textual), so far fewer are alive at once than in a real day.
- An incident left open for hours (each lasts 15 minutes here), another cockpit on the
  journal, LISTEN/NOTIFY, PostgreSQL, tapes (--record), drills, exports (x).

RSS is read from /proc/self/statm after a full garbage collection, with its anonymous and
file-backed parts. --types prints the types whose live objects grew most between the
first and the last checkpoint (gc), --trace starts tracemalloc first (several times
slower) and prints the lines that allocated most of the growth. Prints figures only;
nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import checkout_state, report  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL = 1.1  # 24 h RSS at most this many times the 1 h figure (issue 15)
CHECKPOINTS = (1, 6, 12, 24)  # hours; those short of --hours and its end (a run of 1 h or less: scaled)
SIZE = (120, 40)
FAULT_AT = 20.0  # seconds into a cycle the fault starts (the demo's bad deploy lands 20 s in)
STORY = ("bad_deploy", "db_exhaustion", "data_corruption")  # a cycle's fault, in turn
REMEDY = {"bad_deploy": ("r", None), "db_exhaustion": ("s", None), "data_corruption": ("b", "checkout-db")}
OUTAGE_EVERY = 6  # cycles between two kills of the simulated service
#: the responder's steps, by second into a cycle (and into every OUTAGE_EVERY-th cycle)
STEPS = {60: "acknowledge", 90: "note", 120: "remedy", 300: "check", 600: "mitigate", 900: "resolve"}
OUTAGE_STEPS = {1200: "kill", 1245: "revive", 1300: "acknowledge", 1500: "resolve"}
WAIT = 10.0  # wall seconds a dialog may take to appear before the step is counted as missed
MISSES_SHOWN = 12  # missed steps listed with their time


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_parts() -> str:
    """RSS by kind (/proc/self/status): anonymous (the heaps), file-backed, shared memory."""
    parts = {}
    with open("/proc/self/status") as f:
        for row in f:
            name, _, value = row.partition(":")
            if name in ("RssAnon", "RssFile", "RssShmem"):
                parts[name[3:].lower()] = int(value.split()[0]) * 1024
    return " ".join(f"{k} {v / 1e6:.1f}" for k, v in parts.items())


def mb(n: float) -> str:
    return f"{n / 1e6:7.1f} MB"


def fault_script(hours: float, cycle: float):
    from cockpit.drill.simulator import Fault

    n = int(hours * 3600 // cycle) + 1
    return tuple(Fault(STORY[k % len(STORY)], at=k * cycle + FAULT_AT, version="v1.5.0") for k in range(n))


class Responder:
    """The scripted person at the keys (see the module's docstring)."""

    def __init__(self, app, pilot, cycle: float) -> None:
        self.app, self.pilot, self.cycle = app, pilot, cycle
        self.done: dict[str, int] = {}
        self.missed: dict[str, int] = {}
        self.misses: list[str] = []  # the first MISSES_SHOWN missed steps: when, and the incident then
        self.second = 0

    def _count(self, what: str, ok: bool) -> None:
        box = self.done if ok else self.missed
        box[what] = box.get(what, 0) + 1
        if not ok and len(self.misses) < MISSES_SHOWN:
            st = self.app.desk.state()
            self.misses.append(f"{self.second / 3600:.2f} h {what} ({f'{st.id} {st.status}' if st else 'no incident'})")

    async def _until(self, cond) -> bool:
        deadline = time.monotonic() + WAIT
        while not cond():
            if time.monotonic() > deadline:
                return False
            await self.pilot.pause(0.005)
        return True

    async def _dismiss_dialogs(self) -> None:
        from textual.screen import ModalScreen

        while isinstance(self.app.screen, ModalScreen):
            await self.pilot.press("escape")
            self._count("dialog left open (escape)", False)

    def _open(self) -> bool:
        st = self.app.desk.state()
        return st is not None and st.open

    async def _status(self, key: str, to: str, confirm: bool) -> None:
        from screens.prompt import Confirm

        if not self._open() or not self.app.desk.can(to):
            self._count(to, False)
            return
        await self.pilot.press(key)
        if confirm:
            if not await self._until(lambda: isinstance(self.app.screen, Confirm)):
                self._count(to, False)
                return
            await self.pilot.press("y")
        self._count(to, True)

    def step(self, second: int) -> str | None:
        """What the responder does at this simulated second of the run, if anything."""
        k, t = divmod(second, int(self.cycle))
        if k % OUTAGE_EVERY == OUTAGE_EVERY - 1 and t in OUTAGE_STEPS:
            return OUTAGE_STEPS[t]
        return STEPS.get(t)

    async def act(self, second: int, step: str) -> None:
        self.second = second
        kind = STORY[second // int(self.cycle) % len(STORY)]
        if step == "acknowledge":
            await self._status("a", "acknowledged", False)
        elif step == "note":
            if self._open():
                await self.pilot.press("n", *f"looking at {kind.replace('_', ' ')}", "enter")
            self._count("note", self._open())
        elif step == "remedy":
            await self._remedy(*REMEDY[kind])
        elif step == "check" and self.app.simulator.sim.active(kind) is not None:
            await self._remedy(*REMEDY[kind], again=True)  # the fault is still there: once more
        elif step == "mitigate":
            await self._status("m", "mitigated", True)
        elif step == "resolve":
            await self._status("R", "resolved", True)
        elif step in ("kill", "revive"):
            before = self.app.simulator.running
            await self.pilot.press("K")
            self._count(f"service {step}", await self._until(lambda: self.app.simulator.running != before))
        await self.pilot.pause()
        await self._dismiss_dialogs()

    async def _remedy(self, key: str, typed: str | None, again: bool = False) -> None:
        from screens.confirm import ActionConfirm

        what = f"action {key}" + (" again" if again else "")
        if not self._open():
            self._count(what, False)
            return
        await self.pilot.press(key)
        if not await self._until(lambda: isinstance(self.app.screen, ActionConfirm)):
            self._count(what, False)
            return
        if typed:
            await self.pilot.press(*typed, "enter")
        else:
            await self.pilot.press("y")
        self._count(what, True)


class FrameGate:
    """Lets the screen be composed only when open. Textual's update timer calls
    Screen._on_timer_update (a private method; the gate is not installed when it is
    absent) to lay out and compose what changed; while the gate is shut the call is
    skipped and the changes stay pending (dirty widgets, layout, callbacks after refresh),
    composed together at the next open frame."""

    def __init__(self) -> None:
        from textual.screen import Screen

        self.open = True
        self.frames = 0
        self.installed = hasattr(Screen, "_on_timer_update")
        if not self.installed:
            return
        original = Screen._on_timer_update
        gate = self

        def gated(screen) -> None:
            if gate.open:
                gate.frames += 1
                return original(screen)
            screen._update_timer.pause()  # resumed by the screen's next idle while it is dirty
            return None

        Screen._on_timer_update = gated

    async def frame(self, screen) -> None:
        """Compose what is pending now (the gate is left as it was)."""
        was, self.open = self.open, True
        try:
            screen._update_timer.resume()
            await next_frame(screen)
        finally:
            self.open = was


async def next_frame(screen, timeout: float = 5.0) -> None:
    done = asyncio.Event()
    screen.call_after_refresh(done.set)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except asyncio.TimeoutError:
        pass


async def soak(args, tmp: Path) -> dict:
    import tracemalloc

    from cockpit.clock import ManualClock
    from cockpit.drill.demo import demo_config
    from cockpit.drill.simulator import Simulator, SimulatorServer
    from cockpit.incident.journal import SQLiteJournal
    from cockpit.signals.poller import Poller
    from cockpit.signals.sources import build_source
    from screens.app import KEEP_ALIVE, CockpitApp

    seconds = int(args.hours * 3600)
    if args.hours > CHECKPOINTS[0]:
        marks = sorted({h * 3600 for h in CHECKPOINTS if h < args.hours} | {seconds})
    else:
        marks = sorted({max(1, round(seconds * h / CHECKPOINTS[-1])) for h in CHECKPOINTS})
    clock = ManualClock()
    sim = Simulator(clock=clock, seed=args.seed, faults=fault_script(args.hours, args.cycle))
    server = SimulatorServer(sim).start()
    journal = SQLiteJournal(tmp / "cockpit" / "demo-journal.db", clock=clock)
    app = CockpitApp(demo_config(server.url), mode="DEMO", armed=True, clock=clock, poll=False, simulator=server,
                     journal=journal)
    gate = FrameGate()
    out: dict = {"marks": [], "snapshots": [], "types": []}
    t_start = time.perf_counter()
    try:
        async with app.run_test(size=SIZE) as pilot:
            for tm in list(getattr(app, "_timers", ())):
                if getattr(tm, "name", "") in ("refresh", "keep-alive"):
                    tm.stop()  # their work is called below, on the simulated clock

            def effect_wait(s: float) -> None:  # the runner's effect_after, in simulated seconds
                until = clock.monotonic() + s
                while clock.monotonic() < until and not app.runner.stopping.is_set():
                    time.sleep(0.002)

            app.runner.sleep = effect_wait
            poller = Poller([build_source(s, app.context) for s in app.config.sources], app.on_readings)
            app.poller = poller  # closed by the app at exit
            due = {s.name: clock.monotonic() for s in poller.sources}
            responder = Responder(app, pilot, args.cycle)
            await pilot.pause()
            await app.journal_idle()
            gate.open = False
            for second in range(1, seconds + 1):
                clock.advance(0.5)
                app._tick()
                clock.advance(0.5)
                now = clock.monotonic()
                todo = [s for s in poller.sources if due[s.name] <= now + 1e-9]
                if todo:
                    await asyncio.gather(*(poller.poll_once(s) for s in todo))
                    for s in todo:
                        due[s.name] = now + poller.delay_after(s)
                app._tick()
                if second % int(KEEP_ALIVE) == 0:
                    app.desk_do(app.desk.keep_alive)
                step = responder.step(second)
                if step is not None:
                    gate.open = True  # a person at the keys sees every frame
                    await responder.act(second, step)
                    gate.open = False
                await app.journal_idle()
                if second % args.frame_every == 0:
                    await gate.frame(app.screen)
                if second % 3600 == 0 and second not in marks:
                    gc.collect()
                    print(f"  {second / 3600:5.1f} h  RSS {mb(rss_bytes())}  wall {time.perf_counter() - t_start:6.0f} s",
                          flush=True)
                if second in marks:
                    gc.collect()
                    rss = rss_bytes()
                    out["marks"].append((second, rss))
                    traced = ""
                    if args.types:
                        out["types"].append(live_types())
                    if tracemalloc.is_tracing():
                        out["snapshots"].append(tracemalloc.take_snapshot())
                        traced = f"  traced {mb(tracemalloc.get_traced_memory()[0])}"
                    print(f"* {second / 3600:5.2f} h  RSS {mb(rss)} ({rss_parts()}){traced}  "
                          f"wall {time.perf_counter() - t_start:4.0f} s  timeline lines {lines(app.events)}", flush=True)
            out["responder"] = (dict(responder.done), dict(responder.missed), responder.misses)
            out["events"] = lines(app.events)
            await app.journal_idle()
            gate.open = True
    finally:
        server.stop()
    out["wall"] = time.perf_counter() - t_start
    out["frames"] = gate.frames if gate.installed else None
    out["seconds"] = seconds
    out["incidents"] = journal.incidents()
    out["actions"] = action_results(journal, out["incidents"])
    return out


def action_results(journal, incidents: list[str]) -> dict[str, int]:
    """How the day's actions went, from the journal: outcome and verification, by action."""
    from collections import Counter

    got: Counter[str] = Counter()
    for inc in incidents:
        for ev in journal.events(inc):
            if ev.kind == "action_outcome":
                got[f"{ev.payload.get('action')} {ev.payload.get('result')}"] += 1
            elif ev.kind == "action_verified" and ev.payload.get("ok") is False:
                got[f"{ev.payload.get('action')} NOT verified"] += 1
    return dict(sorted(got.items()))


def lines(events) -> str:
    """Timeline lines in memory, and of the whole run when older ones were let go."""
    total = getattr(events, "total", len(events))
    return f"{len(events)}" + (f" (of {total})" if total != len(events) else "")


def live_types() -> dict[str, int]:
    """How many objects the garbage collector tracks, by type (module.qualname)."""
    from collections import Counter

    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


def type_growers(counts: list[dict[str, int]], top: int) -> None:
    first, last = counts[0], counts[-1]
    diff = sorted(((last.get(k, 0) - first.get(k, 0), k) for k in set(first) | set(last)), reverse=True)
    print(f"\nlive objects: top {top} growing types from the first checkpoint to the last (count diff, now, type)")
    for n, k in diff[:top]:
        print(f"  {n:+9d} {last.get(k, 0):9d}  {k}")


def growers(snapshots, top: int) -> None:
    first, last = snapshots[0], snapshots[-1]
    filters = [__import__("tracemalloc").Filter(False, "<frozen importlib._bootstrap*>"),
               __import__("tracemalloc").Filter(False, __file__)]
    stats = last.filter_traces(filters).compare_to(first.filter_traces(filters), "lineno")
    print(f"\ntracemalloc: top {top} growers from the first checkpoint to the last (size diff, count diff, where)")
    for st in stats[:top]:
        frame = st.traceback[0]
        print(f"  {st.size_diff / 1e3:+10.1f} kB  {st.count_diff:+8d}  {frame.filename}:{frame.lineno}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    ap.add_argument("--cycle", type=float, default=1800.0,
                    help="simulated seconds between two incidents (default 1800; at least 1600)")
    ap.add_argument("--frame-every", type=int, default=10,
                    help="wait for a composed frame every N simulated seconds (default 10)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--trace", action="store_true", help="tracemalloc: print the top growers (slow)")
    ap.add_argument("--types", action="store_true", help="print the types whose live objects grew most")
    ap.add_argument("--top", type=int, default=15, help="growers to print with --trace (default 15)")
    args = ap.parse_args(argv)
    if args.cycle < 1600:
        ap.error("--cycle must be at least 1600 s (the responder's script takes that long)")
    import textual

    print(f"soak: {args.hours:g} simulated hours at 1 Hz, demo config, manual clock, an incident every "
          f"{args.cycle:g} s; python {sys.version.split()[0]}, textual {textual.__version__}, headless\n"
          f"checkout {ROOT} at {checkout_state(ROOT)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cockpit-soak-") as d:
        tmp = Path(d)
        os.environ["XDG_DATA_HOME"] = str(tmp)
        os.environ["XDG_STATE_HOME"] = str(tmp)
        if args.trace:
            import tracemalloc

            tracemalloc.start(1)
        out = asyncio.run(soak(args, tmp))
    marks = out["marks"]
    print(f"\nRSS over {args.hours:g} simulated hours ({out['seconds']} ticks of 1 s, {out['wall']:.0f} s wall, "
          f"{out['frames']} frames composed):")
    for second, rss in marks:
        print(f"  at {second / 3600:6.2f} h   {mb(rss)}")
    ratio = marks[-1][1] / marks[0][1]
    print(f"  ratio {marks[-1][0] / 3600:g} h / {marks[0][0] / 3600:g} h: {ratio:.3f}  (goal <= {GOAL:g} for 24 h / 1 h)")
    report("soak", {"hours": args.hours, "first_h": marks[0][0] / 3600, "rss_1h_mb": marks[0][1] / 1e6,
                    "rss_end_mb": marks[-1][1] / 1e6, "ratio": ratio})
    done, missed, misses = out["responder"]
    print(f"story: {len(out['incidents'])} incidents in the journal, {out['events']} timeline lines in memory; "
          f"responder {sum(done.values())} steps done {done}" + (f", missed {missed}" if missed else ""))
    print(f"actions (journal): {out['actions']}")
    for miss in misses:
        print(f"  missed at {miss}")
    if args.types and len(out["types"]) > 1:
        type_growers(out["types"], args.top)
    if args.trace and len(out["snapshots"]) > 1:
        growers(out["snapshots"], args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
