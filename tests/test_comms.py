"""Status update drafts and the Slack webhook sender against a real loopback server."""

from __future__ import annotations

import time

import httpx
import pytest

from cockpit.clock import ManualClock
from cockpit.comms import draft, send_slack
from cockpit.incident import Incidents
from cockpit.journal import SQLiteJournal


@pytest.fixture
def incident(tmp_path):
    clock = ManualClock(1_767_225_600.0)
    j = SQLiteJournal(tmp_path / "j.db", clock=clock, actor="alice")
    inc = Incidents(j, clock)
    inc_id = inc.declare("checkout 5xx")
    inc.set_severity(inc_id, "P1", "error rate 21%")
    inc.note(inc_id, "rolling back v1.5.0")
    yield inc, inc_id, clock
    j.close()


def test_started_and_resolved_drafts_follow_the_seed_template(incident):
    inc, inc_id, clock = incident
    clock.advance(300)
    text = draft(inc.state(inc_id), clock.now(), "production", ["error rate 21.9%", "p95 2.07s"],
                 clock.now() + 900)
    assert text.startswith("🔴 INCIDENT: checkout 5xx")
    assert "Time: 2026-01-01 00:05 UTC (T+00:05:00)" in text
    for part in ("Environment: production", "Severity: P1", "Status: declared", "- error rate 21.9%",
                 "- rolling back v1.5.0", "Next update: 00:20 UTC"):
        assert part in text
    inc.journal.append(inc_id, "communication_sent", {"channel": "slack", "summary": "started"})
    assert draft(inc.state(inc_id), clock.now(), "production", [], None).startswith("🟡 UPDATE")
    clock.advance(600)
    inc.set_status(inc_id, "resolved")
    text = draft(inc.state(inc_id), clock.now(), "production", [], None)
    assert text.startswith("🟢 RESOLVED") and "Duration: 00:15:00" in text and "Root cause:" in text


async def test_slack_webhook_waits_out_429_then_succeeds(fault_server):
    from conftest import Respond

    fault_server.set("/hook", [Respond(429, "slow down", "text/plain", 0.0, {"Retry-After": "1"}),
                               Respond(200, "ok", "text/plain")])
    async with httpx.AsyncClient() as client:
        t0 = time.monotonic()
        result = await send_slack(client, fault_server.url("/hook"), "🔴 INCIDENT: x")
        waited = time.monotonic() - t0
    assert result.ok and result.attempts == 2
    assert waited >= 0.9  # honoured Retry-After
    assert fault_server.count("/hook") == 2


async def test_slack_webhook_failure_is_one_line(fault_server, closed_port):
    fault_server.respond("/hook", "invalid_payload", status=400)
    async with httpx.AsyncClient() as client:
        bad = await send_slack(client, fault_server.url("/hook"), "x")
        refused = await send_slack(client, f"http://127.0.0.1:{closed_port}/hook", "x")
    assert not bad.ok and bad.detail == "HTTP 400: invalid_payload"
    assert not refused.ok and refused.detail == "connection refused"


async def test_u_drafts_edits_sends_and_journals_without_the_url(fault_server, tmp_path, monkeypatch):
    from apphelpers import wait_for
    from conftest import Respond

    from cockpit.app import CockpitApp
    from cockpit.config import config_from_dict
    from cockpit.demo import demo_raw
    from cockpit.simulator import Simulator, SimulatorServer
    from screens.prompt import UpdateEditor

    fault_server.set("/hook", [Respond(429, "slow", "text/plain", 0.0, {"Retry-After": "0.2"}),
                               Respond(200, "ok", "text/plain")])
    monkeypatch.setenv("TEST_SLACK_HOOK", fault_server.url("/hook"))
    server = SimulatorServer(Simulator(seed=2, faults=())).start()
    try:
        raw = demo_raw(server.url)
        raw["incident"] = {"slack_webhook": "env:TEST_SLACK_HOOK", "update_every": {"P1": 900}}
        journal = SQLiteJournal(tmp_path / "j.db")
        app = CockpitApp(config_from_dict(raw, "<test>", {}), mode="LIVE", journal=journal)
        async with app.run_test(size=(120, 40)) as pilot:
            app.desk_do(app.desk.declare, "checkout 5xx")
            app.desk_do(app.desk.set_severity, "P1", "errors")
            await app.journal_idle()
            await pilot.press("u")
            await pilot.pause()
            assert isinstance(app.screen, UpdateEditor)
            assert app.screen.query_one("TextArea").text.startswith("🔴 INCIDENT: checkout 5xx")
            await pilot.press("end", *" (edited)", "ctrl+s")
            sent = lambda: any(e.kind == "communication_sent" for e in journal.events(app.desk.current))  # noqa: E731
            await wait_for(pilot, sent, 5, "the update to be journaled")
            ev = next(e for e in journal.events(app.desk.current) if e.kind == "communication_sent")
            assert ev.payload["ok"] is True and ev.payload["channel"] == "slack"
            assert ev.payload["text"].splitlines()[0].endswith("(edited)")
            assert fault_server.count("/hook") == 2  # 429, then sent
            assert "127.0.0.1" not in str(ev.payload)  # the webhook URL is never journaled
            due = app.desk.next_update_due(app.config.incident.update_every)
            assert due == ev.ts + 900
    finally:
        server.stop()
