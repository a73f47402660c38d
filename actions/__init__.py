"""Remediation actions as UI-free command objects (plan -> confirm -> execute -> verify).

Never imports textual. :func:`real_executors` for `cockpit run` and `cockpit demo`;
:func:`sandbox_executors` for drills (which are never given the real ones).
"""

from __future__ import annotations

from actions.model import ActionError, Outcome, Plan, Step, Verification, guard_for
from actions.runner import ActionRunner, Report

__all__ = ["ActionError", "ActionRunner", "Outcome", "Plan", "Report", "Step", "Verification", "guard_for",
           "real_executors", "sandbox_executors"]


def real_executors() -> dict:
    """Every kind's executor. Their modules import boto3 and psycopg inside the calls only."""
    from actions.kinds.aws import (EcsRollbackExecutor, EcsScaleExecutor, LambdaConcurrencyExecutor, LambdaEnvExecutor,
                                   LambdaRollbackExecutor, RdsRestoreExecutor)
    from actions.kinds.command import CommandExecutor
    from actions.kinds.http import HttpExecutor
    from actions.kinds.pgrestore import PgRestoreExecutor
    from actions.kinds.sql import SqlExecutor

    executors = (HttpExecutor(), CommandExecutor(), SqlExecutor(), LambdaEnvExecutor(), LambdaConcurrencyExecutor(),
                 LambdaRollbackExecutor(), EcsRollbackExecutor(), EcsScaleExecutor(), PgRestoreExecutor(),
                 RdsRestoreExecutor())
    return {e.kind: e for e in executors}


def sandbox_executors() -> dict:
    from actions.sandbox import SandboxExecutor
    from cockpit.config import ACTION_KINDS

    return {k: SandboxExecutor(k) for k in ACTION_KINDS}
