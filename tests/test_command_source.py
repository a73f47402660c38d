"""The `command` source (issue 18): a program run on every poll, its output read as JSON,
Prometheus text or Kubernetes deployments. Real subprocesses throughout: small `python -c`
scripts, and tests/programs/kubectl (a stand-in printing what `kubectl get deployments -o
json` prints, from a state file the test writes) put first on PATH as `kubectl`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.config import ConfigError, config_from_dict, load_config
from cockpit.drill.demo import demo_raw
from cockpit.model import CHANGE_PREFIX, Status
from cockpit.signals.check import check_one
from cockpit.signals.poller import Poller
from cockpit.signals.sources import SourceContext, SourceError
from cockpit.signals.sources.command import (
    MISSING,
    Command,
    CommandSource,
    deployment_state,
    json_rows,
    kubernetes_rows,
    parse_output,
    pointer_token,
    prometheus_rows,
    resolve_pointer,
    summarize,
)
from conftest import wait_until

PROGRAMS = Path(__file__).resolve().parent / "programs"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


def source(**cfg) -> Command:
    cfg.setdefault("name", "cmd")
    cfg.setdefault("timeout", 5.0)
    return Command(CommandSource(kind="command", **cfg), SourceContext())


def py(code: str) -> list[str]:
    """argv running ``code`` with this Python."""
    return [sys.executable, "-c", code]


def prints(text: str | bytes) -> list[str]:
    """argv of a program printing ``text`` exactly (bytes as they are)."""
    data = text if isinstance(text, bytes) else text.encode()
    return py(f"import sys; sys.stdout.buffer.write({data!r})")


def poll(src: Command) -> dict:
    """One successful poll's readings by series."""
    return {r.series: r for r in asyncio.run(src.poll())}


def failed_poll(src: Command) -> list:
    """One poll through the poller (whose deadline is the source's): the readings it records."""
    poller = Poller([src], lambda name, readings: None)
    return asyncio.run(poller.poll_once(src))


def gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for its parent counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


