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
    "cockpit.store",
    "cockpit.poller",
    "cockpit.evaluator",
    "cockpit.views",
    "cockpit.journal",
    "cockpit.incident",
    "cockpit.units",
    "cockpit.sources",
    "cockpit.sources.http",
    "cockpit.sources.promtext",
    "cockpit.simulator",
    "cockpit.demo",
    "cockpit.check",
    "cockpit.reference",
    "cockpit.cli",
    "actions",
]
FORBIDDEN = ["textual", "boto3", "botocore", "psycopg", "aiohttp"]


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


@pytest.mark.parametrize("module", ["cockpit.config", "cockpit.poller", "cockpit.store", "cockpit.simulator"])
def test_each_core_module_alone(module):
    assert imported_after([module]) == []


def test_building_a_source_and_the_demo_config_stays_ui_free():
    extra = textwrap.dedent(
        """
        from cockpit.demo import demo_config
        from cockpit.sources import SourceContext, build_source
        ctx = SourceContext()
        sources = [build_source(s, ctx) for s in demo_config("http://127.0.0.1:1").sources]
        assert len(sources) == 3
        """
    ).replace("\n", "\n        ")
    assert imported_after(["cockpit.cli"], extra) == []


def test_the_check_detects_a_forbidden_import():
    """The contract check itself works: importing textual is seen."""
    assert imported_after(["cockpit.config", "textual"]) == ["textual"]
