"""Child process of bench/startup.py; not a benchmark by itself.

    BENCH_T0=<parent time.time() at spawn> python bench/_startup_child.py ours|bare|imports

``ours`` runs ``cockpit demo`` through ``cockpit.cli.main`` (the console script's
entry point, in its order: the command line, the simulator, the config and the first
GETs, then the app's imports) with ``App.run`` forced headless; ``bare`` runs a Textual
app with a Header, one Static and a Footer the same way; ``imports`` only imports
``cockpit.cli`` and ``screens.app`` (what `cockpit demo` imports before the app runs) and
exits. Each prints one line

    BENCH_RESULT {"interpreter": ms, "imports": ms, ..., "modules": {...}}

with milestones in milliseconds since BENCH_T0, then exits. Milestones:

interpreter   first statement of this script (interpreter + site start-up)
imports       imports: ``import cockpit.cli, screens.app`` done; bare: ``textual.app`` + widgets
textual       ours: ``import cockpit.cli`` and ``textual.app`` done
config        ours: the demo's config validated (pydantic and the config models imported and
              built; the journal opened and the simulator started, which come first in cmd_demo)
run           App.run() entered (ours: demo config built, simulator started, app constructed)
first_paint   ours: first DashboardScreen.refresh_data() (on mount) plus call_after_refresh;
              bare: call_after_refresh from App.on_mount
data_ready    ours: the poller sink stored the last of the five panels' first good readings
data_painted  ours: the first refresh_data() (the app's refresh timer) that saw all five
              panels' data, plus call_after_refresh: the figure compared with ``bare``
"""

from __future__ import annotations

import os
import sys
import time

T_START = time.time()
T0 = float(os.environ.get("BENCH_T0", T_START))
SIZE = (120, 40)
WATCH = ("boto3", "botocore", "psycopg", "httpx", "pydantic")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout holding bench/

marks: dict[str, float] = {"interpreter": T_START}


def mark(name: str) -> None:
    marks.setdefault(name, time.time())


def emit(extra: dict | None = None) -> None:
    import json

    out: dict = {k: round((v - T0) * 1000.0, 3) for k, v in marks.items()}
    out["modules"] = {name: any(m == name or m.startswith(name + ".") for m in sys.modules) for name in WATCH}
    out["n_modules"] = len(sys.modules)
    if TRACE:
        out["trace"] = TRACE
    if extra:
        out.update(extra)
    sys.stdout.write("BENCH_RESULT " + json.dumps(out) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- bare


def run_bare() -> int:
    from textual.app import App, ComposeResult
    from textual.widgets import Footer, Header, Static

    mark("imports")

    class BareApp(App):
        def compose(self) -> ComposeResult:
            yield Header()
            yield Static("Hello from a bare Textual app.")
            yield Footer()

        def on_mount(self) -> None:
            self.call_after_refresh(self._painted)

        def _painted(self) -> None:
            mark("first_paint")
            emit()
            self.exit()

    app = BareApp()
    mark("run")
    app.run(headless=True, size=SIZE)
    return 0


# ---------------------------------------------------------------- trace

TRACE: list[tuple[str, float, float]] = []
TRACED = (  # (module, class, method): main-thread work worth seeing on the start-up timeline
    ("cockpit.signals.sources.base", "SourceContext", "http"),
    ("screens.app", "CockpitApp", "start_polling"),
    ("screens.app", "CockpitApp", "on_readings"),
    ("screens.dashboard", "DashboardScreen", "refresh_data"),
    ("textual.css.stylesheet", "Stylesheet", "parse"),
    ("textual.screen", "Screen", "_refresh_layout"),
    ("textual.screen", "Screen", "_compositor_refresh"),
)


def install_trace() -> None:
    """Wrap a few functions to record (name, start ms, duration ms); BENCH_TRACE=1 only."""
    import importlib

    for mod_name, cls_name, meth in TRACED:
        try:
            cls = getattr(importlib.import_module(mod_name), cls_name)
            original = getattr(cls, meth)
        except (ImportError, AttributeError):
            continue

        def wrapper(*args, __f=original, __label=f"{cls_name}.{meth}", **kwargs):
            t = time.time()
            try:
                return __f(*args, **kwargs)
            finally:
                TRACE.append((__label, round((t - T0) * 1000, 1), round((time.time() - t) * 1000, 1)))

        setattr(cls, meth, wrapper)


# ---------------------------------------------------------------- ours


def panel_keys(cfg) -> tuple[list[str], list[str]]:
    """(series that must each have a good reading, component series of which one must)."""
    from cockpit.model import series_key

    must = [series_key(src, "health") for src in cfg.panels.health_sources]
    must += [getattr(cfg.panels, role).series for role in ("error_rate", "latency", "cost")]
    comps = [
        series_key(name, f"component/{c}") for name in cfg.panels.component_sources for c in cfg.source(name).components
    ]
    return must, comps


def has_data(store, must: list[str], comps: list[str]) -> bool:
    def good(key: str) -> bool:
        buf = store.get(key)
        return buf is not None and buf.last_ok is not None

    return all(good(k) for k in must) and any(good(k) for k in comps)


def run_imports() -> int:
    import cockpit.cli  # noqa: F401
    import screens.app  # noqa: F401 - what `cockpit demo` imports before the app runs

    mark("imports")
    emit()
    return 0


def run_ours() -> int:
    import cockpit.cli
    from textual.app import App

    mark("textual")
    import cockpit.drill.demo as demo  # pydantic and the config models, which cmd_demo would import next

    build = demo.demo_config

    def demo_config(url: str):
        config = build(url)
        mark("config")
        return config

    demo.demo_config = demo_config  # cmd_demo imports the name when it runs: it takes this one
    if os.environ.get("BENCH_TRACE"):
        install_trace()
    state: dict = {}
    original_run = App.run

    def run(self, *args, **kwargs):
        kwargs["headless"] = True
        kwargs.setdefault("size", SIZE)
        install(self)
        mark("run")
        return original_run(self, *args, **kwargs)

    def install(app) -> None:
        from screens.dashboard import DashboardScreen

        must, comps = panel_keys(app.config)
        state["keys"] = must + comps[:1]
        sink = app.on_readings  # the poller is built with app.on_readings: wrap it on the instance

        def on_readings(source, readings):
            sink(source, readings)
            if "data_ready" not in marks and has_data(app.store, must, comps):
                mark("data_ready")

        app.on_readings = on_readings
        refresh_data = DashboardScreen.refresh_data

        def timed_refresh_data(screen) -> None:
            refresh_data(screen)
            if not state.get("armed_first"):
                state["armed_first"] = True
                screen.call_after_refresh(mark, "first_paint")
            if not state.get("armed_data") and has_data(app.store, must, comps):
                state["armed_data"] = True
                screen.call_after_refresh(finish, app)

        DashboardScreen.refresh_data = timed_refresh_data

    def finish(app) -> None:
        mark("data_painted")
        emit({"waited_for": state.get("keys", [])})
        app.exit()

    App.run = run
    # `cockpit demo` with its defaults, as the console script runs it
    return cockpit.cli.main(["demo"] + sys.argv[2:])


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "ours"
    sys.exit({"ours": run_ours, "bare": run_bare, "imports": run_imports}[kind]())
