"""AWS actions through boto3 (imported on first use, on the worker thread):

- ``lambda_env``: merge variables into a function's environment, keeping the others;
- ``lambda_concurrency``: provisioned (on an alias or version, verified READY) or
  reserved concurrency, the number asked for in the dialog;
- ``ecs_rollback``: a service back to the previous task-definition revision, forced
  new deployment;
- ``ecs_scale``: a service's desiredCount, the number asked for in the dialog.

Every plan reads the current values first, so the dialog shows what changes and the
undo knows what to put back. Credential and permission errors are one line.
"""

from __future__ import annotations

import re
import time
from typing import Any

from actions.model import MASK, ActionError, Outcome, Plan, Step, Verification, is_destructive
from cockpit import aws

SENSITIVE = re.compile(r"pass|secret|token|key|credential|auth", re.I)


def _call(what: str, fn, **params) -> Any:
    try:
        return fn(**params)
    except Exception as e:  # noqa: BLE001 - botocore's many errors: one line
        raise ActionError(aws.failed(e, what)) from None


def _base_plan(cfg, kind: str, guard: str, steps, before, after, undo, name: str | None = None, **kw) -> Plan:
    return Plan(action=name or cfg.name, key=cfg.key, kind=kind, target=cfg.target, steps=tuple(steps), before=before,
                after=after, destructive=is_destructive(cfg), blast_radius=tuple(cfg.components),
                expected=cfg.expected, guard=guard, undo=undo, **kw)


def _outcome(t0: float, fn) -> Outcome:
    try:
        details, changed = fn()
    except ActionError as e:
        return Outcome("failed", str(e), time.monotonic() - t0)
    return Outcome("ok", details, time.monotonic() - t0, changed)


class Settled(Exception):
    """Raised by a check when the target will never reach the state (e.g. FAILED): stop polling."""


