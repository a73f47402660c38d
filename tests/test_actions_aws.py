"""AWS actions through boto3 against moto's real HTTP server, and pg_restore against the
local PostgreSQL with a backup in (moto's) S3 and on disk."""

from __future__ import annotations

import io
import subprocess
import zipfile

import boto3
import psycopg
import pytest
from test_actions import ListRecorder, action_cfg, run, runner_for

from actions import ActionError


def aws_cfg(moto_url: str, action: dict, **kw):
    return action_cfg({"aws": {"endpoint_url": moto_url, "region": "us-east-1", "max_attempts": 2}, "effect_after": 0,
                       "verify_timeout": 2, **action}, **kw)


@pytest.fixture
def lam(moto_url):
    client = boto3.client("lambda", endpoint_url=moto_url, region_name="us-east-1")
    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1")
    role = iam.create_role(RoleName="ai-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", "def handle(event, context):\n    return {}\n")
    client.create_function(FunctionName="bedrock-ai-core", Runtime="python3.11", Role=role, Handler="handler.handle",
                           Code={"ZipFile": code.getvalue()},
                           Environment={"Variables": {"MODEL_ID": "claude", "DB_PASSWORD": "hunter2",
                                                      "EMERGENCY_MODE": "false"}})
    return client


def env_of(lam) -> dict:
    return lam.get_function_configuration(FunctionName="bedrock-ai-core")["Environment"]["Variables"]


def test_lambda_emergency_mode_merges_keeps_the_rest_and_undoes(moto_url, lam, tmp_path):
    _, cfg = aws_cfg(moto_url, {"kind": "lambda_env", "function": "bedrock-ai-core",
                                "variables": {"EMERGENCY_MODE": "true", "FALLBACK_RESPONSES": "true",
                                              "DISABLE_AI_PROCESSING": "true"}})
    rec = ListRecorder(tmp_path)
    runner = runner_for(rec, signals=[{}])
    plan = runner.plan(cfg, "confirm")
    assert plan.before == {"DISABLE_AI_PROCESSING": None, "EMERGENCY_MODE": "false", "FALLBACK_RESPONSES": None}
    assert plan.steps[0].params["keeps"] == "2 other variable(s)"
    assert runner.claim(cfg.target, cfg.name) is None
    report = runner.run(cfg, plan)
    assert report.outcome.result == "ok", report.outcome.details
    assert report.verification.ok is True
    assert env_of(lam) == {"MODEL_ID": "claude", "DB_PASSWORD": "hunter2", "EMERGENCY_MODE": "true",
                           "FALLBACK_RESPONSES": "true", "DISABLE_AI_PROCESSING": "true"}
    assert "hunter2" not in str([e.payload for e in rec.journal.events(rec.desk.current)])
    # leaving emergency mode puts back what it found: the old value, and no new variables
    undo = runner.undo_plan(cfg, report.plan, "confirm")
    assert undo.after == {"set": {"EMERGENCY_MODE": "false"}, "remove": ["DISABLE_AI_PROCESSING", "FALLBACK_RESPONSES"]}
    assert runner.claim(cfg.target, cfg.name) is None
    assert runner.run(cfg, undo).verification.ok is True
    assert env_of(lam) == {"MODEL_ID": "claude", "DB_PASSWORD": "hunter2", "EMERGENCY_MODE": "false"}


