"""Environment overrides that give a table or a list as JSON (COCKPIT_<SECTION>__<KEY>='{...}'):
the override parser property by property, examples through the config, and the real `cockpit`
command run with such a variable."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cockpit.config
from cockpit.config import MAX_DEPTH, ConfigError, _override_value, apply_overrides, config_from_dict

ROOT = Path(__file__).resolve().parent.parent
HEADERS = "COCKPIT_SOURCES__METRICS__HEADERS"
QUERIES = "COCKPIT_SOURCES__METRICS__QUERIES"
THRESHOLD = "COCKPIT_PANELS__ERROR_RATE__THRESHOLD"
DEEP = f"nested too deep (a config is at most {MAX_DEPTH} levels, the key's own included)"
PROMQL = {"error_rate": "sum(rate(http_errors_total[5m])) / sum(rate(http_requests_total[5m]))",
          "latency_p95": "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
          "cost_per_day": "sum(ai_cost_usd_per_day)"}


def base_raw(url: str = "http://127.0.0.1:9") -> dict:
    """A config of its own (not the demo's, which other work changes): a prom_query source
    with no headers in the file, an http_health source with one, a cloudwatch source, an action."""
    return {
        "service": {"name": "checkout-api", "environment": "staging"},
        "sources": [
            {"name": "health", "kind": "http_health", "url": f"{url}/health", "headers": {"X-Trace": "cockpit"}},
            {"name": "metrics", "kind": "prom_query", "url": url, "backfill": 0, "queries": dict(PROMQL)},
            {"name": "cw", "kind": "cloudwatch", "metrics": {
                "errors": {"namespace": "AWS/Lambda", "metric": "Errors", "dimensions": {"FunctionName": "f"}}}},
        ],
        "panels": {
            "health": {"sources": ["health"]},
            "error_rate": {"series": "metrics:error_rate", "unit": "ratio", "threshold": {"warn": 0.05, "critical": 0.1}},
            "latency": {"series": "metrics:latency_p95", "unit": "seconds"},
            "cost": {"series": "metrics:cost_per_day", "unit": "usd_per_day"},
        },
        "actions": [{"kind": "http", "key": "r", "name": "Rollback", "target": "checkout-api", "method": "POST",
                     "url": f"{url}/admin/rollback", "body": {"to": "v1"}}],
    }


def load(env: dict, raw: dict | None = None):
    return config_from_dict(copy.deepcopy(raw or base_raw()), "<t>", env)


def problems(env: dict, raw: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load(env, raw)
    for line in err.value.problems:
        assert "\n" not in line and line.startswith("<t>: "), line
    return err.value.problems


def old_override_value(text: str):
    """The parser before JSON was taken, for "scalars keep today's behaviour"."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


# ---------------------------------------------------------------- examples through the config


def test_headers_as_json_where_the_file_has_none():
    cfg = load({HEADERS: '{"Authorization": "env:PROM_TOKEN", "X-Scope-OrgID": "tenant-1"}'})
    assert cfg.source("metrics").headers == {"Authorization": "env:PROM_TOKEN", "X-Scope-OrgID": "tenant-1"}


def test_json_replaces_the_whole_table_keeping_key_case():
    cfg = load({"COCKPIT_SOURCES__HEALTH__HEADERS": '{"Authorization": "env:HEALTH_TOKEN"}'})
    assert cfg.source("health").headers == {"Authorization": "env:HEALTH_TOKEN"}, "replaced, not merged"


def test_a_table_then_a_key_inside_it():
    cfg = load({HEADERS: '{"Authorization": "env:PROM_TOKEN"}', f"{HEADERS}__X_TRACE": "abc"})
    assert cfg.source("metrics").headers == {"Authorization": "env:PROM_TOKEN", "x_trace": "abc"}


def test_queries_table_as_json_with_promql_braces():
    queries = {"error_rate": 'sum(rate(http_errors_total{job="api"}[5m]))',
               "latency_p95": 'histogram_quantile(0.95, sum by (le) (rate(d_bucket{job="api"}[5m])))',
               "cost_per_day": "vector(12.5)"}
    cfg = load({QUERIES: json.dumps(queries)})
    assert cfg.source("metrics").queries == queries


def test_a_string_key_keeps_a_value_starting_with_a_brace():
    cfg = load({f"{QUERIES}__ERROR_RATE": '{__name__="http_errors_ratio", job="api"}'})
    assert cfg.source("metrics").queries["error_rate"] == '{__name__="http_errors_ratio", job="api"}'


def test_thresholds_table_as_json():
    cfg = load({THRESHOLD: '{"warn": 0.02, "critical": 0.05, "hold": 30}'})
    t = cfg.panels.error_rate.threshold
    assert (t.warn, t.critical, t.hold, t.direction) == (0.02, 0.05, 30, "above")


def test_nested_tables_as_json_become_models():
    metrics = {"errors": {"namespace": "AWS/Lambda", "metric": "Errors", "stat": "Sum",
                          "dimensions": {"FunctionName": "bedrock-ai-core"}},
               "duration": {"namespace": "AWS/Lambda", "metric": "Duration", "stat": "p95", "scale": 0.001}}
    cfg = load({"COCKPIT_SOURCES__CW__METRICS": json.dumps(metrics)})
    cw = cfg.source("cw")
    assert cw.metrics["errors"].dimensions == {"FunctionName": "bedrock-ai-core"}
    assert cw.metrics["duration"].scale == 0.001


def test_lists_and_tables_of_other_sections():
    cfg = load({"COCKPIT_PANELS__LATENCY__ALSO": '["metrics:error_rate"]',
                "COCKPIT_INCIDENT__RESPONSE_TARGETS": '{"P0": 120, "P1": 600}',
                "COCKPIT_ACTIONS__R__BODY": '{"to": "v1.4.2", "force": true, "note": null}',
                "COCKPIT_GUARDS__ENVIRONMENTS": '{"staging": "deny"}'})
    assert cfg.panels.latency.also == ["metrics:error_rate"]
    assert cfg.incident.response_targets == {"P0": 120, "P1": 600}
    assert cfg.action("r").body == {"to": "v1.4.2", "force": True, "note": None}
    assert cfg.guards.environments == {"staging": "deny"}


def test_a_toml_inline_table_still_works():
    cfg = load({HEADERS: '{ Authorization = "env:PROM_TOKEN" }', "COCKPIT_PANELS__LATENCY__ALSO": "['metrics:error_rate']"})
    assert cfg.source("metrics").headers == {"Authorization": "env:PROM_TOKEN"}
    assert cfg.panels.latency.also == ["metrics:error_rate"]


def test_bad_json_is_one_line_naming_the_variable_and_the_column():
    value = '{"Authorization": env:PROM_TOKEN}'
    (line,) = problems({HEADERS: value})
    assert line == f"<t>: environment {HEADERS}: not valid JSON: Expecting value at column 19"
    assert value[18] == "e"
    (line,) = problems({THRESHOLD: '{"warn": 0.02, "critical": 0.05'})
    assert line == (f"<t>: environment {THRESHOLD}: not valid JSON: Expecting ',' delimiter at column 32 "
                    "(the end of the value)")
    (line,) = problems({"COCKPIT_PANELS__LATENCY__ALSO": '["metrics:error_rate" "x"]'})
    assert line == "<t>: environment COCKPIT_PANELS__LATENCY__ALSO: not valid JSON: Expecting ',' delimiter at " \
                   "column 23"


def test_bad_json_over_several_lines_names_line_and_column():
    (line,) = problems({HEADERS: '{\n  "Authorization": "env:PROM_TOKEN",\n}'})
    assert line.endswith("not valid JSON: Expecting property name enclosed in double quotes at line 3, column 1")


def test_bad_json_never_echoes_the_value():
    secret = "Bearer sk-live-0123456789abcdef"
    (line,) = problems({HEADERS: '{"Authorization": "' + secret + '"'})
    assert secret not in line and "sk-live" not in line


def test_json_the_config_cannot_hold_is_refused():
    (line,) = problems({"COCKPIT_INCIDENT__RESPONSE_TARGETS": '{"P0": 120, "P0": 60}'})
    assert line == "<t>: environment COCKPIT_INCIDENT__RESPONSE_TARGETS: not valid JSON: key 'P0' is given twice"
    (line,) = problems({THRESHOLD: '{"warn": NaN}'})
    assert line == f"<t>: environment {THRESHOLD}: not valid JSON: NaN is not a number a config takes"
    (line,) = problems({HEADERS: '{"a": ' * 20 + '"x"' + "}" * 20})
    assert line == f"<t>: environment {HEADERS}: {DEEP}"
    (line,) = problems({HEADERS: "[" * 5000})
    assert line == f"<t>: environment {HEADERS}: {DEEP}"
    (line,) = problems({HEADERS: '{"a": "' + "x" * 70_000 + '"}'})
    assert line == f"<t>: environment {HEADERS}: 70,009 characters is too long for a value (at most 65,536)"


def test_a_deep_value_on_a_scalar_key_is_a_problem_not_a_traceback():
    (line,) = problems({"COCKPIT_SETTINGS__HISTORY": "[" * 5000})
    assert line.startswith("<t>: settings.history: expected a number, got '[[[[")
    assert line.endswith("(set by environment variable COCKPIT_SETTINGS__HISTORY)")


def test_a_problem_inside_a_json_table_names_the_variable():
    (line,) = problems({HEADERS: '{"Authorization": 5}'})
    assert line == (f"<t>: sources[1].headers.Authorization: expected a string, got 5 "
                    f"(set by environment variable {HEADERS})")
    (line,) = problems({HEADERS: '{"Authorization": "Bearer abc"}'})
    assert line.startswith("<t>: sources[1].headers: header 'Authorization' looks secret")
    assert line.endswith(f"(set by environment variable {HEADERS})")
    (line,) = problems({THRESHOLD: '{"warn": 0.2, "critical": 0.05}'})
    assert line == ("<t>: panels.error_rate.threshold: critical (0.05) must be above warn (0.2) "
                    f"(set by environment variable {THRESHOLD})")
    (line,) = problems({THRESHOLD: '{"warm": 0.2}'})
    assert line == ("<t>: panels.error_rate.threshold.warm: unknown key (did you mean 'warn'?) "
                    f"(set by environment variable {THRESHOLD})")
    (line,) = problems({THRESHOLD: '[0.02, 0.05]'})
    assert line == f"<t>: panels.error_rate.threshold: expected a table, got a list (set by environment variable {THRESHOLD})"


def test_a_key_prefix_is_not_blamed_for_its_neighbour():
    raw = base_raw()
    raw["sources"][1]["headers_x"] = 1  # a problem in the file, in a key starting with the override's
    lines = problems({HEADERS: '{"Authorization": "env:PROM_TOKEN"}'}, raw)
    assert lines == ["<t>: sources[1].headers_x: unknown key (did you mean 'headers'?)"]


def test_json_for_an_unknown_key_is_an_unknown_key():
    (line,) = problems({"COCKPIT_SOURCES__METRICS__HEADRES": '{"a": "b"}'})
    assert line == ("<t>: sources[1].headres: unknown key (did you mean 'headers'?) "
                    "(set by environment variable COCKPIT_SOURCES__METRICS__HEADRES)")


def test_scalars_keep_todays_behaviour():
    cfg = load({"COCKPIT_SOURCES__METRICS__INTERVAL": "2.5", "COCKPIT_SOURCES__HEALTH__CRITICAL": "false",
                "COCKPIT_SERVICE__NAME": '"payments"', "COCKPIT_SERVICE__ENVIRONMENT": "prod-eu"})
    assert cfg.source("metrics").interval == 2.5 and cfg.source("health").critical is False
    assert cfg.service.name == "payments" and cfg.service.environment == "prod-eu"
    (line,) = problems({"COCKPIT_SOURCES__METRICS__INTERVAL": "fast"})
    assert "sources[1].interval: expected a number, got 'fast'" in line
    (line,) = problems({"COCKPIT_SETTINGS__HISTORY": '{"a": 1}'})
    assert "settings.history: expected a number, got '{\"a\": 1}'" in line


def test_the_docstring_and_readme_examples_work():
    text = (cockpit.config.__doc__ or "") + (ROOT / "README.md").read_text(encoding="utf-8")
    examples = re.findall(r"(COCKPIT_[A-Z_]+__[A-Z_]+)='([^']+)'", text)
    assert {var for var, _ in examples} >= {HEADERS, THRESHOLD}
    for var, value in examples:
        raw = base_raw()
        assert apply_overrides(raw, {var: value}) == []
        assert isinstance(raw["sources"][1]["headers"] if var == HEADERS else raw["panels"]["error_rate"]["threshold"],
                          dict)
        config_from_dict(raw, "<t>", {})


# ---------------------------------------------------------------- properties of the parser

NO_NUL = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
#: keys without control characters: a problem line shows a key as written, and a key path with a
#: newline in it is two lines whether it came from the file or the environment (cockpit.config._path)
KEYS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=10)
JSON_LEAF = (st.none() | st.booleans() | st.integers(-(2**53), 2**53)
             | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(KEYS, inner, max_size=4), max_leaves=24)
