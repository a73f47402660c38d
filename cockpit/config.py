"""The cockpit's TOML configuration as pydantic models.

Every model forbids unknown keys, so a typo is an error naming its path. Secrets
are never written in the file: a header or token value of the form ``env:NAME``
is a reference, resolved by :func:`resolve_secret` at the moment of use and
never stored on the model.

Environment overrides: ``COCKPIT_<SECTION>__<KEY>=value`` replaces one key
before validation. Sources are addressed by name, e.g.
``COCKPIT_SOURCES__METRICS__URL=http://127.0.0.1:9000/metrics``. Values are
read as TOML literals when they parse as one (numbers, booleans, arrays) and
as plain strings otherwise.
"""

from __future__ import annotations

import difflib
import os
import re
import string
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from cockpit.model import quantile_series
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
SENSITIVE_HEADER = re.compile(r"authorization|token|secret|api[-_]?key|password|cookie|signature", re.I)
OVERRIDE_PREFIX = "COCKPIT_"


class ConfigError(Exception):
    """A config that cannot be used. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class SecretError(Exception):
    """A secret reference that cannot be resolved right now."""


def is_secret_ref(value: str) -> bool:
    return bool(ENV_REF.match(value))


#: set by a drill: no ``env:`` reference is read in this process (a tape's config is data)
_SECRETS_LOCKED = ""


def lock_secrets(why: str) -> None:
    """From now on :func:`resolve_secret` refuses every reference (a drill sends nothing
    anywhere and reads no secret, whatever its tape's config says)."""
    global _SECRETS_LOCKED
    _SECRETS_LOCKED = why


def resolve_secret(value: str, where: str = "") -> str:
    """Resolve an ``env:NAME`` reference at the moment of use; plain values pass through."""
    m = ENV_REF.match(value)
    if not m:
        return value
    name = m.group(1)
    if _SECRETS_LOCKED:
        raise SecretError(f"{_SECRETS_LOCKED}: {value} is not read")
    try:
        value = os.environ[name]
    except KeyError:
        place = f" (referenced by {where})" if where else ""
        raise SecretError(f"environment variable {name} is not set{place}") from None
    from cockpit.safetext import SECRETS

    SECRETS.add(value)  # whatever the cockpit sends, it never shows, journals or records
    return value


def register_secrets(raw: Any, environ: Mapping[str, str]) -> None:
    """Every value an ``env:NAME`` in the config refers to (and its parts) goes to the
    secret registry at load time, so it is redacted from everything, even before first use."""
    from cockpit.safetext import SECRETS

    stack = [raw]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            m = ENV_REF.match(node)
            if m and environ.get(m.group(1)):
                SECRETS.add(environ[m.group(1)])


class Model(BaseModel):
    # strict: `refresh = true` or `interval = "5"` is a mistake to report, not to coerce
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# ---------------------------------------------------------------- service / settings


class ServiceConfig(Model):
    """What is being watched."""

    name: str = Field(description="Service name shown in the header and the postmortem.", min_length=1)
    environment: str = Field(
        "production", description="Environment name (production, staging, ...); shown in the header."
    )
    production: bool | None = Field(
        None,
        description="Whether this environment is production. Default: true when the environment name "
        "starts with 'prod'.",
    )

    @property
    def is_production(self) -> bool:
        if self.production is not None:
            return self.production
        return self.environment.lower().startswith("prod")


class Settings(Model):
    """Cockpit-wide behaviour."""

    history: float = Field(
        3600, ge=60, le=7 * 86400, description="Seconds of history kept per series (ring buffer size), 60 s to 7 days."
    )
    refresh: float = Field(0.5, ge=0.1, le=10, description="Seconds between dashboard refreshes.")
    stale_factor: float = Field(
        2.0,
        ge=1,
        le=100,
        description="A series is stale when its newest good sample is older than "
        "stale_factor x interval + timeout of its source.",
    )
    actor: str | None = Field(None, description="Your name on the timeline. Default: the OS user.")
    state_hold: float = Field(
        0.0, ge=0, le=3600,
        description="Seconds a health check or component must stay in a worse state (degraded, unhealthy) "
        "before it is an alert. A state is a fact the service reports, so by default at once.",
    )
    state_clear_hold: float = Field(
        30.0, ge=0, le=86400,
        description="Seconds a health check or component must stay in a better state before its recovery is an "
        "alert, so a service flapping between healthy and degraded gives one alert, not one per poll.",
    )


# ---------------------------------------------------------------- sources


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


class _HttpCheck(SourceBase):
    """What an HTTP health check expects of an answer (shared by health and component checks)."""

    headers: dict[str, str] = Field(
        default_factory=dict, description="Request headers; secret values as env:NAME."
    )
    expect_status: list[int] = Field(
        [200], min_length=1, description="HTTP status codes that mean the service answered healthy."
    )
    expect_body: str | None = Field(None, description="Substring the body must contain to count as healthy.")
    status_field: str | None = Field(
        "status",
        description="JSON field holding the service's own verdict (healthy/degraded/unhealthy); "
        "empty to ignore the body.",
    )

    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))


class HttpHealthSource(_HttpCheck):
    """An HTTP health endpoint (`/health`): status code, optional body check and JSON status field."""

    kind: Literal["http_health"]
    url: str = Field(description="The health URL.")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))


class HttpComponentsSource(_HttpCheck):
    """Per-component health endpoints, one GET each (`/health/component/<name>`)."""

    kind: Literal["http_components"]
    url: str = Field(description="URL template with {name}, e.g. http://host/health/component/{name}.")
    components: list[str] = Field(min_length=1, description="Component names to check.")
    max_in_flight: int = Field(64, ge=1, le=1024, description="Most component requests in flight at once.")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))

    @field_validator("url")
    @classmethod
    def _has_placeholder(cls, v: str) -> str:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as e:
            raise ValueError(f"bad URL template: {e}") from None
        if "name" not in fields:
            raise ValueError("the URL must contain {name}, replaced by each component's name")
        if fields - {"name"}:
            others = ", ".join("{" + f + "}" for f in sorted(fields - {"name"}))
            raise ValueError(f"the URL may only contain {{name}}, found {others}")
        return v

    @field_validator("components")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dupes = sorted({c for c in v if v.count(c) > 1})
        if dupes:
            raise ValueError(f"listed more than once: {', '.join(dupes)}")
        return v


