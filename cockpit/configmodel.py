"""The pieces every config model is built from: the base model (unknown keys are errors,
no coercion), the bases of source and action kinds, the checks of URLs, headers,
database URLs and series names, and the AWS settings. Each source or action kind's
own model lives in its kind's module (cockpit/signals/sources/<kind>.py,
actions/kinds/<kind>.py); the root model is cockpit.config."""

from __future__ import annotations

import re
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cockpit.safetext import SENSITIVE_HEADER, is_secret_ref


class Model(BaseModel):
    # strict: `refresh = true` or `interval = "5"` is a mistake to report, not to coerce
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SourceBase(Model):
    name: str = Field(description="Unique source name; panels refer to its series as 'name:series'.")
    interval: float = Field(
        5.0, ge=0.05, le=86400, description="Seconds between polls (measured from the end of one poll)."
    )
    timeout: float = Field(
        3.0, ge=0.05, le=600, description="Seconds before a poll is abandoned and reported as an error."
    )
    max_backoff: float = Field(
        15.0, ge=0.05, le=3600, description="Upper bound in seconds of the jittered backoff after repeated failures."
    )
    critical: bool = Field(True, description="Whether `cockpit check` fails when this source cannot be reached.")

    #: what of the dashboard it can feed: "signal" (numbers for the signal panels), "health"
    #: (the health panel) or "components" (rows of the components table)
    feeds: ClassVar[str] = "signal"
    #: whether it calls AWS (then it takes the top-level [aws] when it has none of its own)
    uses_aws: ClassVar[bool] = False
    #: what a row of the components table it feeds is called on the timeline
    row_word: ClassVar[str] = "component"

    def series_names(self) -> list[str]:
        """The series a source of this config produces; panels may refer only to these."""
        raise NotImplementedError

    def series_hint(self, series: str) -> str:
        """What to set for a panel's ``series`` this source does not produce (or "")."""
        return ""

    @field_validator("name")
    @classmethod
    def _name_chars(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError("use letters, digits, '-', '_' or '.', starting with a letter or digit")
        return v

    @model_validator(mode="after")
    def _timeout_fits(self):
        if self.timeout > self.interval * 10:
            raise ValueError(f"timeout {self.timeout}s is more than 10x the interval {self.interval}s")
        return self


def _check_url(v: str) -> str:
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an http:// or https:// URL")
    if parts.password:
        raise ValueError("credentials must not be written in the URL; send them in a header with env:NAME")
    return v


def _check_headers(v: dict[str, str]) -> dict[str, str]:
    for name, value in v.items():
        if SENSITIVE_HEADER.search(name) and not is_secret_ref(value):
            raise ValueError(f"header {name!r} looks secret: write it as \"env:NAME\" and export NAME")
        if value.startswith("env:") and not is_secret_ref(value):
            raise ValueError(f"header {name!r}: {value!r} is not a valid env:NAME reference")
    return v

SERIES_NAME = re.compile(r"[a-z][a-z0-9_]*")


def listed_once(names: list[str]) -> None:
    """Raise (for a validator) naming every name listed more than once (components, checks)."""
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"listed more than once: {', '.join(dupes)}")


def _some_of(names: list[str], most: int = 8) -> str:
    """'known: a, b, c' with at most ``most`` names, then how many more."""
    shown = ", ".join(names[:most])
    return f"known: {shown}" + (f" and {len(names) - most} more" if len(names) > most else "")


def _check_queries(v: dict[str, str]) -> dict[str, str]:
    """Series name -> query: names a panel can refer to, and no empty query."""
    bad = [n for n in v if not SERIES_NAME.fullmatch(n)]
    if bad:
        raise ValueError(f"series names are lower_case_with_underscores: {', '.join(bad)}")
    empty = [n for n, q in v.items() if not q.strip()]
    if empty:
        raise ValueError(f"empty query for {', '.join(empty)}")
    return v


