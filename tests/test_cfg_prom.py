"""prom_scrape and prom_query against what real Prometheus setups do:

1. prom_scrape metric fields are PromQL selectors (`x{code=~"5.."}`), parsed and checked
   at config load, applied when summing a scrape (property-based tests of the parser);
2. prom_scrape has no cost metric unless one is configured (no cost_per_day series);
3. prom_scrape gives a rate only over at least `min_rate_window` (timed from the
   scrapes' starts), so the first rate shown is right; `cockpit check` waits for it;
4. prom_query stamps a reading with Prometheus's evaluation time, not the arrival
   time, and does not believe a timestamp far off its own clock.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cockpit.clock import ManualClock, SystemClock
from cockpit.config import ConfigError, config_from_dict
from cockpit.drill.demo import demo_config, demo_raw
from cockpit.model import Status
from cockpit.signals.check import check_one
from cockpit.signals.poller import Poller
from cockpit.signals.sources import SourceContext, build_source
from cockpit.signals.sources._base import Answer
from cockpit.signals.sources.prom_query import (
    CLOCK_TOLERANCE,
    PromQuerySource,
    evaluated_at,
)
from cockpit.signals.sources.prom_scrape import (
    Matcher,
    PromScrapeSource,
    Selector,
    parse,
    parse_selector,
)

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def scrape_cfg(url: str, **kw) -> PromScrapeSource:
    return PromScrapeSource(kind="prom_scrape", name=kw.pop("name", "metrics"), url=url, **kw)


def raw_config(source: dict, cost_panel: bool = False) -> dict:
    panels = {"error_rate": {"series": "metrics:error_rate", "unit": "ratio"},
              "latency": {"series": "metrics:latency_p95", "unit": "seconds"}}
    panels["cost"] = ({"series": "metrics:cost_per_day", "unit": "usd_per_day"} if cost_panel else
                      {"series": "metrics:request_rate", "unit": "count"})
    return {"service": {"name": "checkout", "environment": "test", "production": False},
            "sources": [{"name": "metrics", "kind": "prom_scrape", "url": "http://127.0.0.1:9/metrics", **source}],
            "panels": panels}


def config_problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw, "cockpit.toml", {})
    return str(e.value).splitlines()


# ================================================================ 1. selectors

NAMES = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,12}", fullmatch=True)
LABELS = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(lambda s: s != "__name__")
VALUES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@st.composite
def matchers(draw) -> Matcher:
    label, op = draw(LABELS), draw(st.sampled_from(["=", "!=", "=~", "!~"]))
    if op in ("=", "!="):
        return Matcher(label, op, draw(VALUES))
    # a regex: literal text escaped, optionally with some regex syntax around it
    value = draw(st.builds(lambda a, b, c: a + b + c, st.sampled_from(["", "(", "a|"]), VALUES.map(re.escape),
                           st.sampled_from(["", ".*", "[0-9]+"])))
    if value.startswith("("):
        value += ")"
    return Matcher(label, op, value)


def go_quote(value: str, quote: str) -> str:
    """A value as PromQL writes it with ``quote`` (Go escapes, some chosen at random by the caller)."""
    out = []
    for ch in value:
        if ch in (quote, "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return quote + "".join(out) + quote


@st.composite
def written(draw) -> tuple[str, Selector]:
    """A selector and one of the many ways to write it (spaces, quotes, escapes, a trailing comma)."""
    name = draw(NAMES)
    ms = tuple(draw(st.lists(matchers(), max_size=4)))
    ws = st.sampled_from(["", " ", "  ", "\t", "\n"])
    parts = []
    for m in ms:
        quotes = ['"', "'"] + (["`"] if "`" not in m.value else [])
        quote = draw(st.sampled_from(quotes))
        value = quote + m.value + quote if quote == "`" else go_quote(m.value, quote)
        parts.append(f"{draw(ws)}{m.label}{draw(ws)}{m.op}{draw(ws)}{value}{draw(ws)}")
    text = draw(ws) + name + draw(ws)
    if ms or draw(st.booleans()):
        text += "{" + ",".join(parts) + ("," + draw(ws) if ms and draw(st.booleans()) else "") + "}" + draw(ws)
    return text, Selector(name, ms)


@given(written())
@settings(max_examples=400, deadline=None)
def test_selector_parses_back_whatever_way_it_is_written(case):
    text, expected = case
    got = parse_selector(text)
    assert got == expected
    assert parse_selector(str(got)) == expected, "the canonical text parses back to the same selector"


@given(st.text(max_size=40) | st.from_regex(r"[a-z_]{1,4}\{[a-z =!~\"'`,.*()\[\]\\]{0,20}\}?", fullmatch=True))
@settings(max_examples=600, deadline=None)
def test_any_text_is_a_selector_or_one_line_saying_what_is_wrong(text):
    try:
        sel = parse_selector(text)
    except ValueError as e:
        line = str(e)
        assert line.startswith("bad selector ") and "\n" not in line
        return
    assert isinstance(sel, Selector) and re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", sel.name)


LABEL_SETS = st.lists(st.dictionaries(st.sampled_from(["code", "route", "x"]), VALUES, max_size=3), max_size=6)


def samples_of(label_sets: list[dict[str, str]]) -> dict:
    return {tuple(sorted(d.items())): float(i) for i, d in enumerate(label_sets)}


@given(LABEL_SETS, st.sampled_from(["code", "route", "x"]), VALUES)
@settings(max_examples=300, deadline=None)
def test_matchers_mean_what_prometheus_means(label_sets, label, value):
    """= and != are each other's complement, as =~ and !~ are; a regex of escaped text is
    the same as =, because a regex matches the whole value; a missing label is ""."""
    samples = samples_of(label_sets)
    q = go_quote(value, '"')
    eq = parse_selector(f"m{{{label}={q}}}").select(samples)
    ne = parse_selector(f"m{{{label}!={q}}}").select(samples)
    rq = go_quote(re.escape(value), '"')
    req = parse_selector(f"m{{{label}=~{rq}}}").select(samples)
    rne = parse_selector(f"m{{{label}!~{rq}}}").select(samples)
    by_hand = {k: v for k, v in samples.items() if dict(k).get(label, "") == value}
    assert eq == req == by_hand
    assert ne == rne == {k: v for k, v in samples.items() if k not in by_hand}


@given(VALUES, VALUES.filter(bool))
@settings(max_examples=300, deadline=None)
def test_a_regex_is_anchored_at_both_ends(text, more):
    sel = parse_selector("m{code=~" + go_quote(re.escape(text), '"') + "}")
    samples = samples_of([{"code": text}, {"code": text + more}, {"code": more + text}])
    assert list(sel.select(samples).values()) == [0.0]


def test_selector_examples():
    samples = samples_of([{"code": c} for c in ("200", "500", "503", "1500", "50", "")])

    def codes(text: str) -> list[str]:
        return [dict(k).get("code", "") for k in parse_selector(text).select(samples)]

    assert codes('x{code=~"5.."}') == ["500", "503"], "anchored: not 1500, not 50"
    assert codes('x{code!~"5.."}') == ["200", "1500", "50", ""]
    assert codes("x{code=~`5\\d\\d`}") == ["500", "503"], "a `raw` string needs no double backslash"
    assert codes('x{code=~"5\\\\d\\\\d"}') == ["500", "503"]
    assert codes("x{ code = '200' , }") == ["200"]
    assert codes('x{code=""}') == [""], "a missing label is the empty string"
    assert codes('x{code=~".*"}') == ["200", "500", "503", "1500", "50", ""]
    assert codes('x{code=~"5..", code!="503"}') == ["500"]
    assert codes("x") == codes("x{}") == ["200", "500", "503", "1500", "50", ""]
    multi = samples_of([{"path": "a\nb"}, {"path": "ab"}])
    assert len(parse_selector('x{path=~"a.b"}').select(multi)) == 1, "'.' also matches a newline, as in Prometheus"
    assert parse_selector('x{p="tab\\there \\u00e9 \\"q\\" \\101"}').matchers[0].value == 'tab\there é "q" A'


@pytest.mark.parametrize("text, says", [
    ('x{code=~"5.."', "expected ',' or '}' at column 14, found the end"),
    ('x{code=~"("}', "bad regex for code: missing ), unterminated subpattern"),
    ('x{code=~"5\\d"}', "unknown escape '\\d' at column 11"),
    ("x{code}", "expected one of = != =~ !~ at column 7"),
    ("x{code=5}", "expected a quoted value at column 8"),
    ('{code="5"}', "expected a metric name at column 1"),
    ('x{code="5"} or y', "expected the end at column 13"),
    ("x y", "expected '{' or the end at column 3"),
    ('x{__name__="y"}', "write the metric name before the braces"),
    ('x{a=~"[[:alpha:]]"}', "POSIX classes like [[:alpha:]] are not supported"),
    ('x{a="b\\x4"}', "bad escape"),
    ('x{a="b}', "unterminated string starting at column 5"),
])
def test_bad_selectors_say_what_and_where(text, says):
    with pytest.raises(ValueError) as e:
        parse_selector(text)
    assert says in str(e.value) and str(e.value).startswith("bad selector ")


@pytest.mark.parametrize("field", ["requests_metric", "errors_metric", "duration_metric", "cost_metric"])
def test_every_metric_field_is_checked_when_the_config_is_loaded(field):
    problems = config_problems(raw_config({field: 'http_x{code=~"5\\\\d("}'}))
    assert problems == [(f"cockpit.toml: sources[0].{field}: bad selector 'http_x{{code=~\"5\\\\d(\"}}': "
                         "bad regex for code: missing ), unterminated subpattern at position 3")]
    # and a good one loads
    config_from_dict(raw_config({field: "http_x{code=~'5..', route!=\"/health\"}"}), "cockpit.toml", {})


def test_a_duration_selector_may_not_pick_buckets_by_le():
    problems = config_problems(raw_config({"duration_metric": 'http_request_duration_seconds{le="1"}'}))
    assert len(problems) == 1 and "sources[0].duration_metric" in problems[0] and "'le'" in problems[0]


def test_the_example_from_the_report_validates_and_works_at_run_time():
    """`errors_metric = 'x{code=~"5.."}'` validated and then failed at run time: now it does not."""
    text = ('# TYPE x counter\nx{code="200"} 10\nx{code="500"} 1\nx{code="503"} 2\n'
            '# TYPE d histogram\nd_bucket{le="0.1"} 5\nd_bucket{le="+Inf"} 13\n')
    cfg = scrape_cfg("http://127.0.0.1:9/metrics", requests_metric="x", errors_metric='x{code=~"5.."}',
                     duration_metric="d")
    picked = {f: s.select(parse(text).samples.get(s.name + ("_bucket" if f == "duration_metric" else ""), {}))
              for f, s in cfg.selectors().items()}
    assert sum(picked["errors_metric"].values()) == 3.0 and sum(picked["requests_metric"].values()) == 13.0


def metrics_page(requests: dict[str, float], buckets: dict[str, list[float]], cost: dict[str, float] | None,
                 errors: dict[str, float] | None = None) -> str:
    lines = ["# TYPE http_requests_total counter"]
    lines += [f'http_requests_total{{code="{c}"}} {v:g}' for c, v in requests.items()]
    if errors is not None:
        lines += ["# TYPE http_errors_total counter"] + [f'http_errors_total{{type="{t}"}} {v:g}'
                                                         for t, v in errors.items()]
    lines += ["# TYPE http_request_duration_seconds histogram"]
    for route, counts in buckets.items():
        for le, c in zip(["0.1", "0.5", "1", "+Inf"], counts):
            lines.append(f'http_request_duration_seconds_bucket{{route="{route}",le="{le}"}} {c:g}')
    if cost is not None:
        lines += ["# TYPE ai_cost_usd_total counter"] + [f'ai_cost_usd_total{{model="{m}"}} {v:g}'
                                                         for m, v in cost.items()]
    return "\n".join(lines) + "\n"


async def test_selectors_pick_the_series_summed_in_a_real_scrape(fault_server):
    """Requests and 5xx errors from one counter by its code label, latency of one route,
    cost of the paid models only: two scrapes 10 s apart on a manual clock, exact rates."""
    clock = ManualClock()
    ctx = SourceContext(clock)
    cfg = scrape_cfg(fault_server.url("/metrics"), requests_metric="http_requests_total",
                     errors_metric='http_requests_total{code=~"5.."}',
                     duration_metric='http_request_duration_seconds{route="/api"}',
                     cost_metric='ai_cost_usd_total{model!~"free|local-.*"}', quantiles=[0.5])
    source = build_source(cfg, ctx)
    try:
        fault_server.respond("/metrics", metrics_page(
            {"200": 1000, "404": 10, "500": 5, "503": 5},
            {"/api": [10, 20, 30, 40], "/health": [1000, 1000, 1000, 1000]},
            {"big": 1.0, "free": 50.0, "local-7b": 9.0}))
        assert await source.poll() == []
        clock.advance(10)
        fault_server.respond("/metrics", metrics_page(
            {"200": 1870, "404": 60, "500": 65, "503": 25},  # +1000 requests, +80 of them 5xx
            {"/api": [110, 220, 230, 240], "/health": [9000, 9000, 9000, 9000]},  # /api: +200, half under 0.1 s
            {"big": 1.5, "free": 80.0, "local-7b": 20.0}))  # paid: +$0.50
        got = {r.series: r.value for r in await source.poll()}
    finally:
        await ctx.aclose()
    assert got["request_rate"] == pytest.approx(100.0)
    assert got["error_rate"] == pytest.approx(0.08)
    assert got["latency_p50"] == pytest.approx(0.1), "the /health buckets (all fast) are not counted"
    assert got["cost_per_day"] == pytest.approx(0.5 / 10 * 86400)


async def test_a_selector_that_matches_nothing_yet_counts_zero(fault_server):
    """5xx series appear with the first 5xx answer: until then the error rate is 0, not an error."""
    clock = ManualClock()
    ctx = SourceContext(clock)
    source = build_source(scrape_cfg(fault_server.url("/metrics"), requests_metric="http_requests_total",
                                     errors_metric='http_requests_total{code=~"5.."}'), ctx)
    try:
        for n in (100, 300):
            fault_server.respond("/metrics", metrics_page({"200": n}, {"/api": [n, n, n, n]}, None))
            readings = await source.poll()
            clock.advance(10)
    finally:
        await ctx.aclose()
    got = {r.series: r for r in readings}
    assert got["error_rate"].value == 0.0 and got["error_rate"].status is Status.OK
    assert got["request_rate"].value == pytest.approx(20.0)


# ================================================================ 2. no default cost metric


async def test_an_endpoint_without_a_cost_counter_works_by_default(fault_server):
    cfg = scrape_cfg(fault_server.url("/metrics"), requests_metric="http_requests_total",
                     errors_metric='http_requests_total{code=~"5.."}')
    assert cfg.cost_metric is None and "cost_per_day" not in cfg.series_names()
    clock = ManualClock()
    ctx = SourceContext(clock)
    source = build_source(cfg, ctx)
    try:
        fault_server.respond("/metrics", metrics_page({"200": 10, "500": 1}, {"/a": [1, 2, 3, 4]}, None))
        assert await source.poll() == []
        clock.advance(5)
        fault_server.respond("/metrics", metrics_page({"200": 20, "500": 2}, {"/a": [2, 4, 6, 8]}, None))
        readings = await source.poll()
    finally:
        await ctx.aclose()
    assert all(r.status is Status.OK for r in readings), readings
    assert [r.series for r in readings] == cfg.series_names()  # no cost_per_day, and nothing failed


def test_cost_is_a_series_only_when_a_cost_metric_is_configured():
    assert "cost_per_day" not in scrape_cfg("http://h/metrics").series_names()
    assert "cost_per_day" not in scrape_cfg("http://h/metrics", cost_metric="").series_names()
    assert scrape_cfg("http://h/metrics", cost_metric="").cost_metric is None
    assert scrape_cfg("http://h/metrics", cost_metric="ai_token_cost_usd_total").series_names()[-1] == "cost_per_day"
    config_from_dict(raw_config({"cost_metric": "ai_token_cost_usd_total"}, cost_panel=True), "cockpit.toml", {})
    problems = config_problems(raw_config({}, cost_panel=True))
    assert problems == [("cockpit.toml: panels.cost.series: source 'metrics' has no series 'cost_per_day' (it has: "
                         "request_rate, error_rate, latency_p50, latency_p95, latency_p99); set cost_metric to the "
                         "counter of money spent (e.g. 'ai_token_cost_usd_total')")]


def test_the_demo_names_its_cost_metric():
    metrics = demo_config("http://127.0.0.1:8787").source("metrics")
    assert metrics.cost_metric == "ai_token_cost_usd_total" and "cost_per_day" in metrics.series_names()
    assert demo_raw("http://x")["panels"]["cost"]["series"] == "metrics:cost_per_day"


async def test_a_missing_configured_cost_metric_is_named(fault_server):
    ctx = SourceContext(ManualClock())
    source = build_source(scrape_cfg(fault_server.url("/metrics"), requests_metric="http_requests_total",
                                     errors_metric="http_requests_total", cost_metric="ai_token_cost_usd_total"), ctx)
    fault_server.respond("/metrics", metrics_page({"200": 1}, {"/a": [1, 1, 1, 1]}, None))
    try:
        with pytest.raises(Exception, match="metric ai_token_cost_usd_total not found in scrape"):
            await source.poll()
    finally:
        await ctx.aclose()


# ================================================================ 3. rates over a window


class SteadyServer:
    """A real loopback /metrics whose counters grow at ``rate`` per second, read at the
    moment a request arrives. ``delays`` (seconds, one per request, the last repeating)
    hold each answer back after the counters were read, as a busy exporter writing a
    large page does."""

    def __init__(self, rate: float, delays: list[float] | None = None) -> None:
        self.rate = rate
        self.delays = list(delays or [0.0])
        self.t0 = time.monotonic()
        self.hits = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body = owner.page().encode()
                with owner.lock:
                    owner.hits += 1
                    delay = owner.delays.pop(0) if len(owner.delays) > 1 else owner.delays[0]
                owner.stopping.wait(delay)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                return

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.httpd.server_address[1]}/metrics"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def page(self) -> str:
        n = math.floor(self.rate * (time.monotonic() - self.t0))  # whole requests, as real counters count
        errors = math.floor(n / 10)
        fast, mid, slow = math.floor(n * 0.5), math.floor(n * 0.9), math.floor(n * 0.99)
        return ("# TYPE http_requests_total counter\n"
                f"http_requests_total {n}\n"
                "# TYPE http_errors_total counter\n"
                f"http_errors_total {errors}\n"
                "# TYPE http_request_duration_seconds histogram\n"
                f'http_request_duration_seconds_bucket{{le="0.1"}} {fast}\n'
                f'http_request_duration_seconds_bucket{{le="0.5"}} {mid}\n'
                f'http_request_duration_seconds_bucket{{le="1"}} {slow}\n'
                f'http_request_duration_seconds_bucket{{le="+Inf"}} {n}\n')

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def steady():
    servers: list[SteadyServer] = []

    def make(rate: float, delays: list[float] | None = None) -> SteadyServer:
        servers.append(SteadyServer(rate, delays))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


TRUE_RATE = 27.0  # the report: a steady 27 req/s shown as 91 req/s at first


async def test_the_first_rate_shown_is_the_true_rate(steady):
    """The cockpit's real poller against a real server counting a steady 27 req/s whose
    first answer comes 0.3 s after it read its counters (the old 0.25 s window then showed
    ~2x the true rate): the first rate shown is within 4% of the truth, and it comes from
    scrapes at least min_rate_window apart, with nothing shown before it."""
    server = steady(TRUE_RATE, delays=[0.3, 0.0])
    ctx = SourceContext(SystemClock())
    source = build_source(scrape_cfg(server.url, interval=5.0, timeout=2.0), ctx)
    assert source.cfg.min_rate_window == 2.0
    got: list = []
    first_scrape = time.monotonic()
    poller = Poller([source], lambda name, readings: got.extend(readings))
    task = asyncio.create_task(poller.run_source(source))
    try:
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        shown_after = time.monotonic() - first_scrape
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ctx.aclose()
    rate = {r.series: r.value for r in got}["request_rate"]
    assert abs(rate - TRUE_RATE) / TRUE_RATE < 0.04, f"first rate {rate:.1f}/s, true {TRUE_RATE}/s"
    assert {r.series: r.value for r in got}["error_rate"] == pytest.approx(0.1, abs=0.02)
    assert 2.0 <= shown_after < 4.0, f"the first rate came {shown_after:.2f}s after the first scrape"
    assert server.hits == 2, "after the baseline the source waited for the window instead of scraping early"


@given(st.lists(st.floats(0.05, 3.0), min_size=1, max_size=25), st.floats(0.1, 5.0))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_rate_is_ever_taken_over_less_than_the_window(gaps, window):
    """Scrapes at any spacing of a counter growing 10/s: every rate given is exact and
    comes from scrapes at least the window apart; before that, none."""
    clock = ManualClock()

    class Ctx:
        def __init__(self) -> None:
            self.clock = clock

        async def get(self, *args, **kw) -> Answer:
            n = 10.0 * (clock.monotonic() - t0)
            return Answer(200, "OK", (f"http_requests_total {n!r}\nhttp_errors_total 0\n"
                                      "# TYPE http_request_duration_seconds histogram\n"
                                      f'http_request_duration_seconds_bucket{{le="+Inf"}} {n!r}\n').encode(),
                          clock.monotonic(), clock.monotonic())

    t0 = clock.monotonic()
    cfg = scrape_cfg("http://h/metrics", min_rate_window=window, interval=1.0)
    source = build_source(cfg, Ctx())

    async def run() -> None:
        elapsed = 0.0
        for i, gap in enumerate([0.0, *gaps]):
            clock.advance(gap)
            elapsed += gap
            readings = await source.fetch()
            rates = [r.value for r in readings if r.series == "request_rate"]
            if elapsed < window - 1e-6:
                assert readings == [] and source.warming_up(), "no rate before the window has passed"
            elif elapsed > window + 1e-6:
                assert rates == [pytest.approx(10.0)], "once the window has passed, every scrape gives a rate"
            if not readings:
                assert 0 < source.next_delay() <= min(window, cfg.interval) + 1e-9
        assert len(source._history) <= source.KEEP + 2

    asyncio.run(run())


async def test_check_waits_for_a_rate_over_the_window(steady):
    """`cockpit check` (check_one) shows a rate over at least min_rate_window, never the
    0.25 s one it used to, and says what it scraped."""
    server = steady(TRUE_RATE, delays=[0.3, 0.0])
    ctx = SourceContext(SystemClock())
    source = build_source(scrape_cfg(server.url, interval=30.0, timeout=2.0), ctx)
    t0 = time.monotonic()
    try:
        result = await check_one(source, critical=True)
    finally:
        await ctx.aclose()
    elapsed = time.monotonic() - t0
    assert result.ok, result
    m = re.match(r"([0-9.]+) req/s, errors ", result.text)
    assert m, result.text
    assert abs(float(m.group(1)) - TRUE_RATE) / TRUE_RATE < 0.04, result.text
    assert 2.0 <= elapsed < 4.0 and server.hits == 2, (elapsed, server.hits)


async def test_check_says_when_a_rate_needs_longer_than_it_waits(steady):
    server = steady(TRUE_RATE)
    ctx = SourceContext(SystemClock())
    source = build_source(scrape_cfg(server.url, min_rate_window=60.0, interval=60.0), ctx)
    t0 = time.monotonic()
    try:
        result = await check_one(source, critical=True)
    finally:
        await ctx.aclose()
    assert result.ok and server.hits == 1 and time.monotonic() - t0 < 2.0
    assert result.text == ("answered; warming up: rates need two scrapes at least 60s apart (min_rate_window) "
                           "(check waits at most 10s)")


def test_cockpit_check_command_prints_the_true_rate(steady, write_config):
    server = steady(TRUE_RATE, delays=[0.3, 0.0])
    path = write_config(raw_config({"url": server.url, "timeout": 2.0}))
    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "check", "-c", str(path)], capture_output=True,
                         text=True, timeout=60, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("metrics "))
    rate = float(re.search(r"([0-9.]+) req/s", row).group(1))
    assert abs(rate - TRUE_RATE) / TRUE_RATE < 0.04, row


GOOD_PAGE = ("# TYPE http_requests_total counter\nhttp_requests_total 100\n"
             "# TYPE http_errors_total counter\nhttp_errors_total 1\n"
             "# TYPE http_request_duration_seconds histogram\n"
             'http_request_duration_seconds_bucket{le="0.1"} 90\nhttp_request_duration_seconds_bucket{le="+Inf"} 100\n'
             "# TYPE ai_token_cost_usd_total counter\nai_token_cost_usd_total 1.5\n")


@pytest.mark.parametrize("bad, says", [
    (GOOD_PAGE.replace("ai_token_cost_usd_total 1.5", "ai_token_cost_usd_total +Inf"), "is inf"),
    (GOOD_PAGE.replace("http_requests_total 100", "http_requests_total -5"), "is -5"),
    (GOOD_PAGE.replace("http_errors_total 1", "http_errors_total NaN"), "is nan"),
    (GOOD_PAGE.replace('http_request_duration_seconds_bucket{le="+Inf"} 100\n', ""), 'no le="+Inf" bucket'),
    (GOOD_PAGE.replace('le="0.1"', 'le="fast"'), "le='fast' is not a number"),
], ids=["cost-inf", "negative", "nan", "no-inf-bucket", "bad-le"])
@pytest.mark.parametrize("when", ["first scrape", "while warming up"])
async def test_impossible_counters_are_errors_even_while_warming_up(fault_server, bad, says, when):
    """No rate yet is no excuse: a scrape that cannot be right is an error at once."""
    clock = ManualClock()
    ctx = SourceContext(clock)
    source = build_source(scrape_cfg(fault_server.url("/metrics"), cost_metric="ai_token_cost_usd_total"), ctx)
    try:
        if when == "while warming up":
            fault_server.respond("/metrics", GOOD_PAGE)
            assert await source.poll() == []
            clock.advance(0.5)
        fault_server.respond("/metrics", bad)
        with pytest.raises(Exception, match="malformed metrics") as e:
            await source.poll()
    finally:
        await ctx.aclose()
    assert says in str(e.value)


def test_min_rate_window_is_checked():
    problems = config_problems(raw_config({"min_rate_window": 0.0}))
    assert len(problems) == 1 and "sources[0].min_rate_window" in problems[0]


# ================================================================ 4. prom_query evaluation time


def query_cfg(url: str, queries: dict[str, str], **kw) -> PromQuerySource:
    return PromQuerySource(kind="prom_query", name="prom", url=url, queries=queries, backfill=0,
                           interval=kw.pop("interval", 5.0), timeout=kw.pop("timeout", 5.0), **kw)


async def fetch_timed(cfg: PromQuerySource) -> tuple[list, float, float, float, float]:
    ctx = SourceContext(SystemClock())
    source = build_source(cfg, ctx)
    try:
        await source.prepare()
        sent, sent_mono = time.time(), time.monotonic()
        readings = await source.fetch()
        arrived, arrived_mono = time.time(), time.monotonic()
    finally:
        await ctx.aclose()
    return readings, sent, sent_mono, arrived, arrived_mono


async def test_stamped_with_prometheus_evaluation_time(prometheus):
    """time() answers the evaluation time itself: the reading's stamp is exactly it."""
    readings, sent, _, arrived, _ = await fetch_timed(query_cfg(prometheus, {"t": "time()", "v": "vector(time())"}))
    assert len(readings) == 2
    for r in readings:
        assert r.ok and r.detail == "", r
        assert r.ts == r.value, f"{r.series}: stamped {r.ts!r}, Prometheus evaluated at {r.value!r}"
        assert sent - 0.01 <= r.ts <= arrived + 0.01


