"""The per-seed example configs: each loads, and `cockpit check` reaches every source
when its endpoints are pointed at stand-ins that speak the real protocols (the
simulator for HTTP, Debian's Prometheus, moto's server for AWS, the local PostgreSQL),
with nothing but COCKPIT_ overrides and the environment variables the file references."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from cockpit.config import load_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PROGRAMS = Path(__file__).resolve().parent / "programs"  # stand-ins for programs a config runs (kubectl)
SEEDS = {"ai-data-processor.toml": "seed 001", "bedrock-ai-core.toml": "seed 000",
         "bedrock-support-mode.toml": "seed 002", "monitoring-api.toml": "seed 003",
         "macro-ai.toml": "seed 004"}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_example_loads_and_names_its_runbook(name):
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert text.startswith("# ") and SEEDS[name] in text.splitlines()[0]
    config = load_config(EXAMPLES / name, environ={})
    assert config.actions and config.panels.components.sources


def seed_cost_today(moto_url: str, amount: str) -> None:
    """What moto's Cost Explorer answers for today (its documented seeding endpoint)."""
    import json
    import urllib.request
    from datetime import date

    today = date.today().isoformat()
    seeded = {"results": [{"ResultsByTime": [{"TimePeriod": {"Start": today, "End": today},
                                              "Total": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}]}]}
    urllib.request.urlopen(urllib.request.Request(
        f"{moto_url}/moto-api/static/ce/cost-and-usage-results", data=json.dumps(seeded).encode(), method="POST",
        headers={"Content-Type": "application/json"}), timeout=10).close()


def check_green(name: str, env: dict[str, str]) -> dict[str, str]:
    """Run `cockpit check` on an example; it must pass. Its table's rows by source name."""
    out = check(EXAMPLES / name, env)
    assert out.returncode == 0, out.stdout + out.stderr
    return {line.split()[0]: line for line in out.stdout.splitlines()[2:]}


