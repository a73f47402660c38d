"""`ecs_rollback`: an ECS service back to the previous task-definition revision, with a
forced new deployment (seed 001); undo points it at the revision it replaced.
"""

from __future__ import annotations

import time
from typing import ClassVar, Literal

from pydantic import Field

from actions.kinds._aws import (
    EcsServiceAction,
    _base_plan,
    _call,
    _describe_service,
    _outcome,
    _PointBack,
    _poll,
    family_revision,
)
from actions.model import ActionError, Outcome, Plan, Step, Verification
from cockpit import aws


class EcsRollbackAction(EcsServiceAction):
    """Point an ECS service back at the previous task-definition revision (or a named one) and force a new
    deployment (seed 001). Undo points it at the revision it replaced."""

    kind: Literal["ecs_rollback"]
    destructive_kind: ClassVar[bool] = True
    task_definition: str | None = Field(None, description="family:revision to roll back to (default: the "
                                        "revision before the current one).")


class EcsRollbackExecutor(_PointBack):
    kind = "ecs_rollback"
    undo_key = "task_definition"

    def configured(self, cfg) -> str | None:
        return cfg.task_definition

    def _plan(self, cfg, guard: str, target: str | None, name: str) -> Plan:
        svc = _describe_service(cfg)
        family, rev = family_revision(svc["taskDefinition"])
        if target is None:
            if rev <= 1:
                raise ActionError(f"{family}:{rev} is the first revision: there is nothing to roll back to")
            target = f"{family}:{rev - 1}"
        ecs = aws.client("ecs", cfg.aws)
        found = _call("ecs:DescribeTaskDefinition", ecs.describe_task_definition, taskDefinition=target)
        image = ", ".join(c.get("image", "?") for c in found["taskDefinition"].get("containerDefinitions", []))
        running = {"task_definition": f"{family}:{rev}", "desired": svc.get("desiredCount"),
                   "running": svc.get("runningCount"), "pending": svc.get("pendingCount")}
        return _base_plan(cfg, self.kind, guard,
                          [Step("ecs:UpdateService", {"cluster": cfg.cluster, "service": cfg.service,
                                                      "taskDefinition": target, "forceNewDeployment": True})],
                          running, {"task_definition": target, "image": image},
                          {"task_definition": f"{family}:{rev}"}, name)

    def execute(self, cfg, plan: Plan) -> Outcome:
        target = plan.after["task_definition"]

        def run():
            ecs = aws.client("ecs", cfg.aws)
            _call("ecs:UpdateService", ecs.update_service, cluster=cfg.cluster, service=cfg.service,
                  taskDefinition=target, forceNewDeployment=True)
            return f"{cfg.service} -> {target}, new deployment started", {"task_definition": target}

        return _outcome(time.monotonic(), run)

    def verify(self, cfg, plan: Plan) -> Verification:
        """Steady: the primary deployment runs the new revision and its rollout completed."""
        want = family_revision(plan.after["task_definition"])

        def check():
            svc = _describe_service(cfg)
            primary = next((d for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), None)
            if primary is None:
                return False, "no primary deployment"
            on = family_revision(primary["taskDefinition"])
            state = primary.get("rolloutState", "")
            steady = on == want and (state == "COMPLETED" or (not state and
                                                             primary.get("runningCount") == primary.get("desiredCount")))
            return steady, (f"primary deployment on {on[0]}:{on[1]}, rollout {state or '?'}, "
                            f"{primary.get('runningCount')}/{primary.get('desiredCount')} running")

        return _poll(cfg.verify_timeout, check)


CONFIG = EcsRollbackAction
EXECUTOR = EcsRollbackExecutor
