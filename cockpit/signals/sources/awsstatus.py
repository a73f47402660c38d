"""`aws_status`: AWS resources as rows of the components table. Every check of a poll
runs in one worker thread through the shared boto3 clients; a check that fails (not
found, not allowed) is that row's error, the others still answer."""

from __future__ import annotations


from cockpit import aws
from cockpit.model import Reading, Status
from cockpit.signals.sources.base import Source
from cockpit.signals.sources.http import score

TRUE = {"true", "1", "yes", "on"}


def _ecs(check, settings) -> tuple[str, str]:
    ecs = aws.client("ecs", settings)
    got = ecs.describe_services(cluster=check.cluster, services=[check.service])
    if not aws.field(got, "services"):
        reason = (got.get("failures") or [{}])[0].get("reason", "not found")
        return "unhealthy", f"service {check.service}: {reason}"
    svc = got["services"][0]
    desired, running, pending = svc.get("desiredCount", 0), svc.get("runningCount", 0), svc.get("pendingCount", 0)
    primary = next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), {})
    rollout = primary.get("rolloutState", "")
    task = svc.get("taskDefinition", "").rsplit("/", 1)[-1]
    detail = f"{running}/{desired} running" + (f", {pending} pending" if pending else "") + f" · {task}" + \
        (f" · rollout {rollout}" if rollout else "")
    if svc.get("status") != "ACTIVE" or rollout == "FAILED" or (desired > 0 and running == 0):
        return "unhealthy", detail
    if running < desired or rollout == "IN_PROGRESS" or len(svc.get("deployments", [])) > 1:
        return "degraded", detail
    return "healthy", detail


def _lambda(check, settings) -> tuple[str, str]:
    conf = aws.client("lambda", settings).get_function_configuration(FunctionName=check.function)
    aws.field(conf, "FunctionName")
    state, update = conf.get("State", "Active"), conf.get("LastUpdateStatus", "Successful")
    env = (conf.get("Environment") or {}).get("Variables") or {}
    flags = [v for v in check.emergency_variables if str(env.get(v, "")).lower() in TRUE]
    detail = f"{state} · last update {update}" + (f" · {', '.join(flags)} on" if flags else "")
    if state in ("Failed", "Inactive") or update == "Failed":
        return "unhealthy", detail + (f": {conf.get('StateReason') or conf.get('LastUpdateStatusReason')}"
                                      if conf.get("StateReason") or conf.get("LastUpdateStatusReason") else "")
    if state == "Pending" or update == "InProgress" or flags:
        return "degraded", detail
    return "healthy", detail


def _dynamodb(check, settings) -> tuple[str, str]:
    table = aws.field(aws.client("dynamodb", settings).describe_table(TableName=check.table), "Table")
    status = table.get("TableStatus", "?")
    detail = f"{status} · {table.get('ItemCount', 0)} items"
    return ("healthy" if status == "ACTIVE" else "degraded" if status == "UPDATING" else "unhealthy"), detail


def _sqs(check, settings) -> tuple[str, str]:
    attrs = aws.field(aws.client("sqs", settings).get_queue_attributes(
        QueueUrl=check.queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    ), "Attributes")
    visible, flight = int(attrs.get("ApproximateNumberOfMessages", 0)), int(
        attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
    detail = f"{visible} waiting · {flight} in flight"
    if check.max_visible is not None and visible > check.max_visible:
        return "degraded", detail + f" (over {check.max_visible})"
    return "healthy", detail


def _rds(check, settings) -> tuple[str, str]:
    db = aws.field(aws.client("rds", settings).describe_db_instances(DBInstanceIdentifier=check.instance),
                   "DBInstances")[0]
    status = db.get("DBInstanceStatus", "?")
    detail = f"{status} · {db.get('Engine', '?')} {db.get('DBInstanceClass', '')}".strip()
    if status == "available":
        return "healthy", detail
    if status in ("backing-up", "modifying", "maintenance", "upgrading", "configuring-enhanced-monitoring",
                  "storage-optimization", "renaming", "rebooting"):
        return "degraded", detail
    return "unhealthy", detail


CHECKS = {"ecs_service": _ecs, "lambda": _lambda, "dynamodb": _dynamodb, "sqs": _sqs, "rds": _rds}
CALLS = {"ecs_service": "ecs:DescribeServices", "lambda": "lambda:GetFunctionConfiguration",
         "dynamodb": "dynamodb:DescribeTable", "sqs": "sqs:GetQueueAttributes", "rds": "rds:DescribeDBInstances"}


class AwsStatus(Source):
    kind = "aws_status"

    def _poll(self) -> list[tuple[str, str | None, str, str]]:
        out = []
        for check in self.cfg.checks:
            try:
                state, detail = CHECKS[check.type](check, self.cfg.aws)
                out.append((check.name, state, detail, ""))
            except Exception as e:  # noqa: BLE001 - this row's error; the other rows still answer
                out.append((check.name, None, "", aws.failed(e, CALLS[check.type])))
        return out

    async def fetch(self) -> list[Reading]:
        rows = await self.in_thread(self._poll)
        if all(err for *_, err in rows) and len({err for *_, err in rows}) == 1:
            from cockpit.signals.sources.base import SourceError

            raise SourceError(rows[0][3])  # AWS itself (credentials, endpoint): one error for the source
        clock = self.ctx.clock
        out = []
        for name, state, detail, error in rows:
            if error:
                out.append(Reading(self.name, f"component/{name}", clock.now(), 0.0, Status.ERROR, error,
                                   state="unreachable", received=clock.monotonic()))
            else:
                out.append(self.reading(f"component/{name}", score(state), state=state, detail=detail))
        return out