def test_lambda_secret_variables_are_masked_and_not_undone_blindly(moto_url, lam, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_NEW_DB_PASSWORD", "s3cr3t")
    _, cfg = aws_cfg(moto_url, {"kind": "lambda_env", "function": "bedrock-ai-core",
                                "variables": {"DB_PASSWORD": "env:TEST_NEW_DB_PASSWORD"}})
    rec = ListRecorder(tmp_path)
    report = run(runner_for(rec, signals=[{}]), cfg)
    assert report.plan.before == {"DB_PASSWORD": "***"} and report.plan.undo is None
    assert report.outcome.result == "ok" and env_of(lam)["DB_PASSWORD"] == "s3cr3t"
    journaled = str([e.payload for e in rec.journal.events(rec.desk.current)])
    assert "s3cr3t" not in journaled and "hunter2" not in journaled


def test_lambda_reserved_concurrency_takes_the_number_from_the_dialog_and_undoes(moto_url, lam, tmp_path):
    """Against moto's server. Undo was promised ("available from the timeline (z)") and then
    refused when there was no reserved concurrency before: now it removes it again."""
    _, cfg = aws_cfg(moto_url, {"kind": "lambda_concurrency", "concurrency": "reserved", "function": "bedrock-ai-core",
                                "min": 0, "max": 50, "default": 10})
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    plan = runner.plan(cfg, "confirm")
    assert plan.ask == {"name": "concurrency", "now": None, "min": 0, "max": 50, "default": 10}
    assert plan.steps[0].call == "lambda:PutFunctionConcurrency"
    with pytest.raises(ActionError, match="from 0 to 50"):
        plan.with_value(80)
    assert runner.claim(cfg.target, cfg.name) is None
    report = runner.run(cfg, plan.with_value(20))
    assert report.outcome.result == "ok" and report.verification.ok is True
    assert lam.get_function_concurrency(FunctionName="bedrock-ai-core")["ReservedConcurrentExecutions"] == 20
    undo = runner.undo_plan(cfg, report.plan, "confirm")
    assert undo is not None and undo.steps[0].call == "lambda:DeleteFunctionConcurrency"
    assert undo.before == {"concurrency": 20} and undo.after == {"concurrency": None}
    assert runner.claim(cfg.target, cfg.name) is None
    back = runner.run(cfg, undo)
    assert back.outcome.result == "ok" and back.verification.ok is True
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="bedrock-ai-core")


def test_lambda_provisioned_concurrency_against_the_lambda_api_model(moto_url, tmp_path, monkeypatch):
    """Seed 003's put-provisioned-concurrency-config. moto has no provisioned-concurrency
    API, so the calls are checked against botocore's own model of the Lambda API (Stubber:
    every parameter and every answer must fit the real shapes): plan, put, verify until
    READY with the number allocated, and an undo that deletes the config it created."""
    from botocore.stub import Stubber

    from cockpit import aws

    _, cfg = aws_cfg(moto_url, {"kind": "lambda_concurrency", "function": "monitoring-api-prod", "qualifier": "live",
                                "min": 1, "max": 100, "default": 10, "verify_timeout": 5})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    lam = aws.client("lambda", cfg.aws)
    where = {"FunctionName": "monitoring-api-prod", "Qualifier": "live"}
    stub = Stubber(lam)
    stub.add_client_error("get_provisioned_concurrency_config", "ProvisionedConcurrencyConfigNotFoundException",
                          "No Provisioned Concurrency Config found for this function", 404, expected_params=where)
    stub.add_response("put_provisioned_concurrency_config",
                      {"RequestedProvisionedConcurrentExecutions": 10, "Status": "IN_PROGRESS"},
                      {**where, "ProvisionedConcurrentExecutions": 10})
    stub.add_response("get_provisioned_concurrency_config",
                      {"RequestedProvisionedConcurrentExecutions": 10, "AllocatedProvisionedConcurrentExecutions": 4,
                       "AvailableProvisionedConcurrentExecutions": 4, "Status": "IN_PROGRESS"}, where)
    stub.add_response("get_provisioned_concurrency_config",
                      {"RequestedProvisionedConcurrentExecutions": 10, "AllocatedProvisionedConcurrentExecutions": 10,
                       "AvailableProvisionedConcurrentExecutions": 10, "Status": "READY"}, where)
    # the undo: read what is there now, delete the config, read again: gone
    stub.add_response("get_provisioned_concurrency_config",
                      {"RequestedProvisionedConcurrentExecutions": 10, "AllocatedProvisionedConcurrentExecutions": 10,
                       "Status": "READY"}, where)
    stub.add_response("delete_provisioned_concurrency_config", {}, where)
    stub.add_client_error("get_provisioned_concurrency_config", "ProvisionedConcurrencyConfigNotFoundException",
                          "gone", 404, expected_params=where)
    stub.add_client_error("get_provisioned_concurrency_config", "ProvisionedConcurrencyConfigNotFoundException",
                          "gone", 404, expected_params=where)
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    with stub:
        plan = runner.plan(cfg, "confirm")
        assert plan.ask["now"] is None and plan.steps[0].call == "lambda:PutProvisionedConcurrencyConfig"
        assert plan.steps[0].params == where
        assert runner.claim(cfg.target, cfg.name) is None
        report = runner.run(cfg, plan.with_value(10))
        assert report.outcome.result == "ok" and "provisioned concurrency 10 requested" in report.outcome.details
        assert report.verification.ok is True and "READY, 10 of 10 allocated" in report.verification.details
        undo = runner.undo_plan(cfg, report.plan, "confirm")
        assert undo.steps[0].call == "lambda:DeleteProvisionedConcurrencyConfig"
        assert runner.claim(cfg.target, cfg.name) is None
        back = runner.run(cfg, undo)
        assert back.outcome.result == "ok" and back.verification.ok is True
    stub.assert_no_pending_responses()


