"""The import contract: the core and the actions run without the UI, and heavy
clients (boto3, psycopg, aiohttp) are imported only by the code that uses them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

CORE = [
    "cockpit",
    "cockpit.config",
    "cockpit.model",
    "cockpit.clock",
    "cockpit.signals.store",
    "cockpit.signals.poller",
    "cockpit.signals.evaluator",
    "cockpit.signals.views",
    "cockpit.incident.journal",
    "cockpit.incident.state",
    "cockpit.incident.desk",
    "cockpit.incident.postmortem",
    "cockpit.units",
    "cockpit.kinds",
    "cockpit.configmodel",
    "cockpit.safetext",
    "cockpit.signals.sources",
    "cockpit.drill.simulator",
    "cockpit.drill.demo",
    "cockpit.signals.check",
    "cockpit.signals.watch",
    "cockpit.incident.worker",
    "cockpit.drill.session",
    "cockpit.reference",
    "cockpit.cli",
    "actions",
]
FORBIDDEN = ["textual", "boto3", "botocore", "psycopg", "aiohttp", "matplotlib"]


def imported_after(modules: list[str], extra: str = "") -> list[str]:
    """Import ``modules`` in a fresh interpreter (and run ``extra``); return the forbidden
    top-level packages that ended up in sys.modules."""
    code = textwrap.dedent(
        f"""
        import importlib, json, sys
        for name in {modules!r}:
            importlib.import_module(name)
        {extra}
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({FORBIDDEN!r}))
        print(json.dumps(loaded))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_core_imports_without_ui_or_heavy_clients():
    assert imported_after(CORE) == []


def test_every_kind_module_imports_without_ui_or_heavy_clients():
    """A kind's module holds its config model and its implementation; boto3, psycopg and
    aiohttp are loaded by its calls, not by importing it (the registry imports the kinds a
    config uses while loading it)."""
    extra = textwrap.dedent(
        """
        from cockpit import kinds
        for k in kinds.source_kinds():
            kinds.source_module(k)
        for k in kinds.action_kinds():
            kinds.action_module(k)
        assert len(kinds.source_kinds()) >= 10 and len(kinds.action_kinds()) >= 10
        """
    ).replace("\n", "\n        ")
    assert imported_after(["cockpit.kinds"], extra) == []


def test_loading_a_config_builds_only_the_models_of_the_kinds_it_uses():
    """Importing the config module cost ~290 ms when it built every kind's model: now a
    config's kinds are loaded when it names them."""
    code = textwrap.dedent(
        """
        import sys
        from cockpit.drill.demo import demo_config
        demo_config("http://127.0.0.1:9")
        loaded = sorted(m.rsplit(".", 1)[1] for m in sys.modules
                        if m.startswith(("cockpit.signals.sources.", "actions.kinds.")) and not m.rsplit(".", 1)[1].startswith("_"))
        print(",".join(loaded))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(",") == ["http", "http_components", "http_health", "prom_scrape"]


def test_the_demo_app_builds_executors_only_for_the_action_kinds_its_config_uses():
    """Building every kind's executor imported all ten action modules at start (~90 ms on
    a loaded machine): the app builds those of the kinds its actions use."""
    code = textwrap.dedent(
        """
        import sys
        from cockpit.drill.demo import demo_config
        from screens.app import CockpitApp
        app = CockpitApp(demo_config("http://127.0.0.1:9"), mode="DEMO")
        loaded = sorted(m.rsplit(".", 1)[1] for m in sys.modules
                        if m.startswith("actions.kinds.") and not m.rsplit(".", 1)[1].startswith("_"))
        print(",".join(loaded), "|", ",".join(sorted(app.runner.executors)))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http | http"


@pytest.mark.parametrize("module", ["cockpit.config", "cockpit.signals.poller", "cockpit.signals.store", "cockpit.drill.simulator"])
def test_each_core_module_alone(module):
    assert imported_after([module]) == []


def test_building_a_source_and_the_demo_config_stays_ui_free():
    extra = textwrap.dedent(
        """
        from cockpit.drill.demo import demo_config
        from cockpit.signals.sources import SourceContext, build_source
        ctx = SourceContext()
        sources = [build_source(s, ctx) for s in demo_config("http://127.0.0.1:1").sources]
        assert len(sources) == 3
        """
    ).replace("\n", "\n        ")
    assert imported_after(["cockpit.cli"], extra) == []


def test_the_check_detects_a_forbidden_import():
    """The contract check itself works: importing textual is seen."""
    assert imported_after(["cockpit.config", "textual"]) == ["textual"]


def test_the_app_starts_without_the_chart_library():
    """matplotlib is for writing a postmortem's charts only: never on the start-up path."""
    code = ("import sys; import screens.app, screens.dashboard; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_writing_a_postmortem_draws_its_charts_with_matplotlib(tmp_path):
    """...and writing one does load it (the charts are real SVG from a plotting library)."""
    extra = textwrap.dedent(
        f"""
        from pathlib import Path
        from cockpit.clock import ManualClock
        from cockpit.incident.state import fold
        from cockpit.incident.journal import SQLiteJournal
        from cockpit.incident.postmortem import write_markdown
        j = SQLiteJournal({str(tmp_path / "j.db")!r}, clock=ManualClock(100.0))
        j.append("INC-1", "incident_declared", {{"title": "t"}}, ts=100.0)
        meta = {{"error_rate": {{"title": "error rate", "unit": "ratio", "warn": 0.05, "critical": 0.1}}}}
        j.append("INC-1", "metrics_snapshot", {{"signals": meta,
                 "samples": {{"error_rate": [[90.0 + i, 0.01 * i] for i in range(30)]}}}}, ts=120.0)
        charts = write_markdown(fold("INC-1", j.events("INC-1")), 130.0, Path({str(tmp_path / "pm.md")!r}))
        assert [c.name for c in charts] == ["pm-error_rate.svg"], charts
        """
    ).replace("\n", "\n        ")
    assert "matplotlib" in imported_after(["cockpit.incident.postmortem"], extra)
    svg = (tmp_path / "pm-error_rate.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and "matplotlib" in svg
    assert "![error rate over the incident" in (tmp_path / "pm.md").read_text()


def _import_graph() -> dict[str, set[str]]:
    """Every module of the project and what it imports: at the top, inside functions and
    under TYPE_CHECKING alike (a circle through a lazy import is still a circle)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    mods = {}
    for package in ("cockpit", "screens", "actions", "themes"):
        for p in (root / package).rglob("*.py"):
            name = ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            mods[name] = p

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                targets = [known(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [known(f"{node.module}.{a.name}") or known(node.module) for a in node.names]
            else:
                continue
            graph[m].update(t for t in targets if t and t != m)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    out.append(sorted(group))
    return out


def test_no_import_circles():
    """app.py and the dashboard imported each other, journal and pgjournal, the sources'
    base and every kind, the desk, the postmortem and its charts: no circle is left."""
    assert _circles(_import_graph()) == []
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check itself


def test_no_screen_reaches_into_the_app():
    """The Textual side talks to the core and the app through public interfaces only."""
    import ast
    from pathlib import Path

    found = []
    for p in (Path(__file__).resolve().parent.parent / "screens").glob("*.py"):
        if p.name == "app.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, (ast.Name, ast.Attribute))
                    and (getattr(node.value, "id", None) == "app" or getattr(node.value, "attr", None) == "app")):
                found.append(f"{p.name}:{node.lineno} app.{node.attr}")
    assert found == []
