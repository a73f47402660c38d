"""The cockpit's TOML configuration as pydantic models.

Every model forbids unknown keys, so a typo is an error naming its path. Secrets
are never written in the file: a header or token value of the form ``env:NAME``
is a reference, resolved by :func:`resolve_secret` at the moment of use and
never stored on the model.

Environment overrides: ``COCKPIT_<SECTION>__<KEY>=value`` replaces one key
before validation. Sources are addressed by name (actions by key), e.g.
``COCKPIT_SOURCES__METRICS__URL=http://127.0.0.1:9000/metrics``. Values are
read as TOML literals when they parse as one (numbers, booleans, arrays,
inline tables) and as plain strings otherwise. A key that is a table or a
list (in the file, or by its model even when the file leaves it out:
``headers``, ``queries``, ``metrics``, ``threshold``, ``quantiles``...) also
takes JSON: a value starting with ``{`` or ``[`` is read as a JSON object or
array and replaces the whole table or list, e.g.
``COCKPIT_SOURCES__METRICS__HEADERS='{"Authorization": "env:TOKEN"}'``. JSON
that does not parse (and is no TOML inline table or array either) is one
problem naming the variable and where the JSON goes wrong, never a string
silently taken instead. A string key keeps a value starting with ``{`` as
written (a PromQL selector).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, Field, SerializeAsAny, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from cockpit import kinds
from cockpit.configmodel import ActionBase, AwsSettings, Model, SourceBase, _check_url, _some_of, pg_password_problem
from cockpit.safetext import SecretError, is_secret_ref, register_secrets, resolve_secret  # noqa: F401 - the API

OVERRIDE_PREFIX = "COCKPIT_"


class ConfigError(Exception):
    """A config that cannot be used. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


#: set by a drill: no ``env:`` reference is read in this process (a tape's config is data)


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


#: sources whose readings are rows of the components table


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


class ExtraPanel(SignalPanel):
    """A panel of any series beyond the three key signals (CPU, queue depth, TPS…), with its
    own title, unit and thresholds; it alerts like the others."""

    title: str = Field(min_length=1, max_length=40, description="Panel title, also the signal's name on the "
                       "timeline.")


#: the key signals: the severity suggestion, snapshots and the postmortem's peaks follow these
SIGNAL_ROLES = ("error_rate", "latency", "cost")


class Panels(Model):
    """The dashboard's panels: the health checks, the three key signals, any further
    signals, and the components table."""

    health: StatusPanel | None = Field(None, description="Service health checks (http_health sources); none: no "
                                       "health panel (a database-only cockpit).")
    error_rate: SignalPanel = Field(description="Error rate, usually unit 'ratio'.")
    latency: SignalPanel = Field(description="Latency, usually p95 in 'seconds', with p50/p99 in 'also'.")
    cost: SignalPanel = Field(description="Cost burn, usually 'usd_per_day' against a daily budget.")
    extra: list[ExtraPanel] = Field(default_factory=list, max_length=12, description="Further signal panels, "
                                    "laid out after the three key signals, four to a row.")
    components: StatusPanel | None = Field(None, description="Component status table (component sources); none: "
                                           "the timeline takes the width.")

    def signals(self) -> list[tuple[str, SignalPanel]]:
        """(key, panel) of every signal panel: the key signals by role, then the extras
        (``extra.0``, ``extra.1``…)."""
        return [(role, getattr(self, role)) for role in SIGNAL_ROLES] + \
            [(f"extra.{i}", p) for i, p in enumerate(self.extra)]

    def signal(self, key: str) -> SignalPanel:
        return dict(self.signals())[key]

    @property
    def health_sources(self) -> list[str]:
        return self.health.sources if self.health is not None else []

    @property
    def component_sources(self) -> list[str]:
        return self.components.sources if self.components is not None else []


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


# ---------------------------------------------------------------- actions

