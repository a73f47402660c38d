"""`rds_restore`: a new RDS instance from the source instance's latest available snapshot.
"""

from __future__ import annotations

import time
from typing import ClassVar, Literal

from pydantic import Field

from actions.kinds._aws import _base_plan, _call, _outcome, _poll
from actions.model import ActionError, Outcome, Plan, Step, Verification
from cockpit import aws
from cockpit.configmodel import AwsAction


class RdsRestoreAction(AwsAction):
    """Restore a new RDS instance from the source instance's latest available snapshot."""

    kind: Literal["rds_restore"]
    destructive_kind: ClassVar[bool] = True
    instance: str = Field(description="The source DB instance identifier.")
    new_instance: str = Field("{instance}-restored-{time}", description="Identifier of the new instance; "
                              "{instance} and {time} (UTC, YYYYMMDD-HHMM) are filled in.")
    instance_class: str | None = Field(None, description="Instance class (default: the snapshot's).")
    verify_timeout: float = Field(1800.0, ge=0, le=7200, description="Seconds to wait for the new instance "
                                  "to be available.")


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


CONFIG = RdsRestoreAction
EXECUTOR = RdsRestoreExecutor
