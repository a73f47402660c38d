"""The real Poller and real sources against a real loopback HTTP server that misbehaves
on demand (``fault_server``), plus the Prometheus parser and rate arithmetic."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import random
import time

import pytest

from cockpit.clock import ManualClock, SystemClock
from cockpit.signals.sources.http_components import HttpComponentsSource
from cockpit.signals.sources.http_health import HttpHealthSource
from cockpit.signals.sources.prom_scrape import PromScrapeSource
from cockpit.model import Reading, Status
from cockpit.signals.poller import Poller, backoff
from cockpit.signals.sources import Source, SourceContext, build_source
from cockpit.signals.sources.prom_scrape import MalformedMetrics, parse, quantile

PROM_SERIES = ["request_rate", "error_rate", "latency_p50", "latency_p95", "latency_p99", "cost_per_day"]


# ---------------------------------------------------------------- helpers


class Sink:
    """Collects what the poller hands over."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Reading]]] = []

    def __call__(self, name: str, readings: list[Reading]) -> None:
        self.calls.append((name, list(readings)))


@pytest.fixture
async def ctx():
    context = SourceContext()
    yield context
    await context.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def manual_ctx(clock):
    context = SourceContext(clock)
    yield context
    await context.aclose()


def health(url: str, **kw) -> HttpHealthSource:
    return HttpHealthSource(kind="http_health", name=kw.pop("name", "api"), url=url, **kw)


def prom(url: str, **kw) -> PromScrapeSource:
    kw.setdefault("cost_metric", "ai_token_cost_usd_total")
    return PromScrapeSource(kind="prom_scrape", name=kw.pop("name", "metrics"), url=url, **kw)


def by_series(readings: list[Reading]) -> dict[str, Reading]:
    return {r.series: r for r in readings}


def assert_all_errors(readings: list[Reading], series: list[str], contains: str) -> None:
    assert sorted(r.series for r in readings) == sorted(series)
    for r in readings:
        assert r.status is Status.ERROR, r
        assert r.value is None or r.series == "health", r
        assert contains in r.error, f"{contains!r} not in {r.error!r}"


async def poll(source: Source, sink: Sink | None = None, rng: random.Random | None = None):
    poller = Poller([source], sink or Sink(), rng=rng)
    readings = await poller.poll_once(source)
    return poller, readings


# ---------------------------------------------------------------- failures are data


async def test_connection_refused_is_an_unreachable_health_reading(ctx, closed_port):
    source = build_source(health(f"http://127.0.0.1:{closed_port}/health"), ctx)
    sink = Sink()
    poller, readings = await poll(source, sink)
    got = by_series(readings)
    assert set(got) == {"health", "response_time"}
    h = got["health"]
    assert h.status is Status.ERROR
    assert h.error == "connection refused"
    assert h.state == "unreachable", "an unreachable health endpoint is an outage signal"
    assert h.value == 0.0
    assert got["response_time"].status is Status.ERROR and got["response_time"].value is None
    assert sink.calls == [("api", readings)]
    state = poller.state["api"]
    assert state.failures == 1 and state.polls == 1 and not state.in_flight
    assert state.last_error == "connection refused"


async def test_connection_refused_scrape_gives_error_for_every_series(ctx, closed_port):
    source = build_source(prom(f"http://127.0.0.1:{closed_port}/metrics"), ctx)
    _, readings = await poll(source)
    assert_all_errors(readings, PROM_SERIES, "connection refused")


async def test_timeout_reported_within_about_the_timeout(ctx, fault_server):
    fault_server.hang("/health", seconds=30)
    source = build_source(health(fault_server.url("/health"), timeout=0.3, interval=1.0), ctx)
    t0 = time.monotonic()
    poller, readings = await poll(source)
    elapsed = time.monotonic() - t0
    h = by_series(readings)["health"]
    assert h.status is Status.ERROR and h.state == "unreachable"
    assert h.error == "timed out after 0.3s"
    assert 0.25 <= elapsed < 1.5, f"a 0.3 s timeout took {elapsed:.2f}s"
    assert poller.state["api"].failures == 1
    assert fault_server.count("/health") == 1