TABLES = st.dictionaries(KEYS, JSON_VALUE, max_size=5)


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(table=TABLES, indent=st.sampled_from([None, 0, 2]), pad=st.sampled_from(["", " ", "\n"]))
def test_any_json_object_lands_as_written(table, indent, pad):
    raw = base_raw()
    text = pad + json.dumps(table, indent=indent, ensure_ascii=indent is None) + pad
    applied: dict = {}
    found = apply_overrides(raw, {HEADERS: text}, applied)
    levels = 3 + depth(table)  # root, sources, the source; then the table itself
    if levels > MAX_DEPTH:
        assert found == [f"environment {HEADERS}: {DEEP}"]
        assert "headers" not in raw["sources"][1]
    else:
        assert found == []
        assert raw["sources"][1]["headers"] == table
        assert applied == {"sources[1].headers": HEADERS}


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**6, 10**6), max_size=8))
def test_any_json_array_lands_as_written(values):
    raw = base_raw()
    assert apply_overrides(raw, {"COCKPIT_PANELS__LATENCY__ALSO": json.dumps(values)}) == []
    assert raw["panels"]["latency"]["also"] == values


@st.composite
def broken_json(draw):
    """A JSON table cut short or with a character put in: neither JSON nor a TOML table."""
    text = json.dumps(draw(TABLES.filter(bool)))
    at = draw(st.integers(1, len(text) - 1))
    text = draw(st.sampled_from([text[:at], text[:at] + draw(st.sampled_from(list(",:{}[]\"'x= \\"))) + text[at:]]))
    try:
        json.loads(text)
        assume(False)
    except ValueError:
        pass
    try:
        assume(not isinstance(tomllib.loads(f"v = {text}")["v"], (dict, list)))
    except (tomllib.TOMLDecodeError, RecursionError):
        pass
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(text=broken_json())
def test_broken_json_is_one_problem_at_the_right_place(text):
    raw = base_raw()
    before = copy.deepcopy(raw)
    (line,) = apply_overrides(raw, {HEADERS: text})
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}" if "\n" in text.strip() else f"column {e.colno}"
        assert line.startswith(f"environment {HEADERS}: not valid JSON: {e.msg} at {where}")
    except ValueError as e:  # a number of too many digits
        assert line.startswith(f"environment {HEADERS}: not valid JSON: ") and str(e)[:40] in line
    assert "\n" not in line
    assert raw == before, "nothing is set from a value that did not parse"


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(
    st.text(NO_NUL, max_size=40),
    st.integers().map(str), st.floats(allow_nan=False).map(repr), st.sampled_from(["true", "false", "1979-05-27",
                                                                                  "07:32:00", "0x1F", "1_000"]),
    st.text(NO_NUL, max_size=20).map(json.dumps)))
