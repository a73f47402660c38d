"""Hold time, hysteresis and (later) severity: the evaluator's rules."""

from __future__ import annotations

import pytest

from cockpit.config import Threshold
from cockpit.signals.evaluator import CrossingTracker
from cockpit.model import Level
from cockpit.units import fmt_ratio


def tracker(**kw) -> CrossingTracker:
    t = CrossingTracker()
    t.watch("k", "error rate", Threshold(**kw), fmt_ratio)
    return t


def feed(t: CrossingTracker, samples: list[tuple[float, float | None]]) -> list[tuple[float, Level]]:
    """(the time the alert says it happened, its level) for each alert the samples raise."""
    out = []
    for ts, v in samples:
        ev = t.update("k", v, ts)
        if ev is not None:
            out.append((ev.ts, ev.level))
    return out


def test_hold_time_ignores_a_short_spike_and_fires_on_a_sustained_one():
    t = tracker(warn=0.05, critical=0.10, hold=30)
    assert feed(t, [(0, 0.01), (10, 0.2), (20, 0.2), (30, 0.01)]) == []  # 20 s spike: nothing
    assert t.level("k") is Level.OK
    fired = feed(t, [(40, 0.2), (55, 0.2), (69, 0.2), (70, 0.2), (80, 0.2)])
    assert fired == [(40, Level.CRIT)]  # held from 40 to 70; the alert says when it began


def test_a_rise_through_warn_to_critical_keeps_its_hold_clock():
    t = tracker(warn=0.05, critical=0.10, hold=10)
    # WARN, CRIT, WARN, CRIT...: still getting worse than OK the whole time, announced once
    fired = feed(t, [(0, 0.01), (1, 0.06), (3, 0.12), (5, 0.07), (8, 0.13), (11, 0.14)])
    assert fired == [(1, Level.CRIT)]


def test_a_first_reading_that_is_already_bad_is_an_alert():
    t = tracker(warn=0.05, critical=0.10, hold=10)
    assert feed(t, [(0, 0.3), (5, 0.3)]) == []
    assert feed(t, [(10, 0.3)]) == [(0, Level.CRIT)]
    ev = tracker(warn=0.05, critical=0.10, hold=0).update("k", 0.3, 0)
    assert ev.level is Level.CRIT and ev.payload["from"] == "UNKNOWN"
    calm = tracker(warn=0.05, critical=0.10, hold=10)
    assert feed(calm, [(0, 0.01)]) == [] and calm.level("k") is Level.OK


def test_a_recovery_must_last_the_clear_hold():
    t = tracker(warn=0.05, critical=0.10, hold=0, clear_hold=10)
    feed(t, [(0, 0.3)])
    assert feed(t, [(11, 0.0), (15, 0.3), (16, 0.0), (20, 0.0)]) == []  # a dip is not a recovery
    assert feed(t, [(26, 0.0)]) == [(16, Level.OK)]  # back since 16, announced at 26


def test_defaults_do_not_flap_on_a_noisy_signal_at_its_level():
    """Cost hovering about its critical level (the demo's cost-CRIT-WARN-CRIT within 2 s)."""
    import random

    rng = random.Random(3)
    t = tracker(warn=80.0, critical=100.0)  # defaults: hold 5 s, clear_hold 30 s, 10% band
    samples = [(float(i), 101.0 + rng.uniform(-6, 6)) for i in range(600)]  # 10 min at 1 Hz, +-6%
    fired = feed(t, samples)
    levels = [level for _, level in fired]
    # it may rise in two steps (it reads WARN about half the time), but it never falls back
    assert fired[0][0] == 0.0 and levels == sorted(levels) and len(levels) <= 2 and levels[-1] is Level.CRIT
    # and one recovery once it is really over
    fired = feed(t, [(600.0 + i, 40.0 + rng.uniform(-1, 1)) for i in range(60)])
    assert fired == [(600.0, Level.OK)]


def test_hysteresis_keeps_the_alert_until_past_the_clear_level():
    t = tracker(warn=0.05, critical=0.10, clear=0.02, hold=0, clear_hold=0)
    fired = feed(t, [(0, 0.01), (1, 0.12), (2, 0.06), (3, 0.04), (4, 0.03), (5, 0.019)])
    assert fired == [(1, Level.CRIT), (2, Level.WARN), (5, Level.OK)]
    # flapping around the warn level does not spam once raised
    t2 = tracker(warn=0.05, critical=0.10, clear=0.02, hold=0, clear_hold=0)
    fired = feed(t2, [(0, 0.06), (1, 0.04), (2, 0.06), (3, 0.045), (4, 0.055)])
    assert fired == [(0, Level.WARN)]
    # nor around the critical level: critical stays until 10% back past it
    t3 = tracker(warn=0.05, critical=0.10, hold=0, clear_hold=0)
    assert feed(t3, [(0, 0.11), (1, 0.095), (2, 0.105), (3, 0.091)]) == [(0, Level.CRIT)]
    assert feed(t3, [(4, 0.089)]) == [(4, Level.WARN)]