#: keys the dashboard uses itself; an action may not take one of these


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
    sources: list[SerializeAsAny[SourceBase]] = Field(
        min_length=1, description="Where readings come from: one table per source, its `kind` one of the source "
        "kinds below.")
    panels: Panels = Field(description="What each panel shows.")
    actions: list[SerializeAsAny[ActionBase]] = Field(
        default_factory=list, description="Remediations, each on a key, run after a confirmation (only when "
        "armed): one table per action, its `kind` one of the action kinds below.")
    guards: Guards = Field(default_factory=Guards, description="How actions are confirmed per environment.")
    aws: AwsSettings = Field(default_factory=AwsSettings, description="Default AWS settings for AWS actions.")

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo):
        if info.context and info.context.get("partial"):
            return self  # some sources or actions did not validate: their problems are said already
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sources: names must be unique, repeated: {', '.join(dupes)}")
        by_name = {s.name: s for s in self.sources}
        problems: list[str] = []
        titles = [p.title.lower() for p in self.panels.extra]
        for title in sorted({t for t in titles if titles.count(t) > 1 or t.replace(" ", "_") in SIGNAL_ROLES}):
            problems.append(f"panels.extra: title {title!r} is used twice (each signal has its own name)")
        for role, panel in self.panels.signals():
            name = role if "." not in role else f"extra[{role.split('.')[1]}]"
            for i, ref in enumerate([panel.series, *panel.also]):
                where = f"panels.{name}.series" if i == 0 else f"panels.{name}.also[{i - 1}]"
                src, _, series = ref.partition(":")
                if ":" not in ref:
                    problems.append(f"{where}: expected 'source:series', got {ref!r}")
                elif src not in by_name:
                    problems.append(f"{where}: no source named {src!r} (sources: {', '.join(names)})")
                elif series not in by_name[src].series_names():
                    known = ", ".join(by_name[src].series_names())
                    problems.append(f"{where}: source {src!r} has no series {series!r} (it has: {known})"
                                    + by_name[src].series_hint(series))
        for role in ("health", "components"):
            for i, src in enumerate(self.panels.health_sources if role == "health" else self.panels.component_sources):
                where = f"panels.{role}.sources[{i}]"
                if src not in by_name:
                    problems.append(f"{where}: no source named {src!r} (sources: {', '.join(names)})")
                elif by_name[src].feeds != role:
                    fit = [k for k in kinds.source_kinds() if kinds.source_config(k).feeds == role]
                    problems.append(f"{where}: source {src!r} is {by_name[src].kind}, expected "
                                    + (f"a {fit[0]} source" if len(fit) == 1 else
                                       f"a component source ({', '.join(fit)})"))
        keys = [a.key for a in self.actions]
        for key in sorted({k for k in keys if keys.count(k) > 1}):
            problems.append(f"actions: key {key!r} is used by more than one action")
        hold = self.settings.state_clear_hold
        for i, src in enumerate(self.sources):
            keep = getattr(src, "keep_resolved", None)
            if keep is not None and keep < hold:
                problems.append(f"sources[{i}].keep_resolved: {keep:g}s is shorter than [settings] state_clear_hold "
                                f"({hold:g}s): an alert over would leave before its recovery reached the timeline; "
                                f"set at least {hold:g}")
        known = {c for s in self.sources if s.feeds == "components" for c in s.components}
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
    lines: list[str] = []
    built = {section: _kinds_of(raw, section, lines) for section in ("sources", "actions")}
    partial = bool(lines)  # the rest of the file is still checked, every problem said at once
    try:
        config = CockpitConfig.model_validate({**raw, **{k: v for k, v in built.items() if v is not None}},
                                              context={"partial": partial})
    except ValidationError as e:
        lines += [line for line in explain(e, raw)
                  if not (partial and line.startswith(("sources", "actions")))]  # those are said above
    if lines:
        raise ConfigError([f"{place}: {_blame(line, applied)}" for line in lines])
    return config