class Cluster:
    """The fake kubectl's state file: deployments as the test wants them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict = {"namespace": "macro-ai", "deployments": []}

    def deploy(self, name: str, **kw) -> None:
        deps = [d for d in self.state["deployments"] if d["name"] != name]
        old = next((d for d in self.state["deployments"] if d["name"] == name), {})
        self.state["deployments"] = deps + [{**old, "name": name, **kw}]
        self.write()

    def fail(self, stderr: str, code: int = 1) -> None:
        self.state["fail"] = {"stderr": stderr, "exit": code}
        self.write()

    def write(self) -> None:
        self.path.write_text(json.dumps(self.state), encoding="utf-8")


@pytest.fixture
def cluster(tmp_path, monkeypatch) -> Cluster:
    """tests/programs first on PATH (so `kubectl` is the stand-in) and its state file."""
    monkeypatch.setenv("PATH", f"{PROGRAMS}{os.pathsep}{os.environ.get('PATH', '')}")
    c = Cluster(tmp_path / "cluster.json")
    c.write()
    monkeypatch.setenv("FAKE_KUBECTL_STATE", str(c.path))
    return c


KUBECTL = ["kubectl", "get", "deployments", "--namespace", "macro-ai", "--output", "json"]


# ---------------------------------------------------------------- JSON and Prometheus text


def test_json_output_into_series_and_component_rows():
    doc = {"stats": {"ready": 3, "queue_depth": "12", "lag": None, "name": "x"},
           "components": {"db": "healthy", "cache": {"status": "Degraded", "message": "evictions high"},
                          "ai": False, "a/b": {"state": "up"}}}
    src = source(argv=prints(json.dumps(doc)), series={"ready": "/stats/ready", "queue": "/stats/queue_depth",
                                                       "lag": "/stats/lag", "name": "/stats/name",
                                                       "gone": "/stats/nope"},
                 components=["db", "cache", "ai", "a/b", "missing"])
    got = poll(src)
    assert got["ready"].value == 3.0 and got["queue"].value == 12.0  # a string holding a number counts
    assert got["lag"].value is None and got["lag"].ok  # null: no data, not an error
    assert got["name"].status is Status.ERROR and "name: /stats/name is 'x', not a number" == got["name"].error
    assert got["gone"].error == "gone: nothing at /stats/nope in the output"
    assert (got["component/db"].state, got["component/db"].value) == ("healthy", 1.0)
    cache = got["component/cache"]
    assert (cache.state, cache.value, cache.detail) == ("degraded", 0.5, "evictions high")
    assert (got["component/ai"].state, got["component/ai"].value) == ("down", 0.0)
    assert got["component/a/b"].state == "up"  # a '/' in a name is escaped in the pointer
    assert got["component/missing"].error == "nothing at /components/missing in the output"
    ok, text = summarize(list(got.values()))
    assert not ok and "4/5" not in text and "missing: nothing at" in text and "ready 3" in text


def test_json_component_path_template():
    doc = {"checks": [{"id": "db", "status": "pass"}], "by": {"db": {"status": "fail", "reason": "timeout"}}}
    src = source(argv=prints(json.dumps(doc)), components=["db"], component_path="/by/{name}")
    row = poll(src)["component/db"]
    assert (row.state, row.value, row.detail) == ("fail", 0.0, "timeout")


METRICS = """\
# HELP queue_depth Jobs waiting.
# TYPE queue_depth gauge
queue_depth{queue="ingest"} 7
queue_depth{queue="email"} 5
# TYPE jobs_failed_total counter
jobs_failed_total{code="500"} 3
jobs_failed_total{code="503"} 1.5 1700000000000
# TYPE empty gauge
"""


def test_prometheus_text_into_series_through_the_scrape_parser():
    src = source(argv=prints(METRICS), format="prometheus",
                 series={"depth": "queue_depth", "ingest": 'queue_depth{queue="ingest"}',
                         "failed": 'jobs_failed_total{code=~"5.."}', "none": 'queue_depth{queue="x"}',
                         "empty": "empty", "absent": "nope_total"})
    got = poll(src)
    assert got["depth"].value == 12.0 and got["ingest"].value == 7.0 and got["failed"].value == 4.5
    assert got["none"].value is None and "selects no series" in got["none"].detail
    assert got["empty"].value is None and got["empty"].ok  # declared, no samples
    assert got["absent"].error == "absent: metric nope_total not found in the output"


def test_malformed_prometheus_text_is_one_line_naming_the_line():
    src = source(argv=prints("queue_depth 7\nqueue_depth{a=b} 1\n"), format="prometheus",
                 series={"depth": "queue_depth"})
    readings = failed_poll(src)
    assert [r.series for r in readings] == ["depth"]
    assert readings[0].status is Status.ERROR and readings[0].error.startswith("malformed metrics at line 2")


# ---------------------------------------------------------------- Kubernetes deployments


def test_kubernetes_deployments_healthy_degraded_unhealthy(cluster):
    cluster.deploy("api", replicas=3, available=3, updated=3, revision=7, images=["registry/api:1.5.0"])
    cluster.deploy("rolling", replicas=3, available=3, updated=1, total=4)  # a rollout under way
    cluster.deploy("short", replicas=3, available=2, updated=3)  # one pod not available
    cluster.deploy("down", replicas=2, available=0, updated=2)
    cluster.deploy("stuck", replicas=3, available=3, updated=1, total=4, progress_deadline_exceeded=True)
    cluster.deploy("idle", replicas=0, available=0, updated=0)
    names = ["api", "rolling", "short", "down", "stuck", "idle", "macro-ai/api", "other"]
    got = poll(source(argv=KUBECTL, format="kubernetes", components=names,
                      series={"api_ready": "/items/0/status/readyReplicas"}))
    state = {n: (got[f"component/{n}"].state, got[f"component/{n}"].value) for n in names[:7]}
    assert state == {"api": ("healthy", 1.0), "rolling": ("degraded", 0.5), "short": ("degraded", 0.5),
                     "down": ("unhealthy", 0.0), "stuck": ("unhealthy", 0.0), "idle": ("healthy", 1.0),
                     "macro-ai/api": ("healthy", 1.0)}
    assert got["component/api"].detail == "3/3 available · revision 7"
    assert "rollout in progress (1/3 updated)" in got["component/rolling"].detail
    assert got["component/short"].detail.startswith("2/3 available")
    assert "does not have minimum availability" in got["component/down"].detail
    assert "rollout stuck: ReplicaSet" in got["component/stuck"].detail and "timed out" in got["component/stuck"].detail
    assert got["component/other"].error == "no deployment other in the output"
    assert got["api_ready"].value == 3.0
    assert got[f"{CHANGE_PREFIX}api deployment"].state == "revision 7 · image registry/api:1.5.0"
    ok, text = summarize(list(got.values()))
    assert not ok and text.startswith("3/8 healthy, 1 unreachable: other: no deployment") and "down unhealthy" in text


def test_a_new_revision_between_two_polls_is_a_change_with_the_new_state(cluster):
    cluster.deploy("macro-ai-api", replicas=3, revision=12, images=["registry/macro-ai-api:1.4.2"])
    src = source(argv=KUBECTL, format="kubernetes", components=["macro-ai-api"])
    first = poll(src)[f"{CHANGE_PREFIX}macro-ai-api deployment"]
    assert (first.state, first.value, first.detail) == ("revision 12 · image registry/macro-ai-api:1.4.2", None, "")
    cluster.deploy("macro-ai-api", revision=13, images=["registry/macro-ai-api:1.5.0", "registry/envoy:1.29"],
                   change_cause="ci-bot: deploy 812", updated=1, total=4)
    second = poll(src)
    change = second[f"{CHANGE_PREFIX}macro-ai-api deployment"]
    assert change.state == "revision 13 · images registry/macro-ai-api:1.5.0, registry/envoy:1.29"
    assert change.detail == "ci-bot: deploy 812" and change.value is None and change.ok
    assert second["component/macro-ai-api"].state == "degraded"  # the new revision rolling out
    # the same revision again: the same change reading (the watcher tells it once)
    assert poll(src)[f"{CHANGE_PREFIX}macro-ai-api deployment"].state == change.state


def test_one_deployment_json_and_a_namespace_name(cluster):
    cluster.deploy("api", replicas=2, available=1, updated=2)
    got = poll(source(argv=["kubectl", "get", "deployment", "api", "-n", "macro-ai", "-o", "json"],
                      format="kubernetes", components=["macro-ai/api"]))
    assert got["component/macro-ai/api"].state == "degraded" and f"{CHANGE_PREFIX}api deployment" in got


def test_output_that_is_not_deployments_is_an_error():
    readings = failed_poll(source(argv=prints('{"kind": "Pod"}'), format="kubernetes", components=["api"]))
    assert readings[0].error == ("the output is not Kubernetes deployments (expected the JSON of "
                                 "`kubectl get deployments -o json`)")


# ---------------------------------------------------------------- failures


def test_nonzero_exit_is_error_readings_with_stderr_last_line_cleaned_and_redacted(cluster, monkeypatch):
    secret = "kube-token-5f2a9c0e1d"
    monkeypatch.setenv("TEST_KUBE_TOKEN", secret)
    cluster.deploy("api", replicas=1)
    cluster.fail(f"I1202 09:00:01 loading config\n\x1b[31merror: You must be logged in (token {secret})\x1b[0m\n",
                 code=1)
    src = source(argv=[*KUBECTL, "--token", "env:TEST_KUBE_TOKEN"], format="kubernetes", components=["api", "ui"],
                 series={"ready": "/items/0/status/readyReplicas"})
    readings = failed_poll(src)
    assert sorted(r.series for r in readings) == ["component/api", "component/ui", "ready"]
    error = readings[0].error
    assert all(r.status is Status.ERROR and r.error == error for r in readings)
    assert error.startswith("exit 1: ␛[31merror: You must be logged in (token [redacted])")
    assert secret not in error and "\x1b" not in error and "loading config" not in error
    ok, text = summarize(readings)
    assert not ok


def test_nonzero_exit_without_stderr_and_a_signal():
    assert failed_poll(source(argv=py("import sys; sys.exit(3)"), components=["a"]))[0].error == \
        "exit 3 (nothing on standard error)"
    error = failed_poll(source(argv=py("import os, signal; os.kill(os.getpid(), signal.SIGTERM)"),
                               components=["a"]))[0].error
    assert error == "killed by SIGTERM (nothing on standard error)"


def with_child(pids: Path, then: str, child_output: str = "None") -> list[str]:
    """argv of a program that starts a child sleeping a minute (its stdout ``child_output``:
    None shares the program's), writes "CHILD PARENT" pids to ``pids``, then runs ``then``."""
    return py("import os, subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
              f"stdout={child_output}, stderr={child_output})\n"
              f"open({str(pids)!r}, 'w').write(f'{{child.pid}} {{os.getpid()}}')\n" + then)


def killed(pids: Path) -> None:
    child, parent = map(int, pids.read_text().split())
    wait_until(lambda: gone(parent) and gone(child), 5.0, "the command and its child killed")


def test_timeout_kills_the_command_and_its_child_and_the_poll_fails_at_the_deadline(tmp_path):
    pids = tmp_path / "pids"
    src = source(argv=with_child(pids, "print('{', flush=True)\ntime.sleep(60)\n"), components=["a"], timeout=1.0)
    t0 = time.monotonic()
    readings = failed_poll(src)
    took = time.monotonic() - t0
    assert readings[0].error == "timed out after 1s; the command was killed"
    assert 1.0 <= took < 1.0 + Command.GRACE, took
    killed(pids)


def test_a_poll_given_up_by_its_caller_kills_the_command(tmp_path):
    """The poller's deadline (or the app closing) cancels the poll: the process group goes too."""
    pids = tmp_path / "pids"
    src = source(argv=with_child(pids, "time.sleep(60)\n", "subprocess.DEVNULL"), components=["a"], timeout=30.0,
                 interval=5.0)

    async def give_up() -> None:
        task = asyncio.ensure_future(src.poll())
        await asyncio.to_thread(wait_until, lambda: pids.exists() and pids.read_text(), 10.0, "started")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(give_up())
    killed(pids)


def test_what_the_command_leaves_running_after_it_exits_is_killed(tmp_path):
    pids = tmp_path / "pids"
    src = source(argv=with_child(pids, "print('{\"components\": {\"a\": \"up\"}}')\n", "subprocess.DEVNULL"),
                 components=["a"])
    assert poll(src)["component/a"].state == "up"
    killed(pids)


def test_the_event_loop_runs_while_the_command_does():
    src = source(argv=py("import time; time.sleep(0.6); print('{\"x\": 1}')"), series={"x": "/x"})

    async def both() -> int:
        ticks = 0
        task = asyncio.ensure_future(src.poll())
        while not task.done():
            await asyncio.sleep(0.02)
            ticks += 1
        assert (await task)[0].value == 1.0
        return ticks

    assert asyncio.run(both()) >= 10


def test_missing_program_is_one_clear_line(tmp_path):
    readings = failed_poll(source(argv=["no-such-kubectl-xyz", "get"], components=["a", "b"]))
    assert [r.error for r in readings] == ["program not found: no-such-kubectl-xyz (check argv and PATH)"] * 2
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\necho {}\n")
    script.chmod(0o644)
    assert failed_poll(source(argv=[str(script)], components=["a"]))[0].error == \
        f"not allowed to run {script} (is it executable?)"
    assert failed_poll(source(argv=[sys.executable], cwd=str(tmp_path / "nope"), components=["a"]))[0].error == \
        f"the working folder {tmp_path / 'nope'} does not exist (cwd in the config)"


def test_a_secret_not_set_is_said_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    src = source(argv=py(f"open({str(marker)!r}, 'w')"), env={"API_TOKEN": "env:TEST_CMD_UNSET_TOKEN"},
                 components=["a"])
    assert failed_poll(src)[0].error == ("environment variable TEST_CMD_UNSET_TOKEN is not set "
                                         "(referenced by sources.cmd.env API_TOKEN)")
    assert not marker.exists()


def test_env_references_reach_the_program_and_are_redacted_from_its_output(monkeypatch):
    monkeypatch.setenv("TEST_CMD_TOKEN", "tok-0123456789abcdef")
    code = "import json, os, sys; print(json.dumps({'components': {'a': {'status': 'up', 'message': os.environ['T'] + ' ' + sys.argv[1]}}}))"
    src = source(argv=[*py(code), "env:TEST_CMD_TOKEN"], env={"T": "env:TEST_CMD_TOKEN"}, components=["a"])
    row = poll(src)["component/a"]
    assert row.state == "up" and row.detail == "[redacted] [redacted]"


def test_oversized_output_is_refused_and_the_command_stopped():
    code = "import sys\nwhile True:\n    sys.stdout.write('[' * 65536)\n"
    src = source(argv=py(code), components=["a"], max_output=256 * 1024, timeout=20.0, interval=5.0)
    t0 = time.monotonic()
    readings = failed_poll(src)
    assert readings[0].error == "output larger than 256 KiB; refusing to read it (max_output)"
    assert time.monotonic() - t0 < 10.0  # not left to run to the timeout


def test_output_that_is_not_utf8_or_not_json_or_nothing():
    assert failed_poll(source(argv=prints(b'{"x": "\xff\xfe"}'), series={"x": "/x"}))[0].error == \
        "the output is not UTF-8 text"
    assert failed_poll(source(argv=prints(b"queue 1 \xff\n"), format="prometheus", series={"q": "queue"}))[0] \
        .error == "malformed metrics: the output is not UTF-8 text"
    assert failed_poll(source(argv=prints("<html>502</html>"), series={"x": "/x"}))[0].error == \
        "the output is not JSON: Expecting value at line 1 column 1"
    assert failed_poll(source(argv=prints("  \n"), series={"x": "/x"}))[0].error == "the command printed nothing"
    assert failed_poll(source(argv=prints("[" * 100_000), series={"x": "/x"}))[0].error.startswith(
        "the output is not JSON")
    # standard error that is not UTF-8 either
    error = failed_poll(source(argv=py("import sys; sys.stderr.buffer.write(b'bad \\xff byte\\n'); sys.exit(2)"),
                               series={"x": "/x"}))[0].error
    assert error == "exit 2: bad \N{REPLACEMENT CHARACTER} byte"


def test_hostile_json_text_is_cleaned_in_readings():
    doc = {"components": {"a": {"status": "degraded", "message": "\x1b]52;c;aGk=\x07 copied\u202e"}}}
    row = poll(source(argv=prints(json.dumps(doc)), components=["a"]))["component/a"]
    assert "\x1b" not in row.detail and "\x07" not in row.detail and "\u202e" not in row.detail
    assert row.detail.startswith("␛]52;c;aGk=␇ copied")


# ---------------------------------------------------------------- parsers, by property

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5),
    st.dictionaries(st.sampled_from(["items", "kind", "metadata", "name", "spec", "status", "replicas",
                                     "conditions", "type", "reason", "annotations", "x", "components"]) | st.text(
        max_size=8), inner, max_size=6)), max_leaves=40)