class PromScrapeSource(SourceBase):
    """A Prometheus text-format `/metrics` endpoint, scraped directly. Rates and
    quantiles come from counter and histogram deltas between two scrapes."""

    kind: Literal["prom_scrape"]
    url: str = Field(description="The /metrics URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    requests_metric: str = Field("http_requests_total", description="Counter of all requests.")
    errors_metric: str = Field("http_errors_total", description="Counter of failed requests.")
    duration_metric: str = Field(
        "http_request_duration_seconds", description="Histogram of request durations (seconds)."
    )
    cost_metric: str | None = Field(
        "ai_token_cost_usd_total", description="Counter of money spent (USD); empty for none."
    )
    quantiles: list[float] = Field([0.5, 0.95, 0.99], description="Latency quantiles to compute (0-1).")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))

    @field_validator("quantiles")
    @classmethod
    def _q_range(cls, v: list[float]) -> list[float]:
        bad = [q for q in v if not 0 < q < 1]
        if bad:
            raise ValueError(f"quantiles must be between 0 and 1 exclusive, got {bad}")
        if len(set(v)) != len(v):
            raise ValueError("each quantile may be listed once")
        return v


SERIES_NAME = re.compile(r"[a-z][a-z0-9_]*")


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


class PromQuerySource(SourceBase):
    """The Prometheus HTTP API: one PromQL query per series, each answering one number
    (seed 001: sum(rate(http_errors_total[5m])), histogram_quantile(0.95, ...)). At
    start-up a range query fills the sparklines with the recent past."""

    kind: Literal["prom_query"]
    url: str = Field(description="Prometheus base URL, e.g. http://prometheus:9090 (the API is under /api/v1).")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    queries: dict[str, str] = Field(min_length=1, description="Series name -> PromQL answering one number, e.g. "
                                    "error_rate = \"sum(rate(http_errors_total[5m])) / "
                                    "sum(rate(http_requests_total[5m]))\".")
    backfill: float = Field(3600.0, ge=0, le=7 * 86400, description="Seconds of history loaded at start-up "
                            "with a range query (0: none).")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))

    _queries = field_validator("queries")(classmethod(lambda cls, v: _check_queries(v)))


