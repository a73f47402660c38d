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


# ---------------------------------------------------------------- the desk: a poll's machine events

from cockpit.incident.desk import IncidentDesk  # noqa: E402
from cockpit.incident.journal import JournalError  # noqa: E402
from cockpit.model import Level, TimelineEvent  # noqa: E402

T0 = 1_767_225_600.0


class CountingJournal(SQLiteJournal):
    """A journal that records what each transaction held, and refuses writes while ``down``."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.transactions: list[list[str]] = []
        self.down = False

    def append_many(self, entries):
        entries = list(entries)
        if self.down:
            raise JournalError("disk full")
        self.transactions.append([e.kind for e in entries])
        return super().append_many(entries)


def crossing(dt: float, signal: str, level: Level, kind: str = "alert") -> TimelineEvent:
    return TimelineEvent(T0 + dt, kind, f"{signal} {level.name}", level, signal, {"to": level.name})


def a_poll() -> list[TimelineEvent]:
    """A flapping fleet's poll: a critical alert (it declares), the same crossing again
    within a minute (one copy), a recovery, and fifty components going down."""
    return [crossing(5, "latency", Level.CRIT), crossing(5, "error rate", Level.CRIT),
            crossing(6, "latency", Level.CRIT), crossing(6, "error rate", Level.OK),
            *(crossing(6, f"component c{i:02d}", Level.WARN, "status") for i in range(50))]


def desk_on(tmp_path, name: str, spool=None) -> tuple[IncidentDesk, CountingJournal, list[TimelineEvent]]:
    clock = ManualClock(T0)
    journal = CountingJournal(tmp_path / f"{name}.db", clock=clock, actor="alice")
    lines: list[TimelineEvent] = []
    desk = IncidentDesk(journal, clock, "alice", "checkout", on_event=lines.append, spool=spool)
    return desk, journal, lines


def written(journal, desk) -> list[tuple]:
    return [(e.kind, e.ts, e.actor, e.payload) for e in journal.events(desk.current)]


def test_a_polls_events_are_the_events_of_alerting_one_by_one_in_one_transaction(tmp_path):
    """from_poll (one transaction for a poll's alerts, suggestion and snapshot) journals the
    same events, in the same order, with the same timeline lines, as alerting one by one:
    the declaration, the symptom from before it, one copy of a repeated crossing."""
    snapshot = ({"signals": {}, "samples": {"error_rate": [[T0 + 5, 0.12]]}}, T0 - 120, T0 + 6)
    one, one_journal, one_lines = desk_on(tmp_path, "one")
    many, many_journal, many_lines = desk_on(tmp_path, "many")
    for desk in (one, many):
        desk.alert(crossing(0, "error rate", Level.WARN))  # a symptom before any incident
    for ev in a_poll():
        one.alert(ev)
    one.suggest("P1", "latency CRIT")
    one.snapshot(*snapshot)
    assert many.from_poll(a_poll(), ("P1", "latency CRIT"), snapshot) is None

    assert written(many_journal, many) == written(one_journal, one)
    kinds = [k for k, *_ in written(many_journal, many)]
    assert kinds == ["incident_declared"] + ["alert_raised"] * 3 + ["alert_cleared"] + ["alert_raised"] * 50 + [
        "severity_suggested", "metrics_snapshot"]
    assert [(e.ts, e.kind, e.text) for e in many_lines] == [(e.ts, e.kind, e.text) for e in one_lines]
    assert len(many_lines) == len({e.text for e in many_lines}) == 56  # each line once (the snapshot has none)
    # the declaration is a responder's event: by itself; then everything else in one
    assert many_journal.transactions == [["incident_declared"], kinds[1:]]
    assert len(one_journal.transactions) == len(kinds)
    assert [e.id for e in many.state().events] == [e.id for e in many_journal.events(many.current)]
    assert many_journal.verify() == [] and many.unsaved == []


def test_a_poll_the_journal_refuses_is_kept_in_order_and_written_when_it_answers(tmp_path):
    """Nothing of a poll is lost or reordered while the journal is away: shown at once, in the
    incident's state, kept in order with its times; a note after it waits behind it, and
    when the journal answers the poll goes in one transaction and the note by itself."""
    desk, journal, lines = desk_on(tmp_path, "away")
    desk.from_poll(a_poll()[:2])  # declared, on the journal
    journal.down = True
    alerts = [crossing(10 + i, f"component c{i:02d}", Level.CRIT, "status") for i in range(30)]
    desk.from_poll(alerts, ("P0", "30 components down"))
    assert desk.journal_error == "disk full"
    assert [(u.kind, u.at) for u in desk.unsaved] == [("alert_raised", T0 + 10 + i) for i in range(30)] + [
        ("severity_suggested", T0)]
    assert [e.text for e in lines[-31:-1]] == [a.text for a in alerts]  # on the timeline already
    assert desk.state().events[-1].kind == "severity_suggested"  # and in the incident's state
    assert "NOT SAVED" in desk.note("paging the database team", at=T0 + 50)
    journal.down = False
    journal.transactions.clear()
    desk.follow()
    assert journal.transactions == [["alert_raised"] * 30 + ["severity_suggested"], ["note"]]
    events = journal.events(desk.current)
    assert [(e.kind, e.ts) for e in events[-32:]] == [("alert_raised", T0 + 10 + i) for i in range(30)] + [
        ("severity_suggested", T0), ("note", T0 + 50)]
    assert desk.unsaved == [] and desk.journal_error is None and journal.verify() == []


def test_a_responders_act_is_durable_when_acknowledged_and_waits_for_no_batch(tmp_path):
    """A key press is acknowledged when desk.note returns: by then it is in the journal,
    written in a transaction of its own (after the machine events queued before it)."""
    desk, journal, _ = desk_on(tmp_path, "ack")
    desk.from_poll(a_poll())
    journal.transactions.clear()
    assert desk.note("rolling back v1.5.0", at=T0 + 30) is None
    assert journal.events(desk.current)[-1].payload == {"text": "rolling back v1.5.0"}
    assert desk.set_status("acknowledged", at=T0 + 31) is None
    assert journal.events(desk.current)[-1].kind == "status_changed"
    assert journal.transactions == [["note"], ["status_changed"]]


def test_a_poll_kept_in_the_spool_merges_in_order_after_a_restart(tmp_path):
    """The journal away and the cockpit stopping: the spool holds the poll (one transaction
    on disk), in order; the next cockpit writes it, in order, with its times."""
    from cockpit.incident.spool import Spool

    spool = Spool(tmp_path / "spool.db")
    desk, journal, _ = desk_on(tmp_path, "spooled", spool=spool)
    desk.from_poll(a_poll()[:1])
    journal.down = True
    alerts = [crossing(10 + i, f"component c{i:02d}", Level.CRIT, "status") for i in range(20)]
    desk.from_poll(alerts)
    desk.note("failing over", at=T0 + 40)
    assert [ev.ts for ev, _ in spool.load()] == [T0 + 10 + i for i in range(20)] + [T0 + 40]
    spool.close()

    journal.down = False
    clock = ManualClock(T0 + 600)
    again = IncidentDesk(journal, clock, "alice", "checkout", spool=Spool(tmp_path / "spool.db"))
    assert again.merge_spool() == 21
    events = journal.events(desk.current)
    assert [(e.kind, e.ts) for e in events[-21:]] == [("alert_raised", T0 + 10 + i) for i in range(20)] + [
        ("note", T0 + 40)]
    assert len(again.spool) == 0 and journal.verify() == []


def test_an_actions_effect_reads_in_the_panels_units(tmp_path):
    """Issue 17: verification and effect lines read `error rate 0.09231 → 0.008197, latency
    p95 0.9932 → 0.2437`. The desk journals each signal's unit with the effect; the line and
    the postmortem format them as the panels do (an old journal without units: as before)."""
    from cockpit.incident.desk import IncidentDesk
    from cockpit.incident.postmortem import to_markdown
    from cockpit.incident.state import fold

    clock = ManualClock(1_767_225_600.0)
    journal = SQLiteJournal(tmp_path / "j.db", clock=clock)
    lines = []
    desk = IncidentDesk(journal, clock, "alice", "checkout", on_event=lines.append)
    desk.units = {"error_rate": "ratio", "latency_p95": "seconds", "cost_per_day": "usd_per_day"}
    desk.declare("checkout 5xx")
    intent = desk.action_intent({"action": "Rollback", "target": "api", "key": "r"})
    clock.advance(30)
    desk.action_effect(intent, {"error_rate": 0.09231, "latency_p95": 0.9932},
                       {"error_rate": 0.008197, "latency_p95": 0.2437}, 30.0)
    effect = "error rate 9.2% → 0.82%, latency p95 993ms → 244ms"
    assert lines[-1].text == f"Rollback effect after 30s: {effect}"
    md = to_markdown(fold(desk.current, journal.events(desk.current)), clock.now())
    assert effect in md and "0.09231" not in md


async def test_a_cockpit_that_quits_is_no_longer_shown_with_the_incident(tmp_path):
    """Seen under QA: a demo quit with q was still shown "with root" by the next cockpit
    for the heartbeat's lifetime (30 s). Quitting now says so on the journal."""
    from cockpit.drill.demo import demo_config
    from screens.app import CockpitApp

    path = tmp_path / "j.db"
    bob = IncidentDesk(SQLiteJournal(path, actor="bob"), None, "bob", "checkout-api")
    app = CockpitApp(demo_config("http://127.0.0.1:9"), mode="LIVE", journal=SQLiteJournal(path, actor="alice"),
                     poll=False, actor="alice")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        await app.journal_idle()
        bob.keep_alive()
        assert [p.actor for p in bob.present] == ["alice", "bob"]
    bob.keep_alive()
    assert [p.actor for p in bob.present] == ["bob"]