# names come from the config (checked when loaded): printable; what the output holds is anything
printable = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
names = st.lists(st.text(printable, min_size=1, max_size=12), max_size=4, unique=True)
pointers = st.lists(st.text(printable, max_size=6), max_size=4).map(lambda ts: "".join("/" + pointer_token(t) for t in ts))


def _well_formed(rows) -> None:
    for row in rows:
        if row.error:
            assert row.value is None and "\n" not in row.error
        elif row.series.startswith("component/"):
            assert row.state and row.value in (0.0, 0.5, 1.0)
        elif not row.change:
            assert row.value is None or isinstance(row.value, float)


@FAST
@given(json_values, names, st.dictionaries(st.sampled_from(["a", "b"]), pointers, max_size=2))
def test_kubernetes_parser_never_raises_past_one_error(doc, components, series):
    try:
        rows = kubernetes_rows(doc, series, components)
    except SourceError as e:
        assert "\n" not in str(e)
        return
    _well_formed(rows)
    assert {r.series for r in rows if not r.change} == {f"component/{c}" for c in components} | set(series)


deployment_docs = st.fixed_dictionaries({
    "kind": st.just("Deployment"),
    "metadata": st.fixed_dictionaries({"name": st.just("api"), "generation": st.integers(0, 5),
                                       "annotations": st.dictionaries(st.just(
                                           "deployment.kubernetes.io/revision"), st.text(max_size=4))}),
    "spec": st.fixed_dictionaries({"replicas": st.integers(0, 6)}),
    "status": st.fixed_dictionaries({
        "availableReplicas": st.integers(0, 6), "updatedReplicas": st.integers(0, 6),
        "replicas": st.integers(0, 8), "observedGeneration": st.integers(0, 5),
        "conditions": st.lists(st.fixed_dictionaries({
            "type": st.sampled_from(["Available", "Progressing", "ReplicaFailure"]),
            "status": st.sampled_from(["True", "False", "Unknown"]),
            "reason": st.sampled_from(["MinimumReplicasAvailable", "NewReplicaSetAvailable", "ReplicaSetUpdated",
                                       "ProgressDeadlineExceeded"]),
            "message": st.text(max_size=20)}), max_size=3)}),
})


