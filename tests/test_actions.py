"""Action kinds against real parts (a loopback HTTP service, real programs, the local
PostgreSQL), the runner's rules, guards and the sandbox."""

from __future__ import annotations

import sys
import textwrap

import psycopg
import pytest

from actions import ActionError, ActionRunner, Plan, guard_for, real_executors, sandbox_executors
from actions.model import Outcome
from cockpit.clock import ManualClock
from cockpit.config import config_from_dict
from cockpit.drill.demo import demo_raw
from cockpit.incident.desk import IncidentDesk
from cockpit.incident.journal import JournalError, SQLiteJournal
from cockpit.drill.simulator import Fault, Simulator, SimulatorServer


def action_cfg(raw_action: dict, environment: str = "demo", production: bool = False, guards: dict | None = None):
    raw = demo_raw("http://127.0.0.1:9")
    raw["service"].update(environment=environment, production=production)
    raw["actions"] = [{"key": "k", "name": "Test action", "target": "svc", **raw_action}]
    if guards:
        raw["guards"] = {"environments": guards}
    config = config_from_dict(raw, "<t>", {})
    return config, config.actions[0]


class ListRecorder:
    """Records what the runner journals, through a real desk on a real SQLite journal."""

    def __init__(self, folder, refuse_intent: bool = False) -> None:
        self.journal = SQLiteJournal(folder / "j.db")
        self.desk = IncidentDesk(self.journal, ManualClock(), "alice", "svc")
        assert self.desk.declare("checkout 5xx") is None  # an action is recorded on an open incident
        self.refuse_intent = refuse_intent

    def intent(self, plan):
        if self.refuse_intent:
            raise JournalError("j.db: disk I/O error")
        return self.desk.action_intent(plan.to_dict())

    def outcome(self, intent, plan, outcome):
        assert self.desk.action_outcome(intent, outcome.result, outcome.details, {"undo": plan.undo}) is None

    def verified(self, intent, plan, v):
        assert self.desk.action_verified(intent, v.ok, v.details) is None

    def effect(self, intent, plan, before, after, after_s):
        assert self.desk.action_effect(intent, before, after, after_s) is None

    def done(self, plan):
        self.desk.action_done(plan.to_dict())

    def kinds(self):
        return [e.kind for e in self.journal.events(self.desk.current)] if self.desk.current else []


def runner_for(recorder, signals=None) -> ActionRunner:
    """A runner with the real executors; ``signals`` are what it reads before and after, in turn."""
    values = list(signals or [{"error_rate": 0.2}, {"error_rate": 0.004}])
    return ActionRunner(real_executors(), recorder, lambda: values.pop(0) if len(values) > 1 else values[0],
                        sleep=lambda s: None)


def run(runner: ActionRunner, cfg, guard: str = "confirm"):
    assert runner.claim(cfg.target, cfg.name) is None
    return runner.run(cfg, runner.plan(cfg, guard))


# ---------------------------------------------------------------- http, against the simulator


@pytest.fixture
def deploy_server():
    clock = ManualClock()
    server = SimulatorServer(Simulator(clock=clock, faults=(Fault("bad_deploy", at=1.0, version="v1.5.0"),))).start()
    clock.advance(30)
    yield server
    server.stop()


def test_http_rollback_plans_runs_verifies_and_journals(deploy_server, tmp_path):
    base = deploy_server.url
    _, cfg = action_cfg({"kind": "http", "url": f"{base}/admin/rollback", "state_url": f"{base}/admin/state",
                         "verify_url": f"{base}/health/component/api", "destructive": True, "effect_after": 0})
    rec = ListRecorder(tmp_path)
    runner = runner_for(rec)
    plan = runner.plan(cfg, "confirm")
    assert plan.before["state"]["version"] == "v1.5.0" and plan.destructive
    assert plan.steps[0].call == f"POST {base}/admin/rollback"
    assert runner.claim(cfg.target, cfg.name) is None
    report = runner.run(cfg, plan)
    assert report.outcome.result == "ok" and "rolled back to v1.4.2" in report.outcome.details
    assert report.outcome.changed["state"]["version"] == "v1.4.2"
    assert report.verification.ok is True
    assert rec.kinds() == ["incident_declared", "action_intent", "action_outcome", "action_verified", "action_effect"]
    events = rec.journal.events(rec.desk.current)
    assert events[-2].payload["ok"] is True
    effect = events[-1].payload
    assert effect["before"] == {"error_rate": 0.2} and effect["after"] == {"error_rate": 0.004}
    assert not runner.busy(cfg.target)