def _kinds_of(raw: dict, section: str, lines: list[str]) -> list | None:
    """Each table of ``sources`` or ``actions`` validated by its own kind's model (only the
    kinds the config uses are loaded); problems appended to ``lines`` with their paths.
    None when the section is not a list (the root model says so)."""
    items = raw.get(section)
    if not isinstance(items, list):
        return None
    known = kinds.source_kinds() if section == "sources" else kinds.action_kinds()
    model_of = kinds.source_config if section == "sources" else kinds.action_config
    default_aws = raw.get("aws") if isinstance(raw.get("aws"), dict) else {}
    out = []
    for i, item in enumerate(items):
        where = f"{section}[{i}]"
        if not isinstance(item, dict):
            lines.append(f"{where}: expected a table, got {_show(item)}")
            continue
        kind = item.get("kind")
        if kind not in known:
            if kind is None:
                lines.append(f"{where}.kind: required key is missing; expected one of {', '.join(known)}")
            else:
                close = difflib.get_close_matches(str(kind), known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                lines.append(f"{where}.kind: expected one of {', '.join(known)}, got {_show(kind)}{hint}")
            continue
        model = model_of(kind)
        if model.uses_aws and "aws" not in item:  # AWS kinds without their own [aws] use the top-level one
            item = {**item, "aws": default_aws}
        try:
            out.append(model.model_validate(item))
        except ValidationError as e:
            lines.extend(f"{where}.{line}" if not line.startswith(("panels.", "sources")) else line
                         for line in explain(e, item, model))
    return out


def _blame(line: str, applied: dict[str, str]) -> str:
    """Name the environment variable when a problem is in a key it set (not in the file),
    or inside a table or list it set (``sources[2].headers.Authorization`` was set by
    ``COCKPIT_SOURCES__METRICS__HEADERS``)."""
    key = line.split(": ", 1)[0]
    var = applied.get(key)
    if var is None:
        var = next((v for k, v in applied.items() if key.startswith((f"{k}.", f"{k}["))), None)
    return f"{line} (set by environment variable {var})" if var else line


def apply_overrides(raw: dict, environ: Mapping[str, str], applied: dict[str, str] | None = None) -> list[str]:
    """Apply COCKPIT_A__B__C overrides to ``raw`` in place; return problems.

    A value is a TOML literal or a plain string (see the module's docstring); when the key
    is a table or a list (in the file, or by the config model: ``headers``, ``queries``,
    ``threshold``, ``quantiles``…) a value starting with ``{`` or ``[`` is read as JSON and
    replaces the whole table or list, and JSON that does not parse is a problem naming the
    variable and the place the JSON goes wrong.

    ``applied``, when given, receives the key path each override set (as error
    lines name it, e.g. ``sources[2].url``) and the variable that set it.
    """
    problems = []
    for var in sorted(environ):
        if not var.startswith(OVERRIDE_PREFIX) or "__" not in var:
            continue
        path = [p.lower() for p in var[len(OVERRIDE_PREFIX):].split("__")]
        node: Any = raw
        shape: Any = CockpitConfig  # the type of `node` by the models; None: not known
        levels = 1  # tables and lists from the root down to `node`, for the depth bound
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
                shape = _entry_type(shape, node)
                shown += f"[{match[0]}]"
            elif isinstance(node, dict):
                node = node.setdefault(seg, {})
                shape = _key_type(shape, seg)
                shown += f".{seg}" if shown else seg
            else:
                problems.append(f"environment {var}: {'.'.join(path[:depth])} is not a table")
                break
            levels += 1
        else:
            if isinstance(node, dict):
                key = path[-1]
                shapes = _shapes(_key_type(shape, key))
                if isinstance(node.get(key), dict):
                    shapes.add("table")
                elif isinstance(node.get(key), list):
                    shapes.add("list")
                value, problem = _override_value(environ[var], shapes)
                if problem is None and isinstance(value, (dict, list)) and levels + _depth(value) > MAX_DEPTH:
                    problem = f"nested too deep (a config is at most {MAX_DEPTH} levels, the key's own included)"
                if problem is not None:
                    problems.append(f"environment {var}: {problem}")
                    continue
                node[key] = value
                if applied is not None:
                    applied[f"{shown}.{key}" if shown else key] = var
            else:
                problems.append(f"environment {var}: {'.'.join(path[:-1])} is not a table")
    return problems


def _override_value(text: str, shapes: set[str] | frozenset[str] = frozenset()) -> tuple[Any, str | None]:
    """(value, None) or (None, problem) for an override's text. ``shapes``: what the key
    takes, by the file and the models ("table", "list", "string", "scalar"; empty: not
    known). A value starting with ``{`` or ``[`` for a table or a list is JSON (a TOML
    inline table or array is still taken when it is not JSON); for a key known to be a
    string it is that string (a PromQL ``{job="api"}``); anything else is a TOML literal
    when it parses as one and a plain string otherwise."""
    opens = text.lstrip()[:1] in ("{", "[")
    if opens and shapes & {"table", "list"}:
        if len(text) > MAX_LINE:
            return None, f"{len(text):,} characters is too long for a value (at most {MAX_LINE:,})"
        try:
            return _json(text), None
        except RecursionError:
            return None, f"nested too deep (a config is at most {MAX_DEPTH} levels, the key's own included)"
        except ValueError as e:
            problem = _json_problem(text, e)
        try:  # a TOML inline table or array, as before JSON was taken
            value = tomllib.loads(f"v = {text}")["v"]
            if isinstance(value, (dict, list)):
                return value, None
        except (tomllib.TOMLDecodeError, RecursionError):
            pass
        return None, problem
    if opens and not shapes:  # a key the models do not know (its own problem follows): JSON if it is
        try:
            return _json(text), None
        except (ValueError, RecursionError):
            pass
    if opens and shapes == {"string"}:
        return text, None
    try:
        return tomllib.loads(f"v = {text}")["v"], None
    except (tomllib.TOMLDecodeError, RecursionError):
        return text, None


def _json(text: str) -> Any:
    """A JSON value as the config takes it: no NaN or Infinity, no key given twice."""
    import json

    def pairs(items: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"key {k!r} is given twice")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number a config takes")

    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)


def _json_problem(text: str, e: ValueError) -> str:
    """Where and why a JSON value does not parse, without echoing it (it may hold a secret)."""
    import json

    if isinstance(e, json.JSONDecodeError):
        where = f"line {e.lineno}, column {e.colno}" if "\n" in text.strip() else f"column {e.colno}"
        end = " (the end of the value)" if e.pos >= len(text.rstrip()) else ""
        return f"not valid JSON: {e.msg} at {where}{end}"
    return f"not valid JSON: {str(e)[:120]}"