def _poll(timeout: float, check) -> Verification:
    """Call ``check()`` -> (done, details) until done or ``timeout`` seconds passed (or
    ``check`` raises Settled: the target said it will not get there)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, details = check()
        except Settled as e:
            return Verification(False, str(e))
        except ActionError as e:
            done, details = False, str(e)
        if done:
            return Verification(True, details)
        if time.monotonic() >= deadline:
            return Verification(False, f"{details} after {timeout:g}s")
        time.sleep(min(2.0, max(0.1, timeout / 20)))


# ---------------------------------------------------------------- Lambda environment


def _shown(name: str, value: str | None) -> str | None:
    return MASK if value is not None and SENSITIVE.search(name) else value


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
        from cockpit.config import SecretError, resolve_secret

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


# ---------------------------------------------------------------- "move it to X; undo moves it back"


class _PointBack:
    """Executors whose plan moves one thing to a value (configured, or found by the plan)
    and whose undo moves it back to the value the plan found."""

    undo_key = ""

    def _plan(self, cfg, guard: str, value, name: str) -> Plan: ...

    def configured(self, cfg):
        """The value the config asks for (None: the plan works it out)."""
        return None

    def plan(self, cfg, guard: str) -> Plan:
        return self._plan(cfg, guard, self.configured(cfg), cfg.name)

    def undo(self, cfg, plan: Plan, guard: str) -> Plan | None:
        undo = plan.undo or {}
        if self.undo_key not in undo:
            return None
        if undo[self.undo_key] is None:  # there was no value before: undo removes it
            return self._removal(cfg, guard, f"undo {plan.action}")
        return self._plan(cfg, guard, undo[self.undo_key], f"undo {plan.action}")

    def _removal(self, cfg, guard: str, name: str) -> Plan | None:
        """The plan that takes the setting away again (None: this kind cannot)."""
        return None


# ---------------------------------------------------------------- numbers asked in the dialog


class _CountExecutor(_PointBack):
    """A number read now, asked for in the dialog (bounded), written, read back."""

    kind = ""
    name = "count"

    @property
    def undo_key(self) -> str:
        return self.name

    def configured(self, cfg) -> int | None:
        return cfg.default

    def read(self, cfg) -> int | None: ...

    def write(self, cfg, n: int) -> str: ...

    def step(self, cfg) -> Step: ...

    def default(self, cfg, now: int | None) -> int: ...

    def notes(self, cfg) -> tuple[str, ...]:
        return ()

    def _plan(self, cfg, guard: str, default: int | None, name: str) -> Plan:
        now = self.read(cfg)
        want = default if default is not None else self.default(cfg, now)
        ask = {"name": self.name, "now": now, "min": cfg.min, "max": cfg.max,
               "default": min(cfg.max, max(cfg.min, want))}
        return _base_plan(cfg, self.kind, guard, [self.step(cfg)], {self.name: now}, {}, None, name, ask=ask,
                          notes=self.notes(cfg))

    def execute(self, cfg, plan: Plan) -> Outcome:
        n = plan.after.get(self.name)
        if n is None:
            return Outcome("failed", f"no {self.name} was given")
        return _outcome(time.monotonic(), lambda: (self.write(cfg, n), {self.name: n}))

    def verify(self, cfg, plan: Plan) -> Verification:
        n = plan.after[self.name]

        def check():
            now = self.read(cfg)
            return now == n, f"{self.name} reads {now}"

        return _poll(cfg.verify_timeout, check)



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


# ---------------------------------------------------------------- ECS rollback


def _describe_service(cfg) -> dict:
    ecs = aws.client("ecs", cfg.aws)
    got = _call("ecs:DescribeServices", ecs.describe_services, cluster=cfg.cluster, services=[cfg.service])
    services = got.get("services") or []
    if not services:
        reason = (got.get("failures") or [{}])[0].get("reason", "not found")
        raise ActionError(f"ecs:DescribeServices: service {cfg.service} in {cfg.cluster}: {reason}")
    return services[0]


def family_revision(task_definition: str) -> tuple[str, int]:
    """('api', 7) from 'arn:...:task-definition/api:7' or 'api:7'."""
    name = task_definition.rsplit("/", 1)[-1]
    family, _, rev = name.rpartition(":")
    if not family or not rev.isdigit():
        raise ActionError(f"cannot read a family:revision from {task_definition!r}")
    return family, int(rev)


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



# ---------------------------------------------------------------- Lambda alias rollback


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



# ---------------------------------------------------------------- RDS restore


class RdsRestoreExecutor:
    """A new instance from the source instance's latest available snapshot (the source is
    left alone: point the application at the new one once it is verified)."""

    kind = "rds_restore"

    def plan(self, cfg, guard: str) -> Plan:
        rds = aws.client("rds", cfg.aws)
        snaps, marker = [], None
        while True:
            page = _call("rds:DescribeDBSnapshots", rds.describe_db_snapshots, DBInstanceIdentifier=cfg.instance,
                         **({"Marker": marker} if marker else {}))
            snaps += [s for s in page.get("DBSnapshots", []) if s.get("Status") == "available"]
            marker = page.get("Marker")
            if not marker:
                break
        if not snaps:
            raise ActionError(f"no available snapshot of {cfg.instance}")
        latest = max(snaps, key=lambda s: s["SnapshotCreateTime"])
        new_id = cfg.new_instance.format(instance=cfg.instance, time=time.strftime("%Y%m%d-%H%M", time.gmtime()))
        params = {"DBInstanceIdentifier": new_id, "DBSnapshotIdentifier": latest["DBSnapshotIdentifier"]}
        if cfg.instance_class:
            params["DBInstanceClass"] = cfg.instance_class
        return _base_plan(cfg, self.kind, guard, [Step("rds:RestoreDBInstanceFromDBSnapshot", params)],
                          {"snapshot": latest["DBSnapshotIdentifier"],
                           "snapshot_time": latest["SnapshotCreateTime"].isoformat()},
                          {"new_instance": new_id}, None,
                          notes=(f"{cfg.instance} itself is not touched",))

    def execute(self, cfg, plan: Plan) -> Outcome:
        params = dict(plan.steps[0].params)

        def run():
            rds = aws.client("rds", cfg.aws)
            got = _call("rds:RestoreDBInstanceFromDBSnapshot", rds.restore_db_instance_from_db_snapshot, **params)
            status = got.get("DBInstance", {}).get("DBInstanceStatus", "?")
            return f"{params['DBInstanceIdentifier']} from {params['DBSnapshotIdentifier']}: {status}", \
                {"new_instance": params["DBInstanceIdentifier"], "status": status}

        return _outcome(time.monotonic(), run)

    def verify(self, cfg, plan: Plan) -> Verification:
        new_id = plan.after["new_instance"]
        rds = aws.client("rds", cfg.aws)

        def check():
            got = _call("rds:DescribeDBInstances", rds.describe_db_instances, DBInstanceIdentifier=new_id)
            status = got["DBInstances"][0].get("DBInstanceStatus", "?")
            return status == "available", f"{new_id} is {status}"

        return _poll(cfg.verify_timeout, check)

    def undo(self, cfg, plan: Plan, guard: str) -> Plan | None:
        return None
