"""The `cloudwatch` source reads only complete periods, stamps each reading with the end of
its period, and loads the chart's history on its first poll (never under `cockpit check`).

Against moto's real server through boto3: moto's GetMetricData bins the datapoints that
were put with their own timestamps into periods counted from StartTime and returns only
those in [StartTime, EndTime), each stamped with its period's start, like CloudWatch."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.clock import ManualClock, Now
from cockpit.config import config_from_dict
from cockpit.signals.poller import Poller
from cockpit.signals.sources import SourceContext, SourceError, build_source
from cockpit.signals.sources.cloudwatch import MAX_HISTORY
from cockpit.signals.store import Store
from cockpit.signals.views import freshness

ERRORS = {"namespace": "AWS/ApiGateway", "metric": "5XXError", "dimensions": {"ApiName": "ai-api"}}
#: a minute boundary twenty minutes ago: the test's "now" is just after it, so what was put at
#: B + 5 s sits in the period still being filled
B = (int(time.time()) // 60) * 60 - 1200
#: the Sum of each complete minute, by how many minutes before B it ended (0: the one ending at B)
SUMS = {k: 10.0 * (k + 1) for k in range(0, 15)}
SUMS[0] = 40.0  # the last complete minute: 30 + 10
PARTIAL = (7.0, 2.0)  # put at B + 5 s and B + 8 s: the minute under way


def cw_config(moto_url: str = "http://127.0.0.1:9", **src):
    """A config of one cloudwatch source whose one series feeds every panel."""
    raw = {"service": {"name": "ai-api"},
           "aws": {"endpoint_url": moto_url, "region": "us-east-1", "max_attempts": 1},
           "sources": [{"name": "aws", "kind": "cloudwatch", "interval": 60, "metrics": {"errors": ERRORS}, **src}],
           "panels": {"error_rate": {"series": "aws:errors", "unit": "count"},
                      "latency": {"series": "aws:errors", "unit": "count"},
                      "cost": {"series": "aws:errors", "unit": "count"}}}
    return config_from_dict(raw, "<t>", {}).source("aws")


def make(moto_url: str, clock, **src):
    return build_source(cw_config(moto_url, **src), SourceContext(clock))


def put(cw, at: float, value: float) -> None:
    cw.put_metric_data(Namespace="AWS/ApiGateway", MetricData=[{
        "MetricName": "5XXError", "Dimensions": [{"Name": "ApiName", "Value": "ai-api"}],
        "Timestamp": datetime.fromtimestamp(at, timezone.utc), "Value": value}])


@pytest.fixture
def minutes(moto_url):
    """Fifteen complete minutes of 5XX errors before B (two datapoints each), and the
    minute after B, 10 s old on the test's clock, partly filled."""
    cw = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    for k, total in SUMS.items():
        start = B - 60 * (k + 1)
        if k == 0:
            put(cw, start + 20, 30.0)
            put(cw, start + 55, 10.0)
        else:
            put(cw, start + 5, total - 1)
            put(cw, start + 59, 1.0)
    put(cw, B + 5, PARTIAL[0])
    put(cw, B + 8, PARTIAL[1])
    return cw


def clock_at(offset: float) -> ManualClock:
    clock = ManualClock(B + offset)
    clock.advance(0)  # monotonic 0 at B + offset
    return clock


async def test_reading_is_the_last_complete_period_stamped_with_its_end(moto_url, minutes):
    clock = clock_at(10)
    src = make(moto_url, clock, period=60, lookback=900, backfill=0)
    (reading,) = await src.fetch()
    assert reading.ok and not reading.history
    # the minute under way holds 7 + 2 = 9 so far: a sixth of its truth; it is not read
    assert reading.value == SUMS[0] == 40.0, "the newest complete minute, not the partial one"
    assert reading.ts == B, "stamped with the end of its period (CloudWatch stamps the start: B - 60)"
    assert reading.received == clock.monotonic(), "it arrived with this poll"
    assert freshness_age(src, reading, clock) == 0
    assert reading.detail == ""


