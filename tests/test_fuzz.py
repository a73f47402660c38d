"""Property-based tests (Hypothesis) of every parser of outside input: the config
loader, the tape reader, the Prometheus text parser, the JSON answers of the HTTP and
Prometheus API sources, and the sanitiser itself. Generated input never raises past
the boundary (one error type, one line), never hangs, never prints a traceback.

Example counts stay modest so CI stays inside its time; each property still sees a
few hundred inputs per run, different ones every run.
"""

from __future__ import annotations

import json
import re
import string
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])

# JSON-like values: what a hostile server or file can hold
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                            st.dictionaries(st.text(max_size=10), inner, max_size=5)),
                           max_leaves=25)
hostile_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=200)


# ---------------------------------------------------------------- the sanitiser


@FAST
@given(hostile_text)
def test_sanitised_text_holds_nothing_a_terminal_acts_on(text):
    import unicodedata

    from cockpit.safetext import _BIDI, sanitise

    shown = sanitise(text)
    # no control character, no lone surrogate, no bidi override: what a terminal acts on
    assert not [c for c in shown if unicodedata.category(c) in ("Cc", "Cs") or ord(c) in _BIDI]
    assert "\x1b" not in shown and "\x07" not in shown and "\n" not in shown and "\r" not in shown
    assert len(shown) == len(text)  # one placeholder per character: columns do not shift
    shown.encode("utf-8")  # never a lone surrogate


# ---------------------------------------------------------------- the config loader


config_keys = st.sampled_from(["service", "sources", "panels", "settings", "actions", "incident", "guards", "aws",
                               "name", "kind", "url", "interval", "timeout", "series", "unit", "threshold", "key",
                               "x"])
config_docs = st.recursive(st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                                     st.booleans()),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(config_keys, inner, max_size=5)),
                           max_leaves=30)


@FAST
@given(st.dictionaries(config_keys, config_docs, max_size=6))
def test_any_config_document_is_a_config_or_one_line_per_problem(doc):
    from cockpit.config import ConfigError, config_from_dict

    try:
        config_from_dict(doc, "<fuzz>", {})
    except ConfigError as e:
        assert e.problems and all(isinstance(p, str) and "\n" not in p and len(p) < 2000 for p in e.problems)


@FAST
@given(key=st.text(min_size=1, max_size=30), where=st.sampled_from(["service", "settings", "sources", "panels"]))
def test_any_key_in_a_problem_is_one_line_that_names_it(key, where):
    """A key holding a newline, a dot or an escape is named the way TOML writes it (quoted,
    escaped) in one line; it once split the problem over two lines."""
    from cockpit.config import ConfigError, config_from_dict
    from cockpit.drill.demo import demo_raw

    raw = demo_raw("http://127.0.0.1:9")
    table = raw[where][0] if where == "sources" else raw[where]["error_rate"] if where == "panels" else raw[where]
    if key in table:
        return
    table[key] = 1
    try:
        config_from_dict(raw, "<fuzz>", {})
    except ConfigError as e:
        assert all("\n" not in p and "\x1b" not in p for p in e.problems), e.problems
        named = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)
        assert any(f"{named}: unknown key" in p for p in e.problems), (named, e.problems)
    else:
        raise AssertionError(f"unknown key {key!r} in {where} was accepted")


@FAST
@given(st.text(alphabet=string.printable + "[]{}=.\"'#\u00e9\x00\x1b", max_size=400))
def test_any_text_as_a_config_file(text):
    from cockpit.config import ConfigError, parse_config

    try:
        parse_config(text, "<fuzz>", {})
    except ConfigError as e:
        assert e.problems and all("\n" not in p for p in e.problems)


@settings(max_examples=20, deadline=3000)
@given(st.integers(min_value=100, max_value=60_000), st.sampled_from(["dotted", "header", "array", "inline"]))
def test_pathological_nesting_is_refused_quickly(depth, shape):
    """The cases that ran 150 s at 9.8 GB, or raised RecursionError, before issue 12."""
    from cockpit.config import ConfigError, parse_config

    text = {"dotted": "a" + ".a" * depth + " = 1\n", "header": "[" + ".".join(["t"] * depth) + "]\n",
            "array": "x = " + "[" * depth + "]" * depth + "\n",
            "inline": "x = " + "{a = " * depth + "1" + "}" * depth + "\n"}[shape]
    with pytest.raises(ConfigError):
        parse_config(text, "<deep>", {})


# ---------------------------------------------------------------- tapes


def _tape(frames: bytes) -> bytes:
    from cockpit.drill.tape import _VERSION, FORMAT_VERSION, MAGIC

    return MAGIC + _VERSION.pack(FORMAT_VERSION) + frames


def _frame(tag: bytes, payload: bytes, t0: float, t1: float) -> bytes:
    from cockpit.drill.tape import _FRAME

    body = zlib.compress(payload)
    return _FRAME.pack(tag, t0, t1, len(body), zlib.crc32(body)) + body