def test_scalars_parse_as_before(text):
    assume(text.lstrip()[:1] not in ("{", "["))
    for shapes in (set(), {"string"}, {"scalar"}, {"table"}, {"list"}, {"string", "scalar"}):
        assert _override_value(text, shapes) == (old_override_value(text), None)
    raw = base_raw()
    assert apply_overrides(raw, {"COCKPIT_SETTINGS__HISTORY": text}) == []
    assert raw["settings"]["history"] == old_override_value(text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(NO_NUL, max_size=40).map(lambda t: "{" + t) | st.text(NO_NUL, max_size=40).map(lambda t: "[" + t))
def test_a_bracket_on_a_number_key_parses_as_before(text):
    try:
        expected = old_override_value(text)
    except RecursionError:
        expected = text
    assert _override_value(text, {"scalar"}) == (expected, None)


VARS = [HEADERS, QUERIES, THRESHOLD, f"{QUERIES}__ERROR_RATE", "COCKPIT_SETTINGS__HISTORY",
        "COCKPIT_SOURCES__CW__METRICS", "COCKPIT_SOURCES__CW__METRICS__ERRORS__DIMENSIONS", "COCKPIT_ACTIONS__R__BODY",
        "COCKPIT_PANELS__LATENCY__ALSO", "COCKPIT_SOURCES__METRICS__NOPE", "COCKPIT_SERVICE__NAME__X"]


