"""`sql`: one configured statement in a transaction, with a statement timeout; an
optional query returning one number verifies it (and shows its value before)."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import Field, field_validator

from actions.model import (
    ActionError,
    Outcome,
    Plan,
    Step,
    Verification,
    is_destructive,
    one_line,
)
from cockpit.configmodel import ActionBase, _check_database


def _url(cfg) -> str:
    from cockpit.safetext import SecretError, resolve_secret

    try:
        return resolve_secret(cfg.database, "database")
    except SecretError as e:
        raise ActionError(str(e)) from None


def _connect(cfg):
    import psycopg

    try:
        conn = psycopg.connect(_url(cfg), connect_timeout=10, application_name="cockpit-action")
    except psycopg.Error as e:
        raise ActionError(f"cannot connect to {cfg.target}: {one_line(e)}") from None
    conn.execute(f"SET statement_timeout = {int(cfg.statement_timeout * 1000)}")
    conn.commit()
    return conn


def _number(conn, sql: str) -> float | None:
    row = conn.execute(sql).fetchone()
    conn.rollback()
    if not row or row[0] is None:
        return None
    return float(row[0])


class SqlAction(ActionBase):
    """A configured SQL statement run with a statement timeout (seed 004's recovery steps)."""

    kind: Literal["sql"]
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    statement: str = Field(min_length=1, description="The statement to run, in one transaction.")
    verify_sql: str | None = Field(None, description="A query returning one number; verified when it is > 0.")
    statement_timeout: float = Field(30.0, gt=0, le=3600, description="Seconds before the database cancels it.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))


class SqlExecutor:
    kind = "sql"

    def plan(self, cfg, guard: str) -> Plan:
        before = {}
        if cfg.verify_sql:
            import psycopg

            conn = _connect(cfg)
            try:
                before["check"] = _number(conn, cfg.verify_sql)
            except psycopg.Error as e:
                raise ActionError(f"verify_sql failed: {one_line(e)}") from None
            finally:
                conn.close()
        return Plan(action=cfg.name, key=cfg.key, kind=self.kind, target=cfg.target,
                    steps=(Step("sql", {"statement": cfg.statement, "statement_timeout": cfg.statement_timeout}),),
                    before=before, after={"statement": cfg.statement}, destructive=is_destructive(cfg),
                    blast_radius=tuple(cfg.components), expected=cfg.expected, guard=guard)

    def execute(self, cfg, plan: Plan) -> Outcome:
        import psycopg

        t0 = time.monotonic()
        try:
            conn = _connect(cfg)
        except ActionError as e:
            return Outcome("failed", str(e), time.monotonic() - t0)
        try:
            with conn.transaction():
                cur = conn.execute(plan.after["statement"])
                rows = cur.rowcount
            return Outcome("ok", f"{rows} row(s)" if rows >= 0 else "done", time.monotonic() - t0)
        except psycopg.errors.QueryCanceled:
            return Outcome("failed", f"cancelled after {cfg.statement_timeout:g}s (statement_timeout); "
                           "rolled back", time.monotonic() - t0)
        except psycopg.OperationalError as e:
            # the connection broke: the commit may or may not have happened
            return Outcome("unknown", one_line(e), time.monotonic() - t0)
        except psycopg.Error as e:
            return Outcome("failed", f"{one_line(e)}; rolled back", time.monotonic() - t0)
        finally:
            conn.close()

    def verify(self, cfg, plan: Plan) -> Verification:
        if not cfg.verify_sql:
            return Verification(None, "nothing to verify with (no verify_sql)")
        import psycopg

        try:
            conn = _connect(cfg)
            try:
                value = _number(conn, cfg.verify_sql)
            finally:
                conn.close()
        except (ActionError, psycopg.Error) as e:
            return Verification(False, one_line(e) if not isinstance(e, ActionError) else str(e))
        return Verification(value is not None and value > 0, f"check = {value:g}" if value is not None else "no value")

    def undo(self, cfg, plan: Plan, guard: str) -> Plan | None:
        return None


CONFIG = SqlAction
EXECUTOR = SqlExecutor
