"""Changes (issue 18): a deploy, a configuration edit or an action is a timeline event of
its own kind (◆), journaled with the incident, marked on the sparklines and listed in the
postmortem's trigger section. From the simulator's build_info (the demo), a deploy log over
HTTP (`changes`), AWS (ECS task definitions and rollouts, Lambda configuration and aliases
through moto) and Prometheus (`prom_query` with `changes`)."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile

import boto3
import pytest
from apphelpers import frozen_demo, prefilled_app
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.clock import SystemClock
from cockpit.config import config_from_dict
from cockpit.drill.demo import demo_raw
from cockpit.incident.journal import SQLiteJournal
from cockpit.model import Reading, Status
from cockpit.signals.evaluator import ChangeTracker
from cockpit.signals.sources import SourceContext, SourceError, build_source
from cockpit.signals.sources._changes import build_versions
from cockpit.signals.sources.changes import entries
from cockpit.signals.views import change_marks
from screens.sparkline import sparkline


def change(state: str, ts: float, since: float | None = None, by: str = "", where: str = "api version") -> Reading:
    return Reading("src", f"change/{where}", ts, since, state=state, detail=by)


# ---------------------------------------------------------------- the tracker


def test_a_new_state_is_a_change_and_the_same_state_is_not():
    t = ChangeTracker(window=600)
    assert t.update(change("v1", 100.0)) is None, "the first state seen is the baseline"
    assert t.update(change("v1", 101.0)) is None
    ev = t.update(change("v2", 102.0, by="by ci"))
    assert ev is not None and ev.kind == "change" and ev.ts == 102.0
    assert ev.text == "api version v1 → v2 (by ci)"
    assert ev.payload == {"where": "api version", "from": "v1", "to": "v2", "by": "by ci", "source": "src",
                          "since": None, "after": 101.0}, "seen by polling: it changed after the last look"
    assert t.update(change("v2", 103.0)) is None


def test_a_log_said_again_is_not_news_but_a_rollback_is():
    t = ChangeTracker(window=600)
    poll = [change("v1", 1000.0, since=900.0), change("v2", 1000.0, since=950.0)]
    told = [t.update(r) for r in poll]
    assert [e.text if e else None for e in told] == ["api version now v1", "api version v1 → v2"]
    assert [e.ts for e in told] == [900.0, 950.0], "stamped when it happened"
    assert [t.update(r) for r in poll] == [None, None], "the same log read again"
    back = t.update(change("v1", 1010.0, since=1005.0))
    assert back is not None and back.text == "api version v2 → v1"


def test_a_first_change_older_than_the_window_is_only_the_baseline():
    t = ChangeTracker(window=600)
    assert t.update(change("v7", 10_000.0, since=10_000.0 - 601)) is None
    assert t.update(change("v8", 10_001.0, since=10_000.5)).text == "api version v7 → v8"


def test_a_change_stamped_in_the_future_is_stamped_when_seen():
    t = ChangeTracker(window=600)
    t.update(change("v1", 100.0))
    assert t.update(change("v2", 200.0, since=9e9)).ts == 200.0


def test_failed_or_empty_readings_say_no_change():
    t = ChangeTracker()
    t.update(change("v1", 1.0))
    assert t.update(Reading("src", "change/api version", 2.0, None, Status.ERROR, "boom")) is None
    assert t.update(change("", 3.0)) is None
    assert t.update(change("v2", 4.0)).payload["from"] == "v1"


# ---------------------------------------------------------------- parsers


def test_deploy_log_entries_in_time_order_with_who_and_what():
    doc = {"deployments": [
        {"service": "checkout", "version": "v1.5.0", "at": "2026-12-02T03:00:20Z", "author": {"name": "ci-bot"},
         "description": "deploy 812"},
        {"service": "checkout", "version": "v1.4.2", "at": 1796180000},
        {"service": "", "version": "x"},  # no where: skipped
        "not an entry",
    ]}
    got = entries(doc)
    assert [(e.where, e.to, e.by) for e in got] == [("checkout", "v1.4.2", ""),
                                                     ("checkout", "v1.5.0", "by ci-bot · deploy 812")]
    assert got[1].at == pytest.approx(1796180420.0)
    assert entries([{"app": "a", "sha": "abc", "time": 1796180000000}], fields={"where": "app", "to": "sha"})[0].at \
        == pytest.approx(1796180000.0), "milliseconds since the epoch"
    with pytest.raises(SourceError, match="no list of entries"):
        entries({"status": "ok"})


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=6), max_leaves=30)
_entry = st.fixed_dictionaries({}, optional={k: _json | st.text(max_size=30) | st.integers()
                                             for k in ("service", "version", "at", "time", "by", "author",
                                                       "description", "where", "to")})


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, st.lists(_entry, max_size=12), st.fixed_dictionaries({"changes": st.lists(_entry)})),
       st.integers(1, 20))
def test_any_json_is_entries_or_one_source_error(doc, limit):
    try:
        got = entries(doc, limit=limit)
    except SourceError as e:
        assert "not a deploy log" in str(e)
        return
    assert len(got) <= limit
    assert all(e.where and e.to and len(e.where) <= 80 and len(e.to) <= 120 for e in got)
    timed = [e.at for e in got if e.at is not None]
    assert timed == sorted(timed)
    assert all(e.at is None for e in got[len(timed):]), "untimed entries come after the timed ones"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=30), st.dictionaries(
    st.sampled_from(["version", "revision", "instance", "job", "tag", "other"]), st.text(max_size=20), max_size=5)),
    max_size=8))
def test_build_versions_never_fail_and_name_each_thing_once(series):
    got = build_versions(series)
    wheres = [w for w, _ in got]
    assert wheres == sorted(set(wheres))
    assert all(w.endswith("version") and now for w, now in got)


def test_build_info_of_one_program_and_of_copies_told_apart():
    assert build_versions([("checkout_build_info", {"version": "v1.5.0", "revision": "3f2a9c1d0e9f8a7b"})]) == \
        [("checkout version", "v1.5.0 (rev 3f2a9c1d0e9f)")]
    assert build_versions([("api_build_info", {"version": "v2", "instance": "a:80"}),
                           ("api_build_info", {"version": "v1", "instance": "b:80"})]) == \
        [("api a:80 version", "v2"), ("api b:80 version", "v1")]
    assert build_versions([("api_build_info", {"goversion": "go1.22"})]) == [], "no version label: no change"


# ---------------------------------------------------------------- sparkline marks


def test_a_change_marks_the_first_sample_at_or_after_it():
    times = [10.0, 11.0, 12.0, 13.0]
    assert change_marks(times, [11.5, 13.0, 9.0, 14.0]) == frozenset({2, 3})
    rows = sparkline([1.0, 2.0, 3.0, 4.0], 6, height=2, marks={2})
    assert [r.plain for r in rows] == ["    ◆█", "  ▄███"], "the ◆ over the marked column; the value below"


# ---------------------------------------------------------------- the demo, end to end


def test_the_demo_shows_its_deploy_as_a_change_journaled_and_in_the_trigger_section(tmp_path):
    server, clock = frozen_demo(seed=7, fault_at=20.0)
    try:
        journal = SQLiteJournal(tmp_path / "j.db")
        app = asyncio.run(prefilled_app(server, clock, seconds=45, journal=journal))
        lines = [ev for ev in app.events if ev.kind == "change"]
        assert [ev.text for ev in lines] == ["checkout version v1.4.2 → v1.5.0"]
        assert 19.0 <= lines[0].ts - server.sim.started <= 22.0
        st_ = app.desk.state()
        assert st_ is not None and st_.open, "the bad deploy declares an incident"
        journaled = [e for e in journal.events(st_.id) if e.kind == "change_seen"]
        assert [(e.payload["from"], e.payload["to"]) for e in journaled] == [("v1.4.2", "v1.5.0")]
        first = min(e.ts for e in st_.events if e.kind == "alert_raised")
        assert journaled[0].ts < first, "the deploy came before the first symptom"
        # the rollback (r) is a change too: the version goes back, seen and journaled once
        server.sim.admin("rollback", {})
        from test_record import _poll_on

        asyncio.run(_poll_on(app, server, clock, 5))
        assert [ev.text for ev in app.events if ev.kind == "change"][-1] == "checkout version v1.5.0 → v1.4.2"
        text = app.desk.export_markdown(clock.now())
    finally:
        server.stop()
    trigger = text.split("## Trigger / what changed", 1)[1].split("\n## ", 1)[0]
    assert "◆ checkout version v1.4.2 → v1.5.0" in trigger
    import re

    said = re.search(r"^- (\d\d:\d\d:\d\d) \((.+?); it changed between (\d\d:\d\d:\d\d) and then \(seen by "
                     r"polling\)\) ◆ checkout version v1\.4\.2 → v1\.5\.0$", trigger, re.M)
    assert said is not None, trigger
    assert said.group(3) <= said.group(1) and (said.group(2).endswith(" before") or
                                               said.group(2) == "seen just after the first symptom")
    assert "v1.5.0 → v1.4.2" not in trigger, "only what came before the first symptom"
    assert "◆ checkout version v1.5.0 → v1.4.2" in text.split("## Timeline", 1)[1]
    # one journaled copy per change, however often it was polled
    assert len([e for e in journal.events(st_.id) if e.kind == "change_seen"]) == 2


def test_two_cockpits_journal_one_change_once(tmp_path):
    from cockpit.clock import ManualClock
    from cockpit.incident.desk import IncidentDesk
    from cockpit.model import Level, TimelineEvent

    path = tmp_path / "j.db"
    clock = ManualClock()
    desks = [IncidentDesk(SQLiteJournal(path, actor=who), clock, who, "checkout") for who in ("alice", "bob")]
    desks[0].declare("checkout 5xx")
    desks[1].follow()
    inc = desks[0].current
    assert desks[1].current == inc
    ev = TimelineEvent(clock.now(), "change", "checkout version v1.4.2 → v1.5.0", Level.OK, "checkout version",
                       {"where": "checkout version", "from": "v1.4.2", "to": "v1.5.0", "by": "", "source": "metrics",
                        "since": None})
    for d in desks:
        d.from_poll([ev])
        d.follow()
    assert len([e for e in SQLiteJournal(path).events(inc) if e.kind == "change_seen"]) == 1


# ---------------------------------------------------------------- sources


def _source(raw_source: dict, moto_url: str | None = None):
    raw = demo_raw("http://127.0.0.1:9")
    if moto_url:
        raw["aws"] = {"endpoint_url": moto_url, "region": "us-east-1", "max_attempts": 1}
    raw["sources"].append(raw_source)
    config = config_from_dict(raw, "<t>", {})
    ctx = SourceContext(SystemClock())
    return build_source(config.source(raw_source["name"]), ctx), ctx, config


async def test_a_deploy_log_over_http_is_told_once_per_change(fault_server):
    log = [{"service": "checkout", "version": "v1.4.2", "at": 1796180000, "by": "alice"}]
    fault_server.respond_json("/deploys", {"deploys": log})
    src, ctx, config = _source({"name": "deploys", "kind": "changes", "url": fault_server.url("/deploys")})
    from cockpit.signals.watch import SignalWatch

    watch = SignalWatch(config)
    try:
        first = await src.poll()
        assert [(r.series, r.state, r.value, r.detail) for r in first] == \
            [("change/checkout", "v1.4.2", 1796180000.0, "by alice")]
        watch.take(first)
        log.append({"service": "checkout", "version": "v1.5.0", "at": 1796180100, "by": "ci\x1b[31m-bot",
                    "description": "deploy 812"})
        fault_server.respond_json("/deploys", {"deploys": log})
        told = watch.take(await src.poll()).alerts
        # an escape from the log is made visible, never sent to the terminal
        assert [e.text for e in told] == ["checkout v1.4.2 → v1.5.0 (by ci␛[31m-bot · deploy 812)"]
        assert watch.take(await src.poll()).alerts == [], "the same log again"
        fault_server.respond("/deploys", "<html>oops</html>")
        with pytest.raises(SourceError, match="not JSON"):
            await src.poll()
    finally:
        await ctx.aclose()


async def test_ecs_task_definition_and_rollout_and_lambda_configuration_are_changes(moto_url):
    c = {s: boto3.client(s, endpoint_url=moto_url, region_name="us-east-1") for s in ("lambda", "iam", "ecs")}
    role = c["iam"].create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("h.py", "def h(e, c):\n    return 1\n")
    c["lambda"].create_function(FunctionName="ai-core", Runtime="python3.11", Role=role, Handler="h.h",
                                Code={"ZipFile": code.getvalue()}, Environment={"Variables": {"API_KEY": "s3cret"}},
                                Publish=True)
    c["lambda"].create_alias(FunctionName="ai-core", Name="live", FunctionVersion="1")
    c["ecs"].create_cluster(clusterName="prod")
    for _ in range(2):
        c["ecs"].register_task_definition(family="api", containerDefinitions=[{"name": "a", "image": "x", "memory": 64}])
    c["ecs"].create_service(cluster="prod", serviceName="api", taskDefinition="api:1", desiredCount=1)
    src, ctx, config = _source({"name": "aws", "kind": "aws_status", "checks": [
        {"name": "api", "type": "ecs_service", "cluster": "prod", "service": "api"},
        {"name": "ai-core", "type": "lambda", "function": "ai-core", "alias": "live"}]}, moto_url)
    from cockpit.signals.watch import SignalWatch

    watch = SignalWatch(config)
    try:
        before = {r.series: r.state for r in await src.poll() if r.series.startswith("change/")}
        assert before["change/api task definition"] == "api:1"
        assert before["change/ai-core alias live"] == "version 1"
        assert "s3cret" not in json.dumps(before) and "EMERGENCY_MODE=off" in before["change/ai-core configuration"]
        watch.take(await src.poll())
        c["ecs"].update_service(cluster="prod", service="api", taskDefinition="api:2", forceNewDeployment=True)
        c["lambda"].update_function_configuration(FunctionName="ai-core",
                                                  Environment={"Variables": {"API_KEY": "n3w-s3cret",
                                                                             "EMERGENCY_MODE": "true"}})
        c["lambda"].publish_version(FunctionName="ai-core")
        c["lambda"].update_alias(FunctionName="ai-core", Name="live", FunctionVersion="2")
        told = {e.signal: e for e in watch.take(await src.poll()).alerts if e.kind == "change"}
    finally:
        await ctx.aclose()
    assert told["api task definition"].text.startswith("api task definition api:1 → api:2 (deployment ")
    assert told["ai-core alias live"].text == "ai-core alias live version 1 → version 2"
    conf = told["ai-core configuration"]
    assert "EMERGENCY_MODE=off" in conf.payload["from"] and "EMERGENCY_MODE=on" in conf.payload["to"]
    assert "n3w-s3cret" not in conf.text and "s3cret" not in conf.text, "other variables only as a digest"


async def test_prom_query_changes_read_build_info_from_prometheus(prometheus):
    src, ctx, _ = _source({"name": "prom", "kind": "prom_query", "url": prometheus, "backfill": 0,
                           "queries": {"up": "sum(up)"}, "changes": '{__name__=~".+_build_info"}'})
    try:
        got = {r.series: r.state for r in await src.poll() if r.series.startswith("change/")}
    finally:
        await ctx.aclose()
    assert got == {"change/checkout version": "v1.5.0"}


def test_a_rollback_names_the_change_it_reverts():
    from actions.model import Plan, reverted_change
    from cockpit.model import Level, TimelineEvent

    def plan(action: str, kind: str, target: str) -> Plan:
        return Plan(action, "r", kind, target, (), {}, {}, True, (), "", "confirm")

    def seen(where: str, text: str, ts: float) -> TimelineEvent:
        return TimelineEvent(ts, "change", text, Level.OK, where, {"where": where})

    deploy = seen("checkout version", "checkout version v1.4.2 → v1.5.0", 1000.0)
    other = seen("billing task definition", "billing task definition billing:4 → billing:5", 1100.0)
    said = reverted_change(plan("Rollback", "http", "checkout-api"), ["api"], [deploy, other], 1180.0)
    assert said.startswith("checkout version v1.4.2 → v1.5.0 at ") and said.endswith("(00:03:00 ago)")
    assert reverted_change(plan("Roll back api", "ecs_rollback", "api"), [], [other], 1180.0).startswith(
        "no change seen on api; the newest change seen: billing task definition")
    assert reverted_change(plan("Rollback", "lambda_rollback", "fn"), [], [], 0.0) == \
        "no change seen: check what this rolls back to"
    assert reverted_change(plan("Emergency mode", "http", "checkout-api"), [], [deploy], 1180.0) == ""
    assert reverted_change(plan("undo Rollback", "http", "checkout-api"), [], [deploy], 1180.0) == ""


def test_an_ecs_deployment_starting_and_finishing_are_changes(monkeypatch):
    """moto never finishes a rollout (its deployments stay IN_PROGRESS), so the two answers
    ECS gives as a deployment starts and completes are stubbed on a real boto3 client."""
    from datetime import datetime, timezone

    from botocore.stub import Stubber

    from cockpit import aws
    from cockpit.signals.sources import aws_status

    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    created = datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc)
    for rollout, updated in (("IN_PROGRESS", created), ("COMPLETED", datetime(2026, 12, 2, 3, 4, tzinfo=timezone.utc))):
        stub.add_response("describe_services", {"services": [{
            "serviceName": "api", "status": "ACTIVE", "desiredCount": 2, "runningCount": 2, "pendingCount": 0,
            "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/api:42",
            "deployments": [{"id": "ecs-svc/77", "status": "PRIMARY", "taskDefinition": "api:42",
                             "rolloutState": rollout, "createdAt": created, "updatedAt": updated}]}]})
    monkeypatch.setattr(aws, "client", lambda service, settings: client)
    check = aws_status.AwsCheck(name="api", type="ecs_service", cluster="prod", service="api")
    tracker = ChangeTracker(window=10 ** 9)
    told = []
    with stub:
        for _ in range(2):
            _, _, changed = aws_status._ecs(check, None)
            for where, now, since, by in changed:
                ev = tracker.update(Reading("aws", f"change/{where}", 1796184000.0, since, state=now, detail=by))
                told += [ev.text] if ev else []
    assert told == ["api task definition now api:42 (deployment 77)", "api deployment now 77 IN_PROGRESS",
                    "api deployment 77 IN_PROGRESS → 77 COMPLETED"]


def test_a_change_seen_by_the_poll_after_the_first_symptom_is_still_its_trigger():
    """The demo's deploy and its first symptom land in one second: the health check may see
    the symptom before the scrape sees the new version. It changed after the last look that
    saw the old one, so it counts as before the symptom (said so), a later change does not."""
    from cockpit.incident.journal import Event
    from cockpit.incident.postmortem import actions, changes_before, to_markdown
    from cockpit.incident.state import fold

    def ev(i: int, ts: float, kind: str, payload: dict) -> Event:
        return Event(f"e{i}", "INC-1", ts, "cockpit", kind, payload)

    events = [ev(1, 100.0, "incident_declared", {"title": "5xx", "service": "checkout"}),
              ev(2, 20.2, "alert_raised", {"signal": "health", "level": "WARN", "text": "health up → degraded"}),
              ev(3, 20.6, "change_seen", {"text": "checkout version v1.4.2 → v1.5.0", "where": "checkout version",
                                          "after": 19.6}),
              ev(4, 50.0, "change_seen", {"text": "checkout version v1.5.0 → v1.4.2", "where": "checkout version",
                                          "after": 49.0})]
    st_ = fold("INC-1", events)
    assert [c["text"] for c in changes_before(st_, 20.2, actions(st_.events))] == ["checkout version v1.4.2 → v1.5.0"]
    text = to_markdown(st_, 200.0)
    assert ("(seen just after the first symptom; it changed between 00:00:19 and then (seen by polling)) "
            "◆ checkout version v1.4.2 → v1.5.0") in text


def test_times_from_outside_answers_need_their_zone():
    from datetime import datetime, timezone

    from cockpit.signals.sources._changes import epoch_of

    assert epoch_of("2026-12-02T03:04:05.000+0000") == epoch_of("2026-12-02T03:04:05Z") == 1796180645.0  # Lambda
    assert epoch_of(datetime(2026, 12, 2, 3, 4, 5, tzinfo=timezone.utc)) == 1796180645.0  # boto3
    assert epoch_of(1796180645000) == 1796180645.0  # milliseconds
    assert epoch_of("2026-12-02T03:04:05") is None and epoch_of(datetime(2026, 12, 2)) is None, "whose clock?"
    assert epoch_of(True) is None and epoch_of("soon") is None and epoch_of(float("nan")) is None


def _flip(clock, after: float, to: str, was: str):
    from cockpit.model import Level, TimelineEvent

    return TimelineEvent(clock.now(), "change", f"checkout version {was} → {to}", Level.OK, "checkout version",
                         {"where": "checkout version", "from": was, "to": to, "by": "", "source": "metrics",
                          "since": None, "after": after})


def test_a_roll_forward_again_after_a_rollback_is_a_change_of_its_own(tmp_path):
    """v1 → v2, back to v1, and v2 again: three changes on the record, not two (the same
    from → to a second time, seen by polling with no time from the source, once shared
    one id with the first and vanished from the timeline and the postmortem). Two
    cockpits that saw each flip, polling at other moments, still write each flip once."""
    from cockpit.clock import ManualClock
    from cockpit.incident.desk import IncidentDesk

    path = tmp_path / "j.db"
    clock = ManualClock(start=1_800_000_000.0)
    desks = [IncidentDesk(SQLiteJournal(path, actor=who), clock, who, "checkout") for who in ("alice", "bob")]
    desks[0].declare("checkout 5xx")
    desks[1].follow()
    inc = desks[0].current
    for was, to in (("v1", "v2"), ("v2", "v1"), ("v1", "v2")):
        looked = clock.now()
        clock.advance(7)  # the flip happens in here; alice sees it at once, bob a second later
        for d in desks:
            d.from_poll([_flip(clock, looked + (d is desks[1]) * 0.5, to, was)])
            clock.advance(1)
        for d in desks:
            d.follow()
        clock.advance(30)
    seen = [e for e in SQLiteJournal(path).events(inc) if e.kind == "change_seen"]
    assert [(e.payload["from"], e.payload["to"]) for e in seen] == [("v1", "v2"), ("v2", "v1"), ("v1", "v2")]
    st = desks[1].state()
    assert [e.payload["to"] for e in st.events if e.kind == "change_seen"] == ["v2", "v1", "v2"]
