"""The `alertmanager` source and the `alertmanager_silence` action against a real
Alertmanager (Debian's prometheus-alertmanager, started per test on loopback with no
gossip), with alerts posted to its own API; the v2 answer's parser under Hypothesis; the
config's errors."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.clock import SystemClock
from cockpit.config import ConfigError, config_from_dict
from cockpit.drill.demo import demo_raw
from cockpit.model import Level, Status, state_level
from cockpit.signals.sources import SourceContext, build_source
from cockpit.signals.sources._base import SourceError
from cockpit.signals.sources._changes import rfc3339 as parse_time
from cockpit.signals.sources.alertmanager import detail_of, parse_alerts, row_name
from conftest import iso as _iso

CRITICAL = {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"}
WARNING = {"alertname": "SlowCheckout", "service": "checkout", "severity": "warning"}
OTHER = {"alertname": "DiskFilling", "service": "search", "severity": "warning"}


def am_raw(am_url: str, base: str = "http://127.0.0.1:9", **kw) -> dict:
    """The demo config with an alertmanager source in the components table."""
    raw = demo_raw(base)
    raw["sources"].append({"name": "alerts", "kind": "alertmanager", "url": am_url, "interval": 0.5, "timeout": 2.0,
                           **kw})
    raw["panels"]["components"]["sources"].append("alerts")
    return raw


async def poll(url: str, **kw):
    """One poll (cleaned, as the poller takes it) of a new alertmanager source; the source too."""
    src, ctx = source(url, **kw)
    try:
        return await src.poll()
    finally:
        await ctx.aclose()


def source(url: str, **kw):
    raw = am_raw(url, **kw)
    # a source on its own (no timeline): an alert over may leave at once, whatever the clear hold
    raw.setdefault("settings", {})["state_clear_hold"] = min(30.0, kw.get("keep_resolved", 30.0))
    config = config_from_dict(raw, "<t>", {})
    ctx = SourceContext(SystemClock())
    return build_source(config.source("alerts"), ctx), ctx


def one_clean_line(text: str) -> bool:
    """No control character, escape, line break or bidi override left (what cleaning does)."""
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000
                   or c in "\u2028\u2029\u202e\u2066" for c in text)


def rows(readings) -> dict:
    return {r.series.removeprefix("component/"): r for r in readings if r.series.startswith("component/")}


def count(readings):
    return next(r for r in readings if r.series == "alerts")


# ---------------------------------------------------------------- the source, against Alertmanager


async def test_firing_alerts_are_rows_with_their_severity_as_the_level(alertmanager):
    alertmanager.fire(CRITICAL, "5xx at 12% on checkout")
    alertmanager.fire(WARNING, "p95 2.1s")
    readings = await poll(alertmanager.url)
    by = rows(readings)
    crit, warn = row_name(CRITICAL), row_name(WARNING)
    assert crit == 'HighErrorRate{service="checkout",severity="critical"}'
    assert set(by) == {crit, warn}
    assert by[crit].state == "critical" and state_level(by[crit].state) is Level.CRIT and by[crit].value == 0.0
    assert by[warn].state == "warning" and state_level(by[warn].state) is Level.WARN and by[warn].value == 0.5
    assert by[crit].detail.startswith("5xx at 12% on checkout · firing since ")
    started = datetime.now(timezone.utc) - timedelta(minutes=3)
    assert by[crit].detail.endswith(" UTC") and started.strftime("%H:%M") in by[crit].detail
    assert count(readings).value == 2 and count(readings).state == "up"
    assert count(readings).detail == "2 firing: 1 critical, 1 warning"


async def test_a_filter_matcher_restricts_the_rows(alertmanager):
    alertmanager.fire(CRITICAL)
    alertmanager.fire(OTHER)
    assert set(rows(await poll(alertmanager.url))) == {row_name(CRITICAL), row_name(OTHER)}
    only = await poll(alertmanager.url, filter=['service="search"'])
    assert set(rows(only)) == {row_name(OTHER)} and count(only).value == 1
    regex = await poll(alertmanager.url, filter=['severity=~"crit.*"', 'service!="search"'])
    assert set(rows(regex)) == {row_name(CRITICAL)}


async def test_a_configured_severity_mapping_and_the_unknown_level(alertmanager):
    alertmanager.fire({"alertname": "Paged", "severity": "PAGE"})
    alertmanager.fire({"alertname": "NoSeverity"})
    by = rows(await poll(alertmanager.url, severities={"page": "critical"}, unknown_severity="info"))
    assert by["Paged{severity=\"PAGE\"}"].state == "critical"
    assert by["NoSeverity"].state == "info" and state_level("info") is Level.OK


async def test_a_resolved_alert_is_told_resolved_then_no_more(alertmanager):
    src, ctx = source(alertmanager.url, keep_resolved=0.0)
    try:
        alertmanager.fire(CRITICAL)
        alertmanager.fire(WARNING)
        assert rows(await src.poll())[row_name(CRITICAL)].state == "critical"
        alertmanager.fire(CRITICAL, resolved=True)  # endsAt in the past: resolved
        second = await src.poll()
        by = rows(second)
        assert by[row_name(CRITICAL)].state == "resolved" and state_level("resolved") is Level.OK
        assert by[row_name(CRITICAL)].value == 1.0
        assert by[row_name(WARNING)].state == "warning"
        assert count(second).value == 1
        assert set(rows(await src.poll())) == {row_name(WARNING)}  # told once (keep_resolved 0)
    finally:
        await ctx.aclose()


async def test_a_silenced_alert_is_told_silenced_and_fires_again_when_the_silence_expires(alertmanager):
    src, ctx = source(alertmanager.url)
    try:
        alertmanager.fire(CRITICAL)
        assert rows(await src.poll())[row_name(CRITICAL)].state == "critical"
        now = datetime.now(timezone.utc)
        made = alertmanager.call("POST", "silences", {
            "matchers": [{"name": "alertname", "value": "HighErrorRate", "isRegex": False, "isEqual": True}],
            "startsAt": _iso(now), "endsAt": _iso(now + timedelta(hours=1)), "createdBy": "t", "comment": "t"})
        by = rows(await src.poll())
        assert by[row_name(CRITICAL)].state == "silenced" and made["silenceID"][:8] in by[row_name(CRITICAL)].detail
        alertmanager.call("DELETE", f"silence/{made['silenceID']}")
        assert rows(await src.poll())[row_name(CRITICAL)].state == "critical"
    finally:
        await ctx.aclose()


async def test_an_error_of_alertmanager_is_one_clean_line(alertmanager):
    # a matcher this config accepts and Alertmanager refuses (not a regex it can compile)
    with pytest.raises(SourceError) as e:
        await poll(alertmanager.url, filter=['alertname=~"("'])
    text = str(e.value)
    assert text.startswith("Alertmanager: HTTP 400") and "\n" not in text, text


@pytest.mark.parametrize("body, status, said", [
    (b"<html>login</html>", 200, "not an Alertmanager answer (not JSON)"),
    (b'{"status": "success", "data": []}', 200, "not an Alertmanager v2 answer (expected a list of alerts)"),
    (b'"bad matcher format: \x1b[31mevil"', 400, "Alertmanager: HTTP 400"),
    (b"oops", 503, "Alertmanager: HTTP 503"),
])
async def test_garbage_answers_are_error_readings_never_a_traceback(fault_server, body, status, said):
    from cockpit.signals.poller import Poller

    fault_server.respond("/api/v2/alerts", body, status=status, content_type="application/json")
    src, ctx = source(fault_server.url().rstrip("/"))
    got = []
    try:
        await Poller([src], lambda name, readings: got.extend(readings)).poll_once(src)
    finally:
        await ctx.aclose()
    (r,) = got
    assert r.series == "alerts" and r.status is Status.ERROR and said in r.error, r.error
    assert r.error.isprintable() and "\x1b" not in r.error and "Traceback" not in r.error


async def test_hostile_labels_make_clean_rows(alertmanager):
    evil = {"alertname": "Evil\x1b[2J\x07", "note": "a\nb" + "x" * 500, "severity": "critical"}
    alertmanager.fire(evil, "summary\x1b]8;;http://x\x07 with escapes")
    (row,) = rows(await poll(alertmanager.url)).values()
    name = row.series.removeprefix("component/")
    assert name.isprintable() and "\x1b" not in name and len(name) < 400
    assert row.detail.isprintable() and "\x1b" not in row.detail


# ---------------------------------------------------------------- the v2 answer's parser


def test_parser_takes_the_v2_shape():
    doc = [{"labels": {"alertname": "A", "severity": "critical"}, "annotations": {"summary": "s"},
            "startsAt": "2026-01-01T00:00:01.500Z", "endsAt": "2026-01-01T00:05:00+01:00",
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}, "fingerprint": "f"},
           "not an alert", {"labels": {}}, {"labels": {"alertname": "B", "n": 3}, "status": "weird"}]
    alerts, skipped = parse_alerts(doc)
    assert skipped == 2 and [a.labels for a in alerts] == [{"alertname": "A", "severity": "critical"},
                                                           {"alertname": "B"}]
    a = alerts[0]
    assert a.starts == 1767225601.5 and a.ends == 1767225600.0 + 300 - 3600 and a.state == "active"
    assert detail_of(a) == "s · firing since 00:00:01 UTC"
    assert alerts[1].state == "" and alerts[1].starts is None and detail_of(alerts[1]) == ""
    with pytest.raises(SourceError):
        parse_alerts({"data": []})


def test_times_that_are_not_rfc3339_are_none():
    assert parse_time("2026-13-01T00:00:00Z") is None
    assert parse_time("yesterday") is None and parse_time(17) is None and parse_time(None) is None
    assert parse_time("0001-01-01T00:00:00Z") is not None  # Go's zero time: a time, shown or not


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
label_sets = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=60), min_size=1, max_size=6)
alert_items = st.fixed_dictionaries(
    {"labels": label_sets | json_values},
    optional={"annotations": st.dictionaries(st.text(max_size=10), st.text(max_size=80)) | json_values,
              "startsAt": st.text(max_size=40) | json_values | st.datetimes(timezones=st.just(timezone.utc)).map(_iso),
              "endsAt": st.text(max_size=40) | json_values,
              "status": st.fixed_dictionaries({}, optional={"state": json_values, "silencedBy": json_values,
                                                            "inhibitedBy": json_values}) | json_values})


@settings(max_examples=300, deadline=None)
@given(st.lists(alert_items | json_values, max_size=8) | json_values)
def test_parser_never_fails_on_any_json(doc):
    """Any JSON: alerts, a count of what was not, or one SourceError; every row and detail
    one printable line."""
    try:
        alerts, skipped = parse_alerts(doc)
    except SourceError as e:
        assert not isinstance(doc, list) and "\n" not in str(e)
        return
    assert len(alerts) + skipped == len(doc)
    for a in alerts:
        assert a.labels and all(isinstance(k, str) and isinstance(v, str) for k, v in a.labels.items())
        assert one_clean_line(a.row) and 0 < len(a.row) <= 400
        assert a.starts is None or isinstance(a.starts, float)
        assert one_clean_line(detail_of(a))


@settings(max_examples=200, deadline=None)
@given(label_sets, label_sets)
def test_row_names_are_stable_and_tell_label_sets_apart(a, b):
    assert row_name(dict(a)) == row_name(dict(reversed(list(a.items()))))
    if a != b and "alertname" not in a and "alertname" not in b:
        # cleaned text may make two different sets look alike only through escapes: not for plain text
        if all(k.isprintable() and v.isprintable() for d in (a, b) for k, v in d.items()):
            assert row_name(a) != row_name(b)


# ---------------------------------------------------------------- config errors


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw, "cockpit.toml", {})
    return str(e.value)


@pytest.mark.parametrize("change, said", [
    ({"filter": ["service"]}, "sources[N].filter: 'service' is not a matcher"),
    ({"url": "alertmanager:9093"}, "sources[N].url: expected an http:// or https:// URL"),
    ({"severities": {"page": "fatal"}}, "sources[N].severities.page"),
    ({"keep_resolved": -1.0}, "sources[N].keep_resolved"),
    ({"severity_label": "sev-level"}, "sources[N].severity_label"),
    ({"headers": {"Authorization": "Bearer abc"}}, "looks secret"),
])
def test_source_config_errors_name_the_place(change, said):
    raw = am_raw("http://127.0.0.1:9093")
    raw["sources"][-1].update(change)
    n = len(raw["sources"]) - 1
    text = _error(raw)
    assert said.replace("[N]", f"[{n}]") in text, text
    assert len([line for line in text.splitlines() if "sources[" in line]) == 1, text


@pytest.mark.parametrize("change, said", [
    ({"min": 0}, "actions[N].min"),
    ({"min": 30, "max": 10}, "min (30) is above max (10)"),
    ({"default": 500}, "default (500) is outside min..max (5..240)"),
    ({"match_labels": ["alert name"]}, "not label names: 'alert name'"),
    ({"url": "ftp://am"}, "actions[N].url"),
])
def test_action_config_errors_name_the_place(change, said):
    raw = am_raw("http://127.0.0.1:9093")
    raw["actions"].append({"kind": "alertmanager_silence", "key": "l", "name": "silence", "target": "alertmanager",
                           "url": "http://127.0.0.1:9093", **change})
    n = len(raw["actions"]) - 1
    text = _error(raw)
    assert said.replace("[N]", f"[{n}]") in text, text


# ---------------------------------------------------------------- in the app: declare, silence, undo


@pytest.fixture
def calm_sim():
    from cockpit.drill.simulator import Simulator, SimulatorServer

    server = SimulatorServer(Simulator(seed=3, faults=())).start()
    yield server
    server.stop()


def plan_text(dialog) -> str:
    import io

    from rich.console import Console

    console = Console(width=200, file=io.StringIO(), record=True)
    console.print(dialog.query_one("#action-plan Static").content)
    return console.export_text()


def said(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_critical_alert_declares_the_incident_and_is_silenced_and_unsilenced_from_the_cockpit(
        alertmanager, calm_sim, tmp_path, monkeypatch):
    from apphelpers import settle, wait_for

    from cockpit.incident.journal import SQLiteJournal
    from screens.app import CockpitApp
    from screens.confirm import ActionConfirm

    monkeypatch.chdir(tmp_path)
    raw = am_raw(alertmanager.url, base=calm_sim.url)
    raw["actions"].append({"kind": "alertmanager_silence", "key": "l", "name": "silence alert", "target": "alertmanager",
                           "url": alertmanager.url, "effect_after": 0, "verify_timeout": 5, "min": 5, "max": 120,
                           "default": 30})
    config = config_from_dict(raw, "<t>", {})
    assert config.incident.declare_on_critical
    journal = SQLiteJournal(tmp_path / "j.db", actor="alice")
    app = CockpitApp(config, mode="LIVE", armed=True, journal=journal, actor="alice")
    crit_key, warn_key = f"alerts:component/{row_name(CRITICAL)}", f"alerts:component/{row_name(WARNING)}"
    alertmanager.fire(WARNING, "p95 2.1s")
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.screen.query_one("#components-table")
        await wait_for(pilot, lambda: warn_key in table.rows, 10, "the warning alert's row")
        assert "WARNING" in table.get_row(warn_key)[1].plain
        assert "alerts:alerts" in table.rows  # the source's own row: it answers
        await pilot.pause(1.0)
        assert app.desk.current is None  # a warning does not declare

        alertmanager.fire(CRITICAL, "5xx at 12% on checkout")
        await wait_for(pilot, lambda: app.desk.current is not None, 10, "the incident declared by the critical alert")
        inc = app.desk.current
        st = app.desk.state()
        assert "HighErrorRate" in st.title and "critical" in st.title
        await wait_for(pilot, lambda: crit_key in table.rows, 5, "the critical alert's row")
        assert "CRITICAL" in table.get_row(crit_key)[1].plain
        raised = [e for e in journal.events(inc) if e.kind == "alert_raised"]
        assert any(e.payload["level"] == "CRIT" and "HighErrorRate" in e.payload["signal"] for e in raised), raised
        # on the timeline an alert is called an alert, not a component
        assert any(e.payload["text"].startswith("alert HighErrorRate{") for e in raised), raised
        # a critical alert is the team's own page: P1 suggested, named by it (not by a warning listed first)
        await wait_for(pilot, lambda: (app.desk.state().suggestion or ("", ""))[0] == "P1", 10, "P1 suggested")
        assert app.desk.state().suggestion[1].startswith("alert HighErrorRate{"), app.desk.state().suggestion

        # the key with the source's own row highlighted: one line, nothing planned or run
        table.focus()
        table.cursor = list(table.rows).index("alerts:alerts")
        await pilot.press("l")
        await settle(pilot)
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ActionConfirm)
        assert any(m.startswith("highlight a firing alert in the components table first") for m in said(app)), said(app)

        # the critical alert's row highlighted: its plan, then run with 15 minutes
        table.cursor = list(table.rows).index(crit_key)
        assert table.highlighted == crit_key
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, ActionConfirm), 10, "the plan dialog")
        dialog = app.screen
        text = plan_text(dialog)
        assert 'matchers: alertname="HighErrorRate", service="checkout", severity="critical"' in text, text
        assert "silences 1 alert(s) firing now: " + row_name(CRITICAL) in text, text
        assert f"cockpit: incident {inc} · alice" in text and "ends at " in text and " UTC" in text, text
        dialog.query_one("#action-number").value = "15"
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(e.kind == "action_verified" for e in journal.events(inc)), 15, "verified")
        outcome = next(e for e in journal.events(inc) if e.kind == "action_outcome")
        assert outcome.payload["result"] == "ok", outcome.payload
        silence_id = outcome.payload["changed"]["silence_id"]  # journaled with the silence id
        verified = next(e for e in journal.events(inc) if e.kind == "action_verified")
        assert verified.payload["ok"] is True and silence_id in verified.payload["details"]

        # Alertmanager's own API: the silence, its comment naming the incident and the responder
        (silence,) = alertmanager.silences()
        assert silence["id"] == silence_id and silence["status"]["state"] == "active"
        assert silence["comment"] == f"cockpit: incident {inc} · alice" and silence["createdBy"] == "alice"
        assert {m["name"]: m["value"] for m in silence["matchers"]} == CRITICAL
        assert all(m["isEqual"] and not m["isRegex"] for m in silence["matchers"])
        ends = parse_time(silence["endsAt"])
        assert abs(ends - time.time() - 15 * 60) < 30
        # no longer firing: not in a poll, and the cockpit's row says silenced
        assert row_name(CRITICAL) not in rows(await poll(alertmanager.url))
        assert row_name(WARNING) in rows(await poll(alertmanager.url))
        await wait_for(pilot, lambda: app.store.latest(crit_key).state == "silenced", 5, "the row told silenced")

        # undo from the timeline: the silence expires (checked through the API), the alert fires again
        await settle(pilot)
        timeline = app.screen.query_one("#timeline-list")
        timeline.focus()
        await pilot.pause(0.2)
        timeline.highlighted = next(i for i in range(timeline.option_count)
                                    if "silence alert: OK" in str(timeline.get_option_at_index(i).prompt))
        await pilot.press("z")
        await wait_for(pilot, lambda: isinstance(app.screen, ActionConfirm), 10, "the undo dialog")
        assert silence_id in plan_text(app.screen) and "DELETE" in plan_text(app.screen)
        await pilot.press("y")
        await wait_for(pilot, lambda: sum(e.kind == "action_verified" for e in journal.events(inc)) == 2, 15,
                       "the undo verified")
        outcomes = [e for e in journal.events(inc) if e.kind == "action_outcome"]
        assert outcomes[-1].payload["result"] == "ok" and outcomes[-1].payload["changed"]["state"] == "expired"
        (silence,) = alertmanager.silences()
        assert silence["id"] == silence_id and silence["status"]["state"] == "expired"
        assert row_name(CRITICAL) in rows(await poll(alertmanager.url))
        await wait_for(pilot, lambda: app.store.latest(crit_key).state == "critical", 5, "the row firing again")


async def test_alert_rows_come_and_go_in_the_components_table(alertmanager, calm_sim, tmp_path, monkeypatch):
    """A resolved alert is told resolved (the timeline says critical → resolved), then its
    row leaves the table; firing again, it comes back. The source's own row stays."""
    from apphelpers import wait_for

    from cockpit.incident.journal import SQLiteJournal
    from screens.app import CockpitApp

    monkeypatch.chdir(tmp_path)
    raw = am_raw(alertmanager.url, base=calm_sim.url, keep_resolved=1.5, timeout=0.5)
    raw["settings"].update({"state_clear_hold": 0.5, "stale_factor": 2.0})
    raw["incident"] = {"declare_on_critical": False}
    app = CockpitApp(config_from_dict(raw, "<t>", {}), mode="LIVE", journal=SQLiteJournal(tmp_path / "j.db"))
    crit_key, warn_key = f"alerts:component/{row_name(CRITICAL)}", f"alerts:component/{row_name(WARNING)}"
    alertmanager.fire(CRITICAL)
    alertmanager.fire(WARNING)
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.screen.query_one("#components-table")
        await wait_for(pilot, lambda: {crit_key, warn_key} <= set(table.rows), 10, "both alert rows")
        table.focus()
        table.cursor = list(table.rows).index(warn_key)
        alertmanager.fire(CRITICAL, resolved=True)
        await wait_for(pilot, lambda: crit_key in table.rows and "RESOLVED" in table.get_row(crit_key)[1].plain, 5,
                       "the row told resolved")
        await wait_for(pilot, lambda: any(f"{row_name(CRITICAL)} critical → resolved" in ev.text
                                          for ev in app.events), 5, "the recovery on the timeline")
        await wait_for(pilot, lambda: crit_key not in table.rows, 10, "the resolved row gone from the table")
        assert warn_key in table.rows and "alerts:alerts" in table.rows
        assert table.highlighted == warn_key  # the cursor stays on its row
        assert app.desk.current is None  # declare_on_critical off
        alertmanager.fire(CRITICAL)
        await wait_for(pilot, lambda: crit_key in table.rows and "CRITICAL" in table.get_row(crit_key)[1].plain, 5,
                       "the row back when the alert fires again")
        assert list(table.rows)[-1] == crit_key