class PgQuerySource(SourceBase):
    """PostgreSQL queries each answering one number, e.g. seed 000's cost today:
    SELECT SUM(token_usage * 0.00002) FROM ai_action_logs WHERE created_at >= CURRENT_DATE."""

    kind: Literal["pg_query"]
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    queries: dict[str, str] = Field(min_length=1, description="Series name -> SQL answering one number "
                                    "(NULL reads as no data).")
    statement_timeout: float = Field(5.0, gt=0, le=600, description="Seconds before the database cancels a query.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))

    _queries = field_validator("queries")(classmethod(lambda cls, v: _check_queries(v)))


class PgHealthSource(SourceBase):
    """A PostgreSQL database as a component (seed 004's checks): connections used against
    max_connections, queries running longer than ``long_query_after``, blocked queries."""

    kind: Literal["pg_health"]
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    component: str = Field("database", description="Its name in the components table.")
    long_query_after: float = Field(300.0, gt=0, description="Seconds after which a running query counts as "
                                    "long (seed 004: 5 minutes).")
    connections_warn: float = Field(0.8, gt=0, le=1, description="Share of max_connections in use that is degraded.")
    connections_crit: float = Field(0.95, gt=0, le=1, description="Share of max_connections in use that is "
                                    "unhealthy.")
    statement_timeout: float = Field(5.0, gt=0, le=600, description="Seconds before the database cancels a check.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))

    @property
    def components(self) -> list[str]:
        return [self.component]


class CloudWatchMetric(Model):
    """One series from CloudWatch: a metric with a statistic, or metric math over the others."""

    namespace: str | None = Field(None, description="e.g. AWS/ApiGateway, AWS/Lambda, AWS/SQS.")
    metric: str | None = Field(None, description="e.g. 5XXError, Errors, Duration, ApproximateNumberOfMessagesVisible.")
    dimensions: dict[str, str] = Field(default_factory=dict, description="e.g. {FunctionName = \"ai-core\"}.")
    stat: str = Field("Sum", description="Sum, Average, Maximum, Minimum, SampleCount or a percentile like p95.")
    expression: str | None = Field(None, description="Metric math over the other series' names instead of a metric, "
                                   "e.g. \"errors / requests\".")
    scale: float = Field(1.0, description="Multiply the value, e.g. 0.001 to turn milliseconds into seconds.")

    @model_validator(mode="after")
    def _one_of(self):
        if (self.expression is None) == (self.metric is None):
            raise ValueError("give either metric (with namespace) or expression")
        if self.metric is not None and not self.namespace:
            raise ValueError("a metric needs its namespace")
        if not re.fullmatch(r"Sum|Average|Maximum|Minimum|SampleCount|p\d{1,2}(\.\d+)?", self.stat):
            raise ValueError(f"unknown statistic {self.stat!r}")
        return self


class CloudWatchSource(SourceBase):
    """CloudWatch GetMetricData (one call for every series, metric math included): the newest datapoint
    of each in the last ``lookback`` seconds."""

    kind: Literal["cloudwatch"]
    metrics: dict[str, CloudWatchMetric] = Field(min_length=1, description="Series name -> metric or expression.")
    period: int = Field(60, ge=1, le=86400, description="Seconds per datapoint (CloudWatch's Period).")
    lookback: float = Field(900.0, gt=0, le=86400 * 14, description="How far back to look for the newest datapoint.")
    interval: float = Field(60.0, ge=1, le=86400, description="Seconds between polls (each poll is a billed call).")
    timeout: float = Field(10.0, ge=0.05, le=600, description="Seconds before a poll is abandoned.")
    aws: AwsSettings | None = Field(None, description="AWS settings (default: the top-level [aws]).")

    @field_validator("metrics")
    @classmethod
    def _names(cls, v: dict) -> dict:
        _check_queries({k: "x" for k in v})
        return v


class CloudWatchLogsSource(SourceBase):
    """CloudWatch Logs FilterLogEvents: how many events match a pattern in the last ``window``
    seconds (seed 000: ERROR in the function's log group)."""

    kind: Literal["cloudwatch_logs"]
    log_group: str = Field(description="e.g. /aws/lambda/bedrock-ai-core.")
    pattern: str = Field("ERROR", description="CloudWatch Logs filter pattern.")
    window: float = Field(900.0, gt=0, le=86400, description="Seconds back to count (seed 000: 15 minutes).")
    series: str = Field("errors", description="Series name of the count.")
    max_events: int = Field(10000, ge=1, le=1_000_000, description="Stop counting here (shown as at least N).")
    interval: float = Field(60.0, ge=1, le=86400, description="Seconds between polls.")
    timeout: float = Field(10.0, ge=0.05, le=600, description="Seconds before a poll is abandoned.")
    aws: AwsSettings | None = Field(None, description="AWS settings (default: the top-level [aws]).")


AWS_CHECK_FIELDS = {"ecs_service": ("cluster", "service"), "lambda": ("function",), "dynamodb": ("table",),
                    "sqs": ("queue_url",), "rds": ("instance",)}


class AwsCheck(Model):
    """One AWS resource as a row of the components table."""

    name: str = Field(description="Its name in the components table.")
    type: Literal["ecs_service", "lambda", "dynamodb", "sqs", "rds"] = Field(description="What kind of resource.")
    cluster: str | None = Field(None, description="ecs_service: the cluster.")
    service: str | None = Field(None, description="ecs_service: the service.")
    function: str | None = Field(None, description="lambda: function name or ARN.")
    table: str | None = Field(None, description="dynamodb: table name.")
    queue_url: str | None = Field(None, description="sqs: the queue URL.")
    instance: str | None = Field(None, description="rds: DB instance identifier.")
    max_visible: int | None = Field(None, ge=0, description="sqs: more visible messages than this is degraded.")
    emergency_variables: list[str] = Field(
        default_factory=lambda: ["EMERGENCY_MODE", "FALLBACK_RESPONSES", "DISABLE_AI_PROCESSING"],
        description="lambda: variables that, set to true, mean the function runs in emergency mode (degraded).")

    @model_validator(mode="after")
    def _needs(self):
        missing = [f for f in AWS_CHECK_FIELDS[self.type] if not getattr(self, f)]
        if missing:
            raise ValueError(f"{self.type} checks need {', '.join(missing)}")
        return self


class AwsStatusSource(SourceBase):
    """AWS resources as components: ECS services (running vs desired, rollout), Lambda functions (state,
    last update, emergency flags), DynamoDB tables, SQS queues (depth), RDS instances (status)."""

    kind: Literal["aws_status"]
    checks: list[AwsCheck] = Field(min_length=1, description="The resources, one row each.")
    interval: float = Field(30.0, ge=1, le=86400, description="Seconds between polls.")
    timeout: float = Field(10.0, ge=0.05, le=600, description="Seconds before a poll is abandoned.")
    aws: AwsSettings | None = Field(None, description="AWS settings (default: the top-level [aws]).")

    @property
    def components(self) -> list[str]:
        return [c.name for c in self.checks]

    @field_validator("checks")
    @classmethod
    def _unique(cls, v: list) -> list:
        names = [c.name for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"listed more than once: {', '.join(dupes)}")
        return v


class CostExplorerSource(SourceBase):
    """AWS Cost Explorer (GetCostAndUsage, daily): what today has cost so far, as an alternative to a
    cost query (its figures lag by hours; each call is billed)."""

    kind: Literal["cost_explorer"]
    metric: Literal["UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost"] = Field(
        "UnblendedCost", description="Which cost Cost Explorer reports.")
    services: list[str] = Field(default_factory=list, description="Only these services, e.g. [\"Amazon Bedrock\"] "
                                "(default: everything).")
    series: str = Field("cost_today", description="Series name of today's cost (USD).")
    interval: float = Field(3600.0, ge=60, le=86400, description="Seconds between polls (each call costs $0.01).")
    timeout: float = Field(15.0, ge=0.05, le=600, description="Seconds before a poll is abandoned.")
    aws: AwsSettings | None = Field(None, description="AWS settings (default: the top-level [aws]).")


SourceConfig = Annotated[
    Union[HttpHealthSource, HttpComponentsSource, PromScrapeSource, PromQuerySource, PgQuerySource, PgHealthSource,
          CloudWatchSource, CloudWatchLogsSource, AwsStatusSource, CostExplorerSource],
    Field(discriminator="kind"),
]

SOURCE_KINDS = ("http_health", "http_components", "prom_scrape", "prom_query", "pg_query", "pg_health", "cloudwatch",
                "cloudwatch_logs", "aws_status", "cost_explorer")
AWS_SOURCE_KINDS = ("cloudwatch", "cloudwatch_logs", "aws_status", "cost_explorer")
#: sources whose readings are rows of the components table
COMPONENT_KINDS = ("http_components", "pg_health", "aws_status")


def declared_series(src: Any) -> list[str]:
    """The series a source of this config produces; panels may refer only to these."""
    if src.kind == "http_health":
        return ["health", "response_time"]
    if src.kind == "http_components":
        return [f"component/{c}" for c in src.components]
    if src.kind == "prom_scrape":
        out = ["request_rate", "error_rate", *(quantile_series(q) for q in src.quantiles)]
        return out + (["cost_per_day"] if src.cost_metric else [])
    if src.kind in ("prom_query", "pg_query"):
        return list(src.queries)
    if src.kind == "pg_health":
        return [f"component/{src.component}", "connections_ratio", "long_queries", "blocked_queries"]
    if src.kind == "cloudwatch":
        return list(src.metrics)
    if src.kind in ("cloudwatch_logs", "cost_explorer"):
        return [src.series]
    if src.kind == "aws_status":
        return [f"component/{c}" for c in src.components]
    raise ValueError(f"unknown source kind {src.kind!r}")


# ---------------------------------------------------------------- panels


CLEAR_BAND = 0.10  # default hysteresis: an alert falls once the value is 10% back past its level


class Threshold(Model):
    """Warn and critical levels of one signal, with the hold times and clear level that
    keep a noisy signal from flapping: a steady fault gives one alert."""

    warn: float | None = Field(None, description="Level at which the signal is a warning.")
    critical: float | None = Field(None, description="Level at which the signal is critical.")
    direction: Literal["above", "below"] = Field(
        "above", description="'above': higher is worse; 'below': lower is worse."
    )
    hold: float = Field(
        5.0, ge=0, le=3600,
        description="Seconds a worse level must persist before the alert rises, so a single spike does not "
        "fire it. The alert carries the time the level was first reached.",
    )
    clear_hold: float = Field(
        30.0, ge=0, le=86400,
        description="Seconds the value must stay back past the clear level before the alert falls (to WARN or "
        "OK), so a dip is not a recovery. The alert carries the time the value first came back.",
    )
    clear: float | None = Field(
        None,
        description="Hysteresis: once raised, an alert stays at least WARN until the value is back past "
        "this level. Default: the warn level (or critical when there is no warn) eased by 10% toward good; "
        "a critical alert likewise stays critical until 10% back past the critical level.",
    )

    @model_validator(mode="after")
    def _ordered(self):
        above = self.direction == "above"
        word = "above" if above else "below"
        if self.warn is not None and self.critical is not None:
            worse = self.critical >= self.warn if above else self.critical <= self.warn
            if not worse:
                raise ValueError(f"critical ({self.critical}) must be {word} warn ({self.warn})")
        trigger = self.warn if self.warn is not None else self.critical
        if self.clear is not None and trigger is not None:
            if (self.clear > trigger) if above else (self.clear < trigger):
                raise ValueError(f"clear ({self.clear}) must not be {word} the level that raises the alert "
                                 f"({trigger})")
        return self

    def _eased(self, limit: float) -> float:
        band = CLEAR_BAND * abs(limit)
        return limit - band if self.direction == "above" else limit + band

    @property
    def clear_level(self) -> float | None:
        """Where a raised alert falls back to OK."""
        if self.clear is not None:
            return self.clear
        trigger = self.warn if self.warn is not None else self.critical
        return None if trigger is None else self._eased(trigger)

    @property
    def critical_clear(self) -> float | None:
        """Where a critical alert falls back to WARN (or OK when there is no warn level)."""
        if self.critical is None:
            return None
        return self._eased(self.critical) if self.warn is not None else self.clear_level


Unit = Literal["ratio", "seconds", "usd_per_day", "usd", "count", "per_second", "percent"]


class SignalPanel(Model):
    """A panel that plots one numeric series against thresholds."""

    title: str | None = Field(None, description="Panel title; default from the panel's role.")
    series: str = Field(description="The series to show, as 'source:series'.")
    also: list[str] = Field(default_factory=list, description="Further series shown as text beside the main one.")
    unit: Unit = Field(description="How values are shown: ratio as %, seconds as ms/s, usd_per_day as $/day.")
    threshold: Threshold = Field(default_factory=Threshold, description="Warn and critical levels.")


class StatusPanel(Model):
    """A panel fed by health or component sources."""

    title: str | None = Field(None, description="Panel title; default from the panel's role.")
    sources: list[str] = Field(min_length=1, description="Names of the health/component sources it shows.")

    @field_validator("sources")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each source may be listed once")
        return v


class Panels(Model):
    """The five panels of the dashboard."""

    health: StatusPanel = Field(description="Service health checks (http_health sources).")
    error_rate: SignalPanel = Field(description="Error rate, usually unit 'ratio'.")
    latency: SignalPanel = Field(description="Latency, usually p95 in 'seconds', with p50/p99 in 'also'.")
    cost: SignalPanel = Field(description="Cost burn, usually 'usd_per_day' against a daily budget.")
    components: StatusPanel = Field(description="Component status table (http_components sources).")


# ---------------------------------------------------------------- incident

SEVERITY_NAMES = ("P0", "P1", "P2", "P3")


class StatuspageSettings(Model):
    """A Statuspage-style incident API for public status updates (`u`)."""

    url: str = Field("https://api.statuspage.io/v1", description="API base URL (Statuspage's, or one that "
                     "speaks the same protocol).")
    page_id: str = Field(description="The page the incident is posted on.")
    api_key: str = Field(description="API key as env:NAME (sent as `Authorization: OAuth <key>`).")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))

    @field_validator("api_key")
    @classmethod
    def _key_is_a_reference(cls, v: str) -> str:
        if not is_secret_ref(v):
            raise ValueError('an API key is a secret: write it as "env:NAME" and export NAME')
        return v


