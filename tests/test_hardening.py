"""Odd answers from real servers and odd values in the app: one clear line, never a crash,
never an old or impossible value shown as current."""

from __future__ import annotations

import math

import pytest
from test_poller import by_series, health, poll, prom

from cockpit.clock import ManualClock, Now
from cockpit.signals.sources.http_components import HttpComponentsSource
from cockpit.model import Reading, Status
from cockpit.signals.sources import SourceContext, build_source
from cockpit.signals.store import Store
from cockpit.signals.views import freshness
from screens.sparkline import BLOCKS, sparkline

GOOD = """# TYPE http_requests_total counter
http_requests_total 100
# TYPE http_errors_total counter
http_errors_total 1
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 90
http_request_duration_seconds_bucket{le="+Inf"} 100
# TYPE ai_token_cost_usd_total counter
ai_token_cost_usd_total 1.5
"""


@pytest.fixture
async def manual():
    clock = ManualClock()
    context = SourceContext(clock)
    yield clock, context
    await context.aclose()


async def _second_scrape(fault_server, manual, second: str) -> dict[str, Reading]:
    clock, context = manual
    source = build_source(prom(fault_server.url("/metrics")), context)
    fault_server.respond("/metrics", GOOD)
    await poll(source)
    clock.advance(2.0)  # min_rate_window: a rate needs scrapes 2 s apart
    fault_server.respond("/metrics", second)
    _, readings = await poll(source)
    return by_series(readings)


@pytest.mark.parametrize(
    "second, expected",
    [
        (GOOD.replace("ai_token_cost_usd_total 1.5", "ai_token_cost_usd_total +Inf"), "is inf"),
        (GOOD.replace("http_requests_total 100", "http_requests_total -5"), "is -5"),
        (GOOD.replace("http_requests_total 100", "http_requests_total NaN"), "is nan"),
        (GOOD.replace('http_request_duration_seconds_bucket{le="+Inf"} 100\n', ""), 'no le="+Inf" bucket'),
    ],
)
async def test_impossible_counters_are_malformed_not_values(fault_server, manual, second, expected):
    got = await _second_scrape(fault_server, manual, second)
    for r in got.values():
        assert r.status is Status.ERROR and r.value is None, r
        assert expected in r.error and "malformed metrics" in r.error


async def test_errors_running_ahead_of_requests_never_exceed_100_percent(fault_server, manual):
    second = GOOD.replace("http_requests_total 100", "http_requests_total 101").replace(
        "http_errors_total 1", "http_errors_total 6")
    got = await _second_scrape(fault_server, manual, second)
    assert got["error_rate"].value == 1.0


async def test_redirect_is_an_error_naming_it(fault_server, manual):
    _, context = manual
    fault_server.respond("/metrics", "moved", status=301)
    _, readings = await poll(build_source(prom(fault_server.url("/metrics")), context))
    assert all(r.status is Status.ERROR and "HTTP 301 redirect" in r.error for r in readings)


async def test_boolean_status_field_reads_as_up_or_down(fault_server, manual):
    _, context = manual
    source = build_source(health(fault_server.url("/health")), context)
    fault_server.respond_json("/health", {"status": True})
    _, readings = await poll(source)
    assert by_series(readings)["health"].state == "up"
    fault_server.respond_json("/health", {"status": False})
    _, readings = await poll(source)
    assert by_series(readings)["health"].state == "down"


async def test_huge_health_body_is_read_only_up_to_the_cap(fault_server, manual):
    _, context = manual
    fault_server.respond("/health", b'{"status": "healthy"}' + b" " * (4 * 1024 * 1024))
    _, readings = await poll(build_source(health(fault_server.url("/health")), context))
    assert by_series(readings)["health"].state == "up"


async def test_huge_scrape_is_refused_with_a_clear_line(fault_server, manual):
    _, context = manual
    fault_server.respond("/metrics", "# padding\n" * (1024 * 1024))  # 10 MiB
    _, readings = await poll(build_source(prom(fault_server.url("/metrics")), context))
    assert all(r.status is Status.ERROR and "larger than" in r.error for r in readings)


async def test_one_pathological_component_body_spoils_only_its_row(fault_server, manual):
    _, context = manual
    fault_server.respond("/c/bad", "[" * 50_000, status=503, content_type="application/json")
    fault_server.respond_json("/c/good", {"status": "healthy"})
    cfg = HttpComponentsSource(kind="http_components", name="comp", url=fault_server.url("/c/{name}"),
                               components=["bad", "good"])
    _, readings = await poll(build_source(cfg, context))
    got = by_series(readings)
    assert got["component/good"].state == "healthy" and got["component/good"].status is Status.OK
    assert got["component/bad"].state == "unhealthy" and got["component/bad"].status is Status.OK


def test_sparkline_draws_non_finite_values_as_gaps():
    (row,) = sparkline([1.0, math.inf, -math.inf, math.nan, 0.5], width=5)
    assert row.plain[1:4] == "   " and row.plain[0] == BLOCKS[8]


def test_age_comes_from_the_monotonic_clock_when_the_wall_clock_steps_back():
    store = Store(10)
    store.add(Reading("m", "error_rate", ts=10_000.0, value=0.1, received=100.0))
    # an hour later on the monotonic clock, but the wall clock was stepped back an hour
    fresh = freshness(store.get("m:error_rate"), Now(wall=10_000.0 - 3600 + 3600, mono=3700.0), 3.0)
    assert fresh.status == "stale" and fresh.age == pytest.approx(3600.0)


async def test_a_failing_sink_does_not_stop_the_poller(fault_server, manual):
    _, context = manual
    fault_server.respond_json("/health", {"status": "healthy"})
    source = build_source(health(fault_server.url("/health")), context)

    def broken(name, readings):
        raise RuntimeError("consumer bug")

    from cockpit.signals.poller import Poller

    poller = Poller([source], broken)
    for _ in range(3):
        readings = await poller.poll_once(source)
        assert readings
    assert poller.sink_errors == 3 and poller.state["api"].failures == 0