async def test_partial_period_is_read_once_it_has_ended(moto_url, minutes):
    clock = clock_at(10)
    src = make(moto_url, clock, period=60, lookback=900, backfill=0)
    clock.advance(55)  # B + 65: the minute [B, B + 60) is complete now
    (reading,) = await src.fetch()
    assert reading.value == sum(PARTIAL) and reading.ts == B + 60


async def test_age_of_an_old_datapoint_is_said(moto_url, minutes):
    clock = clock_at(10)
    clock.advance(60 * 3)  # B + 190: newest complete minutes [B, B + 60) holds the partial points
    src = make(moto_url, clock, period=60, lookback=900, backfill=0)
    (reading,) = await src.fetch()
    assert reading.ts == B + 60 and reading.value == sum(PARTIAL)
    assert reading.detail == "datapoint 2 min old"  # 130 s after its period ended
    assert freshness_age(src, reading, clock) == 0, "the source answered just now: not stale"


async def test_first_poll_backfills_the_chart_window_with_their_own_times(moto_url, minutes):
    clock = clock_at(10)
    src = make(moto_url, clock, period=60, lookback=900, backfill=600)
    assert src.deadline == 2 * src.timeout, "the first poll carries the history"
    readings = await src.fetch()
    past = [r for r in readings if r.history]
    live = [r for r in readings if not r.history]
    assert [r.value for r in live] == [40.0] and live[0].ts == B
    # the ten minutes before B: periods ending B - 540 ... B - 60, oldest first, each at its end
    assert [r.ts for r in past] == [B - 60 * k for k in range(9, 0, -1)]
    assert [r.value for r in past] == [SUMS[k] for k in range(9, 0, -1)]
    assert all(r.ok and r.series == "errors" for r in past)
    assert all(r.received == pytest.approx(clock.monotonic() - (clock.now() - r.ts)) for r in past)
    assert readings == past + live, "history first, then the poll's answer"
    assert src.deadline == src.timeout
    (again,) = await src.fetch()  # later polls: the newest complete period only
    assert again.value == 40.0 and not again.history


async def test_backfill_reaches_the_store_before_the_live_value(moto_url, minutes):
    clock = clock_at(10)
    src = make(moto_url, clock, period=60, lookback=900, backfill=900)
    store = Store(100)
    poller = Poller([src], lambda _name, readings: store.extend(readings))
    await poller.poll_once(src)
    buf = store.get("aws:errors")
    assert buf.samples() == [(B - 60 * k, SUMS[k]) for k in range(14, -1, -1)], "sorted, the sparkline full"
    assert buf.latest.ts == B and not buf.latest.history


async def test_backfill_is_bounded(moto_url, minutes):
    clock = clock_at(10)
    src = make(moto_url, clock, period=1, lookback=900, backfill=86400)
    asked = []
    real = src._poll
    src._poll = lambda start, end: asked.append((start, end)) or real(start, end)
    readings = await src.fetch()
    (start, end), = asked
    assert end - start == max(900, MAX_HISTORY), "at most MAX_HISTORY periods are asked for"
    assert len([r for r in readings if r.history]) <= MAX_HISTORY


async def test_cockpit_check_loads_no_history(moto_url, minutes):
    clock = clock_at(10)
    src = make(moto_url, clock, period=60, lookback=300, backfill=3600)
    asked = []
    real = src._poll
    src._poll = lambda start, end: asked.append((start, end)) or real(start, end)
    src.checking()
    assert src.deadline == src.timeout
    readings = await src.poll()
    assert [(r.value, r.ts, r.history) for r in readings] == [(40.0, B, False)]
    assert asked == [(B - 300, B)], "only the lookback is asked for"


async def test_check_command_summary_shows_the_complete_period(moto_url, minutes):
    from cockpit.signals.check import check_one

    src = make(moto_url, clock_at(10), period=60, lookback=900)
    result = await check_one(src, critical=True)
    assert result.ok and result.text == "errors 40"