def check(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit.cli", "check", "-c", str(path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_ai_data_processor_checks_green_against_stand_ins(prometheus, moto_url, pg_url, sim_server, alertmanager):
    ecs = boto3.client("ecs", endpoint_url=moto_url, region_name="eu-central-1")
    ecs.create_cluster(clusterName="ai-processor-prod")
    ecs.register_task_definition(family="ai-processor", containerDefinitions=[{"name": "app", "image": "x",
                                                                               "memory": 512}])
    ecs.create_service(cluster="ai-processor-prod", serviceName="ai-processor-service-prod",
                       taskDefinition="ai-processor:1", desiredCount=0)
    alertmanager.fire({"alertname": "HighErrorRate", "service": "ai-processor", "severity": "critical"})
    alertmanager.fire({"alertname": "HighErrorRate", "service": "other", "severity": "critical"})  # filtered out
    env = {"COCKPIT_SOURCES__HEALTH__URL": f"{sim_server.url}/health", "COCKPIT_SOURCES__PROM__URL": prometheus,
           "COCKPIT_AWS__ENDPOINT_URL": moto_url, "AI_PROCESSOR_DB_URL": pg_url,
           "COCKPIT_SOURCES__ALERTS__URL": alertmanager.url}
    rows = check_green("ai-data-processor.toml", env)
    assert set(rows) == {"health", "prom", "ecs", "alerts", "db"}
    assert "error_rate 0." in rows["prom"] and "latency_p95" in rows["prom"]
    assert "ai-processor-service" in rows["ecs"] and "postgres healthy" in rows["db"]
    assert '1 firing: 1 critical; e.g. HighErrorRate{service="ai-processor",severity="critical"}' in rows["alerts"]
    # the same file with the database away: check says so and exits 1
    down = check(EXAMPLES / "ai-data-processor.toml", {**env, "AI_PROCESSOR_DB_URL": "postgresql://127.0.0.1:1/x"})
    assert down.returncode == 1 and "cannot connect" in down.stdout


def test_bedrock_ai_core_checks_green_against_stand_ins(moto_url, pg_url, sim_server):
    import io
    import time
    import zipfile
    from datetime import datetime, timedelta, timezone

    import psycopg

    region = "eu-central-1"
    lam = boto3.client("lambda", endpoint_url=moto_url, region_name=region)
    role = boto3.client("iam", endpoint_url=moto_url, region_name=region).create_role(
        RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("h.py", "def h(e, c):\n    return 1\n")
    lam.create_function(FunctionName="bedrock-agent", Runtime="python3.11", Role=role, Handler="h.h",
                        Code={"ZipFile": code.getvalue()})
    logs = boto3.client("logs", endpoint_url=moto_url, region_name=region)
    logs.create_log_group(logGroupName="/aws/lambda/bedrock-agent")
    logs.create_log_stream(logGroupName="/aws/lambda/bedrock-agent", logStreamName="s")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/aws/lambda/bedrock-agent", logStreamName="s",
                        logEvents=[{"timestamp": now - 1000 * (5 - i), "message": "ERROR Bedrock throttled"}
                                   for i in range(5)])
    cw = boto3.client("cloudwatch", endpoint_url=moto_url, region_name=region)
    at = datetime.now(timezone.utc) - timedelta(minutes=2)
    for metric, value in (("Duration", 1800.0), ("Throttles", 3.0)):
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[{
            "MetricName": metric, "Dimensions": [{"Name": "FunctionName", "Value": "bedrock-agent"}],
            "Timestamp": at, "Value": value}])
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE ai_action_logs (token_usage int, created_at timestamptz default now())")
        db.execute("INSERT INTO ai_action_logs (token_usage) VALUES (250000), (100000)")
    env = {"COCKPIT_SOURCES__HEALTH__URL": f"{sim_server.url}/health", "COCKPIT_AWS__ENDPOINT_URL": moto_url,
           "MATBAKH_DB_URL": pg_url,
           # moto answers percentile statistics with HTTP 500: the stand-in reads the average instead
           "COCKPIT_SOURCES__CW__METRICS__DURATION__STAT": "Average"}
    rows = check_green("bedrock-ai-core.toml", env)
    assert set(rows) == {"health", "logs", "cw", "cost", "aws", "db"}
    assert "errors 5" in rows["logs"] and "duration 1.8" in rows["cw"] and "cost_today 7" in rows["cost"]
    assert "bedrock-agent healthy" in rows["aws"]


def test_bedrock_support_mode_checks_green_against_stand_ins(moto_url, fault_server):
    import time
    from datetime import datetime, timedelta, timezone

    # the support API on loopback: /health and one endpoint per component
    fault_server.respond_json("/health", {"status": "healthy"})
    for name in ("bedrock-support", "infrastructure-auditor", "meta-monitor", "implementation-support"):
        fault_server.respond_json(f"/health/component/{name}", {"status": "degraded" if name == "meta-monitor"
                                                                 else "healthy"})
    region = "eu-central-1"
    logs = boto3.client("logs", endpoint_url=moto_url, region_name=region)
    logs.create_log_group(logGroupName="/aws/ecs/bedrock-support")
    logs.create_log_stream(logGroupName="/aws/ecs/bedrock-support", logStreamName="s")
    logs.put_log_events(logGroupName="/aws/ecs/bedrock-support", logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000) - 2000, "message": "ERROR audit failed"}])
    # 5 minutes back: in a 5-minute period that has ended, whatever the time (only complete periods are read)
    boto3.client("cloudwatch", endpoint_url=moto_url, region_name=region).put_metric_data(
        Namespace="BedrockSupport/Performance", MetricData=[{
            "MetricName": "OperationLatency", "Timestamp": datetime.now(timezone.utc) - timedelta(minutes=5),
            "Value": 850.0}])
    seed_cost_today(moto_url, "41.50")
    base = fault_server.url("").rstrip("/")
    env = {"COCKPIT_SOURCES__HEALTH__URL": f"{base}/health",
           "COCKPIT_SOURCES__SUPPORT__URL": f"{base}/health/component/{{name}}", "COCKPIT_AWS__ENDPOINT_URL": moto_url}
    rows = check_green("bedrock-support-mode.toml", env)
    assert set(rows) == {"health", "support", "logs", "perf", "spend"}
    assert "3/4 healthy" in rows["support"] and "errors 1" in rows["logs"]
    assert "operation_latency 0.85" in rows["perf"] and "cost_today 41.5" in rows["spend"]