async def test_a_slow_answer_keeps_the_evaluation_time(prometheus):
    """Through a proxy that holds every answer back 1 s (Prometheus under load, a slow
    network): the stamp is still the evaluation time, a second before the arrival, and the
    reading's age (its monotonic time) counts from then too."""
    proxy = FaultProxy(int(prometheus.rsplit(":", 1)[1]))
    proxy.set("slow", delay=1.0)
    try:
        readings, sent, sent_mono, arrived, arrived_mono = await fetch_timed(
            query_cfg(proxy.url, {"t": "time()"}))
    finally:
        proxy.close()
    (r,) = readings
    assert r.ok and r.ts == r.value
    assert arrived - r.ts >= 0.9, f"stamped {arrived - r.ts:.2f}s before arrival; the answer was held 1 s"
    assert arrived_mono - r.received >= 0.9 and r.received >= sent_mono - 0.01
    assert r.received - sent_mono == pytest.approx(r.ts - sent, abs=0.05)


def api_answer(at) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [at, "42"]}]}}


@pytest.mark.parametrize("skew, says", [
    (86400.0, "Prometheus's evaluation time is 86400s ahead of this clock; stamped on arrival"),
    (-10 * 365 * 86400.0, "s behind this clock; stamped on arrival"),
    (CLOCK_TOLERANCE + 3, f"Prometheus's evaluation time is {CLOCK_TOLERANCE + 3:.0f}s ahead"),
    ("nan", "no evaluation time in Prometheus's answer; stamped on arrival"),
    ("text", "no evaluation time in Prometheus's answer; stamped on arrival"),
    (None, "no evaluation time in Prometheus's answer; stamped on arrival"),
    (1e400, "no evaluation time in Prometheus's answer; stamped on arrival"),
], ids=["a-day-ahead", "ten-years-behind", "just-past-tolerance", "nan", "text", "null", "inf"])
async def test_a_timestamp_far_off_this_clock_is_not_believed(fault_server, skew, says):
    at = time.time() + skew if isinstance(skew, float) and math.isfinite(skew) else skew
    body = json.dumps(api_answer(at)).replace("Infinity", "1e400")
    fault_server.respond("/api/v1/query", body, content_type="application/json")
    readings, sent, sent_mono, arrived, arrived_mono = await fetch_timed(query_cfg(fault_server.url(""), {"x": "q"}))
    (r,) = readings
    assert r.ok and r.value == 42.0
    assert says in r.detail
    assert sent <= r.ts <= arrived and sent_mono <= r.received <= arrived_mono, "stamped on arrival"