@settings(max_examples=400, deadline=None)
@given(var=st.sampled_from(VARS), text=st.one_of(st.text(NO_NUL, max_size=60), TABLES.map(json.dumps),
                                                 st.lists(JSON_VALUE, max_size=3).map(json.dumps)))
def test_any_value_gives_a_config_or_problem_lines(var, text):
    assume(not re.search(r"\\[nrbfu]", text))  # a key with a JSON-escaped newline: see KEYS
    applied: dict = {}
    apply_overrides(base_raw(), {var: text}, applied)
    try:
        load({var: text})
    except ConfigError as e:
        assert e.problems and all("\n" not in p and p.startswith("<t>: ") for p in e.problems)
        # each problem is the variable's, or one of the table the key is in ("empty query for error_rate")
        within = [f"<t>: {key.rsplit('.', 1)[0]}: " for key in applied]
        assert all(var in p or p.startswith(tuple(within)) for p in e.problems), e.problems


# ---------------------------------------------------------------- the cockpit command


class PromAnswers(BaseHTTPRequestHandler):
    """/api/v1/query answers 0.5 for any query, only with the expected Authorization."""

    token = ""
    seen: list = []

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        type(self).seen.append((url.path, parse_qs(url.query).get("query", [""])[0],
                                self.headers.get("Authorization")))
        if self.headers.get("Authorization") != self.token:
            body, status = b'{"status": "error", "errorType": "unauthorized", "error": "no token"}', 401
        else:
            body, status = json.dumps({"status": "success", "data": {
                "resultType": "vector", "result": [{"metric": {}, "value": [1767225600, "0.5"]}]}}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002
        return


@pytest.fixture
def prom():
    PromAnswers.token = "Bearer s3cr3t-token-for-tests"
    PromAnswers.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), PromAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def run_cockpit(*args: str, env: dict) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("cockpit")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "cockpit.cli"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**base, "NO_COLOR": "1", **env})