@FAST
@given(deployment_docs)
def test_deployment_states_follow_the_rules(dep):
    state, detail = deployment_state(dep)
    spec, status = dep["spec"], dep["status"]
    desired, available = spec["replicas"], status["availableReplicas"]
    conditions = {c["type"]: c for c in status["conditions"]}
    stuck = conditions.get("Progressing", {}).get("reason") == "ProgressDeadlineExceeded"
    assert (state == "unhealthy") == (stuck or (desired > 0 and available == 0))
    if state == "healthy":
        assert available >= desired and conditions.get("Available", {}).get("status") == "True"
        assert status["updatedReplicas"] >= desired and status["replicas"] <= status["updatedReplicas"]
    if not stuck and desired > 0 and 0 < available < desired:
        assert state == "degraded"
    assert state in ("healthy", "degraded", "unhealthy") and detail


@FAST
@given(json_values, names, st.dictionaries(st.sampled_from(["a", "b"]), pointers, max_size=2))
def test_json_rows_never_raise(doc, components, series):
    rows = json_rows(doc, series, components, "/components/{name}")
    _well_formed(rows)
    assert [r.series for r in rows] == [*series, *(f"component/{c}" for c in components)]


@FAST
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_output_is_readings_or_one_source_error(out):
    for fmt, extra in (("json", {"components": ["a"]}), ("kubernetes", {"components": ["api"]}),
                       ("prometheus", {})):
        cfg = CommandSource(name="c", kind="command", argv=["x"], format=fmt, series={"x": "/x"} if fmt !=
                            "prometheus" else {"x": "x"}, **extra)
        try:
            _well_formed(parse_output(cfg, out))
        except SourceError as e:
            assert "\n" not in str(e)