def test_http_undo_sends_the_undo_body(deploy_server, tmp_path):
    base = deploy_server.url
    _, cfg = action_cfg({"kind": "http", "url": f"{base}/admin/emergency", "body": {"on": True},
                         "undo_body": {"on": False}, "state_url": f"{base}/admin/state", "effect_after": 0})
    runner = runner_for(ListRecorder(tmp_path), signals=[{}, {}, {}, {}])
    report = run(runner, cfg)
    assert report.outcome.changed["state"]["emergency"] is True
    undo = runner.undo_plan(cfg, report.plan, "confirm")
    assert undo.action == "undo Test action" and undo.after == {"body": {"on": False}}
    # not the action's own expected effect again (issue 17)
    assert undo.expected.startswith("Test action reversed: what it changed is put back") \
        and undo.expected != report.plan.expected
    assert undo.before["state"]["emergency"] is True  # read again, now
    assert runner.claim(cfg.target, cfg.name) is None
    assert runner.run(cfg, undo).outcome.changed["state"]["emergency"] is False


def test_http_failures_are_one_line_and_journaled_failed(fault_server, closed_port, tmp_path):
    fault_server.respond("/flag", "feature service down", status=503)
    for i, (url, says) in enumerate(((fault_server.url("/flag"), "HTTP 503: feature service down"),
                                     (f"http://127.0.0.1:{closed_port}/flag", "connection refused"))):
        _, cfg = action_cfg({"kind": "http", "url": url, "effect_after": 0})
        rec = ListRecorder(tmp_path / str(i))
        report = run(runner_for(rec), cfg)
        assert report.outcome.result == "failed" and report.outcome.details == says
        assert report.verification.ok is None  # a failed action is not verified
        outcome = [e for e in rec.journal.events(rec.desk.current) if e.kind == "action_outcome"][0]
        assert outcome.payload["result"] == "failed"


def test_a_refused_intent_means_the_action_never_runs(tmp_path):
    marker = tmp_path / "ran"
    _, cfg = action_cfg({"kind": "command", "argv": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]})
    runner = runner_for(ListRecorder(tmp_path, refuse_intent=True))
    assert runner.claim(cfg.target, cfg.name) is None
    with pytest.raises(ActionError, match="NOT RUN"):
        runner.run(cfg, runner.plan(cfg, "confirm"))
    assert not marker.exists()
    assert not runner.busy(cfg.target)


def test_one_action_per_target(tmp_path):
    _, cfg = action_cfg({"kind": "command", "argv": ["true"]})
    runner = runner_for(ListRecorder(tmp_path))
    assert runner.claim("svc", "Rollback") is None
    assert runner.claim("svc", "Scale") == "Rollback is already running on svc; wait for its outcome"
    assert runner.claim("other", "Scale") is None
    runner.release("svc")
    assert runner.claim("svc", "Scale") is None


# ---------------------------------------------------------------- command, real programs


def script(tmp_path, body: str) -> str:
    path = tmp_path / "runbook.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_command_runs_without_a_shell_and_keeps_its_output(tmp_path):
    path = script(tmp_path, """
        import os, sys
        print("rolled back deployment/api to", sys.argv[1], "token set:", bool(os.environ.get("DEPLOY_TOKEN")))
    """)
    _, cfg = action_cfg({"kind": "command", "argv": [sys.executable, path, "v1.4.2; rm -rf /"],
                         "env": {"DEPLOY_TOKEN": "env:TEST_DEPLOY_TOKEN"}, "undo_argv": [sys.executable, path, "v1.5.0"],
                         "verify_argv": [sys.executable, "-c", "pass"], "effect_after": 0})
    import os

    os.environ["TEST_DEPLOY_TOKEN"] = "s3cret"
    try:
        rec = ListRecorder(tmp_path)
        report = run(runner_for(rec), cfg)
    finally:
        del os.environ["TEST_DEPLOY_TOKEN"]
    assert report.outcome.result == "ok"
    assert report.outcome.details == "exit 0: rolled back deployment/api to v1.4.2; rm -rf / token set: True"
    assert report.verification.ok is True
    assert report.plan.undo == {"argv": [sys.executable, path, "v1.5.0"]}
    journaled = str([e.payload for e in rec.journal.events(rec.desk.current)])
    assert "s3cret" not in journaled and "env:TEST_DEPLOY_TOKEN" in journaled