def _members(tp: Any) -> list:
    """The types a value of type ``tp`` may be: Annotated and ``X | None`` unwrapped."""
    import types
    from typing import get_args, get_origin

    if tp is None:
        return []
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [m for a in get_args(tp) if a is not type(None) for m in _members(a)]
    return [tp]


def _key_type(tp: Any, key: str) -> Any:
    """The type of ``key`` in a value of type ``tp`` (a model's field, a table's values); None: not known."""
    from typing import get_args, get_origin

    for t in _members(tp):
        if isinstance(t, type) and issubclass(t, BaseModel):
            field = t.model_fields.get(key)
            if field is not None:
                return field.annotation
        elif get_origin(t) is dict and len(get_args(t)) == 2:
            return get_args(t)[1]
    return None


def _entry_type(tp: Any, entry: dict) -> Any:
    """The model of one entry of a list: a source or an action by its kind."""
    from typing import get_args, get_origin

    for t in _members(tp):
        if get_origin(t) is not list or not get_args(t):
            continue
        for item in _members(get_args(t)[0]):
            if isinstance(item, type) and issubclass(item, (SourceBase, ActionBase)):
                sources = issubclass(item, SourceBase)
                known = kinds.source_kinds() if sources else kinds.action_kinds()
                kind = entry.get("kind")
                if kind not in known:
                    return None
                return kinds.source_config(kind) if sources else kinds.action_config(kind)
            return item
    return None


def _shapes(tp: Any) -> set[str]:
    """What a key of type ``tp`` takes: "table", "list", "string", "scalar"; empty when not known."""
    from typing import get_origin

    out: set[str] = set()
    for t in _members(tp):
        origin = get_origin(t) or t
        if origin is Any:
            return set()
        if isinstance(origin, type) and issubclass(origin, (BaseModel, dict)):
            out.add("table")
        elif isinstance(origin, type) and issubclass(origin, (list, tuple, set, frozenset)):
            out.add("list")
        elif origin is str:
            out.add("string")
        else:
            out.add("scalar")
    return out


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


def explain(error: ValidationError, raw: dict, model: type[BaseModel] | None = None) -> list[str]:
    """Turn pydantic's errors into one line each: key path, what was expected, what was
    found. ``model``: the model ``raw`` was validated with (default: the root)."""
    lines = []
    for err in error.errors(include_url=False):
        path, node = _path(err["loc"], raw)
        kind = err["type"]
        got = err.get("input")
        if kind == "extra_forbidden":
            key = path.rsplit(".", 1)[-1].rsplit("]", 1)[-1]
            hint = _suggest(key, err["loc"], model or CockpitConfig)
            lines.append(f"{path}: unknown key{hint}")
        elif kind == "missing":
            lines.append(f"{path}: required key is missing")
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
        key = toml_key(str(seg))
        out += f".{key}" if out else key
        node = node.get(seg) if isinstance(node, dict) else None
    return out, node


def toml_key(key: str) -> str:
    """A key as TOML writes it in a dotted path: bare when it can be, else quoted with its
    control characters escaped (a key holding a newline or a dot stays one readable line)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _suggest(key: str, loc: tuple, model: type[BaseModel]) -> str:
    """" (did you mean 'x'?)" for a mistyped key, from the fields of the model it is in."""
    at = _model_at(loc[:-1], model)
    if at is None:
        return ""
    close = difflib.get_close_matches(key, list(at.model_fields), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; expected one of: {', '.join(at.model_fields)}"


def _model_at(loc: tuple, model: Any) -> type[BaseModel] | None:
    """The model a location (within ``model``) points into: through fields, lists and dicts."""
    for seg in loc:
        if isinstance(seg, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        if seg not in model.model_fields:
            return None
        model = _unwrap(model.model_fields[seg].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(ann: Any) -> Any:
    """The model inside ``list[X]``, ``dict[str, X]``, ``X | None``."""
    for arg in getattr(ann, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return ann


def schema() -> dict:
    """The JSON schema of the config file, every source and action kind in it."""

    from pydantic import TypeAdapter

    def union(models: list[type]) -> Any:
        return Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007

    class Everything(CockpitConfig):
        sources: list[union([kinds.source_config(k) for k in kinds.source_kinds()])]  # type: ignore[valid-type]
        actions: list[union([kinds.action_config(k) for k in kinds.action_kinds()])] = Field(  # type: ignore[valid-type]
            default_factory=list, description=CockpitConfig.model_fields["actions"].description)

    doc = TypeAdapter(Everything).json_schema()
    doc["title"] = "CockpitConfig"
    return doc