def test_monitoring_api_checks_green_against_stand_ins(moto_url, fault_server):
    import io
    import zipfile
    from datetime import datetime, timedelta, timezone

    fault_server.respond_json("/health", {"status": "healthy"})
    c = {s: boto3.client(s, endpoint_url=moto_url, region_name="us-east-1")
         for s in ("lambda", "iam", "dynamodb", "sqs", "cloudwatch")}
    role = c["iam"].create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("h.py", "def h(e, c):\n    return 1\n")
    c["lambda"].create_function(FunctionName="monitoring-api-prod", Runtime="python3.11", Role=role, Handler="h.h",
                                Code={"ZipFile": code.getvalue()})
    c["dynamodb"].create_table(TableName="ApplicationMetrics-prod", BillingMode="PAY_PER_REQUEST",
                               KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    queue = c["sqs"].create_queue(QueueName="monitoring-processing-prod")["QueueUrl"]
    at = datetime.now(timezone.utc) - timedelta(minutes=10)
    for ns, metric, dims, value in (("AWS/ApiGateway", "5XXError", {"ApiName": "monitoring-api"}, 12.0),
                                    ("AWS/Lambda", "Duration", {"FunctionName": "monitoring-api-prod"}, 950.0),
                                    ("AWS/DynamoDB", "UserErrors", {"TableName": "ApplicationMetrics-prod"}, 0.0)):
        c["cloudwatch"].put_metric_data(Namespace=ns, MetricData=[{
            "MetricName": metric, "Timestamp": at, "Value": value,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}])
    raw_checks = load_config(EXAMPLES / "monitoring-api.toml", environ={}).source("aws").checks
    checks = "[" + ", ".join(
        "{" + ", ".join(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in {
            "name": ch.name, "type": ch.type, "function": ch.function, "table": ch.table,
            "queue_url": queue if ch.type == "sqs" else ch.queue_url, "max_visible": ch.max_visible}.items()
            if v is not None) + "}" for ch in raw_checks) + "]"
    env = {"COCKPIT_SOURCES__HEALTH__URL": fault_server.url("/health"), "COCKPIT_AWS__ENDPOINT_URL": moto_url,
           "COCKPIT_SOURCES__AWS__CHECKS": checks}  # the queue URL is the stand-in's
    rows = check_green("monitoring-api.toml", env)
    assert set(rows) == {"health", "cw", "aws"}
    assert "errors_5xx 12" in rows["cw"] and "duration 0.95" in rows["cw"] and "throttling 0" in rows["cw"]
    assert "3/3 healthy" in rows["aws"]


def test_macro_ai_checks_green_against_stand_ins(prometheus, moto_url, pg_url, fault_server):
    fault_server.respond_json("/api/health", {"status": "healthy"})
    for name in ("database", "redis", "ai"):
        fault_server.respond_json(f"/api/health/{name}", {"status": "healthy"})
    seed_cost_today(moto_url, "88.10")
    env = {"COCKPIT_SOURCES__HEALTH__URL": fault_server.url("/api/health"),
           "COCKPIT_SOURCES__CHECKS__URL": fault_server.url("/api/health/") + "{name}",
           "COCKPIT_SOURCES__PROM__URL": prometheus, "COCKPIT_AWS__ENDPOINT_URL": moto_url, "MACRO_AI_DB_URL": pg_url,
           # kubectl: the stand-in program (tests/programs/kubectl), first on PATH
           "PATH": f"{PROGRAMS}{os.pathsep}{os.environ.get('PATH', '')}"}
    rows = check_green("macro-ai.toml", env)
    assert set(rows) == {"health", "checks", "prom", "k8s", "db", "spend"}
    assert "3/3 healthy" in rows["checks"] and "error_rate 0." in rows["prom"]
    assert "2/2 healthy" in rows["k8s"] and "macro-ai-api deployment revision 12" in rows["k8s"]
    assert "postgres healthy" in rows["db"] and "cost_today 88.1" in rows["spend"]