class IncidentSettings(Model):
    """How incidents are declared, timed and recorded."""

    journal: str | None = Field(
        None,
        description="Where the incident timeline is kept: a SQLite file (default: journal.db in the user's data "
        "directory, $XDG_DATA_HOME/cockpit), or a shared PostgreSQL database as a postgresql:// URL (no "
        "password in it) or env:NAME holding the URL, so several cockpits work on one incident.",
    )
    declare_on_critical: bool = Field(True, description="Declare an incident automatically on the first critical alert.")
    response_targets: dict[str, float] = Field(
        default_factory=lambda: {"P0": 300.0, "P1": 900.0, "P2": 3600.0, "P3": 14400.0},
        description="Seconds from declaration to acknowledgement, per severity (seed 000: P0 5 min, P1 15 min, "
        "P2 1 h, P3 4 h).",
    )
    update_every: dict[str, float] = Field(
        default_factory=lambda: {"P0": 900.0, "P1": 1800.0, "P2": 3600.0},
        description="Seconds between status updates, per severity; a severity not listed has no cadence.",
    )

    slack_webhook: str | None = Field(
        None, description="Slack incoming webhook for status updates (`u`), as env:NAME (the URL is a secret)."
    )

    statuspage: StatuspageSettings | None = Field(
        None, description="Also post status updates to a Statuspage-style incident API: the first update creates "
        "the public incident, later ones update it (status follows the incident's)."
    )

    @field_validator("slack_webhook")
    @classmethod
    def _webhook_is_a_reference(cls, v: str | None) -> str | None:
        if v is not None and not is_secret_ref(v):
            raise ValueError('a webhook URL is a secret: write it as "env:NAME" and export NAME')
        return v

    @field_validator("journal")
    @classmethod
    def _journal(cls, v: str | None) -> str | None:
        if v is None or is_secret_ref(v):
            return v
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if scheme in ("postgresql", "postgres"):
            problem = pg_password_problem(v)
            if problem:
                raise ValueError(problem.replace('write "env:NAME"', 'write journal = "env:NAME"'))
        elif scheme:
            raise ValueError(f"a journal is a SQLite file path or a postgresql:// URL, not {scheme}://")
        return v

    @field_validator("response_targets", "update_every")
    @classmethod
    def _severity_keys(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(v) - set(SEVERITY_NAMES))
        if bad:
            raise ValueError(f"severities are {', '.join(SEVERITY_NAMES)}; not {', '.join(bad)}")
        nonpositive = sorted(k for k, secs in v.items() if secs <= 0)
        if nonpositive:
            raise ValueError(f"seconds must be positive for {', '.join(nonpositive)}")
        return v