def prom_only(url: str) -> dict:
    raw = base_raw(url)
    raw["sources"] = [raw["sources"][1]]
    raw["sources"][0]["timeout"] = 5.0
    raw["panels"].pop("health")
    raw.pop("actions")
    return raw


def test_cockpit_check_uses_headers_and_queries_given_as_json(prom, write_config):
    path = write_config(prom_only(prom))
    queries = {"error_rate": 'sum(rate(http_errors_total{job="api"}[5m]))', "latency_p95": "vector(0.2)",
               "cost_per_day": "vector(3)"}
    env = {HEADERS: '{"Authorization": "env:PROM_TOKEN"}', "PROM_TOKEN": PromAnswers.token,
           QUERIES: json.dumps(queries)}
    result = run_cockpit("check", "-c", str(path), env=env)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error_rate 0.5" in result.stdout and "cost_per_day 0.5" in result.stdout
    assert PromAnswers.token not in result.stdout + result.stderr
    asked = {q for path_, q, auth in PromAnswers.seen if auth == PromAnswers.token}
    assert asked == set(queries.values()), "the queries from the environment were asked, with the header"
    assert not any(p.endswith("query_range") for p, _, _ in PromAnswers.seen), "check loads no history"

    PromAnswers.seen.clear()
    without = run_cockpit("check", "-c", str(path), env={"PROM_TOKEN": PromAnswers.token})
    assert without.returncode == 1 and "unauthorized" in without.stdout, "the file alone sends no header"


def test_cockpit_check_and_run_refuse_bad_json_with_exit_2(prom, write_config):
    path = write_config(prom_only(prom))
    env = {HEADERS: '{"Authorization": env:PROM_TOKEN}', "PROM_TOKEN": PromAnswers.token}
    for command in (["check", "-c", str(path)], ["check", "--offline", "-c", str(path)], ["run", "-c", str(path)]):
        result = run_cockpit(*command, env=env)
        assert "Traceback" not in result.stderr + result.stdout
        assert result.returncode == 2, (command, result)
        assert result.stderr.splitlines() == [
            f"{path}: environment {HEADERS}: not valid JSON: Expecting value at column 19",
            f"cockpit: 1 problem in {path}.",
        ], result.stderr
    assert PromAnswers.seen == [], "a config with a bad override is not polled"


def test_cockpit_check_blames_a_bad_table_on_its_variable(prom, write_config):
    path = write_config(prom_only(prom))
    result = run_cockpit("check", "--offline", "-c", str(path), env={THRESHOLD: '{"warn": 0.2, "critical": 0.05}'})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0] == (f"{path}: panels.error_rate.threshold: critical (0.05) must be above "
                                             f"warn (0.2) (set by environment variable {THRESHOLD})")
    good = run_cockpit("check", "--offline", "-c", str(path), env={THRESHOLD: '{"warn": 0.02, "critical": 0.05}'})
    assert good.returncode == 0, good.stderr