@pytest.mark.parametrize("argv, result, says", [
    ([sys.executable, "-c", "import sys; print('no such deployment'); sys.exit(3)"], "failed",
     "exit 3: no such deployment"),
    (["/nonexistent/kubectl", "rollout", "undo"], "failed", "program not found: /nonexistent/kubectl"),
    ([sys.executable, "-c", "import time; print('applying', flush=True); time.sleep(30)"], "unknown",
     "still running after 1s and was killed; the target may be half-changed"),
])
def test_command_failures(tmp_path, argv, result, says):
    _, cfg = action_cfg({"kind": "command", "argv": argv, "timeout": 1, "effect_after": 0})
    report = run(runner_for(ListRecorder(tmp_path)), cfg)
    assert report.outcome.result == result
    assert report.outcome.details.startswith(says)


def test_missing_secret_fails_the_command_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    _, cfg = action_cfg({"kind": "command", "argv": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
                         "env": {"TOKEN": "env:TEST_NOT_SET_ANYWHERE"}, "effect_after": 0})
    report = run(runner_for(ListRecorder(tmp_path)), cfg)
    assert report.outcome.result == "failed" and "TEST_NOT_SET_ANYWHERE is not set" in report.outcome.details
    assert not marker.exists()


# ---------------------------------------------------------------- sql, the local PostgreSQL


def test_sql_statement_with_verification_and_timeout(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE circuit_breakers (name text primary key, state text)")
        db.execute("INSERT INTO circuit_breakers VALUES ('bedrock', 'open'), ('dynamo', 'open')")
    _, cfg = action_cfg({"kind": "sql", "database": pg_url, "effect_after": 0,
                         "statement": "UPDATE circuit_breakers SET state = 'closed' WHERE state = 'open'",
                         "verify_sql": "SELECT count(*) FILTER (WHERE state = 'closed') FROM circuit_breakers"})
    runner = runner_for(ListRecorder(tmp_path))
    report = run(runner, cfg)
    assert report.plan.before == {"check": 0.0}
    assert report.outcome.result == "ok" and report.outcome.details == "2 row(s)"
    assert report.verification.ok is True and report.verification.details == "check = 2"
    _, slow = action_cfg({"kind": "sql", "database": pg_url, "statement": "SELECT pg_sleep(5)",
                          "statement_timeout": 0.3, "effect_after": 0})
    report = run(runner, slow)
    assert report.outcome.result == "failed" and report.outcome.details.startswith("cancelled after 0.3s")


def test_sql_unreachable_database_is_one_line(closed_port, tmp_path):
    _, cfg = action_cfg({"kind": "sql", "database": f"postgresql://127.0.0.1:{closed_port}/x",
                         "statement": "SELECT 1", "effect_after": 0})
    report = run(runner_for(ListRecorder(tmp_path)), cfg)
    assert report.outcome.result == "failed" and report.outcome.details.startswith("cannot connect to svc")
    assert "\n" not in report.outcome.details


# ---------------------------------------------------------------- guards and the sandbox


@pytest.mark.parametrize("action, env, production, rules, expected", [
    ({"kind": "command", "argv": ["x"]}, "staging", False, None, "confirm"),
    ({"kind": "command", "argv": ["x"], "destructive": True}, "staging", False, None, "confirm"),
    ({"kind": "command", "argv": ["x"], "destructive": True}, "production", True, None, "type_to_confirm"),
    ({"kind": "command", "argv": ["x"]}, "production", True, None, "confirm"),
    ({"kind": "command", "argv": ["x"]}, "production", True, {"production": "deny"}, "deny"),
    ({"kind": "command", "argv": ["x"], "guard": "type_to_confirm"}, "dev", False, None, "type_to_confirm"),
    ({"kind": "command", "argv": ["x"], "guard": "confirm", "destructive": True}, "prod", True, None,
     "type_to_confirm"),  # an action cannot loosen the environment's default
])
def test_guards_take_the_strictest_rule(action, env, production, rules, expected):
    config, cfg = action_cfg(action, env, production, rules)
    assert guard_for(cfg, config.service.environment, config.service.is_production,
                     config.guards.environments) == expected


def test_sandbox_executors_never_call_anything(fault_server, tmp_path):
    fault_server.respond("/admin/rollback", "rolled back")
    _, cfg = action_cfg({"kind": "http", "url": fault_server.url("/admin/rollback"),
                         "state_url": fault_server.url("/admin/rollback"), "effect_after": 0})
    executors = sandbox_executors()
    runner = ActionRunner(executors, ListRecorder(tmp_path), lambda: {}, sleep=lambda s: None)
    assert runner.claim(cfg.target, cfg.name) is None
    report = runner.run(cfg, runner.plan(cfg, "confirm"))
    assert report.plan.sandbox and report.outcome.result == "ok"
    assert fault_server.count("/admin/rollback") == 0
    assert executors["http"].calls == [report.plan]


def test_plan_round_trips_through_the_journal():
    plan = Plan("Rollback", "r", "http", "svc", (), {"state": {"v": 1}}, {"body": {"on": True}}, True, ("api",),
                "better", "confirm", undo={"body": {"on": False}})
    assert Plan.from_dict(plan.to_dict()) == plan
    assert Outcome("ok", "x").result == "ok"


def test_action_keys_may_not_take_dashboard_keys():
    from cockpit.config import ConfigError

    for key, says in (("a", "dashboard key"), ("rr", "one letter or digit"), ("!", "one letter or digit")):
        with pytest.raises(ConfigError) as err:
            action_cfg({"kind": "command", "argv": ["x"], "key": key})
        assert says in "\n".join(err.value.problems)


def test_a_cockpit_killed_mid_action_leaves_outcome_unknown(tmp_path):
    """A real process runs a slow command action and is SIGKILLed after its intent was
    journaled: a cockpit started afterwards says the outcome is unknown."""
    import os
    import signal
    import subprocess
    import time

    db = tmp_path / "j.db"
    child = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parent)!r})
        from test_actions import ListRecorder, action_cfg, runner_for
        from pathlib import Path
        _, cfg = action_cfg({{"kind": "command", "argv": ["sleep", "30"], "effect_after": 0}})
        rec = ListRecorder(Path({str(tmp_path)!r}))
        runner = runner_for(rec, signals=[{{}}])
        runner.claim(cfg.target, cfg.name)
        runner.run(cfg, runner.plan(cfg, "confirm"))
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=str(tmp_path), start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        journal = None
        while time.monotonic() < deadline:
            if db.exists():
                journal = SQLiteJournal(db)
                incs = journal.incidents()
                if incs and any(e.kind == "action_intent" for e in journal.events(incs[0])):
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the child never journaled its intent")
        os.killpg(proc.pid, signal.SIGKILL)  # the cockpit and the command it was running
        proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    inc = journal.incidents()[0]
    assert [e.kind for e in journal.events(inc)] == ["incident_declared", "action_intent"]
    assert len(journal.unresolved_intents(inc)) == 1
    lines = []
    desk = IncidentDesk(SQLiteJournal(db), ManualClock(), "bob", "svc", on_event=lines.append)
    assert desk.resume_open() == inc
    assert any(line.text.startswith("Test action: OUTCOME UNKNOWN") for line in lines)
    assert "outcome unknown" in desk.export_markdown(time.time())