def test_provisioned_concurrency_needs_an_alias_or_version():
    from cockpit.config import ConfigError

    for extra, says in (({}, "add qualifier"), ({"qualifier": "$LATEST"}, "refuses provisioned concurrency on $LATEST")):
        with pytest.raises(ConfigError) as e:
            aws_cfg("http://127.0.0.1:9", {"kind": "lambda_concurrency", "function": "f", **extra})
        assert says in "\n".join(e.value.problems)


@pytest.fixture
def ecs(moto_url):
    client = boto3.client("ecs", endpoint_url=moto_url, region_name="us-east-1")
    client.create_cluster(clusterName="prod")
    for tag in ("v1.4.1", "v1.4.2", "v1.5.0"):
        client.register_task_definition(family="data-processor", containerDefinitions=[
            {"name": "app", "image": f"registry/data-processor:{tag}", "memory": 512}])
    client.create_service(cluster="prod", serviceName="data-processor", taskDefinition="data-processor:3",
                          desiredCount=3)
    return client


def service(ecs) -> dict:
    return ecs.describe_services(cluster="prod", services=["data-processor"])["services"][0]


def test_ecs_rollback_to_the_previous_revision_and_undo(moto_url, ecs, tmp_path):
    _, cfg = aws_cfg(moto_url, {"kind": "ecs_rollback", "cluster": "prod", "service": "data-processor"},
                     environment="production", production=True)
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    plan = runner.plan(cfg, "type_to_confirm")
    assert plan.before["task_definition"] == "data-processor:3" and plan.destructive
    assert plan.after == {"task_definition": "data-processor:2", "image": "registry/data-processor:v1.4.2"}
    assert plan.steps[0].params["forceNewDeployment"] is True
    assert runner.claim(cfg.target, cfg.name) is None
    report = runner.run(cfg, plan)
    assert report.outcome.result == "ok"
    assert service(ecs)["taskDefinition"].endswith("data-processor:2")
    # moto never finishes a rollout, so "steady" cannot be reached there; it is said, not faked
    assert report.verification.ok is False and "rollout" in report.verification.details
    undo = runner.undo_plan(cfg, report.plan, "type_to_confirm")
    assert undo.after["task_definition"] == "data-processor:3"


def test_ecs_rollback_names_a_missing_service_and_a_first_revision(moto_url, ecs, tmp_path):
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    _, missing = aws_cfg(moto_url, {"kind": "ecs_rollback", "cluster": "prod", "service": "nope"})
    with pytest.raises(ActionError, match="service nope in prod"):
        runner.plan(missing, "confirm")
    ecs.register_task_definition(family="fresh", containerDefinitions=[{"name": "a", "image": "x", "memory": 64}])
    ecs.create_service(cluster="prod", serviceName="fresh", taskDefinition="fresh:1", desiredCount=1)
    _, first = aws_cfg(moto_url, {"kind": "ecs_rollback", "cluster": "prod", "service": "fresh"})
    with pytest.raises(ActionError, match="first revision"):
        runner.plan(first, "confirm")


def test_ecs_scale_within_bounds(moto_url, ecs, tmp_path):
    _, cfg = aws_cfg(moto_url, {"kind": "ecs_scale", "cluster": "prod", "service": "data-processor", "min": 2,
                                "max": 8})
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    plan = runner.plan(cfg, "confirm")
    assert plan.ask == {"name": "desired_count", "now": 3, "min": 2, "max": 8, "default": 6}
    assert runner.claim(cfg.target, cfg.name) is None
    report = runner.run(cfg, plan.with_value(6))
    assert report.outcome.result == "ok" and report.verification.ok is True
    assert service(ecs)["desiredCount"] == 6
    assert report.plan.undo == {"desired_count": 3}
    assert report.plan.notes == ()  # no auto scaling on this service


