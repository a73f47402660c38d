"""`lambda_rollback`: a Lambda alias back to the previous published version.
"""

from __future__ import annotations

import time
from typing import ClassVar, Literal

from pydantic import Field

from actions.kinds._aws import _base_plan, _call, _outcome, _PointBack, _poll
from actions.model import ActionError, Outcome, Plan, Step, Verification
from cockpit import aws
from cockpit.configmodel import AwsAction


class LambdaRollbackAction(AwsAction):
    """Point a Lambda alias back at the previous published version (or a named one)."""

    kind: Literal["lambda_rollback"]
    destructive_kind: ClassVar[bool] = True
    function: str = Field(description="Function name or ARN.")
    alias: str = Field(description="The alias traffic goes through, e.g. live.")
    version: str | None = Field(None, description="Version to point at (default: the newest one older than "
                                "the alias's).")


class LambdaRollbackExecutor(_PointBack):
    """An alias back to the previous published version (or a named one)."""

    kind = "lambda_rollback"
    undo_key = "version"

    def configured(self, cfg) -> str | None:
        return cfg.version

    def _alias(self, cfg) -> str:
        lam = aws.client("lambda", cfg.aws)
        got = _call("lambda:GetAlias", lam.get_alias, FunctionName=cfg.function, Name=cfg.alias)
        return got["FunctionVersion"]

    def _plan(self, cfg, guard: str, target: str | None, name: str) -> Plan:
        current = self._alias(cfg)
        if target is None:
            lam = aws.client("lambda", cfg.aws)
            versions, marker = [], None
            while True:
                page = _call("lambda:ListVersionsByFunction", lam.list_versions_by_function, FunctionName=cfg.function,
                             **({"Marker": marker} if marker else {}))
                versions += [int(v["Version"]) for v in page.get("Versions", []) if v["Version"].isdigit()]
                marker = page.get("NextMarker")
                if not marker:
                    break
            older = [v for v in versions if current.isdigit() and v < int(current)]
            if not older:
                raise ActionError(f"{cfg.function}:{cfg.alias} is on version {current}: no older published version")
            target = str(max(older))
        return _base_plan(cfg, self.kind, guard,
                          [Step("lambda:UpdateAlias", {"FunctionName": cfg.function, "Name": cfg.alias,
                                                       "FunctionVersion": target})],
                          {"alias": cfg.alias, "version": current}, {"version": target}, {"version": current}, name)

    def execute(self, cfg, plan: Plan) -> Outcome:
        target = plan.after["version"]

        def run():
            lam = aws.client("lambda", cfg.aws)
            _call("lambda:UpdateAlias", lam.update_alias, FunctionName=cfg.function, Name=cfg.alias,
                  FunctionVersion=target)
            return f"{cfg.function}:{cfg.alias} -> version {target}", {"version": target}

        return _outcome(time.monotonic(), run)

    def verify(self, cfg, plan: Plan) -> Verification:
        def check():
            now = self._alias(cfg)
            return now == plan.after["version"], f"{cfg.alias} points at version {now}"

        return _poll(cfg.verify_timeout, check)


CONFIG = LambdaRollbackAction
EXECUTOR = LambdaRollbackExecutor
