"""Config benchmark: what loading a config costs a fresh process, and which kinds it builds.

    .venv/bin/python bench/config.py [--runs 9]

Each run is a fresh interpreter: (1) `import cockpit.config` alone, (2) import and parse
the demo's config (three source kinds), (3) import and parse a config that uses every
registered source and action kind. Prints medians in ms and the number of kind modules
imported in each case (a config builds only the kinds it uses). Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

from _common import checkout_state

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    import cockpit.config as c
    t1 = time.perf_counter()
    case = sys.argv[1]
    if case == "demo":
        from cockpit.drill.demo import demo_raw
        c.config_from_dict(demo_raw("http://127.0.0.1:9"), "<demo>", {})
    elif case == "all":
        from cockpit.kinds import action_kinds, source_kinds
        sources = [{"name": f"s{i}", "kind": k} for i, k in enumerate(source_kinds())]
        actions = [{"name": f"a{i}", "kind": k} for i, k in enumerate(action_kinds())]
        try:  # incomplete on purpose: validating them builds every kind's model
            c.config_from_dict({"service": {"name": "x"}, "sources": sources, "actions": actions}, "<all>", {})
        except c.ConfigError:
            pass
    t2 = time.perf_counter()
    kinds = [m for m in sys.modules if m.startswith(("cockpit.signals.sources.", "actions.kinds."))
             and not m.rsplit(".", 1)[1].startswith("_")]
    print(json.dumps({"import": (t1 - t0) * 1000, "total": (t2 - t0) * 1000, "kinds": len(kinds)}))
""")


def run(case: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, case], cwd=ROOT, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    print(f"checkout: {checkout_state(ROOT)}; {args.runs} runs each, fresh interpreter per run")
    for case, what in (("import", "import cockpit.config"), ("demo", "import + parse the demo config"),
                       ("all", "import + parse every kind")):
        runs = [run(case) for _ in range(args.runs)]
        total = statistics.median(r["total"] for r in runs)
        print(f"{what:34s} median {total:6.1f} ms   (import alone {statistics.median(r['import'] for r in runs):.1f}"
              f" ms)   kind modules imported: {runs[0]['kinds']}")


if __name__ == "__main__":
    main()
