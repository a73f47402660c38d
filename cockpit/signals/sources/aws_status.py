"""`aws_status`: AWS resources as rows of the components table. Every check of a poll
runs in one worker thread through the shared boto3 clients; a check that fails (not
found, not allowed) is that row's error, the others still answer."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cockpit import aws
from cockpit.configmodel import AwsSettings, Model, SourceBase, listed_once
from cockpit.model import Reading, Status
from cockpit.signals.sources._base import Source, summarize_components
from cockpit.signals.sources._changes import epoch_of
from cockpit.signals.sources._http import score

AWS_CHECK_FIELDS = {"ecs_service": ("cluster", "service"), "lambda": ("function",), "dynamodb": ("table",),
                    "sqs": ("queue_url",), "rds": ("instance",)}


class AwsCheck(Model):
    """One AWS resource as a row of the components table."""

    name: str = Field(description="Its name in the components table.")
    type: Literal["ecs_service", "lambda", "dynamodb", "sqs", "rds"] = Field(description="What kind of resource.")
    cluster: str | None = Field(None, description="ecs_service: the cluster.")
    service: str | None = Field(None, description="ecs_service: the service.")
    function: str | None = Field(None, description="lambda: function name or ARN.")
    alias: str | None = Field(None, description="lambda: an alias (e.g. \"live\") whose version is watched: "
                              "it moving is a change on the timeline.")
    table: str | None = Field(None, description="dynamodb: table name.")
    queue_url: str | None = Field(None, description="sqs: the queue URL.")
    instance: str | None = Field(None, description="rds: DB instance identifier.")
    max_visible: int | None = Field(None, ge=0, description="sqs: more visible messages than this is degraded.")
    emergency_variables: list[str] = Field(
        default_factory=lambda: ["EMERGENCY_MODE", "FALLBACK_RESPONSES", "DISABLE_AI_PROCESSING"],
        description="lambda: variables that, set to true, mean the function runs in emergency mode (degraded).")

    @model_validator(mode="after")
    def _needs(self):
        missing = [f for f in AWS_CHECK_FIELDS[self.type] if not getattr(self, f)]
        if missing:
            raise ValueError(f"{self.type} checks need {', '.join(missing)}")
        return self


class AwsStatusSource(SourceBase):
    """AWS resources as components: ECS services (running vs desired, rollout), Lambda functions (state,
    last update, emergency flags), DynamoDB tables, SQS queues (depth), RDS instances (status)."""

    kind: Literal["aws_status"]
    checks: list[AwsCheck] = Field(min_length=1, description="The resources, one row each.")
    interval: float = Field(30.0, ge=1, le=86400, description="Seconds between polls.")
    timeout: float = Field(10.0, ge=0.05, le=600, description="Seconds before a poll is abandoned.")
    aws: AwsSettings | None = Field(None, description="AWS settings (default: the top-level [aws]).")

    @property
    def components(self) -> list[str]:
        return [c.name for c in self.checks]

    @field_validator("checks")
    @classmethod
    def _unique(cls, v: list) -> list:
        listed_once([c.name for c in v])
        return v

    feeds: ClassVar[str] = "components"
    uses_aws: ClassVar[bool] = True

    def series_names(self) -> list[str]:
        return [f"component/{c}" for c in self.components]

TRUE = {"true", "1", "yes", "on"}

#: what a check says changed: (where, what it is now, since when (epoch seconds) or None, by whom)
Changed = list[tuple[str, str, float | None, str]]


def _ecs(check, settings) -> tuple[str, str, Changed]:
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
    # a new task definition is the deploy; its deployment's rollout is that deploy starting and finishing
    deployment = str(primary.get("id", "")).rsplit("/", 1)[-1]
    changed: Changed = [(f"{check.name} task definition", task, epoch_of(primary.get("createdAt")),
                         f"deployment {deployment}" if deployment else "")]
    if rollout and deployment:
        changed.append((f"{check.name} deployment", f"{deployment} {rollout}",
                        epoch_of(primary.get("updatedAt")) or epoch_of(primary.get("createdAt")),
                        str(primary.get("rolloutStateReason", ""))[:120]))
    if svc.get("status") != "ACTIVE" or rollout == "FAILED" or (desired > 0 and running == 0):
        return "unhealthy", detail, changed
    if running < desired or rollout == "IN_PROGRESS" or len(svc.get("deployments", [])) > 1:
        return "degraded", detail, changed
    return "healthy", detail, changed


def _lambda(check, settings) -> tuple[str, str, Changed]:
    conf = aws.client("lambda", settings).get_function_configuration(FunctionName=check.function)
    aws.field(conf, "FunctionName")
    state, update = conf.get("State", "Active"), conf.get("LastUpdateStatus", "Successful")
    env = (conf.get("Environment") or {}).get("Variables") or {}
    flags = [v for v in check.emergency_variables if str(env.get(v, "")).lower() in TRUE]
    detail = f"{state} · last update {update}" + (f" · {', '.join(flags)} on" if flags else "")
    # the configuration as far as it is safe to show: the code, and the emergency flags (other
    # variables may hold secrets: only that they changed, as a digest)
    others = sorted((k, str(v)) for k, v in env.items() if k not in check.emergency_variables)
    config = f"code {str(conf.get('CodeSha256', '?'))[:10]} · " + (
        ", ".join(f"{v}={'on' if v in flags else 'off'}" for v in check.emergency_variables) or "no flags") + \
        (f" · other variables {_digest(others)}" if others else "")
    changed: Changed = [(f"{check.name} configuration", config, epoch_of(conf.get("LastModified")), "")]
    if check.alias:
        alias = aws.client("lambda", settings).get_alias(FunctionName=check.function, Name=check.alias)
        changed.append((f"{check.name} alias {check.alias}", f"version {aws.field(alias, 'FunctionVersion')}",
                        None, ""))
    if state in ("Failed", "Inactive") or update == "Failed":
        return "unhealthy", detail + (f": {conf.get('StateReason') or conf.get('LastUpdateStatusReason')}"
                                      if conf.get("StateReason") or conf.get("LastUpdateStatusReason") else ""), changed
    if state == "Pending" or update == "InProgress" or flags:
        return "degraded", detail, changed
    return "healthy", detail, changed


def _digest(items) -> str:
    import hashlib

    return hashlib.sha256(repr(items).encode()).hexdigest()[:8]


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

    def _poll(self) -> tuple[list[tuple[str, str | None, str, str]], Changed]:
        out, changed = [], []
        for check in self.cfg.checks:
            try:
                state, detail, *said = CHECKS[check.type](check, self.cfg.aws)
                out.append((check.name, state, detail, ""))
                changed += said[0] if said else []
            except Exception as e:  # noqa: BLE001 - this row's error; the other rows still answer
                out.append((check.name, None, "", aws.failed(e, CALLS[check.type])))
        return out, changed

    async def fetch(self) -> list[Reading]:
        rows, changed = await self.in_thread(self._poll)
        if all(err for *_, err in rows) and len({err for *_, err in rows}) == 1:
            from cockpit.signals.sources._base import SourceError

            raise SourceError(rows[0][3])  # AWS itself (credentials, endpoint): one error for the source
        clock = self.ctx.clock
        out = [self.change(where, now, since=since, by=by) for where, now, since, by in changed]
        for name, state, detail, error in rows:
            if error:
                out.append(Reading(self.name, f"component/{name}", clock.now(), 0.0, Status.ERROR, error,
                                   state="unreachable", received=clock.monotonic()))
            else:
                out.append(self.reading(f"component/{name}", score(state), state=state, detail=detail))
        return out



summarize = summarize_components  # what `cockpit check` says of it
CONFIG = AwsStatusSource
SOURCE = AwsStatus
