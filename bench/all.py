"""Every speed and memory figure of issue 15 with its goal, in one table.

    .venv/bin/python bench/all.py [--quick] [--postgres URL] [--skip NAME ...]

Runs each bench in its own process (bench/startup.py, bench/tick.py, bench/journal.py
--postgres, bench/soak.py), each handing its headline figures back through the file named
by BENCH_FIGURES (see _common.report), and prints them beside their goals: a time as a
ratio to its goal (<= 1.00 is met), a memory figure as the ratio it is defined by. The
benches' own output goes to bench/last-run/<name>.txt for the profile lines behind a figure.

--quick runs each bench briefly (fewer runs, a 2-hour soak): for a look, not for quoting;
--smoke at tiny sizes, to see that every bench still runs (tests/test_bench.py).
Prints figures only; nothing here passes or fails (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import checkout_state

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "last-run"

# name -> (script, arguments, --quick arguments, --smoke arguments)
BENCHES = {
    "startup": ("startup.py", ["--runs", "9", "--no-importtime"], ["--runs", "3", "--no-importtime"],
                ["--runs", "1", "--warmup", "0", "--no-importtime"]),
    "tick": ("tick.py", ["--rounds", "15"], ["--rounds", "5"], ["--components", "20", "--samples", "10", "--rounds", "3"]),
    "journal": ("journal.py", ["--runs", "3"], ["--runs", "1"], ["--events", "200", "--runs", "1"]),
    "soak": ("soak.py", ["--hours", "24"], ["--hours", "2"], ["--hours", "0.05"]),
}


def rows(f: dict[str, dict]) -> list[tuple[str, str, str, str]]:
    """(figure, now, goal, ratio or verdict) for every figure that was reported."""
    out: list[tuple[str, str, str, str]] = []
    s = f.get("startup")
    if s:
        ratio = s["first_paint_ms"] / s["bare_first_paint_ms"]
        out.append(("dashboard first paint vs bare Textual app",
                    f"{s['first_paint_ms']:.0f} ms vs {s['bare_first_paint_ms']:.0f} ms: {ratio:.2f}x", "<= 1.3x",
                    f"{ratio / 1.3:.2f}"))
        if "config_ms" in s:
            without = s["first_paint_ms"] - s["config_ms"]
            out.append(("  of which validating the config (pydantic, models)",
                        f"{s['config_ms']:.0f} ms; without it {without / s['bare_first_paint_ms']:.2f}x",
                        "(for information)", ""))
        out.append(("dashboard painted with data, after first paint", f"+{s['data_after_paint_ms']:.0f} ms",
                    "<= +300 ms", f"{s['data_after_paint_ms'] / 300:.2f}"))
        extra = s["imports_ms"] - s["bare_imports_ms"]
        out.append(("import cockpit.cli + screens.app vs textual",
                    f"{s['imports_ms']:.0f} ms vs {s['bare_imports_ms']:.0f} ms: +{extra:.0f}", "<= +100 ms",
                    f"{extra / 100:.2f}"))
    t = f.get("tick")
    if t:
        out.append((f"tick (b): a poll, {t['components']:,} components, no change", f"{t['b_median_ms']:.1f} ms median", "<= 8 ms",
                    f"{t['b_median_ms'] / 8:.2f}"))
        out.append((f"tick (c): {t['components'] // 10:,} of them change state",
                    f"{t['c_median_ms']:.1f} ms median, {t['c_p90_ms']:.1f} p90", "<= 50 median, <= 100 p90",
                    f"{t['c_median_ms'] / 50:.2f} / {t['c_p90_ms'] / 100:.2f}"))
    k = f.get("soak")
    if k:
        out.append((f"RSS over {k['hours']:g} simulated hours at 1 Hz (demo)",
                    f"{k['rss_1h_mb']:.0f} MB at {k['first_h']:g} h, {k['rss_end_mb']:.0f} MB at {k['hours']:g} h: "
                    f"{k['ratio']:.2f}x",
                    "<= 1.1x", f"{k['ratio'] / 1.1:.2f}"))
    j = f.get("journal")
    if j and "pg_append_s" in j:
        out.append((f"PostgreSQL journal, {j['events']:,} appends, each committed", f"{j['pg_append_s']:.2f} s",
                    "<= 2 s", f"{j['pg_append_s'] / 2:.2f}"))
        if "pg_floor_commit_s" in j:
            out.append((f"  the floor: {j['events']:,} bare INSERTs, each committed",
                        f"{j['pg_floor_commit_s']:.2f} s", "(for information)", ""))
            out.append(("    of which waiting for answers (SELECT 1s, awaited)", f"{j['pg_floor_round_trip_s']:.2f} s",
                        "(for information)", ""))
            out.append(("    the same INSERTs pipelined (the server's commits alone)",
                        f"{j['pg_floor_pipelined_s']:.2f} s", "(for information)", ""))
        out.append((f"  the same, {j['batch']} per transaction (a tick's machine events)",
                    f"{j['pg_append_many_s']:.2f} s", "<= 2 s", f"{j['pg_append_many_s'] / 2:.2f}"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs, for a look (not for quoting)")
    ap.add_argument("--smoke", action="store_true", help="tiny runs: that every bench still runs (the tests)")
    ap.add_argument("--postgres", default="postgresql://127.0.0.1/postgres",
                    help="server for the journal bench (a scratch database is made and dropped)")
    ap.add_argument("--skip", nargs="*", default=[], choices=sorted(BENCHES), help="benches not to run")
    args = ap.parse_args(argv)

    print(f"bench/all.py: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, checkout {checkout_state(ROOT)}"
          + (" (--quick: for a look, not for quoting)" if args.quick else "")
          + (" (--smoke: tiny sizes, figures meaningless)" if args.smoke else ""), flush=True)
    OUT.mkdir(exist_ok=True)
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figures.jsonl"
        for name, (script, normal, quick, smoke) in BENCHES.items():
            if name in args.skip:
                continue
            extra = smoke if args.smoke else quick if args.quick else normal
            if name == "journal":
                extra = [*extra, "--postgres", args.postgres]
            env = {**os.environ, "BENCH_FIGURES": str(path)}
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, str(HERE / script), *extra], cwd=ROOT, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True)
            (OUT / f"{name}.txt").write_text(proc.stdout + proc.stderr, encoding="utf-8")
            took = time.perf_counter() - t
            print(f"  {name:<8} {'done' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'} in "
                  f"{took:.0f} s; its output: bench/last-run/{name}.txt", flush=True)
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                figures[rec.pop("bench")] = rec

    table = rows(figures)
    widths = [max(len(r[i]) for r in [("figure", "now", "goal", "now/goal"), *table]) for i in range(4)]
    print()
    for r in [("figure", "now", "goal", "now/goal"), tuple("-" * w for w in widths), *table]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
    print("\nnow/goal <= 1.00: met. Medians; the machine's load shows in them (run it on a quiet machine).")
    return 0 if table else 1


if __name__ == "__main__":
    sys.exit(main())