@FAST
@given(st.dictionaries(st.text(max_size=6), st.integers(), min_size=1, max_size=4), st.data())
def test_pointer_tokens_round_trip(doc, data):
    key = data.draw(st.sampled_from(sorted(doc)))
    nested = {"a": [{key: doc[key]}]}
    assert resolve_pointer(nested, "/a/0/" + pointer_token(key)) == doc[key]
    assert resolve_pointer(nested, "/a/1/" + pointer_token(key)) is MISSING
    assert resolve_pointer(nested, "/a/00") is MISSING


@FAST
@given(st.text(max_size=200))
def test_prometheus_rows_never_raise_past_one_error(text):
    try:
        rows = prometheus_rows(text, {"q": "queue_depth"})
    except SourceError as e:
        assert "\n" not in str(e)
        return
    _well_formed(rows)


# ---------------------------------------------------------------- config


def problems(**src) -> list[str]:
    raw = demo_raw("http://127.0.0.1:1")
    raw["sources"].append({"name": "k8s", "kind": "command", **src})
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, "cockpit.toml", {})
    for line in info.value.problems:
        assert "\n" not in line and line.startswith("cockpit.toml: sources[3]")
    return info.value.problems


@pytest.mark.parametrize("src, expected", [
    ({"argv": []}, "sources[3].argv: list should have at least 1 item"),
    ({"argv": ["", "x"], "components": ["a"]}, "sources[3].argv: the program (argv[0]) is empty"),
    ({"argv": ["kubectl", "env:1BAD"], "components": ["a"]},
     "sources[3].argv: [1]: 'env:1BAD' is not a valid env:NAME reference"),
    ({"argv": ["k"], "format": "yaml", "components": ["a"]},
     "sources[3].format: expected 'json', 'prometheus' or 'kubernetes', got 'yaml'"),
    ({"argv": ["k"], "series": {"ready": "status/ready"}},
     "sources[3].series.ready: 'status/ready' is not a JSON pointer: it starts with '/'"),
    ({"argv": ["k"], "series": {"ready": "/a~2b"}}, "sources[3].series.ready: '/a~2b': '~' is written ~0"),
    ({"argv": ["k"], "format": "prometheus", "components": ["a"], "series": {"q": "up"}},
     "sources[3].components: Prometheus text gives series only"),
    ({"argv": ["k"], "format": "prometheus", "series": {"q": "up{job=}"}},
     "sources[3].series.q: bad selector 'up{job=}': expected a quoted value at column 8"),
    ({"argv": ["k"], "env": {"KUBE_TOKEN": "abc"}, "components": ["a"]},
     "sources[3].env: env 'KUBE_TOKEN' looks secret: write it as \"env:NAME\""),
    ({"argv": ["k"]}, "sources[3].series: nothing to read; set series (numbers), components (rows) or both"),
    ({"argv": ["k"], "components": ["a"], "component_path": "/c"}, "sources[3].component_path: must contain {name}"),
    ({"argv": ["k"], "format": "kubernetes", "components": ["a"], "component_path": "/c/{name}"},
     "sources[3].component_path: only for format \"json\""),
    ({"argv": ["k"], "series": {"Ready": "/a"}}, "sources[3].series: series names are lower_case_with_underscores"),
    ({"argv": ["k"], "components": ["a", "a"]}, "sources[3].components: listed more than once: a"),
    ({"argv": ["k"], "components": ["a"], "max_output": 10}, "sources[3].max_output: input should be greater"),
    ({"argv": "kubectl get deploy", "components": ["a"]}, "sources[3].argv: expected a list"),
    ({"argv": ["k"], "components": ["a"], "shell": True}, "sources[3].shell: unknown key"),
])
def test_config_errors_are_one_line_naming_the_place(src, expected):
    lines = problems(**src)
    assert len(lines) == 1 and lines[0].startswith(f"cockpit.toml: {expected}"), lines


