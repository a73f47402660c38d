"""Config validation: good and bad TOML files, secrets, environment overrides, the
demo example and the generated reference."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from cockpit.config import CockpitConfig, ConfigError, config_from_dict, load_config
from cockpit.safetext import SecretError, resolve_secret
from cockpit.signals.sources.http_health import HttpHealthSource
from cockpit.signals.sources.prom_scrape import PromScrapeSource
from cockpit.drill.demo import demo_config, demo_raw
from cockpit.reference import markdown_reference

ROOT = Path(__file__).resolve().parent.parent
BASE = "http://127.0.0.1:8787"


@pytest.fixture
def raw() -> dict:
    """A valid config as a dict (the demo's), for a test to break."""
    return copy.deepcopy(demo_raw(BASE))


def problems_of(path: Path, environ: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={} if environ is None else environ)
    problems = info.value.problems
    assert problems, "a ConfigError must carry at least one problem line"
    for line in problems:
        assert "\n" not in line, f"each problem is one line: {line!r}"
        assert line.startswith(f"{path}: "), f"each problem names the file: {line!r}"
    return problems


def set_at(raw: dict, where: tuple, value) -> None:
    """Set raw[where[0]][where[1]]... = value."""
    node = raw
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value


def only(problems: list[str]) -> str:
    assert len(problems) == 1, f"expected exactly one problem, got {problems}"
    return problems[0]


# ---------------------------------------------------------------- good files


def test_valid_file_loads_with_defaults(write_config, raw):
    raw["sources"][2].pop("max_backoff")
    cfg = load_config(write_config(raw), environ={})
    assert isinstance(cfg, CockpitConfig)
    assert [s.name for s in cfg.sources] == ["health", "components", "metrics"]
    metrics = cfg.source("metrics")
    assert isinstance(metrics, PromScrapeSource)
    assert metrics.max_backoff == 15.0  # the default fills the key left out
    assert metrics.quantiles == [0.5, 0.95, 0.99]
    assert cfg.settings.stale_factor == 2.0
    assert cfg.service.is_production is False


def test_production_defaults_from_environment_name(write_config, raw):
    raw["service"] = {"name": "checkout-api", "environment": "prod-eu"}
    assert load_config(write_config(raw), environ={}).service.is_production is True
    raw["service"] = {"name": "checkout-api", "environment": "staging"}
    assert load_config(write_config(raw), environ={}).service.is_production is False


# ---------------------------------------------------------------- bad files


def test_typo_key_is_unknown_with_did_you_mean(write_config, raw):
    raw["sources"][0]["intervall"] = 2.0
    path = write_config(raw)
    line = only(problems_of(path))
    assert "sources[0].intervall" in line
    assert "unknown key" in line
    assert "did you mean 'interval'" in line


@pytest.mark.parametrize(
    ("where", "typo", "suggestion"),
    [
        (("settings",), "histroy", "history"),
        (("service",), "enviroment", "environment"),
        (("panels", "latency", "threshold"), "critcal", "critical"),
    ],
)
def test_typo_key_in_nested_tables(write_config, raw, where, typo, suggestion):
    node = raw
    for seg in where:
        node = node[seg]
    node[typo] = 1
    line = only(problems_of(write_config(raw)))
    assert f"{'.'.join(where)}.{typo}: unknown key" in line
    assert f"did you mean {suggestion!r}" in line


def test_unknown_key_without_close_match_lists_the_keys(write_config, raw):
    raw["settings"]["zzzz"] = 1
    line = only(problems_of(write_config(raw)))
    assert "settings.zzzz: unknown key" in line
    assert "expected one of: history, refresh, stale_factor, actor" in line


def test_wrong_type_names_key_path_and_expectation(write_config, raw):
    raw["sources"][0]["interval"] = "fast"
    line = only(problems_of(write_config(raw)))
    assert "sources[0].interval: expected a number, got 'fast'" in line


@pytest.mark.parametrize(
    "where, value, expected",
    [
        (("settings", "refresh"), True, "settings.refresh: expected a number, got true"),
        (("sources", 0, "interval"), "5", "sources[0].interval: expected a number, got '5'"),
        (("service", "production"), "yes", "service.production: expected true or false, got 'yes'"),
        # values of the right type that would break at run time
        (("settings", "history"), 1e12, "settings.history"),
        (("sources", 0, "interval"), 0.000001, "sources[0].interval"),
        (("settings", "stale_factor"), float("inf"), "settings.stale_factor"),
        (("sources", 0, "expect_status"), [], "sources[0].expect_status"),
        (("sources", 2, "quantiles"), [0.95, 0.95], "each quantile may be listed once"),
        (("sources", 1, "url"), "http://127.0.0.1:1/{id}/{name}", "may only contain {name}, found {id}"),
        (("panels", "health", "sources"), ["health", "health"], "each source may be listed once"),
    ],
)
def test_bad_values_are_rejected_not_coerced(write_config, raw, where, value, expected):
    set_at(raw, where, value)
    assert expected in only(problems_of(write_config(raw)))


def test_wrong_type_in_third_source_names_its_index(write_config, raw):
    raw["sources"][2]["quantiles"] = "p95"
    line = only(problems_of(write_config(raw)))
    assert "sources[2].quantiles: expected a list" in line


def test_every_problem_reported_once_per_line(write_config, raw):
    raw["sources"][0]["intervall"] = 2.0
    raw["sources"][1]["timeout"] = "slow"
    raw["settings"]["refresh"] = [1]
    problems = problems_of(write_config(raw))
    assert len(problems) == 3, problems
    joined = "\n".join(problems)
    assert "sources[0].intervall: unknown key" in joined
    assert "sources[1].timeout: expected a number" in joined
    assert "settings.refresh: expected a number, got a list" in joined


def test_wrong_kind_lists_the_kinds(write_config, raw):
    raw["sources"][0]["kind"] = "http_healthcheck"
    line = only(problems_of(write_config(raw)))
    assert "sources[0].kind" in line
    from cockpit import kinds

    assert {"aws_status", "changes", "http_health", "prom_scrape"} <= set(kinds.source_kinds())
    assert "expected one of " + ", ".join(kinds.source_kinds()) + "," in line and "(did you mean 'http_health'?)" in line
    assert "'http_healthcheck'" in line


def test_missing_kind_says_it_is_missing(write_config, raw):
    del raw["sources"][1]["kind"]
    line = only(problems_of(write_config(raw)))
    assert "sources[1].kind: required key is missing" in line
    assert "http_components, http_health, pg_health" in line


def test_missing_required_key(write_config, raw):
    del raw["service"]["name"]
    line = only(problems_of(write_config(raw)))
    assert "service.name: required key is missing" in line


def test_panel_referring_to_missing_source(write_config, raw):
    raw["panels"]["error_rate"]["series"] = "metricz:error_rate"
    raw["panels"]["health"]["sources"] = ["healthz"]
    problems = problems_of(write_config(raw))
    joined = "\n".join(problems)
    assert len(problems) == 2, problems
    assert "panels.error_rate.series: no source named 'metricz'" in joined
    assert "panels.health.sources[0]: no source named 'healthz'" in joined
    assert "(sources: health, components, metrics)" in joined


def test_panel_referring_to_source_of_wrong_kind(write_config, raw):
    raw["panels"]["components"]["sources"] = ["metrics"]
    line = only(problems_of(write_config(raw)))
    from cockpit import kinds

    fit = [k for k in kinds.source_kinds() if kinds.source_config(k).feeds == "components"]
    assert {"aws_status", "command", "http_components", "pg_health"} <= set(fit)
    assert ("panels.components.sources[0]: source 'metrics' is prom_scrape, expected a component source "
            f"({', '.join(fit)})") in line


def test_series_reference_needs_source_prefix(write_config, raw):
    raw["panels"]["latency"]["also"] = ["latency_p50"]
    line = only(problems_of(write_config(raw)))
    assert "panels.latency.also[0]: expected 'source:series'" in line


def test_duplicate_source_names(write_config, raw):
    raw["sources"][1]["name"] = "health"
    line = only(problems_of(write_config(raw)))
    assert "names must be unique, repeated: health" in line


def test_threshold_order_checked(write_config, raw):
    raw["panels"]["error_rate"]["threshold"] = {"warn": 0.2, "critical": 0.1}
    line = only(problems_of(write_config(raw)))
    assert "panels.error_rate.threshold" in line
    assert "critical (0.1) must be above warn (0.2)" in line


def test_timeout_much_longer_than_interval_rejected(write_config, raw):
    raw["sources"][0]["timeout"] = 60.0
    line = only(problems_of(write_config(raw)))
    assert "sources[0]" in line and "more than 10x the interval" in line


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize("header", ["Authorization", "X-Api-Key", "X-Auth-Token", "Cookie"])
def test_literal_secret_header_rejected(write_config, raw, header):
    raw["sources"][0]["headers"] = {header: "Bearer s3cr3t-value"}
    line = only(problems_of(write_config(raw)))
    assert "sources[0].headers" in line
    assert f"header {header!r} looks secret" in line
    assert "env:NAME" in line
    assert "s3cr3t" not in line, "the error must not echo the secret"


def test_malformed_env_reference_rejected(write_config, raw):
    raw["sources"][0]["headers"] = {"X-Request-Source": "env:not a name"}
    line = only(problems_of(write_config(raw)))
    assert "not a valid env:NAME reference" in line


def test_credentials_in_url_rejected(write_config, raw):
    raw["sources"][2]["url"] = "http://admin:hunter2@127.0.0.1:8787/metrics"
    line = only(problems_of(write_config(raw)))
    assert "sources[2].url: credentials must not be written in the URL" in line
    assert "hunter2" not in line, "the error must not echo the password"


def test_non_http_url_rejected(write_config, raw):
    raw["sources"][0]["url"] = "ftp://127.0.0.1/health"
    line = only(problems_of(write_config(raw)))
    assert "sources[0].url: expected an http:// or https:// URL" in line


def test_env_reference_is_kept_as_reference_and_resolved_at_use(write_config, raw, monkeypatch):
    raw["sources"][0]["headers"] = {"Authorization": "env:COCKPIT_TEST_TOKEN"}
    monkeypatch.delenv("COCKPIT_TEST_TOKEN", raising=False)
    cfg = load_config(write_config(raw), environ={})  # valid even though the variable is not set yet
    source = cfg.source("health")
    assert isinstance(source, HttpHealthSource)
    value = source.headers["Authorization"]
    assert value == "env:COCKPIT_TEST_TOKEN", "the model stores the reference, never the secret"

    monkeypatch.setenv("COCKPIT_TEST_TOKEN", "Bearer abc123")
    assert resolve_secret(value) == "Bearer abc123"
    assert "abc123" not in cfg.model_dump_json(), "the secret must not end up in the model"

    monkeypatch.setenv("COCKPIT_TEST_TOKEN", "Bearer rotated")
    assert resolve_secret(value) == "Bearer rotated", "resolved at use, so a rotated secret is picked up"


def test_missing_secret_variable_gives_clear_secret_error(monkeypatch):
    monkeypatch.delenv("COCKPIT_TEST_MISSING", raising=False)
    with pytest.raises(SecretError) as info:
        resolve_secret("env:COCKPIT_TEST_MISSING", "sources.health.headers.Authorization")
    text = str(info.value)
    assert text == (
        "environment variable COCKPIT_TEST_MISSING is not set "
        "(referenced by sources.health.headers.Authorization)"
    )


def test_plain_values_pass_through_resolve_secret():
    assert resolve_secret("application/json") == "application/json"
    assert resolve_secret("env:") == "env:"  # not a reference: no name


# ---------------------------------------------------------------- environment overrides


def test_env_override_by_source_name(write_config, raw):
    environ = {
        "COCKPIT_SOURCES__METRICS__URL": "http://127.0.0.1:9000/metrics",
        "COCKPIT_SOURCES__METRICS__INTERVAL": "2.5",
        "COCKPIT_SOURCES__HEALTH__CRITICAL": "false",
        "COCKPIT_SETTINGS__HISTORY": "600",
        "COCKPIT_SERVICE__NAME": "payments",
        "UNRELATED": "ignored",
        "COCKPIT_NO_DOUBLE_UNDERSCORE": "ignored",
    }
    cfg = load_config(write_config(raw), environ=environ)
    metrics = cfg.source("metrics")
    assert metrics.url == "http://127.0.0.1:9000/metrics"
    assert metrics.interval == 2.5  # read as a TOML number, not a string
    assert cfg.source("health").critical is False
    assert cfg.source("health").url == f"{BASE}/health"  # other sources untouched
    assert cfg.settings.history == 600
    assert cfg.service.name == "payments"


def test_env_override_can_add_a_list_value(write_config, raw):
    env = {"COCKPIT_SOURCES__METRICS__QUANTILES": "[0.5, 0.95, 0.99, 0.999]"}
    cfg = load_config(write_config(raw), environ=env)
    assert cfg.source("metrics").quantiles == [0.5, 0.95, 0.99, 0.999]


def test_panel_series_must_be_one_the_source_produces(write_config, raw):
    raw["panels"]["error_rate"]["series"] = "metrics:eror_rate"
    line = only(problems_of(write_config(raw)))
    assert "panels.error_rate.series: source 'metrics' has no series 'eror_rate'" in line
    assert "error_rate" in line.split("it has:")[1]


def test_env_override_uses_process_environment_by_default(write_config, raw, monkeypatch):
    monkeypatch.setenv("COCKPIT_SETTINGS__REFRESH", "2")
    assert load_config(write_config(raw)).settings.refresh == 2


def test_env_override_naming_missing_source_is_reported(write_config, raw):
    path = write_config(raw)
    line = only(problems_of(path, {"COCKPIT_SOURCES__METRIX__URL": "http://127.0.0.1:9000/metrics"}))
    assert "environment COCKPIT_SOURCES__METRIX__URL" in line
    assert "no entry named 'metrix' under sources" in line


def test_env_override_through_a_value_is_reported(write_config, raw):
    line = only(problems_of(write_config(raw), {"COCKPIT_SERVICE__NAME__FIRST": "x"}))
    assert "environment COCKPIT_SERVICE__NAME__FIRST: service.name is not a table" in line


def test_env_override_with_bad_value_names_the_variable(write_config, raw):
    line = only(problems_of(write_config(raw), {"COCKPIT_SOURCES__METRICS__INTERVAL": "fast"}))
    assert "sources[2].interval: expected a number, got 'fast'" in line
    assert "COCKPIT_SOURCES__METRICS__INTERVAL" in line, "the problem is in the environment, not the file"


def test_env_override_with_typo_key_names_the_variable(write_config, raw):
    line = only(problems_of(write_config(raw), {"COCKPIT_SETTINGS__HISTROY": "60"}))
    assert "settings.histroy: unknown key" in line and "did you mean 'history'" in line
    assert "COCKPIT_SETTINGS__HISTROY" in line


def test_file_problems_do_not_blame_the_environment(write_config, raw):
    raw["sources"][2]["interval"] = "fast"
    line = only(problems_of(write_config(raw), {"COCKPIT_SOURCES__HEALTH__URL": f"{BASE}/healthz"}))
    assert "sources[2].interval" in line
    assert "environment" not in line


# ---------------------------------------------------------------- unreadable files


def test_toml_syntax_error_is_one_line_naming_the_file(write_config):
    path = write_config('[service]\nname = "x"\n[[sources]\nname = "y"\n')
    line = only(problems_of(path))
    assert line.startswith(f"{path}: TOML syntax error")
    assert "line 3" in line


def test_missing_file_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "nope.toml"
    assert only(problems_of(path)) == f"{path}: file not found"


def test_directory_instead_of_file(tmp_path):
    assert only(problems_of(tmp_path)) == f"{tmp_path}: is a directory, expected a TOML file"


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[service]\nname = "caf\xe9"\n'.encode("latin-1"))
    line = only(problems_of(path))
    assert line == f"{path}: not UTF-8 text (byte 21); save it as UTF-8"


# ---------------------------------------------------------------- committed examples


def test_demo_example_equals_demo_config():
    path = ROOT / "examples" / "demo.toml"
    assert path.is_file(), "examples/demo.toml is missing"
    assert load_config(path, environ={}) == demo_config(BASE)


def test_demo_example_is_commented_with_how_to_run_it():
    text = (ROOT / "examples" / "demo.toml").read_text(encoding="utf-8")
    assert "cockpit simulate --port 8787" in text
    assert "cockpit run -c examples/demo.toml" in text


def test_config_reference_is_up_to_date():
    path = ROOT / "examples" / "CONFIG.md"
    committed = path.read_text(encoding="utf-8") if path.is_file() else ""
    assert committed == markdown_reference(), (
        "examples/CONFIG.md is out of date with cockpit/config.py; regenerate it with "
        "`cockpit schema --markdown -o examples/CONFIG.md` and commit the result"
    )


def missing_from_reference(text: str) -> list[str]:
    """Every registered kind, every table and every field that ``text`` (the Markdown
    reference) does not document in its own section."""
    from cockpit import kinds
    from cockpit.reference import sections

    parts = {}
    for chunk in text.split("\n## `")[1:]:
        title, _, body = chunk.partition("`\n")
        parts[title] = body
    missing = [f"kind {k}" for k in (*kinds.source_kinds(), *kinds.action_kinds())
               if f'kind = "{k}"' not in "\n".join(parts)]
    for title, model in sections():
        if title not in parts:
            missing.append(f"section {title}")
            continue
        missing += [f"{title}: {name}" for name in model.model_fields if f"| `{name}` |" not in parts[title]]
    return missing


def test_every_kind_table_and_field_is_in_the_reference():
    """examples/CONFIG.md documented 3 of the 10 source kinds and no [[actions]], [guards],
    [aws] or Statuspage field: now every one, from the kind registry."""
    committed = (ROOT / "examples" / "CONFIG.md").read_text(encoding="utf-8")
    assert missing_from_reference(committed) == []
    # the check fails when the docs lose a field, a section or a kind
    broken = committed.replace("| `qualifier` |", "| `qualifer` |")
    assert missing_from_reference(broken) == ['[[actions]] kind = "lambda_concurrency": qualifier']
    broken = committed.replace('## `[[sources]] kind = "pg_health"`', "## `pg health`")
    assert 'kind pg_health' in missing_from_reference(broken)


def test_an_unknown_component_lists_a_few_known_ones_not_all():
    raw = demo_raw(BASE)
    raw["sources"][1]["components"] = [f"svc-{i:04d}" for i in range(500)]
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, "<t>", {})
    line = next(p for p in err.value.problems if "actions[0].components" in p)
    assert "no component 'ai-gateway' (known: svc-0000," in line and "and 492 more)" in line
    assert len(line) < 200
