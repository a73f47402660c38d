"""Incident rules over the journal: status, severity, notes, pins, milestones."""

from __future__ import annotations

import pytest

from cockpit.clock import ManualClock
from cockpit.incident.state import IncidentError, Incidents
from cockpit.incident.journal import SQLiteJournal

NOW = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
NOW_DAY = 1_794_960_000.0  # that day, 00:00 UTC


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_767_225_600.0)


@pytest.fixture
def incidents(tmp_path, clock):
    j = SQLiteJournal(tmp_path / "j.db", clock=clock, actor="alice")
    yield Incidents(j, clock)
    j.close()


def test_declare_sets_detected_and_impact_milestones(incidents, clock):
    inc = incidents.declare("checkout 5xx", auto=True)
    st = incidents.state(inc)
    assert inc.startswith("INC-20260101-0000-")
    assert st.status == "declared" and st.title == "checkout 5xx"
    assert st.milestones == {"detected": clock.now(), "impact_started": clock.now()}


def test_status_walks_forward_and_sets_milestones_once(incidents, clock):
    inc = incidents.declare("x")
    clock.advance(120)
    incidents.set_status(inc, "acknowledged")
    clock.advance(600)
    incidents.set_status(inc, "mitigated")
    clock.advance(300)
    incidents.set_status(inc, "resolved")
    st = incidents.state(inc)
    start = st.declared_at
    assert st.status == "resolved" and not st.open
    assert st.milestones["acknowledged"] - start == 120
    assert st.milestones["mitigated"] - start == 720
    assert st.milestones["resolved"] - start == 1020


def test_impossible_transitions_and_reopen_without_reason_refused(incidents):
    inc = incidents.declare("x")
    with pytest.raises(IncidentError, match="already declared"):
        incidents.set_status(inc, "declared")
    with pytest.raises(IncidentError, match="it can go to acknowledged, mitigated, resolved, not closed"):
        incidents.set_status(inc, "closed")
    incidents.set_status(inc, "resolved")
    with pytest.raises(IncidentError, match="needs a reason"):
        incidents.set_status(inc, "acknowledged")
    incidents.set_status(inc, "acknowledged", reason="errors are back")
    assert incidents.state(inc).status == "acknowledged"


def test_severity_accept_and_override_with_reason(incidents):
    inc = incidents.declare("x")
    incidents.suggest_severity(inc, "P1", "error rate CRIT 21.9%")
    assert incidents.suggest_severity(inc, "P1", "error rate CRIT 22.4%") is None  # same suggestion: not repeated
    incidents.set_severity(inc, "P1", accepted=True)
    with pytest.raises(IncidentError, match="overrides the suggested P1: give a reason"):
        incidents.set_severity(inc, "P0")
    incidents.set_severity(inc, "P0", "checkout fully down for EU customers")
    st = incidents.state(inc)
    assert st.severity == "P0"
    assert [(c.severity, c.accepted_suggestion) for c in st.severities] == [("P1", True), ("P0", False)]
    assert st.severities[1].reason == "checkout fully down for EU customers"


def test_notes_pins_and_responders(incidents):
    inc = incidents.declare("x")
    note = incidents.note(inc, "  rollback started by bob  ")
    other = Incidents(incidents.journal, incidents.clock, actor="bob")
    other.pin(inc, note.id)
    st = incidents.state(inc)
    assert st.events[-2].payload == {"text": "rollback started by bob"}
    assert note.id in st.pinned and st.responders == ["alice", "bob"]
    other.pin(inc, note.id, pinned=False)
    assert note.id not in incidents.state(inc).pinned
    with pytest.raises(IncidentError, match="empty note"):
        incidents.note(inc, "   ")
    with pytest.raises(IncidentError, match="no event"):
        incidents.pin(inc, "nope")


def test_milestones_editable_with_reason_and_kept_in_order(incidents, clock):
    inc = incidents.declare("x")
    detected = clock.now()
    # impact started 10 minutes before anyone noticed
    incidents.set_milestone(inc, "impact_started", detected - 600, "deploy at 23:50 per the CD log")
    assert incidents.state(inc).milestones["impact_started"] == detected - 600
    with pytest.raises(IncidentError, match="needs a reason"):
        incidents.set_milestone(inc, "impact_started", detected - 700, "")
    with pytest.raises(IncidentError, match="detected .* cannot be before impact_started"):
        incidents.set_milestone(inc, "impact_started", detected + 60, "typo")
    clock.advance(300)
    incidents.set_status(inc, "acknowledged")
    # an automatic milestone is not overwritten by a later status change
    incidents.set_milestone(inc, "acknowledged", detected + 100, "paged at 00:01:40, acked in Slack")
    incidents.set_status(inc, "mitigated")
    incidents.set_status(inc, "acknowledged", reason="mitigation did not hold")
    assert incidents.state(inc).milestones["acknowledged"] == detected + 100


@pytest.mark.parametrize("typed, expected", [
    ("-15m", NOW - 900), ("1h30m ago", NOW - 5400), ("- 90s", NOW - 90),
    ("03:12", NOW_DAY + 3 * 3600 + 12 * 60), ("2026-11-18T03:12:30Z", NOW_DAY + 3 * 3600 + 12 * 60 + 30),
    ("2026-11-18 04:12:30+01:00", NOW_DAY + 3 * 3600 + 12 * 60 + 30), ("23:00", NOW_DAY - 3600),
])
def test_typed_times_for_milestones(typed, expected):
    from cockpit.clock import parse_when

    assert parse_when(typed, NOW) == expected


@pytest.mark.parametrize("typed, says", [("soon", "cannot read"), ("24:10", "not a time of day"),
                                         ("2099-01-01", "in the future"), ("", "cannot read")])
def test_unreadable_times_say_what_to_type(typed, says):
    from cockpit.clock import parse_when

    with pytest.raises(ValueError, match=says):
        parse_when(typed, NOW)