async def test_history_is_tried_again_after_a_failed_first_poll(moto_url, minutes):
    clock = clock_at(10)
    src = make(moto_url, clock, period=60, lookback=900, backfill=300)
    real, calls = src._poll, []

    def flaky(start, end):
        calls.append(end - start)
        if len(calls) == 1:
            raise SourceError("throttled")
        return real(start, end)

    src._poll = flaky
    with pytest.raises(SourceError):
        await src.fetch()
    readings = await src.fetch()
    assert [r.ts for r in readings if r.history] == [B - 240, B - 180, B - 120, B - 60]
    assert calls == [900, 900]

    src2 = make(moto_url, clock, period=60, lookback=120, backfill=600)
    spans = []
    src2._poll = lambda start, end: spans.append(end - start) or (_ for _ in ()).throw(SourceError("down"))
    for _ in range(5):
        with pytest.raises(SourceError):
            await src2.fetch()
    assert spans == [600, 600, 600, 120, 120], "three tries with the history, then the lookback alone"


async def test_no_complete_datapoint_in_the_lookback_is_an_error_not_a_partial(moto_url):
    cw = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    put(cw, B + 5, 3.0)  # only the minute under way has data
    src = make(moto_url, clock_at(10), period=60, lookback=900, backfill=0)
    (reading,) = await src.fetch()
    assert not reading.ok and reading.value is None
    assert reading.error == "errors: no datapoints in the last 15 min"


async def test_five_minute_periods_align_to_the_clock(moto_url):
    cw = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    five = (B // 300) * 300
    for at, value in ((five - 290, 4.0), (five - 10, 6.0), (five + 20, 100.0)):
        put(cw, at, value)
    src = make(moto_url, clock_at(five - B + 200), period=300, lookback=3600, backfill=0)
    (reading,) = await src.fetch()
    assert (reading.value, reading.ts) == (10.0, five), "the five minutes before the boundary, not the one under way"


def freshness_age(src, reading, clock) -> float:
    store = Store(10)
    store.add(reading)
    return freshness(store.get(reading.key), Now.of(clock), 1e9).age


@settings(max_examples=300, deadline=None)
@given(now=st.floats(1.6e9, 2.0e9), period=st.sampled_from([1, 10, 60, 300, 3600, 86400]),
       lookback=st.floats(1, 86400 * 14), backfill=st.floats(0, 86400 * 14), history=st.booleans())
def test_window_is_whole_periods_ending_at_the_last_boundary(now, period, lookback, backfill, history):
    cfg = cw_config(period=period, lookback=lookback, backfill=backfill)
    src = build_source(cfg, SourceContext(ManualClock(now)))
    start, end = src.window(now, history)
    assert end <= now < end + period, "the period under way is never asked for"
    assert end % period == 0 and start % period == 0
    assert history or lookback <= end - start <= lookback + period, "whole periods covering the lookback"
    if history:
        assert end - start >= min(backfill, period * MAX_HISTORY)
        assert end - start <= max(lookback, period * MAX_HISTORY) + period
    assert math.isfinite(start)



async def test_a_datapoint_of_a_period_not_over_is_dropped_whatever_the_service_sends(monkeypatch):
    """A service that answers beyond EndTime (rounding it up, a proxy's cache) still gives
    no partial period: a datapoint whose period ends after the call's end is dropped."""
    from cockpit import aws

    asked = {}

    class Answering:
        def get_metric_data(self, **kw):
            asked.update(kw)
            end = kw["EndTime"]
            stamp = lambda s: datetime.fromtimestamp(end.timestamp() + s, timezone.utc)  # noqa: E731
            return {"MetricDataResults": [{"Id": "errors", "Timestamps": [stamp(0), stamp(-60), stamp(-120)],
                                           "Values": [9.0, 40.0, 20.0], "StatusCode": "PartialData"}]}

    monkeypatch.setattr(aws, "client", lambda service, settings: Answering())
    clock = clock_at(10)
    src = make("http://127.0.0.1:9", clock, period=60, lookback=900, backfill=600)
    readings = await src.fetch()
    assert asked["EndTime"] == datetime.fromtimestamp(B, timezone.utc)
    assert [(r.ts, r.value, r.history) for r in readings] == [(B - 60, 20.0, True), (B, 40.0, False)]
