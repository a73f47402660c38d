"""`ecs_scale`: an ECS service's desiredCount, the number asked for in the dialog.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from actions.kinds._aws import (
    EcsServiceAction,
    _call,
    _CountExecutor,
    _describe_service,
)
from actions.model import Step
from cockpit import aws
from cockpit.configmodel import _count_bounds


class EcsScaleAction(EcsServiceAction):
    """Set an ECS service's desiredCount to the number asked for in the dialog."""

    kind: Literal["ecs_scale"]
    min: int = Field(1, ge=0, description="Lowest count the dialog accepts.")
    max: int = Field(ge=1, description="Highest count the dialog accepts.")
    default: int | None = Field(None, description="Count the dialog offers first (default: twice the current).")

    _bounds = model_validator(mode="after")(lambda self: _count_bounds(self))


class EcsScaleExecutor(_CountExecutor):
    kind = "ecs_scale"
    name = "desired_count"

    def _service(self, cfg) -> dict:
        return _describe_service(cfg)

    def read(self, cfg) -> int | None:
        return self._service(cfg).get("desiredCount")

    def write(self, cfg, n: int) -> str:
        ecs = aws.client("ecs", cfg.aws)
        _call("ecs:UpdateService", ecs.update_service, cluster=cfg.cluster, service=cfg.service, desiredCount=n)
        return f"{cfg.service}: desiredCount {n}"

    def step(self, cfg) -> Step:
        return Step("ecs:UpdateService", {"cluster": cfg.cluster, "service": cfg.service})

    def default(self, cfg, now: int | None) -> int:
        return (now or 1) * 2

    def notes(self, cfg) -> tuple[str, ...]:
        """Service auto scaling moves desiredCount back inside its own bounds: say so."""
        aas = aws.client("application-autoscaling", cfg.aws)
        cluster = cfg.cluster.rsplit("/", 1)[-1]
        got = _call("application-autoscaling:DescribeScalableTargets", aas.describe_scalable_targets,
                    ServiceNamespace="ecs", ResourceIds=[f"service/{cluster}/{cfg.service}"])
        targets = got.get("ScalableTargets") or []
        if not targets:
            return ()
        lo, hi = targets[0]["MinCapacity"], targets[0]["MaxCapacity"]
        return (f"auto scaling keeps this service within {lo}–{hi}: a count outside that is moved back",)


CONFIG = EcsScaleAction
EXECUTOR = EcsScaleExecutor
