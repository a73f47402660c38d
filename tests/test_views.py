"""Views, crossings and the sparkline: the rules the panels draw, without a UI."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cockpit.config import Threshold, config_from_dict
from cockpit.drill.demo import demo_config, demo_raw
from cockpit.signals.evaluator import CrossingTracker, level_of
from cockpit.model import Level, Reading, Status
from cockpit.signals.store import Store
from cockpit.units import fmt_ratio
from cockpit.signals.views import check_view, freshness, signal_view
from screens.sparkline import BLOCKS, sparkline

CFG = demo_config("http://127.0.0.1:9")
T0 = 1_000_000.0


def test_sparkline_gap_is_blank_and_zero_is_drawn():
    (row,) = sparkline([0.0, None, 1.0, 0.5], width=4)
    assert row.plain[0] == BLOCKS[1]  # zero still draws the lowest block
    assert row.plain[1] == " "  # a missing sample is a gap
    assert row.plain[2] == BLOCKS[8]
    assert row.plain[3] in BLOCKS[3:6]


def test_sparkline_right_aligned_and_clipped_to_width():
    (row,) = sparkline([1.0, 1.0], width=5)
    assert row.plain == "   " + BLOCKS[8] * 2
    (row,) = sparkline([float(i) for i in range(10)], width=3)
    assert len(row.plain) == 3 and row.plain[-1] == BLOCKS[8]


def test_sparkline_two_rows_stack():
    top, bottom = sparkline([1.0, 0.25], width=2, height=2)
    assert top.plain == BLOCKS[8] + " "
    assert bottom.plain == BLOCKS[8] + BLOCKS[4]


def test_sparkline_draws_a_run_of_one_style_as_one_span():
    """Columns in a row with the same style are one span (a panel redraws its sparkline on
    every poll, and every span is styled on its own); each column keeps its own style, a
    gap and the padding none."""
    from rich.style import Style
    from rich.text import Span

    red, green = Style(color="red"), Style(color="green")
    styles = [red, red, red, green, green, red, red]
    top, bottom = sparkline([1.0, 1.0, None, 1.0, 0.5, 0.5, None], width=9, height=2, style_for=lambda i: styles[i])
    assert top.plain == "  " + BLOCKS[8] * 2 + " " + BLOCKS[8] + "   "
    assert bottom.plain == "  " + BLOCKS[8] * 2 + " " + BLOCKS[8] * 3 + " "
    for row in (top, bottom):
        assert row.spans == [Span(2, 4, red), Span(5, 7, green), Span(7, 8, red)]


def test_sample_levels_stay_each_samples_level_as_the_window_moves():
    """A poll moves a panel's window by a sample: the levels of the samples still in it are
    kept and only the new ones worked out. Whatever comes (a threshold crossed, a gap, the
    buffer wrapping, a store cleared by a drill seeking, several polls between two
    refreshes), every sample is drawn at its own value's level."""
    threshold = CFG.panels.signal("error_rate").threshold
    store, cache = Store(40), {}
    values = [0.01, 0.06, None, 0.2, 0.04] * 30
    for i, value in enumerate(values):
        ok = value is not None or i % 7
        store.add(Reading("metrics", "error_rate", T0 + i, value, Status.OK if ok else Status.ERROR))
        if i == 90:
            store.clear()
        if i % 11 in (3, 4):
            continue  # no refresh between these polls: the window moved by two
        v = signal_view(CFG, "error_rate", store, T0 + i, 30, cache)
        assert v.samples == store.get("metrics:error_rate").values(30)
        assert v.sample_levels == [level_of(x, threshold) for x in v.samples], i


def _store(*readings: Reading) -> Store:
    s = Store(100)
    s.extend(readings)
    return s


def test_signal_view_fresh_value_has_level_glyph_and_word():
    store = _store(Reading("metrics", "error_rate", T0, 0.12))
    v = signal_view(CFG, "error_rate", store, T0 + 1)
    assert v.level is Level.CRIT and v.badge == "✖ CRIT" and v.value_text == "12.0%"
    assert v.fresh.status == "ok" and "updated 1s ago" == v.fresh.label()


def test_signal_view_after_failure_shows_error_age_and_no_current_level():
    store = _store(
        Reading("metrics", "error_rate", T0, 0.12),
        Reading("metrics", "error_rate", T0 + 5, None, Status.ERROR, "connection refused"),
    )
    v = signal_view(CFG, "error_rate", store, T0 + 6)
    assert v.fresh.status == "error" and v.fresh.error == "connection refused"
    assert v.level is Level.UNKNOWN and v.badge == "◌ ERROR"
    assert v.value_text == "last 12.0%"
    assert "6s" in v.fresh.label()
    assert v.samples == [0.12, None]  # the failed poll is a gap