# ---------------------------------------------------------------- root


# ---------------------------------------------------------------- AWS


class AwsSettings(Model):
    """Where AWS calls go: the standard credential chain, optionally a named profile."""

    profile: str | None = Field(None, description="Named profile from ~/.aws (default: the standard chain).")
    region: str | None = Field(None, description="Region (default: the profile's or AWS_DEFAULT_REGION).")
    endpoint_url: str | None = Field(None, description="Another endpoint (LocalStack, moto) instead of AWS.")
    timeout: float = Field(10.0, gt=0, le=300, description="Seconds to connect and to read each answer.")
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per call (botocore adaptive retries).")

    _endpoint = field_validator("endpoint_url")(classmethod(lambda cls, v: v if v is None else _check_url(v)))


# ---------------------------------------------------------------- actions

GUARD_RULES = ("confirm", "type_to_confirm", "deny")  # in order of strictness
#: keys the dashboard uses itself; an action may not take one of these
RESERVED_KEYS = set("naRmSDMxupfKqzATiO")


class ActionBase(Model):
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


class HttpAction(ActionBase):
    """An HTTP call: a feature flag, an admin endpoint, a circuit-breaker reset (seeds 002, 003)."""

    kind: Literal["http"]
    url: str = Field(description="The URL to call.")
    method: Literal["POST", "PUT", "PATCH", "DELETE"] = Field("POST", description="HTTP method.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    body: dict[str, Any] | None = Field(None, description="JSON body.")
    undo_body: dict[str, Any] | None = Field(None, description="JSON body that undoes it (same URL and method); "
                                             "none: not undoable.")
    state_url: str | None = Field(None, description="GET this before and after to show (and undo to) the current "
                                  "state.")
    verify_url: str | None = Field(None, description="GET this after; 2xx with a healthy status verifies it.")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _opt_urls = field_validator("state_url", "verify_url")(
        classmethod(lambda cls, v: v if v is None else _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))


class CommandAction(ActionBase):
    """A program run with arguments, no shell: kubectl, terraform, a runbook script."""

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1, description="Program and arguments, e.g. [\"kubectl\", \"rollout\", "
                            "\"undo\", \"deployment/api\"].")
    undo_argv: list[str] | None = Field(None, description="The command that undoes it; none: not undoable.")
    verify_argv: list[str] | None = Field(None, description="A command whose exit 0 verifies the result.")
    cwd: str | None = Field(None, description="Working directory.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment; secret values as env:NAME.")


