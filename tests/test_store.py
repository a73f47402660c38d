"""Ring buffers: bounded, ordered, gaps as None, memory fixed at creation."""

from __future__ import annotations

import sys

import pytest

from cockpit.model import Reading, Status
from cockpit.signals.store import RingBuffer, Store


def ok(ts: float, value: float | None, source: str = "m", series: str = "error_rate") -> Reading:
    return Reading(source, series, ts, value)


def err(ts: float, text: str = "connection refused", source: str = "m", series: str = "error_rate") -> Reading:
    return Reading(source, series, ts, None, Status.ERROR, text)


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        RingBuffer(0)


def test_empty_buffer():
    buf = RingBuffer(4)
    assert len(buf) == 0
    assert buf.values() == []
    assert buf.samples() == []
    assert buf.latest is None and buf.last_ok is None


def test_values_oldest_first_before_wrapping():
    buf = RingBuffer(5)
    for i in range(3):
        buf.append(ok(100 + i, float(i)))
    assert len(buf) == 3
    assert buf.values() == [0.0, 1.0, 2.0]
    assert buf.values(2) == [1.0, 2.0]
    assert buf.values(10) == [0.0, 1.0, 2.0]
    assert buf.values(0) == []


def test_capacity_never_exceeded_and_oldest_dropped():
    buf = RingBuffer(4)
    for i in range(11):
        buf.append(ok(100 + i, float(i)))
        assert len(buf) == min(i + 1, 4)
        assert len(buf.values()) <= 4
    assert buf.values() == [7.0, 8.0, 9.0, 10.0]
    assert buf.values(2) == [9.0, 10.0]
    assert [t for t, _ in buf.samples()] == [107, 108, 109, 110]
    assert buf.samples(1) == [(110, 10.0)]


@pytest.mark.parametrize("count", range(1, 14))
def test_order_at_every_wrap_position(count):
    buf = RingBuffer(5)
    for i in range(count):
        buf.append(ok(i, float(i)))
    expected = [float(i) for i in range(max(0, count - 5), count)]
    assert buf.values() == expected
    assert [t for t, _ in buf.samples()] == expected


def test_gaps_are_none_for_errors_and_missing_values():
    buf = RingBuffer(6)
    buf.append(ok(1, 0.5))
    buf.append(ok(2, None))  # no traffic in the window
    buf.append(err(3))  # failed poll
    buf.append(ok(4, float("nan")))  # NaN from the source
    buf.append(ok(5, 0.0))  # zero is a value, not a gap
    assert buf.values() == [0.5, None, None, None, 0.0]
    assert buf.samples() == [(1, 0.5), (2, None), (3, None), (4, None), (5, 0.0)]


def test_stale_reading_with_a_value_is_drawn_as_gap():
    buf = RingBuffer(3)
    buf.append(Reading("m", "s", 1, 2.0, Status.STALE))
    assert buf.values() == [None]


def test_latest_versus_last_ok():
    buf = RingBuffer(3)
    first = ok(1, 0.02)
    buf.append(first)
    assert buf.latest is first and buf.last_ok is first
    failed = err(2, "timed out after 3s")
    buf.append(failed)
    assert buf.latest is failed, "latest is the newest reading, failed or not"
    assert buf.last_ok is first, "last_ok keeps the newest good reading for 'last good value'"
    assert buf.latest.error == "timed out after 3s"
    for i in range(5):  # the good reading is long gone from the ring, but last_ok keeps it
        buf.append(err(3 + i))
    assert buf.values() == [None, None, None]
    assert buf.last_ok is first
    recovered = ok(10, 0.03)
    buf.append(recovered)
    assert buf.latest is recovered and buf.last_ok is recovered


def test_version_counts_appends():
    buf = RingBuffer(2)
    for i in range(5):
        buf.append(ok(i, 1.0))
    assert buf.version == 5


def test_said_counts_what_a_sources_readings_say_their_values_aside():
    """store.said(source) moves when a series of the source gets a reading that says
    something other than the one before it (a first reading, a status, state, detail or
    error), not when only a value moves; a cleared store (a drill seeking) moves every one."""
    store = Store(10)

    def comp(ts, state="healthy", detail="HTTP 200", value=1.0, status=Status.OK, error=""):
        return Reading("components", "component/api", ts, value, status, error, state=state, detail=detail)

    assert store.said("components") == 0
    store.add(comp(0))
    assert store.said("components") == 1  # a first reading
    for ts in range(1, 4):
        store.add(comp(ts, value=1.0 + ts))  # the same word, other values
        store.add(ok(ts, 0.01 * ts))  # another source's series
    assert store.said("components") == 1 and store.said("m") == 1
    changes = [comp(4, state="degraded"), comp(5, state="degraded", detail="pool near limit"),
               comp(6, state=None, value=None, status=Status.ERROR, error="timed out"),
               comp(7, state=None, value=None, status=Status.ERROR, error="refused"), comp(8)]
    for n, reading in enumerate(changes, start=2):
        store.add(reading)
        assert store.said("components") == n
    store.add(comp(9))
    assert store.said("components") == 6
    store.clear()
    assert store.said("components") == 7 and store.said("m") == 2 and store.said("nowhere") == 0


def test_since_filters_by_timestamp():
    buf = RingBuffer(10)
    for i in range(6):
        buf.append(ok(100 + i * 10, float(i)))
    assert buf.since(130) == [3.0, 4.0, 5.0]
    assert buf.since(131) == [4.0, 5.0]
    assert buf.since(1000) == []


def test_memory_stays_fixed_after_ten_times_capacity():
    capacity = 64
    buf = RingBuffer(capacity)
    arrays = (buf._ts, buf._values, buf._status)
    before = [(len(a), sys.getsizeof(a)) for a in arrays]
    for i in range(10 * capacity):
        buf.append(ok(i, float(i)) if i % 7 else err(i))
    now = (buf._ts, buf._values, buf._status)
    assert all(a is b for a, b in zip(now, arrays)), "the buffer's arrays must be the ones made at creation"
    after = [(len(a), sys.getsizeof(a)) for a in arrays]
    assert after == before, "the buffer's arrays grew"
    assert [n for n, _ in after] == [capacity] * 3
    assert len(buf) == capacity


def test_store_routes_by_series_and_sizes_from_callback():
    sizes = {"m:error_rate": 3, "h:health": 2}
    store = Store(lambda key: sizes[key])
    for i in range(10):
        store.add(ok(i, float(i)))
        store.add(Reading("h", "health", i, 1.0, state="up"))
    assert len(store) == 2
    assert sorted(store.keys()) == ["h:health", "m:error_rate"]
    assert store.keys("m:") == ["m:error_rate"]
    assert "m:error_rate" in store and "m:latency_p95" not in store
    assert store.get("m:error_rate").capacity == 3
    assert store.get("h:health").capacity == 2
    assert store.get("m:error_rate").values() == [7.0, 8.0, 9.0]
    assert store.latest("h:health").ts == 9
    assert store.latest("nope") is None and store.get("nope") is None
    assert store.version == 20


def test_store_fixed_capacity_and_extend():
    store = Store(4)
    store.extend(ok(i, float(i)) for i in range(100))
    buf = store.get("m:error_rate")
    assert buf.capacity == 4
    assert len(buf) == 4
    assert buf.values() == [96.0, 97.0, 98.0, 99.0]