def test_ecs_scale_says_when_auto_scaling_will_move_the_count_back(moto_url, ecs, tmp_path):
    aas = boto3.client("application-autoscaling", endpoint_url=moto_url, region_name="us-east-1")
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId="service/prod/data-processor",
                                 ScalableDimension="ecs:service:DesiredCount", MinCapacity=2, MaxCapacity=4)
    _, cfg = aws_cfg(moto_url, {"kind": "ecs_scale", "cluster": "prod", "service": "data-processor", "max": 10})
    plan = runner_for(ListRecorder(tmp_path), signals=[{}]).plan(cfg, "confirm")
    assert plan.notes == ("auto scaling keeps this service within 2–4: a count outside that is moved back",)


def test_bad_credentials_and_permissions_are_one_line(moto_url, lam, tmp_path, monkeypatch):
    from cockpit.aws import describe

    _, cfg = aws_cfg(moto_url.replace("127.0.0.1", "127.0.0.1"), {"kind": "lambda_env", "function": "missing-fn",
                                                                  "variables": {"EMERGENCY_MODE": "true"}})
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    with pytest.raises(ActionError) as err:
        runner.plan(cfg, "confirm")
    assert str(err.value).endswith(" (lambda:GetFunctionConfiguration)") and "\n" not in str(err.value)
    from botocore.exceptions import ClientError, NoCredentialsError

    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User: x is not authorized"}},
                         "UpdateFunctionConfiguration")
    assert describe(denied, "lambda") == ("not allowed to call UpdateFunctionConfiguration "
                                          "(AccessDeniedException): User: x is not authorized (lambda)")
    expired = ClientError({"Error": {"Code": "ExpiredTokenException", "Message": "expired"}}, "ListFunctions")
    assert "refresh them" in describe(expired)
    assert "no AWS credentials found" in describe(NoCredentialsError())


# ---------------------------------------------------------------- pg_restore