async def test_scrape_timeout(ctx, fault_server):
    fault_server.hang("/metrics", seconds=30)
    source = build_source(prom(fault_server.url("/metrics"), timeout=0.2, interval=1.0), ctx)
    t0 = time.monotonic()
    _, readings = await poll(source)
    assert time.monotonic() - t0 < 1.5
    assert_all_errors(readings, PROM_SERIES, "timed out after 0.2s")


@pytest.mark.parametrize(
    "serve, expected",
    [
        (lambda fs: fs.error("/metrics", 500), "HTTP 500 Internal Server Error"),
        (lambda fs: fs.malformed_metrics("/metrics"), "malformed metrics at line 3"),
        (lambda fs: fs.respond("/metrics", "<!DOCTYPE html>\n<html><body>Login</body></html>\n",
                               content_type="text/html"),
         "malformed metrics at line 1: expected a metric name"),
        (lambda fs: fs.respond("/metrics", b"\xff\xfe\x00garbage"), "not UTF-8"),
    ],
    ids=["http-500", "malformed-line", "html", "binary"],
)
async def test_bad_scrape_is_an_error_on_every_series(ctx, fault_server, serve, expected):
    serve(fault_server)
    source = build_source(prom(fault_server.url("/metrics")), ctx)
    _, readings = await poll(source)
    assert_all_errors(readings, PROM_SERIES, expected)


async def test_scrape_missing_a_metric_names_it(ctx, fault_server):
    fault_server.respond("/metrics", scrape_text(requests={"/a": 1}, errors={"5xx": 0}, buckets={}, cost=0.0)
                         .replace("http_errors_total", "other_total"))
    source = build_source(prom(fault_server.url("/metrics")), ctx)
    _, readings = await poll(source)
    assert_all_errors(readings, PROM_SERIES, "metric http_errors_total not found in scrape")


async def test_server_hangs_up_without_response(ctx, fault_server):
    fault_server.hang_up("/health")
    source = build_source(health(fault_server.url("/health")), ctx)
    _, readings = await poll(source)
    h = by_series(readings)["health"]
    assert h.status is Status.ERROR and h.state == "unreachable"
    assert "without sending a response" in h.error or "connection closed" in h.error, h.error
    assert "Traceback" not in h.error


async def test_missing_secret_at_poll_time_is_an_error_reading(ctx, fault_server, monkeypatch):
    monkeypatch.delenv("COCKPIT_TEST_POLL_TOKEN", raising=False)
    fault_server.respond_json("/health", {"status": "healthy"})
    source = build_source(health(fault_server.url("/health"), headers={"Authorization": "env:COCKPIT_TEST_POLL_TOKEN"}),
                          ctx)
    _, readings = await poll(source)
    h = by_series(readings)["health"]
    assert h.status is Status.ERROR
    assert h.error == "environment variable COCKPIT_TEST_POLL_TOKEN is not set (referenced by sources.api.headers.Authorization)"
    assert fault_server.count("/health") == 0, "nothing is sent without the secret"


async def test_any_exception_from_a_source_becomes_error_readings(ctx):
    class Broken(Source):
        kind = "broken"

        def series(self):
            return ["x", "y"]

        async def fetch(self):
            raise RuntimeError("boom\nsecond line of detail")

    source = Broken(health("http://127.0.0.1:1/health", name="broken"), ctx)
    poller, readings = await poll(source)
    assert_all_errors(readings, ["x", "y"], "RuntimeError: boom")
    assert all("second line" not in r.error for r in readings), "one short line, not the whole text"
    assert poller.state["broken"].failures == 1


# ---------------------------------------------------------------- health answers


async def test_health_answers_are_judged(ctx, fault_server):
    source = build_source(health(fault_server.url("/health"), name="h"), ctx)
    poller = Poller([source], Sink())
    cases = [
        ((200, {"status": "healthy"}), "up", 1.0),
        ((200, {"status": "degraded"}), "degraded", 0.5),
        ((503, {"status": "unhealthy"}), "down", 0.0),
        ((200, {"other": 1}), "up", 1.0),
    ]
    for (code, doc), state, score in cases:
        fault_server.respond_json("/health", doc, status=code)
        h = by_series(await poller.poll_once(source))["health"]
        assert h.status is Status.OK, "an answer, even a bad one, is not a failed poll"
        assert (h.state, h.value) == (state, score), (code, doc, h)
        assert h.detail.startswith(f"HTTP {code}")
    assert poller.state["h"].failures == 0


