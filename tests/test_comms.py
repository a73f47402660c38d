"""Status update drafts and the Slack webhook sender against a real loopback server."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from cockpit.clock import ManualClock
from cockpit.incident.comms import draft, send_slack
from cockpit.incident.state import Incidents
from cockpit.incident.journal import SQLiteJournal


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
    assert text.startswith("🟢 RESOLVED") and "Duration: 15 min 0 s" in text and "Root cause:" in text


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

    from screens.app import CockpitApp
    from cockpit.config import config_from_dict
    from cockpit.drill.demo import demo_raw
    from cockpit.drill.simulator import Simulator, SimulatorServer
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


class StatuspageStandIn:
    """A loopback server speaking Statuspage's incident API (POST creates, PATCH updates),
    checking the OAuth key; answers 429 once when told to."""

    def __init__(self, key: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.key, self.requests, self.incidents, self.throttle_next = key, [], {}, False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, doc: dict, headers: dict | None = None) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                outer.requests.append((self.command, self.path, self.headers.get("Authorization"), doc))
                if self.headers.get("Authorization") != f"OAuth {outer.key}":
                    return self._answer(401, {"error": "Could not authenticate"})
                if outer.throttle_next:
                    outer.throttle_next = False
                    return self._answer(429, {"error": "rate limited"}, {"Retry-After": "0.1"})
                parts = self.path.strip("/").split("/")  # v1/pages/<page>/incidents[/<id>]
                if parts[:2] != ["v1", "pages"] or parts[3:4] != ["incidents"]:
                    return self._answer(404, {"error": "not found"})
                inc = doc["incident"]
                if self.command == "POST" and len(parts) == 4:
                    iid = f"sp{len(outer.incidents) + 1}"
                    outer.incidents[iid] = {"id": iid, "name": inc["name"], "status": inc["status"],
                                            "incident_updates": [inc["body"]]}
                    return self._answer(201, outer.incidents[iid])
                if self.command == "PATCH" and len(parts) == 5 and parts[4] in outer.incidents:
                    cur = outer.incidents[parts[4]]
                    cur["status"] = inc["status"]
                    cur["incident_updates"].append(inc["body"])
                    return self._answer(200, cur)
                return self._answer(404, {"error": "not found"})

            do_POST = do_PATCH = _handle

            def log_message(self, *a) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def test_statuspage_first_update_creates_later_ones_update(tmp_path, monkeypatch):
    from apphelpers import settle, wait_for

    from screens.app import CockpitApp
    from cockpit.config import config_from_dict
    from cockpit.drill.demo import demo_raw
    from cockpit.drill.simulator import Simulator, SimulatorServer

    page = StatuspageStandIn("sp-secret-key")
    page.throttle_next = True
    monkeypatch.setenv("TEST_SP_KEY", "sp-secret-key")
    server = SimulatorServer(Simulator(seed=2, faults=())).start()
    try:
        raw = demo_raw(server.url)
        raw["incident"] = {"statuspage": {"url": page.url, "page_id": "pg1", "api_key": "env:TEST_SP_KEY"}}
        journal = SQLiteJournal(tmp_path / "j.db")
        app = CockpitApp(config_from_dict(raw, "<test>", {}), mode="LIVE", journal=journal, poll=False)
        async with app.run_test(size=(120, 40)) as pilot:
            app.desk_do(app.desk.declare, "checkout 5xx")
            await settle(pilot)
            sent = lambda n: lambda: sum(e.kind == "communication_sent" for e in journal.events(app.desk.current)) >= n  # noqa: E731
            await pilot.press("u", "ctrl+s")
            await wait_for(pilot, sent(1), 5, "the first update")
            await pilot.press("a")
            await settle(pilot)
            await pilot.press("u", "ctrl+s")
            await wait_for(pilot, sent(2), 5, "the second update")
            await settle(pilot)
        evs = [e for e in journal.events(app.desk.current) if e.kind == "communication_sent"]
        assert [e.payload["ok"] for e in evs] == [True, True]
        assert [e.payload["external_id"] for e in evs] == ["sp1", "sp1"]
        assert "created sp1" in evs[0].payload["detail"] and "updated sp1" in evs[1].payload["detail"]
        methods = [(m, p) for m, p, _, _ in page.requests]
        assert methods == [("POST", "/v1/pages/pg1/incidents"), ("POST", "/v1/pages/pg1/incidents"),
                           ("PATCH", "/v1/pages/pg1/incidents/sp1")]  # the 429 was retried
        assert page.incidents["sp1"]["status"] == "identified"  # acknowledged -> identified
        assert page.incidents["sp1"]["name"] == "checkout 5xx"
        assert len(page.incidents) == 1 and len(page.incidents["sp1"]["incident_updates"]) == 2
        assert "sp-secret-key" not in json.dumps([e.payload for e in journal.events(app.desk.current)])
    finally:
        server.stop()
        page.close()


async def test_statuspage_wrong_key_is_one_line_and_journaled_as_failed():
    from cockpit.incident.comms import send_statuspage
    from cockpit.incident.state import IncidentState

    page = StatuspageStandIn("right")
    try:
        async with httpx.AsyncClient() as client:
            result = await send_statuspage(client, page.url, "pg1", "wrong", IncidentState("INC-1", "x"), "hello")
        assert not result.ok and result.detail.startswith("HTTP 401") and "\n" not in result.detail
        assert result.external_id is None
    finally:
        page.close()


def test_statuspage_key_must_be_a_reference():
    from cockpit.config import ConfigError, config_from_dict
    from cockpit.drill.demo import demo_raw

    raw = demo_raw("http://127.0.0.1:9")
    raw["incident"] = {"statuspage": {"page_id": "pg1", "api_key": "plain-key"}}
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, "<t>", {})
    assert "env:NAME" in "\n".join(err.value.problems) and "plain-key" not in "\n".join(err.value.problems)


def test_a_mitigated_incident_drafts_an_update_and_numbers_read_as_on_the_panels(incident):
    """Issue 17: the draft kept "🔴 INCIDENT" after mitigation, and its Impact listed
    `latency p95 0.24625` and `cost per day 62.5653`."""
    from cockpit.drill.demo import demo_config
    from cockpit.model import Reading
    from cockpit.signals.watch import SignalWatch

    inc, inc_id, clock = incident
    inc.set_status(inc_id, "mitigated")
    assert draft(inc.state(inc_id), clock.now(), "production", [], None).startswith("🟡 UPDATE: checkout 5xx")
    watch = SignalWatch(demo_config("http://127.0.0.1:9"))
    watch.take([Reading("metrics", name, clock.now(), value) for name, value in
                (("error_rate", 0.09231), ("latency_p95", 0.24625), ("cost_per_day", 62.5653))])
    shown = watch.shown()
    assert set(shown.values()) == {"9.2%", "246ms", "$63/day"}, shown