@pytest.fixture
def logs_db(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE ai_action_logs (id serial primary key, token_usage int, created_at timestamptz "
                   "default now())")
        db.execute("INSERT INTO ai_action_logs (token_usage) SELECT g FROM generate_series(1, 500) g")
    return pg_url


def dump(url: str, path, fmt: str) -> None:
    subprocess.run(["pg_dump", f"--format={fmt}", "-f", str(path), url], check=True, capture_output=True)


def corrupt(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DELETE FROM ai_action_logs WHERE id % 3 = 0")
        db.execute("UPDATE ai_action_logs SET token_usage = -1")


def rows(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as db:
        return db.execute("SELECT count(*), count(*) FILTER (WHERE token_usage < 0) FROM ai_action_logs").fetchone()


def test_pg_restore_latest_s3_backup_then_verify_counts(moto_url, logs_db, tmp_path):
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    s3.create_bucket(Bucket="backups")
    old, new = tmp_path / "old.dump", tmp_path / "new.dump"
    with psycopg.connect(logs_db, autocommit=True) as db:
        db.execute("DELETE FROM ai_action_logs WHERE id > 100")
    dump(logs_db, old, "custom")
    with psycopg.connect(logs_db, autocommit=True) as db:
        db.execute("INSERT INTO ai_action_logs (token_usage) SELECT g FROM generate_series(101, 500) g")
    dump(logs_db, new, "custom")
    s3.upload_file(str(old), "backups", "db/2026-11-22.dump")
    s3.upload_file(str(new), "backups", "db/2026-11-23.dump")  # uploaded last: the newest
    corrupt(logs_db)
    _, cfg = aws_cfg(moto_url, {"kind": "pg_restore", "database": logs_db, "source": "s3://backups/db/",
                                "verify_counts": {"ai_action_logs": 500}})
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    plan = runner.plan(cfg, "type_to_confirm")
    assert plan.after["backup"] == "s3://backups/db/2026-11-23.dump"
    assert plan.before == {"rows": {"ai_action_logs": rows(logs_db)[0]}} and rows(logs_db)[0] < 500
    assert plan.destructive
    assert runner.claim(cfg.target, cfg.name) is None
    report = runner.run(cfg, plan)
    assert report.outcome.result == "ok", report.outcome.details
    assert report.verification.ok is True and report.verification.details == "ai_action_logs 500 rows"
    assert rows(logs_db) == (500, 0)


def test_pg_restore_from_a_sql_file_and_a_failing_restore_rolls_back(logs_db, tmp_path):
    good = tmp_path / "backup.sql"
    dump(logs_db, good, "plain")
    corrupt(logs_db)
    _, cfg = action_cfg({"kind": "pg_restore", "database": logs_db, "source": str(good), "effect_after": 0,
                         "verify_counts": {"ai_action_logs": 500}})
    # a plain dump restores over dropped objects: clear the schema first, as the runbook does
    with psycopg.connect(logs_db, autocommit=True) as db:
        db.execute("DROP TABLE ai_action_logs")
    report = run(runner_for(ListRecorder(tmp_path), signals=[{}]), cfg)
    assert report.outcome.result == "ok", report.outcome.details
    assert report.verification.ok is True and rows(logs_db) == (500, 0)
    bad = tmp_path / "broken.sql"
    bad.write_text("DELETE FROM ai_action_logs;\nTHIS IS NOT SQL;\n")
    _, broken = action_cfg({"kind": "pg_restore", "database": logs_db, "source": str(bad), "effect_after": 0,
                            "verify_counts": {"ai_action_logs": 500}})
    report = run(runner_for(ListRecorder(tmp_path / "b"), signals=[{}]), broken)
    assert report.outcome.result == "failed" and "rolled back" in report.outcome.details
    assert 'syntax error at or near "THIS"' in report.outcome.details
    assert rows(logs_db) == (500, 0)  # the DELETE before the error was rolled back too


def test_pg_restore_missing_backup_is_said_before_anything_runs(logs_db, moto_url, tmp_path):
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket="empty")
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    for source, says in ((str(tmp_path / "none.dump"), "no backup file at"), ("s3://empty/db/", "no backup under")):
        _, cfg = aws_cfg(moto_url, {"kind": "pg_restore", "database": logs_db, "source": source})
        with pytest.raises(ActionError, match=says):
            runner.plan(cfg, "type_to_confirm")


def test_lambda_alias_rollback_to_the_previous_version_and_undo(moto_url, lam, tmp_path):
    v1 = lam.publish_version(FunctionName="bedrock-ai-core")["Version"]
    lam.update_function_configuration(FunctionName="bedrock-ai-core", Description="v2")
    v2 = lam.publish_version(FunctionName="bedrock-ai-core")["Version"]
    lam.create_alias(FunctionName="bedrock-ai-core", Name="live", FunctionVersion=v2)
    _, cfg = aws_cfg(moto_url, {"kind": "lambda_rollback", "function": "bedrock-ai-core", "alias": "live"})
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    plan = runner.plan(cfg, "confirm")
    assert plan.before == {"alias": "live", "version": v2} and plan.after == {"version": v1}
    assert runner.claim(cfg.target, cfg.name) is None
    report = runner.run(cfg, plan)
    assert report.outcome.result == "ok" and report.verification.ok is True
    assert lam.get_alias(FunctionName="bedrock-ai-core", Name="live")["FunctionVersion"] == v1
    assert runner.undo_plan(cfg, report.plan, "confirm").after == {"version": v2}
    with pytest.raises(ActionError, match="no older published version"):
        runner.plan(cfg, "confirm")  # now on the oldest one


def test_rds_restore_from_the_latest_snapshot(moto_url, tmp_path):
    rds = boto3.client("rds", endpoint_url=moto_url, region_name="us-east-1")
    rds.create_db_instance(DBInstanceIdentifier="macro-db", DBInstanceClass="db.t3.micro", Engine="postgres",
                           MasterUsername="app", MasterUserPassword="not-a-real-one", AllocatedStorage=20)
    rds.create_db_snapshot(DBSnapshotIdentifier="nightly-1", DBInstanceIdentifier="macro-db")
    rds.create_db_snapshot(DBSnapshotIdentifier="nightly-2", DBInstanceIdentifier="macro-db")
    _, cfg = aws_cfg(moto_url, {"kind": "rds_restore", "instance": "macro-db", "new_instance": "{instance}-restored"})
    runner = runner_for(ListRecorder(tmp_path), signals=[{}])
    plan = runner.plan(cfg, "type_to_confirm")
    assert plan.before["snapshot"] == "nightly-2" and plan.after == {"new_instance": "macro-db-restored"}
    assert runner.claim(cfg.target, cfg.name) is None
    report = runner.run(cfg, plan)
    assert report.outcome.result == "ok" and report.verification.ok is True
    assert report.verification.details == "macro-db-restored is available"
    _, none = aws_cfg(moto_url, {"kind": "rds_restore", "instance": "no-such-db"})
    with pytest.raises(ActionError):
        runner.plan(none, "confirm")
