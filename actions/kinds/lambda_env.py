"""`lambda_env`: merge variables into a Lambda function's environment, keeping the others
(seed 000's emergency mode); undo puts back what it found (secret values masked).
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import Field

from actions.kinds._aws import SENSITIVE, _base_plan, _call, _outcome, _poll, _shown
from actions.model import MASK, ActionError, Outcome, Plan, Step, Verification
from cockpit import aws
from cockpit.configmodel import AwsAction


class LambdaEnvAction(AwsAction):
    """Merge variables into a Lambda function's environment, keeping all the others
    (seed 000's emergency mode: EMERGENCY_MODE, FALLBACK_RESPONSES, DISABLE_AI_PROCESSING).
    Undo puts back the values it found."""

    kind: Literal["lambda_env"]
    function: str = Field(description="Function name or ARN.")
    variables: dict[str, str] = Field(min_length=1, description="Variables to set; secret values as env:NAME.")


class LambdaEnvExecutor:
    kind = "lambda_env"

    def _env(self, cfg) -> dict[str, str]:
        lam = aws.client("lambda", cfg.aws)
        conf = _call("lambda:GetFunctionConfiguration", lam.get_function_configuration, FunctionName=cfg.function)
        return dict((conf.get("Environment") or {}).get("Variables") or {})

    def _plan(self, cfg, guard: str, set_: dict[str, str], remove: list[str], name: str) -> Plan:
        current = self._env(cfg)
        names = sorted(set(set_) | set(remove))
        before = {n: _shown(n, current.get(n)) for n in names}
        after = {"set": {n: _shown(n, v) if not v.startswith("env:") else v for n, v in set_.items()},
                 "remove": list(remove)}
        undo_set = {n: current[n] for n in names if n in current and not SENSITIVE.search(n)}
        undo = None if any(SENSITIVE.search(n) for n in names if n in current) else {
            "set": undo_set, "remove": [n for n in names if n not in current]}
        notes = ("already set: nothing would change",) if all(current.get(n) == v for n, v in set_.items()) \
            and not any(n in current for n in remove) else ()
        return _base_plan(cfg, self.kind, guard,
                          [Step("lambda:UpdateFunctionConfiguration",
                                {"FunctionName": cfg.function, "merge": after["set"], "remove": list(remove),
                                 "keeps": f"{len(set(current) - set(names))} other variable(s)"})],
                          before, after, undo, name, notes=notes)

    def plan(self, cfg, guard: str) -> Plan:
        return self._plan(cfg, guard, dict(cfg.variables), [], cfg.name)

    def _values(self, cfg, plan: Plan) -> dict[str, str]:
        from cockpit.safetext import SecretError, resolve_secret

        wanted = plan.after["set"]
        out = {}
        for n, v in wanted.items():
            if v == MASK:  # a secret shown masked in the plan: take it from the config again
                v = cfg.variables.get(n, v)
            try:
                out[n] = resolve_secret(v, f"variables.{n}")
            except SecretError as e:
                raise ActionError(str(e)) from None
        return out

    def execute(self, cfg, plan: Plan) -> Outcome:
        def run():
            values = self._values(cfg, plan)
            current = self._env(cfg)  # read again: never drop what changed since the plan
            merged = {k: v for k, v in current.items() if k not in plan.after["remove"]}
            merged.update(values)
            lam = aws.client("lambda", cfg.aws)
            _call("lambda:UpdateFunctionConfiguration", lam.update_function_configuration,
                  FunctionName=cfg.function, Environment={"Variables": merged})
            kept = len(set(current) - set(values) - set(plan.after["remove"]))
            return (f"{len(values)} set, {len(plan.after['remove'])} removed, {kept} kept on {cfg.function}",
                    {n: _shown(n, merged.get(n)) for n in [*values, *plan.after["remove"]]})

        return _outcome(time.monotonic(), run)

    def verify(self, cfg, plan: Plan) -> Verification:
        lam = aws.client("lambda", cfg.aws)
        wanted = self._values(cfg, plan)

        def check():
            conf = _call("lambda:GetFunctionConfiguration", lam.get_function_configuration, FunctionName=cfg.function)
            env = (conf.get("Environment") or {}).get("Variables") or {}
            status = conf.get("LastUpdateStatus", "Successful")
            ok = status == "Successful" and all(env.get(n) == v for n, v in wanted.items()) and \
                not any(n in env for n in plan.after["remove"])
            return ok, f"{cfg.function}: update {status}" + ("" if ok else ", variables not (yet) as intended")

        return _poll(cfg.verify_timeout, check)

    def undo(self, cfg, plan: Plan, guard: str) -> Plan | None:
        if plan.undo is None:
            return None
        return self._plan(cfg, guard, plan.undo["set"], plan.undo["remove"], f"undo {plan.action}")


CONFIG = LambdaEnvAction
EXECUTOR = LambdaEnvExecutor
