"""`pg_restore`: restore the latest backup into a PostgreSQL database, then check the
row counts (seed 000: "restore from backup ... verify data integrity").

The backup is the newest object under an ``s3://bucket/prefix`` (through boto3) or a
local file. A ``.sql`` file goes through ``psql -v ON_ERROR_STOP=1`` in one
transaction; anything else is taken as a custom-format dump for ``pg_restore --clean
--if-exists``. A password never appears on a command line: it goes to the child in
PGPASSWORD.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from actions.kinds.command import _tail
from actions.model import (
    ActionError,
    Outcome,
    Plan,
    Step,
    Verification,
    is_destructive,
    one_line,
)
from cockpit import aws
from cockpit.configmodel import ActionBase, AwsSettings, _check_database


def _url(cfg) -> str:
    from cockpit.safetext import SecretError, resolve_secret

    try:
        return resolve_secret(cfg.database, "database")
    except SecretError as e:
        raise ActionError(str(e)) from None


def _split_password(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment that carries it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, {}
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment)), \
        {"PGPASSWORD": parts.password}


def _latest(cfg) -> dict:
    """{'where', 'key'|'path', 'size', 'modified'} of the newest backup."""
    src = cfg.source
    if src.startswith("s3://"):
        bucket, _, prefix = src[5:].partition("/")
        s3 = aws.client("s3", cfg.aws)
        newest, token = None, None
        while True:
            kw = {"Bucket": bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            try:
                page = s3.list_objects_v2(**kw)
            except Exception as e:  # noqa: BLE001
                raise ActionError(aws.failed(e, "s3:ListObjectsV2")) from None
            for obj in page.get("Contents", []):
                # newest by time; S3 times are whole seconds, so a tie goes to the later name
                # (date-stamped backup names sort in time order)
                if not obj["Key"].endswith("/") and (
                        newest is None or (obj["LastModified"], obj["Key"]) > (newest["LastModified"], newest["Key"])):
                    newest = obj
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
        if newest is None:
            raise ActionError(f"no backup under {src}")
        return {"where": f"s3://{bucket}/{newest['Key']}", "bucket": bucket, "key": newest["Key"],
                "size": newest["Size"], "modified": newest["LastModified"].isoformat()}
    path = Path(src).expanduser()
    if not path.is_file():
        raise ActionError(f"no backup file at {path}")
    st = path.stat()
    from datetime import datetime, timezone

    return {"where": str(path), "path": str(path), "size": st.st_size,
            "modified": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat()}


def counts(url: str, tables: list[str]) -> dict[str, int | str]:
    """Rows per table now (a missing table reads as a message, not a crash)."""
    import psycopg
    from psycopg import sql

    out: dict[str, int | str] = {}
    try:
        with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
            conn.execute("SET statement_timeout = 30000")
            for t in tables:
                try:
                    out[t] = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                        sql.Identifier(*t.split(".")))).fetchone()[0]
                except psycopg.Error as e:
                    out[t] = one_line(e)
    except psycopg.Error as e:
        raise ActionError(f"cannot connect to the database: {one_line(e)}") from None
    return out


class PgRestoreAction(ActionBase):
    """Restore the latest backup into a PostgreSQL database (seed 000: restore, then verify data integrity):
    the newest object under an s3:// prefix or a local file; .sql files through psql, custom-format dumps
    through pg_restore --clean."""

    kind: Literal["pg_restore"]
    destructive_kind: ClassVar[bool] = True
    uses_aws: ClassVar[bool] = True  # an s3:// source
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    source: str = Field(description="s3://bucket/prefix/ (the newest object under it) or a local file path.")
    verify_counts: dict[str, int] = Field(default_factory=dict, description="Table -> fewest rows it must have "
                                          "after the restore.")
    aws: AwsSettings | None = Field(None, description="AWS settings for an s3:// source (default: [aws]).")
    timeout: float = Field(900.0, gt=0, le=86400, description="Seconds the restore may take.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))


class PgRestoreExecutor:
    kind = "pg_restore"

    def plan(self, cfg, guard: str) -> Plan:
        backup = _latest(cfg)
        before = {"rows": counts(_url(cfg), list(cfg.verify_counts))} if cfg.verify_counts else {}
        tool = "psql" if backup["where"].endswith(".sql") else "pg_restore --clean --if-exists --no-owner"
        return Plan(action=cfg.name, key=cfg.key, kind=self.kind, target=cfg.target,
                    steps=(Step("download" if "key" in backup else "read", {"backup": backup["where"],
                                                                            "size": backup["size"],
                                                                            "modified": backup["modified"]}),
                           Step(tool, {"database": cfg.database})),
                    before=before, after={"backup": backup["where"], "verify_counts": dict(cfg.verify_counts)},
                    destructive=is_destructive(cfg), blast_radius=tuple(cfg.components), expected=cfg.expected,
                    guard=guard, notes=(f"backup taken {backup['modified']}",))

    def execute(self, cfg, plan: Plan) -> Outcome:
        import subprocess

        t0 = time.monotonic()
        try:
            url, env_extra = _split_password(_url(cfg))
            backup = _latest(cfg)
            if backup["where"] != plan.after["backup"]:
                return Outcome("failed", f"a newer backup appeared ({backup['where']}) since the plan; "
                               "open the action again to see it", time.monotonic() - t0)
            with tempfile.TemporaryDirectory(prefix="cockpit-restore-") as tmp:
                if "key" in backup:
                    local = Path(tmp) / Path(backup["key"]).name
                    try:
                        aws.client("s3", cfg.aws).download_file(backup["bucket"], backup["key"], str(local))
                    except Exception as e:  # noqa: BLE001
                        raise ActionError(aws.failed(e, "s3:GetObject")) from None
                else:
                    local = Path(backup["path"])
                if local.suffix == ".sql":
                    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", url,
                            "-f", str(local)]
                else:
                    argv = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error",
                            "--single-transaction", "-d", url, str(local)]
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=cfg.timeout,
                                      env={**os.environ, **env_extra}, stdin=subprocess.DEVNULL)
        except ActionError as e:
            return Outcome("failed", str(e), time.monotonic() - t0)
        except FileNotFoundError as e:
            return Outcome("failed", f"{e.filename} not found: install the PostgreSQL client tools",
                           time.monotonic() - t0)
        except subprocess.TimeoutExpired:
            return Outcome("unknown", f"still restoring after {cfg.timeout:g}s and was killed; the single "
                           "transaction should have rolled back: check the database", time.monotonic() - t0)
        took = time.monotonic() - t0
        out = _tail((proc.stdout or "") + (proc.stderr or ""))
        if proc.returncode != 0:
            return Outcome("failed", f"{argv[0]} exit {proc.returncode}" + (f": {out}" if out else "")
                           + "; rolled back (single transaction)", took)
        return Outcome("ok", f"restored {backup['where']} ({backup['size']} bytes)", took)

    def verify(self, cfg, plan: Plan) -> Verification:
        if not cfg.verify_counts:
            return Verification(None, "nothing to verify with (no verify_counts)")
        try:
            now = counts(_url(cfg), list(cfg.verify_counts))
        except ActionError as e:
            return Verification(False, str(e))
        short = [f"{t} {now[t]} < {n}" if isinstance(now[t], int) else f"{t}: {now[t]}"
                 for t, n in cfg.verify_counts.items() if not (isinstance(now[t], int) and now[t] >= n)]
        if short:
            return Verification(False, "; ".join(short))
        return Verification(True, ", ".join(f"{t} {now[t]} rows" for t in cfg.verify_counts))

    def undo(self, cfg, plan: Plan, guard: str) -> Plan | None:
        return None


CONFIG = PgRestoreAction
EXECUTOR = PgRestoreExecutor
