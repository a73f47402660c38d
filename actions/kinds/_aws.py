"""What the AWS action kinds share (boto3, imported on first use on the worker thread):
the one-line errors, the plan skeleton, polling for the intended state, moving one
thing to a value and back, a number asked in the dialog, an ECS service.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import Field

from actions.model import (
    MASK,
    ActionError,
    Outcome,
    Plan,
    Step,
    Verification,
    is_destructive,
)
from cockpit import aws
from cockpit.configmodel import AwsAction

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


def _shown(name: str, value: str | None) -> str | None:
    return MASK if value is not None and SENSITIVE.search(name) else value


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


class EcsServiceAction(AwsAction):
    cluster: str = Field(description="Cluster name or ARN.")
    service: str = Field(description="Service name.")