class SqlAction(ActionBase):
    """A configured SQL statement run with a statement timeout (seed 004's recovery steps)."""

    kind: Literal["sql"]
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    statement: str = Field(min_length=1, description="The statement to run, in one transaction.")
    verify_sql: str | None = Field(None, description="A query returning one number; verified when it is > 0.")
    statement_timeout: float = Field(30.0, gt=0, le=3600, description="Seconds before the database cancels it.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))


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


class AwsAction(ActionBase):
    aws: AwsSettings | None = Field(None, description="AWS settings for this action (default: the top-level [aws]).")


class LambdaEnvAction(AwsAction):
    """Merge variables into a Lambda function's environment, keeping all the others
    (seed 000's emergency mode: EMERGENCY_MODE, FALLBACK_RESPONSES, DISABLE_AI_PROCESSING).
    Undo puts back the values it found."""

    kind: Literal["lambda_env"]
    function: str = Field(description="Function name or ARN.")
    variables: dict[str, str] = Field(min_length=1, description="Variables to set; secret values as env:NAME.")


class LambdaConcurrencyAction(AwsAction):
    """Set a function's concurrency to the number asked for in the dialog: provisioned
    concurrency on an alias or version (environments kept warm: seed 003's
    put-provisioned-concurrency-config; the default), or reserved concurrency on the
    function (a cap, which also sets that many aside). Undo puts back what it found, or
    removes the setting when there was none."""

    kind: Literal["lambda_concurrency"]
    function: str = Field(description="Function name or ARN.")
    concurrency: Literal["provisioned", "reserved"] = Field(
        "provisioned", description="provisioned: ProvisionedConcurrentExecutions on `qualifier` (verified READY); "
        "reserved: ReservedConcurrentExecutions on the function.")
    qualifier: str | None = Field(None, description="The alias or version provisioned concurrency is set on "
                                  "(required for provisioned; AWS refuses $LATEST).")
    min: int = Field(0, ge=0, description="Lowest number the dialog accepts.")
    max: int = Field(1000, ge=1, description="Highest number the dialog accepts.")
    default: int | None = Field(None, description="Number the dialog offers first (default: the current one).")

    _bounds = model_validator(mode="after")(lambda self: _count_bounds(self))

    @model_validator(mode="after")
    def _qualified(self):
        if self.concurrency == "provisioned":
            if not self.qualifier:
                raise ValueError('provisioned concurrency is set on an alias or version: add qualifier = "live" '
                                 '(or concurrency = "reserved")')
            if self.qualifier == "$LATEST":
                raise ValueError("AWS refuses provisioned concurrency on $LATEST: name an alias or a published "
                                 "version")
        return self


def _count_bounds(action):
    """A number asked for in the dialog: min <= default <= max."""
    if action.min > action.max:
        raise ValueError(f"min ({action.min}) is above max ({action.max})")
    if action.default is not None and not action.min <= action.default <= action.max:
        raise ValueError(f"default ({action.default}) is outside min..max ({action.min}..{action.max})")
    return action


class EcsServiceAction(AwsAction):
    cluster: str = Field(description="Cluster name or ARN.")
    service: str = Field(description="Service name.")


class EcsRollbackAction(EcsServiceAction):
    """Point an ECS service back at the previous task-definition revision (or a named one) and force a new
    deployment (seed 001). Undo points it at the revision it replaced."""

    kind: Literal["ecs_rollback"]
    task_definition: str | None = Field(None, description="family:revision to roll back to (default: the "
                                        "revision before the current one).")


class EcsScaleAction(EcsServiceAction):
    """Set an ECS service's desiredCount to the number asked for in the dialog."""

    kind: Literal["ecs_scale"]
    min: int = Field(1, ge=0, description="Lowest count the dialog accepts.")
    max: int = Field(ge=1, description="Highest count the dialog accepts.")
    default: int | None = Field(None, description="Count the dialog offers first (default: twice the current).")

    _bounds = model_validator(mode="after")(lambda self: _count_bounds(self))


class LambdaRollbackAction(AwsAction):
    """Point a Lambda alias back at the previous published version (or a named one)."""

    kind: Literal["lambda_rollback"]
    function: str = Field(description="Function name or ARN.")
    alias: str = Field(description="The alias traffic goes through, e.g. live.")
    version: str | None = Field(None, description="Version to point at (default: the newest one older than "
                                "the alias's).")


class RdsRestoreAction(AwsAction):
    """Restore a new RDS instance from the source instance's latest available snapshot."""

    kind: Literal["rds_restore"]
    instance: str = Field(description="The source DB instance identifier.")
    new_instance: str = Field("{instance}-restored-{time}", description="Identifier of the new instance; "
                              "{instance} and {time} (UTC, YYYYMMDD-HHMM) are filled in.")
    instance_class: str | None = Field(None, description="Instance class (default: the snapshot's).")
    verify_timeout: float = Field(1800.0, ge=0, le=7200, description="Seconds to wait for the new instance "
                                  "to be available.")


class PgRestoreAction(ActionBase):
    """Restore the latest backup into a PostgreSQL database (seed 000: restore, then verify data integrity):
    the newest object under an s3:// prefix or a local file; .sql files through psql, custom-format dumps
    through pg_restore --clean."""

    kind: Literal["pg_restore"]
    database: str = Field(description="postgresql:// URL (no password in it) or env:NAME holding one.")
    source: str = Field(description="s3://bucket/prefix/ (the newest object under it) or a local file path.")
    verify_counts: dict[str, int] = Field(default_factory=dict, description="Table -> fewest rows it must have "
                                          "after the restore.")
    aws: AwsSettings | None = Field(None, description="AWS settings for an s3:// source (default: [aws]).")
    timeout: float = Field(900.0, gt=0, le=86400, description="Seconds the restore may take.")

    _database = field_validator("database")(classmethod(lambda cls, v: _check_database(v)))


ActionConfig = Annotated[
    Union[HttpAction, CommandAction, SqlAction, LambdaEnvAction, LambdaConcurrencyAction, LambdaRollbackAction,
          EcsRollbackAction, EcsScaleAction, PgRestoreAction, RdsRestoreAction],
    Field(discriminator="kind"),
]
ACTION_KINDS = ("http", "command", "sql", "lambda_env", "lambda_concurrency", "lambda_rollback", "ecs_rollback",
                "ecs_scale", "pg_restore", "rds_restore")


AWS_ACTION_KINDS = ("lambda_env", "lambda_concurrency", "lambda_rollback", "ecs_rollback", "ecs_scale", "pg_restore",
                    "rds_restore")


class Guards(Model):
    """How actions are confirmed, per environment."""

    environments: dict[str, Literal["confirm", "type_to_confirm", "deny"]] = Field(
        default_factory=dict, description="Rule per environment name, e.g. {production = \"type_to_confirm\", "
        "dr = \"deny\"}. Without one: destructive actions in production need the target typed, others y.")


class CockpitConfig(Model):
    """A cockpit configuration file."""

    service: ServiceConfig = Field(description="The service being watched.")
    settings: Settings = Field(default_factory=Settings, description="Cockpit-wide behaviour.")
    incident: IncidentSettings = Field(default_factory=IncidentSettings, description="Incident handling.")
    sources: list[SourceConfig] = Field(min_length=1, description="Where readings come from.")
    panels: Panels = Field(description="What each panel shows.")
    actions: list[ActionConfig] = Field(default_factory=list, description="Remediations, each on a key, run "
                                        "after a confirmation (only when armed).")
    guards: Guards = Field(default_factory=Guards, description="How actions are confirmed per environment.")
    aws: AwsSettings = Field(default_factory=AwsSettings, description="Default AWS settings for AWS actions.")

    @model_validator(mode="before")
    @classmethod
    def _aws_defaults(cls, raw: Any) -> Any:
        """AWS sources and actions without their own [aws] use the top-level one."""
        if not isinstance(raw, dict):
            return raw
        default = raw.get("aws") if isinstance(raw.get("aws"), dict) else {}
        for section, kinds in (("actions", AWS_ACTION_KINDS), ("sources", AWS_SOURCE_KINDS)):
            if isinstance(raw.get(section), list):
                raw = {**raw, section: [
                    {**a, "aws": default} if isinstance(a, dict) and "aws" not in a and a.get("kind") in kinds else a
                    for a in raw[section]]}
        return raw

    @model_validator(mode="after")
    def _references(self):
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sources: names must be unique, repeated: {', '.join(dupes)}")
        by_name = {s.name: s for s in self.sources}
        problems: list[str] = []
        for role in ("error_rate", "latency", "cost"):
            panel: SignalPanel = getattr(self.panels, role)
            for i, ref in enumerate([panel.series, *panel.also]):
                where = f"panels.{role}.series" if i == 0 else f"panels.{role}.also[{i - 1}]"
                src, _, series = ref.partition(":")
                if ":" not in ref:
                    problems.append(f"{where}: expected 'source:series', got {ref!r}")
                elif src not in by_name:
                    problems.append(f"{where}: no source named {src!r} (sources: {', '.join(names)})")
                elif series not in declared_series(by_name[src]):
                    known = ", ".join(declared_series(by_name[src]))
                    problems.append(f"{where}: source {src!r} has no series {series!r} (it has: {known})")
        for role, kinds in (("health", ("http_health",)), ("components", COMPONENT_KINDS)):
            for i, src in enumerate(getattr(self.panels, role).sources):
                where = f"panels.{role}.sources[{i}]"
                if src not in by_name:
                    problems.append(f"{where}: no source named {src!r} (sources: {', '.join(names)})")
                elif by_name[src].kind not in kinds:
                    problems.append(f"{where}: source {src!r} is {by_name[src].kind}, expected "
                                    + (f"a {kinds[0]} source" if len(kinds) == 1 else
                                       f"a component source ({', '.join(kinds)})"))
        keys = [a.key for a in self.actions]
        for key in sorted({k for k in keys if keys.count(k) > 1}):
            problems.append(f"actions: key {key!r} is used by more than one action")
        known = {c for s in self.sources if s.kind in COMPONENT_KINDS for c in s.components}
        for i, a in enumerate(self.actions):
            for c in a.components:
                if known and c not in known:
                    problems.append(f"actions[{i}].components: no component {c!r} ({_some_of(sorted(known))})")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def action(self, key: str):
        for a in self.actions:
            if a.key == key:
                return a
        raise KeyError(key)

    def source(self, name: str):
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)


