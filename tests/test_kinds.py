"""Adding a kind is adding one file: a module dropped into the sources package (here from a
temporary folder put on the package's path) is a kind the config validates, the schema,
the reference, "did you mean" and `cockpit check` know, and the poller runs; nothing else
is edited. Likewise for an action kind."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from cockpit import kinds
from test_config import missing_from_reference

SOURCE_MODULE = '''
"""`queue_file`: a queue's depth read from a file (a kind written by a test)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from cockpit.configmodel import SourceBase
from cockpit.signals.sources._base import Source


class QueueFileSource(SourceBase):
    """A queue's depth, read from a file holding one number."""

    kind: Literal["queue_file"]
    path: str = Field(description="File holding the queue depth.")

    def series_names(self) -> list[str]:
        return ["depth"]


class QueueFile(Source):
    kind = "queue_file"

    async def fetch(self):
        with open(self.cfg.path) as f:
            return [self.reading("depth", float(f.read()))]


CONFIG = QueueFileSource
SOURCE = QueueFile
'''

ACTION_MODULE = '''
"""`touch_file`: create a marker file (an action kind written by a test)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from actions.kinds.command import CommandAction, CommandExecutor


class TouchFileAction(CommandAction):
    """Create a marker file (a test kind built on the command kind)."""

    kind: Literal["touch_file"]
    marker: str = Field("", description="Unused: shows a field of the new kind in the reference.")


CONFIG = TouchFileAction
EXECUTOR = CommandExecutor
'''


@pytest.fixture
def new_kinds(tmp_path, monkeypatch):
    """A folder holding one new source kind and one new action kind, added to the two
    packages' search paths (as if the files were in cockpit/signals/sources/ and actions/kinds/)."""
    import actions.kinds
    import cockpit.signals.sources

    src, act = tmp_path / "sources", tmp_path / "actions"
    src.mkdir()
    act.mkdir()
    (src / "queue_file.py").write_text(textwrap.dedent(SOURCE_MODULE))
    (act / "touch_file.py").write_text(textwrap.dedent(ACTION_MODULE))
    monkeypatch.setattr(cockpit.signals.sources, "__path__", [*cockpit.signals.sources.__path__, str(src)])
    monkeypatch.setattr(actions.kinds, "__path__", [*actions.kinds.__path__, str(act)])
    kinds._names.cache_clear()
    yield tmp_path
    kinds._names.cache_clear()


def raw_config(depth_file) -> dict:
    from cockpit.drill.demo import demo_raw

    raw = demo_raw("http://127.0.0.1:9")
    raw["sources"].append({"name": "queue", "kind": "queue_file", "path": str(depth_file), "interval": 1.0})
    raw["panels"]["extra"] = [{"title": "Queue", "series": "queue:depth", "unit": "count",
                               "threshold": {"warn": 100, "critical": 1000}}]
    raw["actions"] = [{"key": "t", "name": "Touch", "kind": "touch_file", "target": "marker",
                       "argv": ["true"]}]
    return raw


def test_a_new_source_kind_is_one_file(new_kinds):
    from cockpit.config import ConfigError, config_from_dict, schema
    from cockpit.reference import markdown_reference
    from cockpit.signals.check import check_sources
    from cockpit.signals.sources import SourceContext, build_source

    depth = new_kinds / "depth"
    depth.write_text("42")
    assert "queue_file" in kinds.source_kinds() and "touch_file" in kinds.action_kinds()
    cfg = config_from_dict(raw_config(depth), "<t>", {})
    assert cfg.source("queue").path == str(depth)
    # the schema, the reference (and its completeness check) and "did you mean" know it
    assert "QueueFileSource" in str(schema()) and "TouchFileAction" in str(schema())
    ref = markdown_reference()
    assert "queue_file" in ref and "File holding the queue depth." in ref and "touch_file" in ref
    assert missing_from_reference(ref) == []
    bad = raw_config(depth)
    bad["sources"][-1]["kind"] = "queue_fil"
    with pytest.raises(ConfigError, match="did you mean 'queue_file'"):
        config_from_dict(bad, "<t>", {})
    bad = raw_config(depth)
    del bad["sources"][-1]["path"]
    with pytest.raises(ConfigError, match=r"sources\[3\]\.path: required"):
        config_from_dict(bad, "<t>", {})
    # it polls, and `cockpit check` runs it
    ctx = SourceContext()
    reading = asyncio.run(build_source(cfg.source("queue"), ctx).poll())[0]
    assert (reading.series, reading.value) == ("depth", 42.0)
    results = asyncio.run(check_sources(cfg))
    assert any(r.name == "queue" and r.ok for r in results)
    # the action kind has its executor, real and in a drill's sandbox
    from actions import real_executors, sandbox_executors

    assert "touch_file" in real_executors() and "touch_file" in sandbox_executors()
    assert cfg.actions[0].kind == "touch_file" and cfg.actions[0].argv == ["true"]


def test_the_reference_check_fails_when_the_new_kind_goes_missing(new_kinds):
    from cockpit.reference import markdown_reference

    ref = markdown_reference()
    assert "kind queue_file" in missing_from_reference(ref.replace('kind = "queue_file"', 'kind = "queue"'))
    assert missing_from_reference(ref.replace("| `marker` |", "| `markr` |")) == \
        ['[[actions]] kind = "touch_file": marker']