def test_http_verify_echo_checks_the_answer_says_back_what_the_body_asked(deploy_server, fault_server, tmp_path):
    """Issue 17: the demo's Emergency mode had no verify_url ("not verifiable"): a check of
    a 2xx answer alone would pass for the undo too. verify_echo checks that the answer says
    back what this call's body asked (the undo against its undo_body); a service that did
    not change is NOT verified, with what it said."""
    base = deploy_server.url
    _, cfg = action_cfg({"kind": "http", "url": f"{base}/admin/emergency", "body": {"on": True},
                         "undo_body": {"on": False}, "state_url": f"{base}/admin/state", "effect_after": 0,
                         "verify_url": f"{base}/admin/state", "verify_echo": {"emergency": "on"}})
    runner = runner_for(ListRecorder(tmp_path), signals=[{}, {}, {}, {}])
    report = run(runner, cfg)
    assert report.verification.ok is True and "emergency is true as asked" in report.verification.details
    undo = runner.undo_plan(cfg, report.plan, "confirm")
    report = runner.run(cfg, undo)
    assert report.verification.ok is True and "emergency is false as asked" in report.verification.details
    fault_server.respond_json("/state", {"emergency": False})  # a service that ignored the call
    _, stuck = action_cfg({"kind": "http", "url": f"{base}/admin/emergency", "body": {"on": True},
                           "effect_after": 0, "verify_url": fault_server.url("/state"),
                           "verify_echo": {"emergency": "on"}, "verify_timeout": 0.3})
    report = run(runner_for(ListRecorder(tmp_path), signals=[{}, {}]), stuck)
    assert report.verification.ok is False and "emergency is false, asked true" in report.verification.details


def test_http_verify_echo_needs_a_verify_url_and_body_fields():
    from cockpit.config import ConfigError

    for extra, says in (({"verify_echo": {"emergency": "on"}}, "verify_echo needs verify_url"),
                        ({"verify_url": "http://127.0.0.1:9/s", "verify_echo": {"emergency": "nope"}},
                         "verify_echo names nope, which the body does not have")):
        with pytest.raises(ConfigError) as e:
            action_cfg({"kind": "http", "url": "http://127.0.0.1:9/e", "body": {"on": True}, **extra})
        assert any(says in p for p in e.value.problems), e.value.problems
