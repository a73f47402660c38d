"""Start-up benchmark: process start -> dashboard painted WITH DATA for `cockpit demo`,
against a bare Textual app (Header, one Static, Footer) started the same way.

    .venv/bin/python bench/startup.py [--runs 9] [--warmup 1]

Every run spawns a fresh interpreter (so imports count) running
bench/_startup_child.py; the parent's time.time() at spawn is passed in BENCH_T0
and the child reports milestones in ms since then. Runs of the two apps are
interleaved with a third child that only imports ours (the imports figure). Both apps run headless (App.run(headless=True), 120x40), so the
cost of writing escape sequences to a real terminal is not included.

Prints figures only; nothing here passes or fails. Targets (issue 15): first paint <= 1.3x the
bare app's; data painted <= first paint + 300 ms; our imports <= textual's + 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import checkout_state, report  # bench/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHILD = HERE / "_startup_child.py"
TARGET_RATIO = 1.3  # dashboard first paint / bare app's first paint
TARGET_DATA_MS = 300.0  # data painted, after the first paint
TARGET_IMPORT_MS = 100.0  # our imports beyond textual's
FORBIDDEN = ("boto3", "botocore", "psycopg")

OURS_MILESTONES = (
    ("interpreter", "interpreter up (first statement)"),
    ("textual", "import cockpit.cli + textual.app"),
    ("config", "config validated (pydantic + models)"),
    ("run", "App.run() entered"),
    ("first_paint", "dashboard first paint (no data)"),
    ("data_ready", "five panels' data in the store"),
    ("data_painted", "dashboard painted WITH DATA"),
)
BARE_MILESTONES = (
    ("interpreter", "interpreter up (first statement)"),
    ("imports", "import textual.app + widgets"),
    ("run", "App.run() entered"),
    ("first_paint", "first paint"),
)


def spawn(python: str, kind: str, timeout: float, extra: list[str], trace: bool = False) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.pop("BENCH_TRACE", None)
    if trace:
        env["BENCH_TRACE"] = "1"
    env["BENCH_T0"] = repr(time.time())
    proc = subprocess.Popen(
        [python, str(CHILD), kind, *extra],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"{kind}: no result within {timeout:g}s\n{err[-2000:]}") from None
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT "))
    raise RuntimeError(f"{kind}: child exited {proc.returncode} without a result\n{err[-2000:]}")


def compile_checkout() -> str:
    """Byte-compile the checkout's packages, as a user's first run would (site-packages,
    textual among them, was compiled by pip). Without it, a machine with
    PYTHONDONTWRITEBYTECODE set (this one) compiles our ~60 modules from source on every
    start (about 180 ms), which the bare app never pays: not like with like."""
    import compileall

    ok = all(compileall.compile_dir(str(ROOT / pkg), quiet=1) for pkg in ("cockpit", "screens", "bench"))
    note = " (PYTHONDONTWRITEBYTECODE is set here: compiled once, up front)" if os.environ.get(
        "PYTHONDONTWRITEBYTECODE") else ""
    return ("bytecode: the checkout compiled, as after a first run" + note) if ok else "bytecode: compileall FAILED"


def stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def print_table(title: str, milestones, results: list[dict]) -> None:
    print(f"\n{title} (ms since spawn, n={len(results)})")
    print(f"  {'milestone':<38} {'median':>8} {'min':>8} {'max':>8}   median step")
    prev = 0.0
    for key, label in milestones:
        vals = [r[key] for r in results if key in r]
        if not vals:
            continue
        med, lo, hi = stats(vals)
        print(f"  {label:<38} {med:8.1f} {lo:8.1f} {hi:8.1f}   +{med - prev:.1f}")
        prev = med


def importtime(python: str, stmt: str, top: int) -> None:
    """`python -X importtime` of the app's imports: heaviest by cumulative and by self time."""
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", stmt], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    rows = []
    pat = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")
    for line in proc.stderr.splitlines():
        m = pat.match(line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), (len(m.group(3)) - 1) // 2, m.group(4)))
    if not rows:
        print(f"  (no -X importtime output; exit {proc.returncode}: {proc.stderr[-500:]})")
        return
    total = sum(r[0] for r in rows)
    print(f"\n`python -X importtime -c \"{stmt}\"`: {len(rows)} modules, {total / 1000:.1f} ms of import time "
          "(one run, warm bytecode cache)")
    print(f"  top {top} by cumulative us (nested: a package includes what it imports)")
    for self_us, cum_us, depth, name in sorted(rows, key=lambda r: -r[1])[:top]:
        print(f"  {cum_us:>9,d}  {'  ' * depth}{name}")
    print(f"  top {top} by self us")
    for self_us, cum_us, depth, name in sorted(rows, key=lambda r: -r[0])[:top]:
        print(f"  {self_us:>9,d}  {name}")
    names = {r[3] for r in rows}
    print("  imported by `import screens.app, cockpit.cli`?")
    for pkg in FORBIDDEN + ("httpx", "pydantic"):
        hit = any(n == pkg or n.startswith(pkg + ".") for n in names)
        note = "" if pkg in FORBIDDEN else "  (not forbidden; shown for information)"
        print(f"    {pkg:<9} {'yes' if hit else 'no'}{note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=9, help="measured runs of each app (default 9)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each app first (default 1)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a child is killed (default 30)")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the children (default: this one)")
    ap.add_argument("--top", type=int, default=10, help="how many imports to list (default 10)")
    ap.add_argument("--no-importtime", action="store_true", help="skip the -X importtime diagnostic")
    ap.add_argument("--trace", action="store_true",
                    help="finish with one extra traced run: timeline of main-thread work (http client, CSS, layout)")
    ap.add_argument("--trace-min", type=float, default=1.0, help="shortest call shown by --trace, ms (default 1)")
    args = ap.parse_args(argv)

    print(f"start-up benchmark: {args.runs} runs each (+{args.warmup} warm-up), interleaved, headless 120x40")
    print(f"python {args.python}  ({sys.version.split()[0]})\ncheckout {ROOT} at {checkout_state(ROOT)}")
    try:
        import textual

        print(f"textual {textual.__version__}")
    except Exception:  # noqa: BLE001 - informational only
        pass

    print(compile_checkout())
    ours: list[dict] = []
    bare: list[dict] = []
    imports: list[dict] = []
    for i in range(args.warmup + args.runs):
        o = spawn(args.python, "ours", args.timeout, [])
        b = spawn(args.python, "bare", args.timeout, [])
        m = spawn(args.python, "imports", args.timeout, [])
        if i >= args.warmup:
            ours.append(o)
            bare.append(b)
            imports.append(m)
            print(f"  run {i - args.warmup + 1:>2}: ours {o['data_painted']:7.1f} ms (first paint {o['first_paint']:6.1f})"
                  f"   bare {b['first_paint']:7.1f} ms", flush=True)

    print_table("cockpit demo", OURS_MILESTONES, ours)
    print(f"  waited for: {', '.join(ours[0].get('waited_for', []))}")
    print_table("bare Textual app (Header, Static, Footer)", BARE_MILESTONES, bare)

    o_med, o_min, o_max = stats([r["data_painted"] for r in ours])
    p_med, p_min, p_max = stats([r["first_paint"] for r in ours])
    b_med, b_min, b_max = stats([r["first_paint"] for r in bare])
    print("\nsummary (ms since spawn)")
    print(f"  {'':<44} {'median':>8} {'min':>8} {'max':>8}")
    print(f"  {'ours: dashboard painted WITH DATA':<44} {o_med:8.1f} {o_min:8.1f} {o_max:8.1f}")
    print(f"  {'ours: dashboard first paint, no data':<44} {p_med:8.1f} {p_min:8.1f} {p_max:8.1f}")
    print(f"  {'bare Textual app: first paint':<44} {b_med:8.1f} {b_min:8.1f} {b_max:8.1f}")
    print(f"  ratio ours/bare (first paint) {p_med / b_med:5.2f}   target <= {TARGET_RATIO}")
    print(f"  ratio ours/bare (with data)   {o_med / b_med:5.2f}   (for information)")
    o_imp = statistics.median(r["imports"] - r["interpreter"] for r in imports)
    b_imp = statistics.median(r["imports"] - r["interpreter"] for r in bare)
    data_after = statistics.median(r["data_painted"] - r["first_paint"] for r in ours)
    print(f"  imports: ours {o_imp:.1f} ms, bare (textual + widgets) {b_imp:.1f} ms: +{o_imp - b_imp:.1f} ms"
          f"   target <= +{TARGET_IMPORT_MS:g}")
    print(f"  data painted after the first paint: {data_after:.1f} ms (median of the runs' differences)"
          f"   target <= {TARGET_DATA_MS:g}")
    config_ms = statistics.median(r["config"] - r["textual"] for r in ours)
    print(f"  of the first paint, validating the config took {config_ms:.1f} ms (pydantic's import, the models, "
          f"the journal and simulator); without it the first paint would be ~{p_med - config_ms:.0f} ms, "
          f"{(p_med - config_ms) / b_med:.2f}x the bare app's")
    report("startup", {"first_paint_ms": p_med, "config_ms": config_ms, "bare_first_paint_ms": b_med, "data_painted_ms": o_med,
                       "data_after_paint_ms": data_after, "imports_ms": o_imp, "bare_imports_ms": b_imp,
                       "runs": args.runs})

    print("\nloaded in the running `cockpit demo` when data was painted (sys.modules):")
    for pkg in FORBIDDEN + ("httpx", "pydantic"):
        seen = sum(1 for r in ours if r["modules"].get(pkg))
        note = "" if pkg in FORBIDDEN else "  (expected: used by the poller / config)"
        print(f"    {pkg:<9} {'yes' if seen else 'no'} ({seen}/{len(ours)} runs){note}")
    print(f"    modules loaded: ours median {statistics.median(r['n_modules'] for r in ours):.0f}, "
          f"bare {statistics.median(r['n_modules'] for r in bare):.0f}")

    if not args.no_importtime:
        importtime(args.python, "import screens.app, cockpit.cli", args.top)
    if args.trace:
        print_trace(spawn(args.python, "ours", args.timeout, [], trace=True), args.trace_min)
    return 0


def print_trace(result: dict, min_ms: float) -> None:
    """One extra (unmeasured) run with a few functions wrapped: when the main thread was busy."""
    print(f"\nstart-up timeline of one extra traced run (calls of >= {min_ms:g} ms; ms since spawn; "
          "wrappers add a little time)")
    events = [(s, "    " + name, d) for name, s, d in result.get("trace", []) if d >= min_ms]
    labels = dict(OURS_MILESTONES)
    events += [(result[k], f"[{labels[k]}]", None) for k in labels if k in result]
    for start, name, dur in sorted(events, key=lambda e: (e[0], e[2] is not None)):
        print(f"  {start:8.1f}  " + (f"+{dur:6.1f}  {name}" if dur is not None else f"         {name}"))


if __name__ == "__main__":
    sys.exit(main())
