"""`prom_query` against a real Prometheus (Debian's package) scraping the simulator
on loopback every second."""

from __future__ import annotations

import time

import pytest

from cockpit.clock import SystemClock
from cockpit.config import config_from_dict
from cockpit.drill.demo import demo_raw
from cockpit.signals.sources import SourceContext, build_source
from conftest import RATE
P95 = "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[15s])))"


def source(base: str, queries: dict[str, str], **kw):
    raw = demo_raw("http://127.0.0.1:9")
    raw["sources"].append({"name": "prom", "kind": "prom_query", "url": base, "queries": queries, "interval": 1.0,
                           "timeout": 2.0, **kw})
    config = config_from_dict(raw, "<t>", {})
    ctx = SourceContext(SystemClock())
    return build_source(config.source("prom"), ctx), ctx


async def test_error_rate_and_p95_from_promql(prometheus):
    src, ctx = source(prometheus, {"error_rate": RATE, "latency_p95": P95}, backfill=0)
    try:
        readings = await src.fetch()
    finally:
        await ctx.aclose()
    by = {r.series: r for r in readings}
    assert set(by) == {"error_rate", "latency_p95"} and all(r.ok and not r.history for r in readings)
    assert by["error_rate"].value > 0.10  # the bad deploy: critical by seed 001's rule
    assert by["latency_p95"].value > 0.3


async def test_the_first_poll_backfills_history(prometheus):
    time.sleep(2)  # a few more scrapes
    src, ctx = source(prometheus, {"error_rate": RATE}, backfill=600)
    try:
        first = await src.fetch()
        second = await src.fetch()
    finally:
        await ctx.aclose()
    history = [r for r in first if r.history]
    live = [r for r in first if not r.history]
    assert len(history) >= 2 and len(live) == 1
    assert all(h.ts < live[0].ts and h.value is not None for h in history)
    assert [h.ts for h in history] == sorted(h.ts for h in history)
    assert not any(r.history for r in second)  # only once


@pytest.mark.parametrize("promql, says", [
    ("sum(rate(no_such_metric_total[1m]))", "error_rate: no data (add `or vector(0)` if none means zero)"),
    ("http_errors_total", "error_rate: 2 series; aggregate the query with sum() or max()"),
    ("sum(rate(http_errors_total[1m])", "Prometheus bad_data: "),
    ("0/0", "error_rate: NaN"),
])
async def test_query_problems_are_one_line_on_the_series(prometheus, promql, says):
    src, ctx = source(prometheus, {"error_rate": promql, "ok": "vector(1)"}, backfill=0)
    try:
        readings = await src.fetch()
    finally:
        await ctx.aclose()
    by = {r.series: r for r in readings}
    assert not by["error_rate"].ok and by["error_rate"].error.startswith(says), by["error_rate"].error
    assert by["ok"].ok and by["ok"].value == 1.0  # one bad query does not take the others down


async def test_prometheus_down_is_a_source_error(closed_port):
    src, ctx = source(f"http://127.0.0.1:{closed_port}", {"error_rate": "vector(0)"})
    try:
        with pytest.raises(Exception) as err:
            await src.fetch()
    finally:
        await ctx.aclose()
    from cockpit.signals.sources import describe_error

    assert describe_error(err.value) == "connection refused"


def test_history_is_drawn_but_never_alerted_on(sim_server):
    from screens.app import CockpitApp
    from cockpit.drill.demo import demo_config
    from cockpit.model import Reading

    app = CockpitApp(demo_config(sim_server.url), mode="LIVE", poll=False)
    now = time.time()
    old = [Reading("metrics", "error_rate", now - 600 + i, 0.5, history=True) for i in range(60)]
    app.on_readings("prom", old)
    assert len(app.store.get("metrics:error_rate")) == 60
    assert app.events == [] and app.desk.current is None


def test_check_shows_every_failing_series_once_and_loads_no_history(prometheus, write_config):
    """`cockpit check` hid broken queries behind "(+N more)", printed a series' name twice
    and ran the start-up history queries: every series now, each error once, no history."""
    import subprocess
    import sys

    from conftest import to_toml

    queries = {"a_ok": "vector(1)", "b_ok": "vector(2)", "c_ok": "vector(3)", "d_ok": "vector(4)",
               "e_broken": "sum(", "f_nothing": "no_such_metric_at_all"}
    raw = demo_raw("http://127.0.0.1:9")
    raw["sources"] = [{"name": "prom", "kind": "prom_query", "url": prometheus, "queries": queries, "timeout": 3.0,
                       "backfill": 3600}]
    raw["panels"] = {"error_rate": {"series": "prom:a_ok", "unit": "ratio"},  # no health, no components panel
                     "latency": {"series": "prom:b_ok", "unit": "seconds"},
                     "cost": {"series": "prom:c_ok", "unit": "usd_per_day"}}
    raw["actions"] = []
    path = write_config(to_toml(raw))
    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "check", "-c", str(path)], capture_output=True,
                         text=True, timeout=60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("prom ")), out.stdout + out.stderr)
    assert "more)" not in line
    for name in ("a_ok 1", "b_ok 2", "c_ok 3", "d_ok 4", "e_broken:", "f_nothing: no data"):
        assert name in line, line
    assert line.count("e_broken") == 1 and line.count("f_nothing") == 1
    assert out.returncode == 1  # a critical source with failing series


async def test_a_recorded_prom_query_tape_replays_its_backfilled_history(prometheus, tmp_path):
    """The first poll backfills the last minutes; the tape keeps them; the drill draws them
    from its first frame (as history: never alerted on), and again after a seek back."""
    from cockpit.clock import DrillClock
    from cockpit.drill.replay import Replayer
    from cockpit.drill.tape import Tape, start_recording
    from cockpit.signals.watch import SignalWatch

    time.sleep(2)
    src, ctx = source(prometheus, {"error_rate": RATE}, backfill=600)
    writer = start_recording(tmp_path / "prom.tape", config_of(src), "LIVE", time.time())
    try:
        first = await src.fetch()
        writer.readings(first)
        time.sleep(1.1)
        writer.readings(await src.fetch())
    finally:
        writer.close()
        await ctx.aclose()
    tape = Tape.open(tmp_path / "prom.tape")
    # what the first poll backfilled from before the recording began (a point stamped after it,
    # within the first poll, is handed over at its own time)
    backfilled = [r for r in first if r.history and r.ts < tape.start]
    assert len(backfilled) >= 2
    replay = Replayer(tape, DrillClock(tape.start))
    watch = SignalWatch(config_of(src))
    handed, alerts = [], []

    def sink(source_name, readings):
        handed.extend(readings)
        alerts.extend(watch.take(readings).alerts)

    replay.attach(sink, 600.0)
    before = [r for r in handed if r.ts < tape.start]
    assert [(r.ts, r.value) for r in before] == [(r.ts, r.value) for r in backfilled]
    assert all(r.history for r in before) and alerts == []  # the past is drawn, not announced
    buf = watch.store.get("prom:error_rate")
    assert buf is not None and len(buf) >= len(backfilled)  # the sparkline has the recorded minutes
    replay.advance_to(tape.end)
    handed.clear()
    replay.seek(tape.start, 600.0)
    assert len([r for r in handed if r.ts < tape.start]) == len(backfilled)


def config_of(src):
    raw = demo_raw("http://127.0.0.1:9")
    raw["sources"].append({"name": "prom", "kind": "prom_query", "url": src.cfg.url, "queries": src.cfg.queries,
                           "interval": 1.0, "timeout": 2.0, "backfill": src.cfg.backfill})
    return config_from_dict(raw, "<t>", {})