# ---------------------------------------------------------------- loading and errors


MAX_CONFIG_BYTES = 512 * 1024  # the examples are ~5 KB; 1,000 components ~30 KB
MAX_DEPTH = 16  # tables and arrays within each other (the schema needs 5)
MAX_KEY_DOTS = 64  # parts of one dotted key or table header
MAX_LINE = 64 * 1024


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> CockpitConfig:
    """Read, override and validate a config file. Raises ConfigError with one line per
    problem, within a second whatever the file holds: only a regular file of at most
    512 KB is read (never a FIFO or a device), and its nesting is bounded."""
    import stat

    path = Path(path)
    place = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError([f"{place}: file not found"]) from None
    except OSError as e:
        raise ConfigError([f"{place}: cannot read: {e.strerror or e}"]) from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError([f"{place}: is a directory, expected a TOML file"])
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError([f"{place}: is not a regular file (a pipe or a device); give the path of a TOML file"])
    if st.st_size > MAX_CONFIG_BYTES:
        raise ConfigError([f"{place}: {st.st_size:,} bytes is too large for a config (at most "
                           f"{MAX_CONFIG_BYTES // 1024} KB)"])
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError([f"{place}: not UTF-8 text (byte {e.start}); save it as UTF-8"]) from None
    except OSError as e:
        raise ConfigError([f"{place}: cannot read: {e.strerror or e}"]) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{place}: too large for a config (at most {MAX_CONFIG_BYTES // 1024} KB)"])
    return parse_config(text, place, environ)


def parse_config(text: str, place: str = "<config>", environ: Mapping[str, str] | None = None) -> CockpitConfig:
    problem = _too_deep_to_parse(text)
    if problem:
        raise ConfigError([f"{place}: {problem}"])
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{place}: TOML syntax error: {str(e)[:200]}"]) from None
    except RecursionError:
        raise ConfigError([f"{place}: nested too deep to read (at most {MAX_DEPTH} levels)"]) from None
    depth = _depth(raw)
    if depth > MAX_DEPTH:
        raise ConfigError([f"{place}: nested {depth} levels deep; a config is at most {MAX_DEPTH} levels"])
    return config_from_dict(raw, place, os.environ if environ is None else environ)


def _too_deep_to_parse(text: str) -> str | None:
    """What would make the TOML parser slow (it is quadratic in a dotted key's length) or
    fail deep in recursion: an over-long line, a key of too many parts."""
    for n, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            return f"line {n} is {len(line):,} characters long (at most {MAX_LINE:,})"
        head = line.split("=", 1)[0] if "=" in line else line if line.lstrip().startswith("[") else ""
        if head.count(".") > MAX_KEY_DOTS:
            return f"line {n}: a key of {head.count('.') + 1} parts (at most {MAX_KEY_DOTS})"
    return None


def _depth(node: Any) -> int:
    """How deep tables and arrays sit within each other (without recursion)."""
    deepest = 0
    stack = [(node, 0)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, d + 1)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, d + 1) for child in items)
    return deepest


def config_from_dict(raw: dict, place: str = "<config>", environ: Mapping[str, str] | None = None,
                     secrets: bool = True) -> CockpitConfig:
    """Validate a config. ``secrets``: register the values its ``env:`` references name for
    redaction (not for a tape's recorded config: a tape is data, its references are not read)."""
    applied: dict[str, str] = {}
    problems = apply_overrides(raw, environ or {}, applied)
    if problems:
        raise ConfigError([f"{place}: {p}" for p in problems])
    if secrets:
        register_secrets(raw, os.environ if environ is None else {**os.environ, **environ})
    try:
        return CockpitConfig.model_validate(raw)
    except ValidationError as e:
        lines = explain(e, raw)
        raise ConfigError([f"{place}: {_blame(line, applied)}" for line in lines]) from None


def _blame(line: str, applied: dict[str, str]) -> str:
    """Name the environment variable when a problem is in a key it set (not in the file)."""
    key = line.split(": ", 1)[0]
    var = applied.get(key)
    return f"{line} (set by environment variable {var})" if var else line