# ---------------------------------------------------------------- the macro-ai example


def test_macro_ai_example_polls_kubectl_for_deployment_rows_and_changes(cluster):
    config = load_config(EXAMPLES / "macro-ai.toml", environ={})
    cfg = config.source("k8s")
    assert cfg.kind == "command" and cfg.argv[0] == "kubectl" and "k8s" in config.panels.component_sources
    assert "macro-ai-api" in config.action("r").components
    cluster.deploy("macro-ai-api", replicas=3, revision=12, images=["registry.macro-ai.com/macro-ai-api:1.4.2"])
    cluster.deploy("macro-ai-ui", replicas=2, revision=5, images=["registry.macro-ai.com/macro-ai-ui:1.4.2"])
    log = cluster.path.parent / "calls"
    os.environ["FAKE_KUBECTL_LOG"] = str(log)
    try:
        src = Command(cfg, SourceContext())
        result = asyncio.run(check_one(src, cfg.critical))  # what `cockpit check` says of it
        assert result.ok and result.text.startswith("2/2 healthy"), result.text
        cluster.deploy("macro-ai-api", revision=13, images=["registry.macro-ai.com/macro-ai-api:1.5.0"],
                       available=0, change_cause="kubectl set image deployment/macro-ai-api api=...:1.5.0")
        got = poll(src)
    finally:
        del os.environ["FAKE_KUBECTL_LOG"]
    assert got["component/macro-ai-api"].state == "unhealthy" and got["component/macro-ai-ui"].state == "healthy"
    change = got[f"{CHANGE_PREFIX}macro-ai-api deployment"]
    assert change.state == "revision 13 · image registry.macro-ai.com/macro-ai-api:1.5.0"
    assert json.loads(log.read_text().splitlines()[0]) == cfg.argv[1:]
    # kubectl unreachable: the rows say why
    cluster.fail("Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout")
    readings = failed_poll(src)
    assert {r.series for r in readings} == {"component/macro-ai-api", "component/macro-ai-ui"}
    assert readings[0].error == "exit 1: Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout"