def test_signal_goes_stale_when_no_new_data_arrives():
    store = _store(Reading("metrics", "error_rate", T0, 0.01))
    limit = CFG.settings.stale_factor * 1.0 + 0.8
    assert signal_view(CFG, "error_rate", store, T0 + limit - 0.1).fresh.status == "ok"
    v = signal_view(CFG, "error_rate", store, T0 + limit + 0.5)
    assert v.fresh.status == "stale" and v.badge == "◌ STALE" and v.level is Level.UNKNOWN


def test_no_traffic_is_a_gap_not_zero():
    store = _store(Reading("metrics", "error_rate", T0, None, detail="no requests in window"))
    v = signal_view(CFG, "error_rate", store, T0)
    assert v.level is Level.UNKNOWN and v.value_text == "no traffic"


def test_waiting_before_first_poll():
    v = signal_view(CFG, "latency", Store(10), T0)
    assert v.fresh.status == "waiting" and "WAITING" in v.badge


def test_check_view_unreachable_health_is_critical():
    store = _store(Reading("health", "health", T0, 0.0, Status.ERROR, "connection refused", state="unreachable"))
    v = check_view("health", store.get("health:health"), T0 + 1, 3.0)
    assert v.level is Level.CRIT and v.state == "UNREACHABLE" and v.detail == "connection refused"


def test_check_view_component_error_is_unknown_and_says_what_it_was():
    store = _store(
        Reading("c", "component/api", T0, 1.0, state="healthy"),
        Reading("c", "component/api", T0 + 1, None, Status.ERROR, "timed out after 0.8s"),
    )
    v = check_view("api", store.get("c:component/api"), T0 + 2, 3.0)
    assert v.level is Level.UNKNOWN and v.state == "ERROR"
    assert "timed out" in v.detail and "was healthy" in v.detail


def test_crossings_fire_on_change_only_and_ignore_gaps():
    t = CrossingTracker()
    t.watch("k", "error rate", Threshold(warn=0.05, critical=0.10, hold=0, clear_hold=0), fmt_ratio)
    assert t.update("k", 0.01, 1) is None  # first data, all well: nothing to say
    assert t.update("k", 0.02, 2) is None
    ev = t.update("k", 0.06, 3)
    assert ev is not None and ev.level is Level.WARN and "WARN 6.0%" in ev.text and ">= 5.0%" in ev.text
    assert t.update("k", 0.07, 4) is None  # same level, no spam
    assert t.update("k", None, 5) is None  # a gap is not a recovery
    ev = t.update("k", 0.2, 6)
    assert ev.level is Level.CRIT and ev.payload == {"from": "WARN", "to": "CRIT", "value": 0.2}
    ev = t.update("k", 0.01, 7)
    assert ev.level is Level.OK and "back to OK" in ev.text


def test_level_below_direction():
    th = Threshold(warn=0.99, critical=0.95, direction="below")
    assert level_of(1.0, th) is Level.OK
    assert level_of(0.97, th) is Level.WARN
    assert level_of(0.9, th) is Level.CRIT
    assert level_of(None, th) is Level.UNKNOWN


def test_freshness_waiting_without_buffer():
    assert freshness(None, T0, 3).label() == "waiting for first poll"


def test_state_changes_become_timeline_events_after_the_baseline():
    from cockpit.signals.evaluator import StateTracker

    t = StateTracker(clear_hold=0)
    assert t.update("c:component/api", "component api", "healthy", 1) is None  # baseline
    assert t.update("c:component/api", "component api", "healthy", 2) is None
    assert t.update("c:component/api", "component api", None, 3) is None  # failed poll is not a state
    ev = t.update("c:component/api", "component api", "unhealthy", 4)
    assert ev.level is Level.CRIT and ev.text == "component api healthy → unhealthy"
    ev = t.update("c:component/api", "component api", "healthy", 5)
    assert ev.level is Level.OK and ev.kind == "status"


# ------------------------------------------------------------ display (issue 14)

def test_thresholds_read_as_they_fire():
    """A value at the limit is at that level (level_of uses >=), so the panel says ≥."""
    store = _store(Reading("metrics", "error_rate", T0, 0.05))
    v = signal_view(CFG, "error_rate", store, T0 + 1)
    assert v.level is Level.WARN and v.threshold_text == "warn ≥5.0% · crit ≥10.0%"
    raw = demo_raw("http://127.0.0.1:9")
    raw["panels"]["error_rate"]["threshold"] = {"warn": 0.5, "critical": 0.2, "direction": "below"}
    below = config_from_dict(raw, "<t>", {})
    assert signal_view(below, "error_rate", store, T0 + 1).threshold_text == "warn ≤50.0% · crit ≤20.0%"