def test_hysteresis_text_says_why_the_alert_stays():
    t = tracker(warn=0.05, critical=0.10, clear=0.02, hold=0, clear_hold=0)
    t.update("k", 0.12, 0)
    ev = t.update("k", 0.04, 1)
    assert ev.level is Level.WARN and "not yet back past 2.0%" in ev.text


def test_clear_level_must_be_on_the_good_side():
    with pytest.raises(ValueError, match="clear"):
        Threshold(warn=0.05, critical=0.10, clear=0.07)
    with pytest.raises(ValueError, match="clear"):
        Threshold(warn=0.99, critical=0.95, direction="below", clear=0.98)
    assert Threshold(warn=0.05).clear_level == pytest.approx(0.045)
    assert Threshold(critical=1.0).clear_level == pytest.approx(0.9)
    assert Threshold(warn=0.99, direction="below").clear_level == pytest.approx(1.089)
    assert Threshold(warn=0.05, clear=0.01).clear_level == 0.01


# ---------------------------------------------------------------- states

from cockpit.signals.evaluator import StateTracker  # noqa: E402


def states(t: StateTracker, seq: list[tuple[float, str]]) -> list[tuple[float, str]]:
    out = []
    for ts, state in seq:
        ev = t.update("db", "component database", state, ts)
        if ev is not None:
            out.append((ev.ts, ev.text))
    return out


def test_a_component_already_unhealthy_at_start_is_an_alert():
    t = StateTracker()
    assert states(t, [(0, "unhealthy")]) == [(0, "component database unhealthy when first seen")]
    assert states(StateTracker(), [(0, "healthy"), (1, "healthy")]) == []


def test_a_flapping_state_gives_one_alert_then_one_recovery():
    """pg_health's 'blocked' under pgbench went WARN/OK 5 times in 25 s with no hold."""
    t = StateTracker()  # defaults: worse at once, better after 30 s
    flaps = [(float(i) * 2.5, "degraded" if i % 2 else "healthy") for i in range(11)]  # 25 s
    assert states(t, flaps) == [(2.5, "component database healthy → degraded")]
    assert states(t, [(25.0 + i, "healthy") for i in range(40)]) == [(25.0, "component database degraded → healthy")]


# ---------------------------------------------------------------- severity suggestion (seed 000's definitions)

from cockpit.signals.evaluator import Signal, suggest_severity  # noqa: E402

OK, WARN, CRIT = Level.OK, Level.WARN, Level.CRIT


def sig(role, level, name=None, shown="", critical=True):
    return Signal(role, name or role.replace("_", " "), level, shown, critical)


@pytest.mark.parametrize(
    "signals, severity, driver",
    [
        # P0: complete outage, every critical health check down
        ([sig("health", CRIT, "api"), sig("health", CRIT, "worker"), sig("error_rate", CRIT)], "P0",
         "every critical health check down: api CRIT, worker CRIT"),
        # one of two critical checks down is not a complete outage
        ([sig("health", CRIT, "api"), sig("health", OK, "worker"), sig("error_rate", CRIT, shown="21.9%")],
         "P1", "error rate CRIT 21.9%"),
        # a non-critical check does not hold P0 back
        ([sig("health", CRIT, "api"), sig("health", OK, "docs", critical=False)], "P0",
         "every critical health check down: api CRIT"),
        # P1: error rate or latency critical
        ([sig("latency", CRIT, shown="2.07s"), sig("cost", CRIT)], "P1", "latency CRIT 2.07s"),
        # P2: cost threshold warnings, error rate warning, degraded component
        ([sig("cost", WARN, shown="$82/day"), sig("latency", WARN)], "P2", "cost WARN $82/day"),
        ([sig("error_rate", WARN)], "P2", "error rate WARN"),
        ([sig("component", CRIT, "ai-gateway")], "P2", "ai-gateway CRIT"),
        # the worst row names it, not the first listed
        ([sig("component", WARN, "worker"), sig("health", CRIT, "api", critical=False)], "P2", "api CRIT"),
        # an Alertmanager alert: critical is the team's own page (P1), a warning is P2
        ([sig("alert", WARN, "alert DiskFilling"), sig("alert", CRIT, "alert HighErrorRate"), sig("cost", WARN)],
         "P1", "alert HighErrorRate CRIT"),
        ([sig("alert", WARN, "alert DiskFilling")], "P2", "alert DiskFilling WARN"),
        # P3: monitoring only, minor performance degradation
        ([sig("latency", WARN, shown="640ms")], "P3", "latency WARN 640ms"),
        # nothing wrong: nothing suggested
        ([sig("error_rate", OK), sig("health", OK, "api")], None, ""),
    ],
)
def test_severity_follows_the_seed_definitions(signals, severity, driver):
    s = suggest_severity(signals)
    assert s.severity == severity
    assert s.driver == driver
    if severity:
        assert severity in s.text() and s.definition in s.text()