class AwsSettings(Model):
    """Where AWS calls go: the standard credential chain, optionally a named profile."""

    profile: str | None = Field(None, description="Named profile from ~/.aws (default: the standard chain).")
    region: str | None = Field(None, description="Region (default: the profile's or AWS_DEFAULT_REGION).")
    endpoint_url: str | None = Field(None, description="Another endpoint (LocalStack, moto) instead of AWS.")
    timeout: float = Field(10.0, gt=0, le=300, description="Seconds to connect and to read each answer.")
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per call (botocore adaptive retries).")

    _endpoint = field_validator("endpoint_url")(classmethod(lambda cls, v: v if v is None else _check_url(v)))

GUARD_RULES = ("confirm", "type_to_confirm", "deny")  # in order of strictness

RESERVED_KEYS = set("naRmSDMxupfKqzATiO")


class ActionBase(Model):
    #: whether it calls AWS (then it takes the top-level [aws] when it has none of its own)
    uses_aws: ClassVar[bool] = False
    #: whether an action of this kind destroys or overwrites state unless it says otherwise
    destructive_kind: ClassVar[bool] = False

    key: str = Field(description="The key that starts it on the dashboard (one character).")
    name: str = Field(description="What it is called in the dialog, the timeline and the postmortem.")
    target: str = Field(description="What it acts on (a service, function, database); typed to confirm "
                        "destructive actions, and only one action per target runs at a time.")
    description: str = Field("", description="One line on what it does and when to use it.")
    components: list[str] = Field(default_factory=list, description="Components affected (the blast radius).")
    expected: str = Field("", description="The effect expected, shown in the dialog, e.g. 'error rate back "
                          "under 1% within 2 minutes'.")
    destructive: bool | None = Field(None, description="Whether it destroys or overwrites state. Default: by kind "
                                     "(restores and rollbacks are).")
    guard: Literal["confirm", "type_to_confirm", "deny"] | None = Field(
        None, description="Confirmation for this action; the stricter of this and the environment's rule applies.")
    timeout: float = Field(60.0, gt=0, le=3600, description="Seconds the execution may take before it is "
                           "abandoned (outcome unknown).")
    verify_timeout: float = Field(60.0, ge=0, le=3600, description="Seconds to wait for the intended state.")
    effect_after: float = Field(30.0, ge=0, le=3600, description="Seconds after execution when the key signals "
                                "are read again, so the timeline shows whether it helped.")

    @field_validator("key")
    @classmethod
    def _one_key(cls, v: str) -> str:
        if len(v) != 1 or not v.isascii() or not v.isalnum():
            raise ValueError("one letter or digit, e.g. \"r\"")
        if v in RESERVED_KEYS:
            raise ValueError(f"{v!r} is a dashboard key; the taken ones are {''.join(sorted(RESERVED_KEYS))}")
        return v


class AwsAction(ActionBase):
    uses_aws: ClassVar[bool] = True
    aws: AwsSettings | None = Field(None, description="AWS settings for this action (default: the top-level [aws]).")


def pg_password_problem(v: str) -> str | None:
    """Why a PostgreSQL connection string may not be written in the config, or None.
    Parsed by libpq's own rules (psycopg's conninfo), so a password with '#', '?' or '/'
    in it, or one given as ?password=, is found; the string is never echoed."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(v)
    except Exception:  # noqa: BLE001 - psycopg.ProgrammingError; its text quotes the string: not shown
        return ("not a connection string libpq can read (a password holding ?, #, / or @ must be %-encoded); "
                'a password belongs in "env:NAME" or ~/.pgpass anyway')
    if params.get("password"):
        return 'this URL carries a password, a secret: write "env:NAME" and export NAME with the URL ' \
               "(or use ~/.pgpass or PGPASSWORD)"
    return None


def _check_database(v: str) -> str:
    if is_secret_ref(v):
        return v
    if urlsplit(v).scheme not in ("postgresql", "postgres"):
        raise ValueError("a postgresql:// URL or env:NAME")
    problem = pg_password_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _count_bounds(action):
    """A number asked for in the dialog: min <= default <= max."""
    if action.min > action.max:
        raise ValueError(f"min ({action.min}) is above max ({action.max})")
    if action.default is not None and not action.min <= action.default <= action.max:
        raise ValueError(f"default ({action.default}) is outside min..max ({action.min}..{action.max})")
    return action
