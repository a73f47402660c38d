"""AWS resources as components, read through boto3 from moto's server."""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest

from cockpit.clock import SystemClock
from cockpit.config import ConfigError, config_from_dict
from cockpit.drill.demo import demo_raw
from cockpit.signals.sources import SourceContext, SourceError, build_source


def make(moto_url: str, checks: list[dict]):
    raw = demo_raw("http://127.0.0.1:9")
    raw["aws"] = {"endpoint_url": moto_url, "region": "us-east-1", "max_attempts": 1}
    raw["sources"].append({"name": "aws", "kind": "aws_status", "checks": checks})
    raw["panels"]["components"]["sources"] = ["components", "aws"]
    return build_source(config_from_dict(raw, "<t>", {}).source("aws"), SourceContext(SystemClock()))


@pytest.fixture
def estate(moto_url):
    """Seed 000's system: the AI function, its table and queue, the database, an ECS service."""
    c = {s: boto3.client(s, endpoint_url=moto_url, region_name="us-east-1")
         for s in ("lambda", "iam", "dynamodb", "sqs", "rds", "ecs")}
    role = c["iam"].create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("h.py", "def h(e, c):\n    return 1\n")
    c["lambda"].create_function(FunctionName="bedrock-ai-core", Runtime="python3.11", Role=role, Handler="h.h",
                                Code={"ZipFile": code.getvalue()}, Environment={"Variables": {"MODEL": "claude"}})
    c["dynamodb"].create_table(TableName="ai-action-logs", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                               BillingMode="PAY_PER_REQUEST")
    queue = c["sqs"].create_queue(QueueName="ai-jobs")["QueueUrl"]
    for i in range(5):
        c["sqs"].send_message(QueueUrl=queue, MessageBody=f"job {i}")
    c["rds"].create_db_instance(DBInstanceIdentifier="macro-db", DBInstanceClass="db.t3.micro", Engine="postgres",
                                MasterUsername="app", MasterUserPassword="not-a-real-one", AllocatedStorage=20)
    c["ecs"].create_cluster(clusterName="prod")
    c["ecs"].register_task_definition(family="api", containerDefinitions=[{"name": "a", "image": "x", "memory": 64}])
    c["ecs"].create_service(cluster="prod", serviceName="api", taskDefinition="api:1", desiredCount=3)
    return c, queue


CHECKS = [
    {"name": "ai-core", "type": "lambda", "function": "bedrock-ai-core"},
    {"name": "logs-table", "type": "dynamodb", "table": "ai-action-logs"},
    {"name": "jobs", "type": "sqs", "max_visible": 3},
    {"name": "macro-db", "type": "rds", "instance": "macro-db"},
    {"name": "api", "type": "ecs_service", "cluster": "prod", "service": "api"},
]


async def test_each_resource_is_a_row(moto_url, estate):
    clients, queue = estate
    checks = [dict(c, queue_url=queue) if c["type"] == "sqs" else c for c in CHECKS]
    src = make(moto_url, checks)
    rows = {r.series.removeprefix("component/"): r for r in await src.fetch()}
    assert rows["ai-core"].state == "healthy" and rows["ai-core"].detail == "Active · last update Successful"
    assert rows["logs-table"].state == "healthy" and rows["logs-table"].detail.startswith("ACTIVE")
    assert rows["jobs"].state == "degraded" and rows["jobs"].detail == "5 waiting · 0 in flight (over 3)"
    assert rows["macro-db"].state == "healthy" and rows["macro-db"].detail.startswith("available · postgres")
    # moto starts no tasks: 0 of 3 running is what the API says, and that is unhealthy
    assert rows["api"].state == "unhealthy" and rows["api"].detail.startswith("0/3 running, 3 pending · api:1")
    clients["lambda"].update_function_configuration(FunctionName="bedrock-ai-core",
                                                    Environment={"Variables": {"EMERGENCY_MODE": "true"}})
    rows = {r.series.removeprefix("component/"): r for r in await src.fetch()}
    assert rows["ai-core"].state == "degraded" and rows["ai-core"].detail.endswith("EMERGENCY_MODE on")


async def test_a_missing_resource_is_its_rows_error_only(moto_url, estate):
    src = make(moto_url, [{"name": "ai-core", "type": "lambda", "function": "bedrock-ai-core"},
                          {"name": "gone", "type": "dynamodb", "table": "no-such-table"}])
    rows = {r.series.removeprefix("component/"): r for r in await src.fetch()}
    assert rows["ai-core"].ok and rows["ai-core"].state == "healthy"
    assert not rows["gone"].ok and rows["gone"].error.endswith(" (dynamodb:DescribeTable)")
    assert "ResourceNotFoundException" in rows["gone"].error


async def test_aws_unreachable_is_one_error_for_the_source(closed_port):
    src = make(f"http://127.0.0.1:{closed_port}", [{"name": "a", "type": "rds", "instance": "x"},
                                                   {"name": "b", "type": "rds", "instance": "y"}])
    with pytest.raises(SourceError, match=r"^cannot reach .*\(rds:DescribeDBInstances\)"):
        await src.fetch()


def test_checks_need_their_identifiers():
    raw = demo_raw("http://127.0.0.1:9")
    raw["sources"].append({"name": "aws", "kind": "aws_status", "checks": [{"name": "x", "type": "ecs_service",
                                                                            "cluster": "prod"}]})
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, "<t>", {})
    assert "ecs_service checks need service" in "\n".join(err.value.problems)