def apply_overrides(raw: dict, environ: Mapping[str, str], applied: dict[str, str] | None = None) -> list[str]:
    """Apply COCKPIT_A__B__C overrides to ``raw`` in place; return problems.

    ``applied``, when given, receives the key path each override set (as error
    lines name it, e.g. ``sources[2].url``) and the variable that set it.
    """
    problems = []
    for var in sorted(environ):
        if not var.startswith(OVERRIDE_PREFIX) or "__" not in var:
            continue
        path = [p.lower() for p in var[len(OVERRIDE_PREFIX):].split("__")]
        value = _override_value(environ[var])
        node: Any = raw
        shown = ""
        for depth, seg in enumerate(path[:-1]):
            if isinstance(node, list):
                # sources by name, actions by key (COCKPIT_ACTIONS__R__URL)
                match = [i for i, item in enumerate(node) if isinstance(item, dict)
                         and seg in (str(item.get("name", "")).lower(), str(item.get("key", "")).lower())]
                if not match:
                    problems.append(f"environment {var}: no entry named {seg!r} under {'.'.join(path[:depth])}")
                    break
                node = node[match[0]]
                shown += f"[{match[0]}]"
            elif isinstance(node, dict):
                node = node.setdefault(seg, {})
                shown += f".{seg}" if shown else seg
            else:
                problems.append(f"environment {var}: {'.'.join(path[:depth])} is not a table")
                break
        else:
            if isinstance(node, dict):
                node[path[-1]] = value
                if applied is not None:
                    applied[f"{shown}.{path[-1]}" if shown else path[-1]] = var
            else:
                problems.append(f"environment {var}: {'.'.join(path[:-1])} is not a table")
    return problems


def _override_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


_TYPE_WORDS = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def explain(error: ValidationError, raw: dict) -> list[str]:
    """Turn pydantic's errors into one line each: key path, what was expected, what was found."""
    lines = []
    for err in error.errors(include_url=False):
        path, node = _path(err["loc"], raw)
        kind = err["type"]
        got = err.get("input")
        if kind == "extra_forbidden":
            key = path.rsplit(".", 1)[-1]
            hint = _suggest(key, err["loc"], raw)
            lines.append(f"{path}: unknown key{hint}")
        elif kind == "missing":
            lines.append(f"{path}: required key is missing")
        elif kind in ("union_tag_not_found", "union_tag_invalid"):
            kinds = ACTION_KINDS if path.startswith("actions") else SOURCE_KINDS
            if kind == "union_tag_not_found":
                lines.append(f"{path}.kind: required key is missing; expected one of {', '.join(kinds)}")
            else:
                tag = got.get("kind") if isinstance(got, dict) else got
                lines.append(f"{path}.kind: expected one of {', '.join(kinds)}, got {_show(tag)}")
        elif kind in _TYPE_WORDS:
            lines.append(f"{path}: expected {_TYPE_WORDS[kind]}, got {_show(got)}")
        elif kind == "literal_error":
            lines.append(f"{path}: expected {err['ctx']['expected']}, got {_show(got)}")
        elif kind in ("value_error", "assertion_error"):
            msg = str(err["ctx"].get("error", err["msg"])) if err.get("ctx") else err["msg"]
            for part in msg.split("\n"):
                # model-level validators already name their own key paths
                if path and not part.startswith(("panels.", "sources")):
                    lines.append(f"{path}: {part}")
                else:
                    lines.append(part)
        else:
            lines.append(f"{path}: {err['msg'][0].lower()}{err['msg'][1:]}, got {_show(got)}")
    return lines or [str(error)]


def _show(value: Any) -> str:
    """A value as it was written in TOML, cut short (a 4,000-digit number is not echoed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a table" if isinstance(value, dict) else "a list"
    if isinstance(value, int) and abs(value) > 10**30:
        return f"a number of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…" + text[-1]


def _path(loc: tuple, raw: dict) -> tuple[str, Any]:
    """Render a pydantic location as a TOML key path, dropping union tags."""
    out = ""
    node: Any = raw
    for seg in loc:
        if isinstance(seg, int):
            out += f"[{seg}]"
            node = node[seg] if isinstance(node, list) and seg < len(node) else None
            continue
        if isinstance(node, dict) and seg not in node and seg in (*SOURCE_KINDS, *ACTION_KINDS) and node.get("kind") == seg:
            continue  # the discriminator tag pydantic puts in the location
        out += f".{seg}" if out else str(seg)
        node = node.get(seg) if isinstance(node, dict) else None
    return out, node


def _suggest(key: str, loc: tuple, raw: dict) -> str:
    model = _model_at(loc[:-1], raw)
    if model is None:
        return ""
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; expected one of: {', '.join(model.model_fields)}"


def _model_at(loc: tuple, raw: dict) -> type[BaseModel] | None:
    model: Any = CockpitConfig
    node: Any = raw
    kinds = {
        "http_health": HttpHealthSource,
        "http_components": HttpComponentsSource,
        "prom_scrape": PromScrapeSource,
    }
    for seg in loc:
        if isinstance(seg, int):
            node = node[seg] if isinstance(node, list) and seg < len(node) else None
            if model is SourceConfig and isinstance(node, dict):
                model = kinds.get(node.get("kind"))
            continue
        if seg in kinds and model is not None and (model is SourceConfig or model in kinds.values()):
            model = kinds[seg]
            continue
        if model is None or not hasattr(model, "model_fields") or seg not in model.model_fields:
            return None
        ann = model.model_fields[seg].annotation
        model = _unwrap(ann)
        node = node.get(seg) if isinstance(node, dict) else None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(ann: Any) -> Any:
    args = getattr(ann, "__args__", None)
    origin = getattr(ann, "__origin__", None)
    if origin is list and args:
        inner = args[0]
        if getattr(inner, "__metadata__", None) is not None:  # Annotated[Union[...], discriminator]
            return SourceConfig
        return inner
    return ann


def schema() -> dict:
    """The JSON schema of the config file."""
    return CockpitConfig.model_json_schema()