async def test_component_failures_are_per_component(ctx, fault_server):
    fault_server.respond_json("/c/api", {"status": "healthy"})
    fault_server.respond_json("/c/db", {"status": "unhealthy", "message": "too many connections"}, status=503)
    fault_server.hang("/c/cache", seconds=30)
    cfg = HttpComponentsSource(kind="http_components", name="comp", url=fault_server.url("/c/{name}"),
                               components=["api", "db", "cache"], timeout=1.0, interval=1.0)
    poller, readings = await poll(build_source(cfg, ctx))
    got = by_series(readings)
    assert got["component/api"].state == "healthy" and got["component/api"].status is Status.OK
    assert got["component/db"].state == "unhealthy" and got["component/db"].detail == "too many connections"
    assert got["component/cache"].status is Status.ERROR
    assert got["component/cache"].error == "timed out after 1s"
    assert poller.state["comp"].failures == 0, "one slow component does not fail the whole source"


async def test_all_components_unreachable_fails_the_source(ctx, closed_port):
    cfg = HttpComponentsSource(kind="http_components", name="comp", url=f"http://127.0.0.1:{closed_port}/c/{{name}}",
                               components=["api", "db"])
    poller, readings = await poll(build_source(cfg, ctx))
    assert_all_errors(readings, ["component/api", "component/db"], "connection refused")
    assert poller.state["comp"].failures == 1


# ---------------------------------------------------------------- never two polls in flight


async def test_concurrent_poll_once_does_not_overlap(ctx, fault_server):
    fault_server.respond("/health", '{"status": "healthy"}', content_type="application/json", delay=0.3)
    source = build_source(health(fault_server.url("/health"), timeout=2.0), ctx)
    sink = Sink()
    poller = Poller([source], sink)
    first, second, third = await asyncio.gather(*(poller.poll_once(source) for _ in range(3)))
    assert len(first) == 2 and second == [] and third == [], "only the first call polls"
    assert fault_server.count("/health") == 1
    assert len(sink.calls) == 1
    assert not poller.state["api"].in_flight
    again = await poller.poll_once(source)  # once finished, the next poll goes ahead
    assert len(again) == 2 and fault_server.count("/health") == 2


async def test_run_source_never_overlaps_polls(ctx, fault_server):
    fault_server.respond("/health", '{"status": "healthy"}', content_type="application/json", delay=0.02)
    source = build_source(health(fault_server.url("/health"), interval=0.05, timeout=0.5), ctx)
    poller = Poller([source], Sink())

    async def pester():  # "refresh now" pressed over and over, and direct polls too
        while True:
            poller.poll_now()
            poller.poll_now("api")
            await poller.poll_once(source)
            await asyncio.sleep(0.001)

    runner = asyncio.create_task(poller.run_source(source))
    pest = asyncio.create_task(pester())
    try:
        deadline = time.monotonic() + 10
        while fault_server.count("/health") < 15:
            assert time.monotonic() < deadline, f"only {fault_server.count('/health')} polls in 10 s"
            assert not runner.done(), "run_source stopped"
            await asyncio.sleep(0.01)
    finally:
        for task in (runner, pest):
            task.cancel()
        await asyncio.gather(runner, pest, return_exceptions=True)
    assert poller.state["api"].failures == 0, poller.state["api"].last_error
    assert fault_server.max_concurrent["/health"] == 1, "two polls of one source were in flight"
    assert not poller.state["api"].in_flight


# ---------------------------------------------------------------- backoff


@pytest.mark.parametrize("seed", range(20))
def test_backoff_grows_and_is_capped(seed):
    rng = random.Random(seed)
    interval, cap = 1.0, 15.0
    for failures, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 15.0), (6, 15.0), (50, 15.0), (10_000, 15.0)]:
        wait = backoff(interval, failures, cap, rng)
        assert 0.8 * base <= wait <= 1.2 * base, (failures, wait)
        assert wait <= cap, f"backoff {wait:.2f}s after {failures} failures exceeds max_backoff {cap}s"