def silence_action(url: str, **kw):
    from cockpit import kinds

    return kinds.action_config("alertmanager_silence").model_validate(
        {"kind": "alertmanager_silence", "key": "l", "name": "silence", "target": "alertmanager", "url": url,
         "verify_timeout": 1.0, **kw})


def test_the_silence_plans_only_from_a_firing_alert_row_of_its_alertmanager(alertmanager):
    from actions import ActionError
    from actions.kinds.alertmanager_silence import NO_ROW, AlertmanagerSilenceExecutor

    ex, cfg = AlertmanagerSilenceExecutor(), silence_action(alertmanager.url, match_labels=["alertname", "service"])
    alertmanager.fire(CRITICAL)
    alertmanager.fire({**CRITICAL, "instance": "b"})
    alertmanager.fire(OTHER)
    row = {"source": "alerts", "kind": "alertmanager", "url": alertmanager.url, "row": row_name(CRITICAL),
           "incident": "INC-1", "actor": "bob"}
    for context in ({}, {**row, "row": None}, {**row, "kind": "http_components"}):
        with pytest.raises(ActionError) as e:
            ex.plan(cfg, "confirm", context=context)
        assert str(e.value) == NO_ROW
    with pytest.raises(ActionError, match="not of the Alertmanager at"):
        ex.plan(cfg, "confirm", context={**row, "url": "http://127.0.0.1:9"})
    with pytest.raises(ActionError, match="is not firing at"):
        ex.plan(cfg, "confirm", context={**row, "row": row_name(WARNING)})
    plan = ex.plan(cfg, "confirm", context=row)  # match_labels: every instance of the alert
    assert plan.notes[0] == 'matchers: alertname="HighErrorRate", service="checkout"'
    assert plan.notes[1].startswith("silences 2 alert(s) firing now: ") and row_name(OTHER) not in plan.notes[1]
    assert plan.ask["min"] == 5 and plan.ask["max"] == 240 and plan.ask["default"] == 60
    with pytest.raises(ActionError, match="must be from 5 to 240"):
        plan.with_value(241)
    with pytest.raises(ActionError, match="no silence id was journaled"):
        ex.undo(cfg, plan, "confirm", context={"changed": {}})
    with pytest.raises(ActionError, match="no silence id was journaled"):
        ex.undo(cfg, plan, "confirm", context={"changed": {"silence_id": "../../status"}})