def test_small_ratios_keep_their_digits():
    assert [fmt_ratio(v) for v in (0.0004, 0.000412, 0.005, 0.0099, 0.01, 0.123, 0.0, 1e-9)] == \
        ["0.04%", "0.041%", "0.5%", "0.99%", "1.0%", "12.3%", "0.0%", "<0.001%"]
    assert (fmt_ratio(float("inf")), fmt_ratio(float("-inf")), fmt_ratio(float("nan"))) == ("+Inf", "-Inf", "—")


@given(st.floats(min_value=1e-5, max_value=0.01, allow_nan=False))
def test_a_small_ratio_is_never_shown_as_zero_and_reads_back_close(v):
    shown = fmt_ratio(v)
    assert shown.endswith("%") and shown != "0.0%"
    back = float(shown.removesuffix("%")) / 100
    assert abs(back - v) <= 0.06 * v + 5e-6  # two significant digits


def test_also_labels_keep_the_source_when_two_would_read_the_same():
    from cockpit.signals.views import also_labels

    raw = demo_raw("http://127.0.0.1:9")
    raw["sources"].append({**raw["sources"][2], "name": "canary"})
    raw["panels"]["latency"]["also"] = ["metrics:latency_p50", "metrics:latency_p99", "canary:latency_p99"]
    cfg = config_from_dict(raw, "<t>", {})
    store = _store(Reading("metrics", "latency_p95", T0, 0.2), Reading("metrics", "latency_p50", T0, 0.1),
                   Reading("metrics", "latency_p99", T0, 0.4), Reading("canary", "latency_p99", T0, 0.9))
    v = signal_view(cfg, "latency", store, T0 + 1)
    assert v.extras == [("p50", "100ms"), ("metrics:p99", "400ms"), ("canary:p99", "900ms")]
    assert also_labels(["a:latency_p99"]) == {"a:latency_p99": "p99"}


def test_timeline_names_keep_the_title_as_written():
    from cockpit.signals.watch import SignalWatch

    raw = demo_raw("http://127.0.0.1:9")
    raw["sources"].append({"name": "db", "kind": "pg_query", "database": "postgresql://127.0.0.1/test",
                           "queries": {"cpu": "SELECT 1"}})
    raw["panels"]["extra"] = [{"title": "DB CPU", "series": "db:cpu", "unit": "percent",
                               "threshold": {"warn": 80.0, "critical": 95.0, "hold": 0}}]
    watch = SignalWatch(config_from_dict(raw, "<t>", {}))
    assert [name for _, _, name in watch.panels()] == ["error rate", "latency", "cost", "DB CPU"]
    alerts = watch.take([Reading("db", "cpu", T0, 97.0)]).alerts
    assert [a.text for a in alerts] == ["DB CPU CRIT 97.0% (>= 95.0%)"]


def test_error_rate_noise_stays_low_under_the_warn_level():
    """Issue 17: 0-1.5 % noise drew full-height bars (the scale was the largest sample).
    The scale reaches at least the warn level (5 %): noise stays in the lowest blocks; a
    climb past warn still fills the panel."""
    noise = [0.0, 0.015, 0.004, 0.012, 0.007, 0.015]
    store = _store(*(Reading("metrics", "error_rate", T0 + i, v) for i, v in enumerate(noise)))
    v = signal_view(CFG, "error_rate", store, T0 + len(noise))
    assert v.ceiling == CFG.panels.error_rate.threshold.warn == 0.05
    top, bottom = sparkline(v.samples, len(noise), height=2, ceiling=v.ceiling)
    assert top.plain.strip() == "" and max(bottom.plain, key=BLOCKS.index) == "▅"  # 1.5 % of 5 %: 5 of 16 eighths
    assert max(sparkline(v.samples, len(noise), height=2)[0].plain, key=BLOCKS.index) == "█"  # before: full height
    store = _store(*(Reading("metrics", "error_rate", T0 + i, v) for i, v in enumerate([*noise, 0.2])))
    top, _ = sparkline(signal_view(CFG, "error_rate", store, T0 + 7).samples, 7, height=2, ceiling=0.05)
    assert top.plain[-1] == "█"


@given(status=st.sampled_from(["ok", "stale", "error"]), age=st.floats(min_value=0, max_value=10 * 86400),
       width=st.integers(min_value=8, max_value=60))
def test_a_freshness_label_fits_its_border_and_keeps_the_age(status, age, width):
    """Seen under QA at 80x24: a panel's border cut "◌ ERROR · data 20s old" to "◌ ERROR · d…",
    so the age of the last value shown could not be read. The label now gives up words first."""
    from cockpit.clock import format_age
    from cockpit.signals.views import Freshness

    label = Freshness(status, age, "connection refused").label(width)
    assert format_age(age) in label
    assert len(label) <= width or label == (f"◌ {format_age(age)}" if status != "ok" else format_age(age))
    assert Freshness(status, age).label(None) == Freshness(status, age).label(200)  # the full form when it fits
