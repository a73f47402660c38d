"""`lambda_concurrency`: provisioned (on an alias or version, verified READY) or reserved
concurrency, the number asked for in the dialog.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import Field, model_validator

from actions.kinds._aws import (
    Settled,
    _base_plan,
    _call,
    _CountExecutor,
    _outcome,
    _poll,
)
from actions.model import ActionError, Outcome, Plan, Step, Verification
from cockpit import aws
from cockpit.configmodel import AwsAction, _count_bounds


class LambdaConcurrencyAction(AwsAction):
    """Set a function's concurrency to the number asked for in the dialog: provisioned
    concurrency on an alias or version (environments kept warm: seed 003's
    put-provisioned-concurrency-config; the default), or reserved concurrency on the
    function (a cap, which also sets that many aside). Undo puts back what it found, or
    removes the setting when there was none."""

    kind: Literal["lambda_concurrency"]
    function: str = Field(description="Function name or ARN.")
    concurrency: Literal["provisioned", "reserved"] = Field(
        "provisioned", description="provisioned: ProvisionedConcurrentExecutions on `qualifier` (verified READY); "
        "reserved: ReservedConcurrentExecutions on the function.")
    qualifier: str | None = Field(None, description="The alias or version provisioned concurrency is set on "
                                  "(required for provisioned; AWS refuses $LATEST).")
    min: int = Field(0, ge=0, description="Lowest number the dialog accepts.")
    max: int = Field(1000, ge=1, description="Highest number the dialog accepts.")
    default: int | None = Field(None, description="Number the dialog offers first (default: the current one).")

    _bounds = model_validator(mode="after")(lambda self: _count_bounds(self))

    @model_validator(mode="after")
    def _qualified(self):
        if self.concurrency == "provisioned":
            if not self.qualifier:
                raise ValueError('provisioned concurrency is set on an alias or version: add qualifier = "live" '
                                 '(or concurrency = "reserved")')
            if self.qualifier == "$LATEST":
                raise ValueError("AWS refuses provisioned concurrency on $LATEST: name an alias or a published "
                                 "version")
        return self


class LambdaConcurrencyExecutor(_CountExecutor):
    """Provisioned concurrency (the seed's put-provisioned-concurrency-config: the default)
    or reserved concurrency. moto has no provisioned-concurrency API: that path is tested
    against botocore's own model of the Lambda API (its Stubber checks every parameter and
    answer shape), the reserved path against moto's server."""

    kind = "lambda_concurrency"
    name = "concurrency"

    @staticmethod
    def _provisioned(cfg) -> bool:
        return cfg.concurrency == "provisioned"

    def _where(self, cfg) -> dict[str, str]:
        return {"FunctionName": cfg.function, **({"Qualifier": cfg.qualifier} if self._provisioned(cfg) else {})}

    def read(self, cfg) -> int | None:
        lam = aws.client("lambda", cfg.aws)
        if not self._provisioned(cfg):
            got = _call("lambda:GetFunctionConcurrency", lam.get_function_concurrency, FunctionName=cfg.function)
            return got.get("ReservedConcurrentExecutions")
        got = self._provisioned_config(cfg)
        return None if got is None else got.get("RequestedProvisionedConcurrentExecutions")

    def _provisioned_config(self, cfg) -> dict | None:
        lam = aws.client("lambda", cfg.aws)
        try:
            return lam.get_provisioned_concurrency_config(**self._where(cfg))
        except Exception as e:  # noqa: BLE001
            if getattr(e, "response", {}).get("Error", {}).get("Code") == "ProvisionedConcurrencyConfigNotFoundException":
                return None
            raise ActionError(aws.failed(e, "lambda:GetProvisionedConcurrencyConfig")) from None

    def write(self, cfg, n: int | None) -> str:
        lam = aws.client("lambda", cfg.aws)
        where = self._where(cfg)
        if self._provisioned(cfg):
            if n is None:
                _call("lambda:DeleteProvisionedConcurrencyConfig", lam.delete_provisioned_concurrency_config, **where)
                return f"{cfg.function}:{cfg.qualifier}: provisioned concurrency removed"
            _call("lambda:PutProvisionedConcurrencyConfig", lam.put_provisioned_concurrency_config,
                  ProvisionedConcurrentExecutions=n, **where)
            return f"{cfg.function}:{cfg.qualifier}: provisioned concurrency {n} requested"
        if n is None:
            _call("lambda:DeleteFunctionConcurrency", lam.delete_function_concurrency, FunctionName=cfg.function)
            return f"{cfg.function}: reserved concurrency removed"
        _call("lambda:PutFunctionConcurrency", lam.put_function_concurrency, FunctionName=cfg.function,
              ReservedConcurrentExecutions=n)
        return f"{cfg.function}: reserved concurrency {n}"

    def step(self, cfg) -> Step:
        call = "lambda:PutProvisionedConcurrencyConfig" if self._provisioned(cfg) else "lambda:PutFunctionConcurrency"
        return Step(call, self._where(cfg))

    def default(self, cfg, now: int | None) -> int:
        return now if now is not None else cfg.min

    def _removal(self, cfg, guard: str, name: str) -> Plan:
        call = ("lambda:DeleteProvisionedConcurrencyConfig" if self._provisioned(cfg) else
                "lambda:DeleteFunctionConcurrency")
        return _base_plan(cfg, self.kind, guard, [Step(call, self._where(cfg))], {self.name: self.read(cfg)},
                          {self.name: None}, None, name)

    def execute(self, cfg, plan: Plan) -> Outcome:
        if self.name in plan.after and plan.after[self.name] is None:
            return _outcome(time.monotonic(), lambda: (self.write(cfg, None), {self.name: None}))
        return super().execute(cfg, plan)

    def verify(self, cfg, plan: Plan) -> Verification:
        n = plan.after[self.name]
        if not self._provisioned(cfg) or n is None:
            return _poll(cfg.verify_timeout, lambda: (self.read(cfg) == n, f"{self.name} reads {self.read(cfg)}"))

        def ready():  # provisioning takes minutes: READY with the number allocated, or FAILED with the reason
            got = self._provisioned_config(cfg) or {}
            status, allocated = got.get("Status"), got.get("AllocatedProvisionedConcurrentExecutions")
            if status == "FAILED":
                raise Settled(f"provisioning FAILED: {got.get('StatusReason', 'no reason given')}")
            return status == "READY" and allocated == n, f"{status or 'no config'}, {allocated} of {n} allocated"

        return _poll(cfg.verify_timeout, ready)


CONFIG = LambdaConcurrencyAction
EXECUTOR = LambdaConcurrencyExecutor