def test_a_rollout_seen_by_kubectl_is_one_change_on_the_timeline(cluster):
    """End to end with the cockpit's watcher: the first poll is the baseline, a new revision
    is one change event (from → to, by whom), the same revision again is none."""
    from cockpit.signals.watch import SignalWatch

    config = load_config(EXAMPLES / "macro-ai.toml", environ={})
    watch = SignalWatch(config)
    src = Command(config.source("k8s"), SourceContext())
    cluster.deploy("macro-ai-api", replicas=3, revision=12, images=["registry.macro-ai.com/macro-ai-api:1.4.2"])
    cluster.deploy("macro-ai-ui", replicas=2, revision=5, images=["registry.macro-ai.com/macro-ai-ui:1.4.2"])
    assert [e for e in watch.take(asyncio.run(src.poll())).alerts if e.kind == "change"] == []
    cluster.deploy("macro-ai-api", revision=13, images=["registry.macro-ai.com/macro-ai-api:1.5.0"],
                   change_cause="ci-bot: deploy 812")
    changes = [e for e in watch.take(asyncio.run(src.poll())).alerts if e.kind == "change"]
    assert [e.text for e in changes] == [
        "macro-ai-api deployment revision 12 · image registry.macro-ai.com/macro-ai-api:1.4.2 → "
        "revision 13 · image registry.macro-ai.com/macro-ai-api:1.5.0 (ci-bot: deploy 812)"]
    assert [e for e in watch.take(asyncio.run(src.poll())).alerts if e.kind == "change"] == []