@pytest.mark.parametrize("skew", [+1.5, -1.5])
async def test_a_small_skew_is_clamped_into_the_request(fault_server, skew):
    """A server clock a second or two off: believed, but never stamped outside the time the
    request was out (never in this clock's future, never before it was asked)."""
    fault_server.respond("/api/v1/query", json.dumps(api_answer(time.time() + skew)),
                         content_type="application/json")
    readings, sent, sent_mono, arrived, arrived_mono = await fetch_timed(query_cfg(fault_server.url(""), {"x": "q"}))
    (r,) = readings
    assert r.ok and r.detail == ""
    assert sent <= r.ts <= arrived and sent_mono <= r.received <= arrived_mono


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=5), st.booleans(),
                 st.integers()),
       st.floats(1e9, 2e9), st.floats(0, 5), st.floats(0, 1e6), st.floats(-3, 3))
def test_evaluated_at_stays_within_the_request(at, sent, span, sent_mono, wall_step):
    """Whatever the answer's timestamp (and even a wall clock that stepped during the
    request), the stamp lies in [sent, arrived] and the monotonic time in the request's
    monotonic span: no answer can make a reading look fresher than its arrival."""
    arrived = sent + span + wall_step
    assume(arrived >= sent)
    ts, mono, detail = evaluated_at(at, sent, sent_mono, arrived, sent_mono + span)
    assert sent <= ts <= arrived
    assert sent_mono <= mono <= sent_mono + span
    assert "\n" not in detail
    if isinstance(at, float) and sent <= at <= arrived:
        assert ts == at and detail == ""
