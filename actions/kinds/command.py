"""`command`: a program with arguments, never through a shell (kubectl rollout undo,
kubectl scale, terraform apply, a runbook script), with a timeout and its output kept."""

from __future__ import annotations

import subprocess
import time
from typing import Literal

from pydantic import Field

from actions.model import ActionError, Outcome, Plan, Step, Verification, is_destructive
from cockpit.configmodel import ActionBase
from cockpit.programs import cwd_problem, resolve_env, start_problem

OUTPUT_KEPT = 400  # characters of output in the outcome


def _env(cfg) -> dict[str, str]:
    from cockpit.safetext import SecretError

    try:
        return resolve_env(cfg.env, "env")
    except SecretError as e:
        raise ActionError(str(e)) from None


def _tail(out: str) -> str:
    out = " ".join(out.split())
    return out if len(out) <= OUTPUT_KEPT else "…" + out[-OUTPUT_KEPT:]


def run(argv: list[str], cfg, timeout: float) -> tuple[str, str]:
    """(result, details) of running ``argv``: ok on exit 0; unknown when it had to be killed.
    Its output is outside text: the desk cleans it before it is shown or journaled."""
    problem = cwd_problem(cfg.cwd)
    if problem:
        return "failed", f"{problem}; nothing ran"
    try:
        proc = subprocess.run(argv, cwd=cfg.cwd, env=_env(cfg), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except ActionError as e:
        return "failed", str(e)
    except OSError as e:  # the program could not be started
        return "failed", start_problem(e, argv[0])
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or "") + (e.stderr or "") if isinstance(e.stdout, str) else ""
        return "unknown", (f"still running after {timeout:g}s and was killed; the target may be half-changed"
                           + (f": {_tail(out)}" if out else ""))
    out = _tail((proc.stdout or "") + (proc.stderr or ""))
    if proc.returncode == 0:
        return "ok", "exit 0" + (f": {out}" if out else "")
    return "failed", f"exit {proc.returncode}" + (f": {out}" if out else "")


class CommandAction(ActionBase):
    """A program run with arguments, no shell: kubectl, terraform, a runbook script."""

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1, description="Program and arguments, e.g. [\"kubectl\", \"rollout\", "
                            "\"undo\", \"deployment/api\"].")
    undo_argv: list[str] | None = Field(None, description="The command that undoes it; none: not undoable.")
    verify_argv: list[str] | None = Field(None, description="A command whose exit 0 verifies the result.")
    cwd: str | None = Field(None, description="Working directory.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment; secret values as env:NAME.")


class CommandExecutor:
    kind = "command"

    def _plan(self, cfg, guard: str, argv: list[str], undo_argv: list[str] | None, name: str) -> Plan:
        return Plan(action=name, key=cfg.key, kind=self.kind, target=cfg.target,
                    steps=(Step("run", {"argv": list(argv), "cwd": cfg.cwd, "env": dict(cfg.env)}),),
                    before={}, after={"argv": list(argv)}, destructive=is_destructive(cfg),
                    blast_radius=tuple(cfg.components), expected=cfg.expected, guard=guard,
                    undo={"argv": list(undo_argv)} if undo_argv else None)

    def plan(self, cfg, guard: str) -> Plan:
        return self._plan(cfg, guard, cfg.argv, cfg.undo_argv, cfg.name)

    def execute(self, cfg, plan: Plan) -> Outcome:
        t0 = time.monotonic()
        result, details = run(plan.after["argv"], cfg, cfg.timeout)
        return Outcome(result, details, time.monotonic() - t0)

    def verify(self, cfg, plan: Plan) -> Verification:
        if not cfg.verify_argv:
            return Verification(None, "nothing to verify with (no verify_argv)")
        deadline = time.monotonic() + cfg.verify_timeout
        while True:
            result, details = run(cfg.verify_argv, cfg, max(1.0, cfg.verify_timeout))
            if result == "ok" or time.monotonic() >= deadline:
                return Verification(result == "ok", f"{cfg.verify_argv[0]}: {details}")
            time.sleep(1.0)

    def undo(self, cfg, plan: Plan, guard: str) -> Plan | None:
        if plan.undo is None:
            return None
        return self._plan(cfg, guard, plan.undo["argv"], plan.after["argv"], f"undo {plan.action}")


CONFIG = CommandAction
EXECUTOR = CommandExecutor