def test_backoff_is_jittered_and_deterministic_per_seed():
    draws = [backoff(2.0, 3, 60.0, random.Random(7)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2], "same seed, same wait"
    rng = random.Random(7)
    spread = {round(backoff(2.0, 3, 60.0, rng), 6) for _ in range(50)}
    assert len(spread) > 40, "waits must be jittered so cockpits do not retry in step"
    assert min(spread) < 7.2 and max(spread) > 8.8  # around 8 s, both ways


def test_backoff_has_a_floor():
    assert backoff(0.001, 1, 10.0, random.Random(1)) == 0.05


async def test_delay_after_uses_backoff_and_recovery_resets(ctx, fault_server):
    healthy = fault_server.Respond(200, '{"status": "healthy"}', "application/json")
    # five failed polls, then it answers (aiohttp tries a GET twice when the server hangs up)
    fault_server.set("/health", [fault_server.HangUp()] * 10 + [healthy])
    source = build_source(health(fault_server.url("/health"), interval=1.0, max_backoff=6.0), ctx)
    poller = Poller([source], Sink(), rng=random.Random(11))
    reference = random.Random(11)
    assert poller.delay_after(source) == 1.0, "no failure yet: the plain interval"
    waits = []
    for n in range(1, 6):
        await poller.poll_once(source)
        assert poller.state["api"].failures == n
        wait = poller.delay_after(source)
        assert wait == backoff(1.0, n, 6.0, reference), f"delay_after must be backoff() after {n} failures"
        waits.append(wait)
    assert waits[0] < waits[1] < waits[2], waits
    assert max(waits) <= 6.0

    readings = await poller.poll_once(source)
    assert fault_server.count("/health") == 11
    assert by_series(readings)["health"].state == "up"
    assert poller.state["api"].failures == 0 and poller.state["api"].last_error == ""
    assert poller.delay_after(source) == 1.0, "recovery goes back to the plain interval"


async def test_run_source_waits_longer_after_each_failure(ctx, fault_server):
    fault_server.hang_up("/health")
    arrivals: list[float] = []
    source = build_source(health(fault_server.url("/health"), interval=0.05, timeout=0.1, max_backoff=0.4), ctx)
    poller = Poller([source], lambda name, readings: arrivals.append(time.monotonic()), rng=random.Random(5))
    runner = asyncio.create_task(poller.run_source(source))
    try:
        deadline = time.monotonic() + 10
        while len(arrivals) < 9:
            assert time.monotonic() < deadline, f"only {len(arrivals)} polls in 10 s"
            await asyncio.sleep(0.005)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert poller.state["api"].failures >= 9
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # waits: 0.05, 0.1, 0.2, then the 0.4 cap; each -20%..+20% but never above the cap
    for gap, base in zip(gaps, [0.05, 0.1, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4]):
        assert gap >= 0.8 * base - 0.002, f"waited {gap:.3f}s, expected at least {0.8 * base:.3f}s: {gaps}"
    # uncapped, waits 4-7 would be 0.4 + 0.8 + 1.6 + 3.2 s (at least 4.8 s with jitter)
    assert sum(gaps[3:7]) < 3.0, f"backoff not capped at max_backoff: {gaps}"


# ---------------------------------------------------------------- Prometheus scrape arithmetic


def scrape_text(requests: dict[str, float], errors: dict[str, float], buckets: dict[str, list[float]], cost: float,
                bounds=("0.1", "0.5", "1", "+Inf")) -> str:
    lines = ["# HELP http_requests_total Requests handled.", "# TYPE http_requests_total counter"]
    lines += [f'http_requests_total{{route="{r}"}} {v:g}' for r, v in requests.items()]
    lines += ["# TYPE http_errors_total counter"]
    lines += [f'http_errors_total{{type="{t}"}} {v:g}' for t, v in errors.items()]
    lines += ["# TYPE http_request_duration_seconds histogram"]
    for route, counts in buckets.items():
        for le, c in zip(bounds, counts):
            lines.append(f'http_request_duration_seconds_bucket{{route="{route}",le="{le}"}} {c:g}')
        lines.append(f'http_request_duration_seconds_count{{route="{route}"}} {counts[-1]:g}')
    lines += ["# TYPE ai_token_cost_usd_total counter", f"ai_token_cost_usd_total {cost}"]
    return "\n".join(lines) + "\n"


SCRAPE_A = scrape_text(
    requests={"/a": 1000, "/b": 500},
    errors={"5xx": 10, "timeout": 5},
    buckets={"/a": [500, 800, 950, 1000], "/b": [300, 450, 490, 500]},
    cost=12.5,
)
# 10 s later: +1000 requests, +80 errors; cumulative bucket increases 400, 800, 950, 1000; +$0.50
SCRAPE_B = scrape_text(
    requests={"/a": 1600, "/b": 900},
    errors={"5xx": 60, "timeout": 35},
    buckets={"/a": [750, 1300, 1520, 1600], "/b": [450, 750, 870, 900]},
    cost=13.0,
)
# The process restarted: every counter is lower than in B and counts from zero.
SCRAPE_C = scrape_text(
    requests={"/a": 120, "/b": 80},
    errors={"5xx": 20, "timeout": 10},
    buckets={"/a": [60, 100, 115, 120], "/b": [40, 70, 78, 80]},
    cost=0.2,
)


@pytest.fixture
def scrape(fault_server, manual_ctx):
    source = build_source(prom(fault_server.url("/metrics"), quantiles=[0.5, 0.9, 0.95, 0.99], interval=5.0),
                          manual_ctx)
    sink = Sink()
    poller = Poller([source], sink)

    async def step(text: str, advance: float = 10.0) -> list[Reading]:
        manual_ctx.clock.advance(advance)
        fault_server.respond("/metrics", text)
        return await poller.poll_once(source)

    step.source, step.sink, step.poller = source, sink, poller
    return step


def values(readings: list[Reading]) -> dict[str, float | None]:
    assert all(r.status is Status.OK for r in readings), readings
    return {r.series: r.value for r in readings}


async def test_first_scrape_is_baseline_only(scrape):
    assert await scrape(SCRAPE_A) == []
    assert scrape.sink.calls == [], "a baseline gives no readings to hand over"
    assert scrape.poller.state["metrics"].failures == 0
    assert scrape.source.next_delay() == 2.0, "after a baseline the next scrape comes when it can give a rate"
    assert len(await scrape(SCRAPE_B)) == 7
    assert scrape.source.next_delay() == 5.0


async def test_rates_and_quantiles_from_deltas(scrape, clock):
    await scrape(SCRAPE_A)
    readings = await scrape(SCRAPE_B, advance=10.0)
    got = values(readings)
    assert got == {
        "request_rate": pytest.approx(100.0),  # 1000 requests / 10 s
        "error_rate": pytest.approx(0.08),  # 80 / 1000
        "latency_p50": pytest.approx(0.2),  # rank 500 in (0.1, 0.5]: 0.1 + 0.4 * 100/400
        "latency_p90": pytest.approx(0.5 + 0.5 * 100 / 150),  # rank 900 in (0.5, 1]
        "latency_p95": pytest.approx(1.0),  # rank 950: exactly the 1 s bucket's count
        "latency_p99": pytest.approx(1.0),  # rank 990 in (1, +Inf]: the highest finite bound
        "cost_per_day": pytest.approx(0.5 / 10 * 86400),  # $4320/day
    }
    assert all(r.ts == clock.now() for r in readings), "readings are stamped by the injected clock"
    assert scrape.sink.calls == [("metrics", readings)]


async def test_rate_window_is_the_clock_interval(scrape):
    await scrape(SCRAPE_A)
    got = values(await scrape(SCRAPE_B, advance=4.0))
    assert got["request_rate"] == pytest.approx(250.0)
    assert got["cost_per_day"] == pytest.approx(0.5 / 4 * 86400)
    assert got["error_rate"] == pytest.approx(0.08), "a ratio does not depend on the window"


async def test_counter_reset_counts_from_zero(scrape):
    await scrape(SCRAPE_A)
    await scrape(SCRAPE_B)
    got = values(await scrape(SCRAPE_C))
    assert got["request_rate"] == pytest.approx(20.0)  # 200 since the restart / 10 s, never negative
    assert got["error_rate"] == pytest.approx(30 / 200)
    assert got["latency_p50"] == pytest.approx(0.1)  # rank 100 = the whole first bucket (100)
    assert got["cost_per_day"] == pytest.approx(0.2 / 10 * 86400)
    assert all(v is None or v >= 0 for v in got.values())


async def test_no_traffic_gives_no_error_rate(scrape):
    await scrape(SCRAPE_A)
    readings = await scrape(SCRAPE_A)
    got = by_series(readings)
    assert got["error_rate"].value is None and got["error_rate"].status is Status.OK
    assert got["error_rate"].detail == "no requests in window"
    assert got["request_rate"].value == 0.0
    assert got["latency_p95"].value is None
    assert got["cost_per_day"].value == 0.0


async def test_frozen_clock_gives_only_a_baseline(scrape):
    await scrape(SCRAPE_A)
    assert await scrape(SCRAPE_B, advance=0.0) == [], "no time passed: no rate can be computed"


async def test_failure_resets_the_baseline(scrape, fault_server, clock):
    await scrape(SCRAPE_A)
    fault_server.error("/metrics", 503)
    clock.advance(10)
    failed = await scrape.poller.poll_once(scrape.source)
    assert all(r.status is Status.ERROR and "HTTP 503" in r.error for r in failed)
    assert await scrape(SCRAPE_B) == [], "after a failure the next scrape is a new baseline"
    later = SCRAPE_B.replace('http_requests_total{route="/a"} 1600', 'http_requests_total{route="/a"} 1700')
    got = values(await scrape(later, advance=5.0))
    assert got["request_rate"] == pytest.approx(20.0), "the rate covers only the window since the new baseline"
    assert scrape.poller.state["metrics"].failures == 0


async def test_prometheus_scrape_of_simulator(sim_server):
    clock = sim_server.sim.clock  # one manual clock for the model and the scraper
    context = SourceContext(clock)
    source = build_source(prom(f"{sim_server.url}/metrics"), context)
    poller = Poller([source], Sink())
    try:
        first = await poller.poll_once(source)  # warming up: no rate yet, only the version running
        assert [(r.series, r.state) for r in first] == [("change/checkout version", "v1.4.2")]
        clock.advance(10)
        got = values(await poller.poll_once(source))
        clock.advance(15)  # the demo's bad deploy lands 20 s in
        deployed = {r.series: r.state for r in await poller.poll_once(source) if r.state}
    finally:
        await context.aclose()
    assert deployed == {"change/checkout version": "v1.5.0"}
    assert 100 < got["request_rate"] < 140  # the model serves ~120 requests/s
    assert got["error_rate"] < 0.02
    assert 0.05 < got["latency_p50"] < got["latency_p95"] < got["latency_p99"] < 0.5


# ---------------------------------------------------------------- parser


def test_parse_label_escapes():
    s = parse('m{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb"} 1\n')
    assert s.samples["m"] == {(("nl", "a\nb"), ("path", "C:\\dir"), ("quote", 'say "hi"')): 1.0}


def test_parse_escaped_backslash_before_n_is_not_a_newline():
    s = parse('m{p="a\\\\nb"} 1')  # text: a\\nb -> a backslash, then "nb"
    assert s.samples["m"] == {(("p", "a\\nb"),): 1.0}


def test_parse_special_values_and_bounds():
    s = parse(
        'h_bucket{le="0.5"} 3\n'
        'h_bucket{le="+Inf"} 4\n'
        "g NaN\n"
        "up +Inf\n"
        "down -Inf\n"
        "sci 1.5e3\n"
    )
    assert s.samples["h_bucket"][(("le", "+Inf"),)] == 4.0
    assert math.isnan(s.samples["g"][()])
    assert s.samples["up"][()] == math.inf
    assert s.samples["down"][()] == -math.inf
    assert s.samples["sci"][()] == 1500.0


def test_parse_timestamps_comments_and_blank_lines():
    s = parse(
        "# HELP reqs Requests.\n"
        "# TYPE reqs counter\n"
        "\n"
        "reqs 1027 1395066363000\n"
        'reqs{code="400"} 3 1395066363000\n'
        "# a free comment\n"
        "  spaced{a=\"b\"}   7  \n"
        "empty{} 2\n"
        'trailing{a="1",} 5\n'
    )
    assert s.samples["reqs"] == {(): 1027.0, (("code", "400"),): 3.0}
    assert s.samples["spaced"] == {(("a", "b"),): 7.0}
    assert s.samples["empty"] == {(): 2.0}
    assert s.samples["trailing"] == {(("a", "1"),): 5.0}, "a trailing comma in a label set is valid"
    assert s.has("reqs") and "reqs" in s.declared


def test_parse_histogram_type_declares_its_series():
    s = parse("# TYPE lat histogram\n")
    assert s.has("lat_bucket") and s.has("lat_count") and s.has("lat_sum")
    assert not s.has("lat_total")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("<html><head><title>502 Bad Gateway</title></head></html>", 1, "expected a metric name"),
        ("ok 1\nthis is wrong\n", 2, "value 'is' is not a number"),
        ("ok 1\n\n# c\nm{a=b} 1\n", 4, "bad label set"),
        ('m{a="1" b="2"} 1', 1, "bad label set"),
        ('m{a="1"', 1, "bad label set"),
        ("m", 1, "expected a value"),
        ("m 1 2 3", 1, "expected a value and an optional timestamp"),
        ("m one", 1, "value 'one' is not a number"),
        ("m 1 yesterday", 1, "timestamp 'yesterday' is not a number"),
        ('{a="1"} 1', 1, "expected a metric name"),
    ],
)
def test_parse_rejects_junk_naming_the_line(text, line, reason):
    with pytest.raises(MalformedMetrics) as info:
        parse(text)
    msg = str(info.value)
    assert msg.startswith(f"malformed metrics at line {line}: "), msg
    assert reason in msg
    assert "\n" not in msg