def test_a_silence_alertmanager_refuses_or_answers_garbage_is_one_line(fault_server):
    from actions.kinds.alertmanager_silence import AlertmanagerSilenceExecutor
    from actions.model import Plan, Step

    ex, cfg = AlertmanagerSilenceExecutor(), silence_action(fault_server.url().rstrip("/"))
    matchers = [{"name": "alertname", "value": "A", "isRegex": False, "isEqual": True}]
    plan = Plan("silence", "l", "alertmanager_silence", "alertmanager",
                (Step("POST", {"matchers": matchers, "createdBy": "bob", "comment": "c"}),), {}, {}, False, (), "",
                "confirm", ask={"name": "minutes", "now": None, "min": 5, "max": 240, "default": 60}).with_value(30)
    fault_server.respond("/api/v2/silences", b'"silence invalid: \\u001b[31mno\\nmatchers"', status=400)
    out = ex.execute(cfg, plan)
    assert out.result == "failed" and out.details.startswith("Alertmanager refused the silence: HTTP 400: silence")
    assert "\x1b" not in out.details and "\n" not in out.details
    fault_server.respond("/api/v2/silences", b"<html>proxy</html>", status=200)
    out = ex.execute(cfg, plan)
    assert out.result == "unknown" and "without a silence id" in out.details
    fault_server.respond("/api/v2/silences", b'{"silenceID": "../../x"}', status=200)
    assert ex.execute(cfg, plan).result == "unknown"


def test_keep_resolved_shorter_than_the_state_clear_hold_is_one_line(write_config):
    from cockpit.config import ConfigError, load_config

    raw = demo_raw("http://127.0.0.1:9")
    raw["sources"].append({"name": "alerts", "kind": "alertmanager", "url": "http://127.0.0.1:9093",
                           "keep_resolved": 10})
    with pytest.raises(ConfigError) as err:
        load_config(write_config(raw))
    assert [p.split(": ", 1)[1] for p in err.value.problems if "keep_resolved" in p] == [
        "sources[3].keep_resolved: 10s is shorter than [settings] state_clear_hold (30s): an alert over would "
        "leave before its recovery reached the timeline; set at least 30"], err.value.problems
