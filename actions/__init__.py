"""Remediation actions as UI-free command objects (plan -> confirm -> execute -> verify).

Never imports textual. :func:`real_executors` for `cockpit run` and `cockpit demo`;
:func:`sandbox_executors` for drills (which are never given the real ones).
"""

from __future__ import annotations

from actions.model import ActionError, Outcome, Plan, Step, Verification, guard_for
from actions.runner import ActionRunner, Report

__all__ = ["ActionError", "ActionRunner", "Outcome", "Plan", "Report", "Step", "Verification", "guard_for",
           "real_executors", "sandbox_executors"]


def real_executors(used: list[str] | None = None) -> dict:
    """The executor of every kind (or of the kinds ``used``), from the kind registry. Their
    modules import boto3 and psycopg inside the calls only."""
    from cockpit import kinds

    return {k: kinds.action_module(k).EXECUTOR() for k in (used if used is not None else kinds.action_kinds())}


def sandbox_executors() -> dict:
    from actions.sandbox import SandboxExecutor
    from cockpit import kinds

    return {k: SandboxExecutor(k) for k in kinds.action_kinds()}