def test_parse_error_shortens_long_lines():
    with pytest.raises(MalformedMetrics) as info:
        parse("x" * 50 + " not-a-number " + "y" * 200)
    assert len(str(info.value)) < 160
    assert "..." in str(info.value)


def test_quantile_edge_cases():
    inf = math.inf
    assert quantile(0.5, []) is None
    assert quantile(0.5, [(0.1, 5.0)]) is None, "no +Inf bucket: not a histogram"
    assert quantile(0.5, [(0.1, 0.0), (inf, 0.0)]) is None, "no observations"
    assert quantile(0.5, [(inf, 10.0)]) is None, "only +Inf: nothing to interpolate"
    assert quantile(0.5, [(0.1, 100.0), (inf, 100.0)]) == pytest.approx(0.05)
    assert quantile(0.99, [(0.1, 10.0), (1.0, 20.0), (inf, 100.0)]) == 1.0
    assert quantile(0.5, [(0.1, 0.0), (0.2, 10.0), (inf, 10.0)]) == pytest.approx(0.15)


# ---------------------------------------------------------------- the HTTP client, warmed early


async def test_the_polling_session_takes_aiohttp_warmed_at_start_and_a_failed_warm_up_is_tried_again(monkeypatch):
    from cockpit.signals.sources import _base

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ImportError("aiohttp is broken")
        return real()

    real = _base._import_aiohttp
    monkeypatch.setattr(_base, "_warm", None)
    monkeypatch.setattr(_base, "_import_aiohttp", flaky)
    first = _base.warm_http()
    with pytest.raises(ImportError):
        first.result(timeout=30)
    second = _base.warm_http()  # the failure is not kept: a new attempt
    assert second is not first and second.result(timeout=30).__name__ == "aiohttp"
    assert _base.warm_http() is second  # done once, then shared
    ctx = SourceContext()
    try:
        session = await ctx.session()
        assert session.connector._ssl is True  # aiohttp's own verifying context, not a third one
    finally:
        await ctx.aclose()
    assert len(calls) == 2


async def test_a_poll_cancelled_while_aiohttp_loads_does_not_break_the_polls_after_it(monkeypatch):
    """A poll abandoned at its deadline while aiohttp was still being imported cancelled the
    shared import (asyncio.wrap_future passes a cancellation on): every later poll of every
    HTTP source then failed. The wait is shielded, and a cancelled import is started again."""
    import threading

    import cockpit.signals.sources._base as base

    gate = threading.Event()
    real = base._import_aiohttp
    monkeypatch.setattr(base, "_warm", None)
    monkeypatch.setattr(base, "_import_aiohttp", lambda: (gate.wait(10), real())[1])
    ctx = SourceContext(SystemClock())
    try:
        first = asyncio.create_task(ctx.session())
        await asyncio.sleep(0.05)
        first.cancel()  # the poll's deadline
        with pytest.raises(asyncio.CancelledError):
            await first
        gate.set()
        session = await asyncio.wait_for(ctx.session(), 10)
        assert not session.closed
        cancelled = concurrent.futures.Future()
        cancelled.cancel()
        monkeypatch.setattr(base, "_warm", cancelled)
        assert base.warm_http() is not cancelled, "a cancelled import is started again"
    finally:
        await ctx.aclose()