def _read_all(path) -> None:
    from cockpit.drill.tape import Tape, TapeError

    try:
        tape = Tape.open(path)
        tape.readings()
        tape.events()
        _ = (tape.start, tape.end, tape.damage)
    except TapeError as e:
        assert "\n" not in str(e) and str(path) in str(e)


@FAST
@given(st.binary(max_size=600))
def test_any_bytes_after_the_magic(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("tape") / "t.tape"
    path.write_bytes(_tape(data))
    _read_all(path)


times = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=1.7e9, max_value=1.8e9))


@FAST
@given(header=json_values, events=json_values, readings=st.binary(max_size=300), t0=times, t1=times)
def test_frames_with_good_checksums_and_crafted_payloads(tmp_path_factory, header, events, readings, t0, t1):
    from cockpit.drill.tape import EVENTS, HEAD, READINGS

    frames = (_frame(HEAD, json.dumps(header).encode(), 1.75e9, 1.75e9) + _frame(READINGS, readings, t0, t1)
              + _frame(EVENTS, json.dumps(events).encode(), t0, t1))
    path = tmp_path_factory.mktemp("tape") / "t.tape"
    path.write_bytes(_tape(frames))
    _read_all(path)


@FAST
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=255)),
                min_size=1, max_size=8))
def test_a_real_tape_with_bytes_flipped(tmp_path_factory, flips):
    """A recorded tape damaged in transit: read up to the damage, one line, never a crash."""
    from cockpit.model import Level, Reading, TimelineEvent
    from cockpit.drill.tape import TapeWriter

    folder = tmp_path_factory.mktemp("tape")
    good = folder / "good.tape"
    w = TapeWriter(good, {"service": "s", "started": 1.75e9, "config": {}}, flush_every=5)
    w.readings([Reading("m", "x", 1.75e9 + i, float(i), state="up", detail="d") for i in range(30)])
    w.event(TimelineEvent(1.75e9 + 3, "note", "n", Level.OK))
    w.close()
    data = bytearray(good.read_bytes())
    for at, byte in flips:
        data[at % len(data)] = byte
    bad = folder / "bad.tape"
    bad.write_bytes(bytes(data))
    _read_all(bad)


# ---------------------------------------------------------------- the Prometheus text parser


metric_lines = st.one_of(
    st.text(max_size=80),
    st.builds(lambda n, lbl, v: f"{n}{{{lbl}}} {v}", st.from_regex(r"[a-z_:][a-z0-9_:]{0,12}", fullmatch=True),
              st.text(max_size=30), st.text(alphabet="0123456789.eE+-naifNI", max_size=12)),
    st.sampled_from(["# TYPE x histogram", "# HELP x y", "x 1 2 3", 'x{a="\\"} 1', "x{} 1", "x{a=\"b\",} NaN"]),
)


@FAST
@given(st.lists(metric_lines, max_size=12))
def test_any_scrape_text_parses_or_names_its_bad_line(lines):
    from cockpit.signals.sources.prom_scrape import MalformedMetrics, parse

    try:
        scrape = parse("\n".join(lines))
    except MalformedMetrics as e:
        assert str(e).startswith("malformed metrics at line ") and "\n" not in str(e)
    else:
        assert all(isinstance(v, float) for series in scrape.samples.values() for v in series.values())


# ---------------------------------------------------------------- JSON answers


@FAST
@given(json_values, st.integers(min_value=100, max_value=599))
def test_any_health_answer_is_a_state(doc, code):
    from cockpit.config import config_from_dict
    from cockpit.drill.demo import demo_raw
    from cockpit.signals.sources import SourceContext
    from cockpit.signals.sources._http import _detail, parse_json, verdict
    from cockpit.signals.sources.http_health import HttpHealth

    cfg = config_from_dict(demo_raw("http://127.0.0.1:9"), "<t>", {}).source("health")
    body = json.dumps(doc).encode()
    said, unmet = verdict(cfg, code, body)
    assert said is None or isinstance(said, str)
    state, detail = HttpHealth(cfg, SourceContext()).judge(code, body)
    assert isinstance(state, str) and isinstance(detail, str)
    assert isinstance(_detail(parse_json(body)), str)


@FAST
@given(json_values)
def test_any_prometheus_api_answer_is_a_number_or_one_line(data):
    from cockpit.signals.sources._base import SourceError
    from cockpit.signals.sources.prom_query import PromQuery

    q = PromQuery.__new__(PromQuery)
    try:
        value = q._one("error_rate", data if isinstance(data, dict) else {"resultType": "vector", "result": data})
    except SourceError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(value, float)


def test_the_float_columns_round_trip():
    """(A sanity check of the tape's own codec that the fuzzing above leans on.)"""
    from cockpit.drill.tape import _pack_floats, _unpack_floats

    values = [0.0, 1.5, -2.25, 1e300, float("inf")]
    assert _unpack_floats(_pack_floats(values), len(values)) == values
    assert struct.calcsize("<d") == 8
