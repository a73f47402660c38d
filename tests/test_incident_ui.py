"""The incident keys in the real app (Pilot), journaled to a real SQLite file."""

from __future__ import annotations

import pytest
from apphelpers import settle, wait_for

from screens.app import CockpitApp
from cockpit.drill.demo import demo_config
from cockpit.incident.journal import SQLiteJournal
from cockpit.drill.simulator import Simulator, SimulatorServer
from screens.prompt import SeverityPrompt, TextPrompt


@pytest.fixture
def calm_server():
    server = SimulatorServer(Simulator(seed=3, faults=())).start()
    yield server
    server.stop()


def kinds(journal: SQLiteJournal, incident: str) -> list[str]:
    """What responders did (the cockpit's own signal snapshots aside)."""
    return [e.kind for e in journal.events(incident) if e.kind != "metrics_snapshot"]


async def test_declare_acknowledge_note_severity_pin_resolve(calm_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    journal = SQLiteJournal(tmp_path / "j.db", actor="alice")
    # no polling: the journal then holds only what the keys wrote
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=journal, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        # nothing to acknowledge yet: the key is greyed, pressing it does nothing
        await pilot.press("a")
        assert app.desk.current is None
        await pilot.press("D")
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"checkout slow", "enter")
        await settle(pilot)
        inc = app.desk.current
        assert inc and app.desk.state().title == "checkout slow"
        await pilot.press("a")
        await settle(pilot)
        assert app.desk.state().status == "acknowledged"
        # a note may contain q and ?: typed into the box, not quitting or opening help
        await pilot.press("n", *"rolled back to v1.4.2? q", "enter")
        await settle(pilot)
        assert app.is_running
        notes = [e.payload["text"] for e in journal.events(inc) if e.kind == "note"]
        assert notes == ["rolled back to v1.4.2? q"]
        # an override needs a reason
        app.desk_do(app.desk.suggest, "P1", "latency CRIT 2.07s")
        await settle(pilot)
        await pilot.press("S")
        assert isinstance(app.screen, SeverityPrompt)
        await pilot.press("down", "enter")  # P2, not the suggestion, no reason yet
        await settle(pilot)
        assert isinstance(app.screen, SeverityPrompt)
        await pilot.press(*"only EU affected", "enter")
        await settle(pilot)
        st = app.desk.state()
        assert st.severity == "P2" and st.severities[-1].reason == "only EU affected"
        # pin the note from the timeline
        timeline = app.screen.query_one("#timeline-list")
        timeline.focus()
        note_id = next(e.id for e in journal.events(inc) if e.kind == "note")
        timeline.highlighted = next(i for i in range(timeline.option_count)
                                    if timeline.get_option_at_index(i).id == note_id)
        await pilot.press("p")
        await settle(pilot)
        assert note_id in app.desk.state().pinned
        # m and R ask first (R is shift+r, next to rollback), saying what is still open
        from screens.prompt import Confirm

        await pilot.press("m")
        assert isinstance(app.screen, Confirm)
        await pilot.press("escape")
        await settle(pilot)
        assert app.desk.state().status == "acknowledged"  # cancelled: nothing changed
        await pilot.press("m", "y")
        await settle(pilot)
        assert app.desk.state().status == "mitigated"
        await pilot.press("R")
        assert isinstance(app.screen, Confirm)
        assert "every action was verified" in str(app.screen.query_one("#confirm-notes").render())
        await pilot.press("enter")  # one key, y, confirms: not an Enter that came with the keys before it
        await settle(pilot)
        assert isinstance(app.screen, Confirm) and app.desk.state().status == "mitigated"
        await pilot.press("y")
        await settle(pilot)
        assert app.desk.state().status == "resolved"
        await pilot.press("x")
        await settle(pilot)
        written = tmp_path / f"postmortem-{inc}.md"
        assert written.is_file() and "## Action items" in written.read_text()
        assert any(str(written) in n.message for n in app._notifications)
    assert kinds(journal, inc)[:3] == ["incident_declared", "status_changed", "note"]
    assert journal.verify() == []


async def test_reopening_asks_for_a_reason(calm_server, tmp_path):
    journal = SQLiteJournal(tmp_path / "j.db")
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=journal, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.desk_do(app.desk.declare, "x")
        app.desk_do(app.desk.set_status, "mitigated")
        await settle(pilot)
        await pilot.press("a")  # mitigated -> acknowledged is a reopen
        assert isinstance(app.screen, TextPrompt)
        await pilot.press("escape")
        await settle(pilot)
        assert app.desk.state().status == "mitigated"  # cancelled: nothing written
        await pilot.press("a", *"errors back", "enter")
        await settle(pilot)
        assert app.desk.state().status == "acknowledged"


async def test_title_and_action_items_from_the_keyboard(calm_server, tmp_path, monkeypatch):
    """T retitles the incident (the first alert's text is rarely the right title); i adds a
    follow-up with owner, priority and due date; both reach the postmortem."""
    from screens.prompt import ActionItemPrompt

    monkeypatch.chdir(tmp_path)
    journal = SQLiteJournal(tmp_path / "j.db", actor="alice")
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=journal, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("T")  # no incident: nothing to title
        assert not isinstance(app.screen, TextPrompt)
        app.desk_do(app.desk.declare, "cost critical: cost CRIT $101/day")
        await settle(pilot)
        await pilot.press("T")
        assert isinstance(app.screen, TextPrompt)
        box = app.screen.query_one("#prompt-input")
        assert box.value == "cost critical: cost CRIT $101/day"  # the current title, to edit
        box.value = ""
        await pilot.press(*"checkout 5xx after v1.5.0", "enter")
        await settle(pilot)
        assert app.desk.state().title == "checkout 5xx after v1.5.0"
        await pilot.press("i")
        assert isinstance(app.screen, ActionItemPrompt)
        await pilot.press(*"alert on deploy error budget", "enter", *"bob", "enter", *"p9", "enter",
                          *"2026-02-30", "enter")
        await settle(pilot)
        # refused in the dialog, which stays with what was typed (it closed and lost it all)
        assert isinstance(app.screen, ActionItemPrompt)
        assert "priority must be one of" in str(app.screen.query_one("#item-hint").render())
        priority = app.screen.query_one("#item-priority")
        assert app.screen.focused is priority
        assert app.screen.query_one("#item-text").value == "alert on deploy error budget"
        priority.value = ""
        await pilot.press(*"p1", "enter", "enter")  # on to the due date, and save from there
        await settle(pilot)
        assert "is not a date" in str(app.screen.query_one("#item-hint").render())
        due = app.screen.query_one("#item-due")
        assert app.screen.focused is due and due.value == "2026-02-30"
        due.value = ""
        await pilot.press(*"2026-12-08", "enter")
        await settle(pilot)
        items = app.desk.state().action_items
        assert [(i.text, i.owner, i.priority, i.due) for i in items] == [
            ("alert on deploy error budget", "bob", "P1", "2026-12-08")]
        await pilot.press("x")
        await settle(pilot)
        text = (tmp_path / f"postmortem-{app.desk.current}.md").read_text()
    assert "# Postmortem: checkout 5xx after v1.5.0" in text
    assert "- [ ] alert on deploy error budget (owner: bob, priority: P1, due: 2026-12-08)" in text


async def test_a_restarted_cockpit_resumes_the_open_incident(calm_server, tmp_path):
    path = tmp_path / "j.db"
    first = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=SQLiteJournal(path))
    async with first.run_test(size=(120, 40)) as pilot:
        first.desk.declare("db connections exhausted")
        first.desk.note("pgbouncer restarted")
        await settle(pilot)
        inc = first.desk.current
    second = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=SQLiteJournal(path))
    async with second.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.6)
        assert second.desk.current == inc
        assert any("pgbouncer restarted" in e.text for e in second.events)


async def test_first_critical_alert_declares_and_journals(tmp_path):
    from cockpit.clock import ManualClock
    from cockpit.drill.simulator import Fault

    sim_clock = ManualClock()
    server = SimulatorServer(Simulator(clock=sim_clock, seed=5, faults=(Fault("bad_deploy", at=2.0),))).start()
    journal = SQLiteJournal(tmp_path / "j.db")
    try:
        app = CockpitApp(demo_config(server.url), mode="DEMO", journal=journal)
        async with app.run_test(size=(120, 40)) as pilot:
            def declared() -> bool:
                sim_clock.advance(1.0)
                return app.desk.current is not None
            await wait_for(pilot, declared, 15, "an automatic declaration")
            inc = app.desk.current
            await wait_for(pilot, lambda: app.desk.state().suggestion is not None, 10, "a severity suggestion")
            evs = journal.events(inc)
            assert evs[0].kind == "incident_declared" and evs[0].payload["auto"] is True
            # the footer follows: Declare is gone, Ack is offered
            await pilot.pause(0.6)
            from textual.widgets._footer import FooterKey

            shown = {k.action for k in app.screen.query(FooterKey)}
            assert "declare" not in shown and "status('acknowledged')" in shown
            # the symptoms before it are journaled on it with their own times: impact starts at the first
            symptoms = [e for e in evs if e.kind == "alert_raised"]
            assert symptoms and symptoms[0].ts <= evs[0].ts
            assert app.desk.state().milestones["impact_started"] == min(e.ts for e in symptoms)
    finally:
        server.stop()


async def test_timeline_filter_cycles_through_kinds(calm_server, tmp_path):
    # no polling: a noisy reading crossing a threshold would add alert lines of its own
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=SQLiteJournal(tmp_path / "j.db"),
                     poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.desk_do(app.desk.declare, "x")
        app.desk_do(app.desk.note, "first note")
        app.desk_do(app.desk.set_status, "acknowledged")
        await settle(pilot)
        await pilot.pause(0.6)
        ol = app.screen.query_one("#timeline-list")
        everything = ol.option_count
        await pilot.press("f")  # alerts
        assert ol.option_count == 1  # the declaration
        await pilot.press("f")  # changes (and actions): none without polling
        assert ol.option_count == 0
        await pilot.press("f", "f")  # actions, then notes
        await settle(pilot)
        lines = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        assert len(lines) == 1 and lines[0].endswith("first note")
        await pilot.press("f")  # back to all
        assert ol.option_count == everything


async def test_M_corrects_a_milestone_with_a_time_and_a_reason(calm_server, tmp_path):
    from cockpit.clock import ManualClock
    from screens.prompt import MilestonePrompt

    clock = ManualClock(1_795_000_000.0)
    journal = SQLiteJournal(tmp_path / "j.db", clock=clock)
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=journal, poll=False, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("M")  # no incident: greyed, nothing opens
        assert not isinstance(app.screen, MilestonePrompt)
        app.desk_do(app.desk.declare, "checkout 5xx")
        await settle(pilot)
        clock.advance(120)
        await pilot.press("a")
        await settle(pilot)
        # impact started 10 minutes before now, i.e. before detection: allowed
        await pilot.press("M")
        assert isinstance(app.screen, MilestonePrompt)
        await pilot.press("enter")  # impact_started (first), on to the time box
        await pilot.press(*"yesterday-ish", "enter")
        assert isinstance(app.screen, MilestonePrompt)  # unreadable time: said in the dialog, nothing written
        assert "cannot read" in str(app.screen.query_one("#milestone-hint").render())
        when = app.screen.query_one("#milestone-when")
        when.value = ""
        await pilot.press(*"-10m", "enter")  # a readable time: on to the reason
        assert "now say why" in str(app.screen.query_one("#milestone-hint").render())
        assert app.screen.focused.id == "milestone-reason"
        await pilot.press(*"error budget alert fired at 03:02", "enter")
        await settle(pilot)
        st = app.desk.state()
        assert st.milestones["impact_started"] == clock.now() - 600
        ev = [e for e in journal.events(st.id) if e.kind == "milestone_set"][-1]
        assert ev.payload["reason"] == "error budget alert fired at 03:02"
        assert any("milestone impact started set to" in e.text for e in app.events)
        # detection before the impact started: refused with one line, nothing written
        await pilot.press("M", "down", "enter", *"-15m", "tab", *"typo", "enter")
        await settle(pilot)
        said = [n.message for n in app._notifications]
        assert any(m.startswith("detected") and "cannot be before impact_started" in m for m in said), said
        assert len([e for e in journal.events(st.id) if e.kind == "milestone_set"]) == 1


async def test_every_key_that_does_nothing_says_why(calm_server, tmp_path, monkeypatch):
    """Issue 17: READ-ONLY `r`, the incident keys with no incident, `D` with one open, a
    status the incident cannot take, `K` outside the demo: each says why in one line
    (they were silent, only greyed in the footer)."""
    from cockpit.config import config_from_dict
    from cockpit.drill.demo import demo_raw

    monkeypatch.chdir(tmp_path)
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=SQLiteJournal(tmp_path / "j.db"), poll=False)

    async def said(pilot, *keys: str) -> str:
        app._notifications.clear()
        await pilot.press(*keys)
        await settle(pilot)
        lines = [n.message for n in app._notifications]
        assert len(lines) == 1, (keys, lines)
        return lines[0]

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert (await said(pilot, "r")).startswith("READ-ONLY: actions do not run; start with --armed")
        assert (await said(pilot, "K")) == "K kills the simulated service: only in cockpit demo"
        for key in "amRSxuTOip":
            assert (await said(pilot, key)).startswith("No incident: press D to declare one"), key
        await pilot.press("D", *"checkout slow", "enter")
        await settle(pilot)
        inc = app.desk.current
        assert (await said(pilot, "D")) == f"{inc} is already declared (declared); R resolves it before another " \
            "is declared"
        app.desk_do(app.desk.set_status, "resolved")
        await settle(pilot)
        assert app.desk.state().status == "resolved"
        assert (await said(pilot, "m")) == f"{inc} is resolved: it can go to closed, acknowledged, declared, not " \
            "mitigated"
        assert (await said(pilot, "S")) == f"{inc} is resolved: a reopens it first"
    raw = demo_raw(calm_server.url)
    raw["actions"] = []
    bare = CockpitApp(config_from_dict(raw, "<t>", {}), mode="LIVE", poll=False)
    async with bare.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        bare._notifications.clear()
        await pilot.press("A")
        await settle(pilot)
        assert [n.message for n in bare._notifications] == \
            ["No actions configured: add [[actions]] to the config (examples/CONFIG.md lists the kinds)"]


async def test_a_name_typed_in_the_roles_dialog_hands_the_role_over(calm_server, tmp_path, monkeypatch):
    """The roles dialog says "type a name to hand it over", but letters typed while its list
    had the focus did nothing (seen handing command to bob in a team drill: "Obob")."""
    from screens.prompt import RolesPrompt

    monkeypatch.chdir(tmp_path)
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=SQLiteJournal(tmp_path / "j.db"), poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("D", *"checkout slow", "enter")
        await settle(pilot)
        await pilot.press("O")
        await pilot.pause()
        assert isinstance(app.screen, RolesPrompt)
        await pilot.press(*"bob", "enter")  # straight away: the first role, incident commander
        await settle(pilot)
        assert app.desk.state().holder("commander") == "bob"
        await pilot.press("O", "down", *"carol", "enter")  # the second: communications lead
        await settle(pilot)
        assert app.desk.state().holder("communications") == "carol"


async def test_a_note_goes_where_its_dialog_said_or_asks_and_is_never_lost(calm_server, tmp_path):
    """Seen under QA: the incident the note dialog named was resolved while the note was
    typed, another was declared automatically, and Enter wrote the note to the new one; a
    note after a resolve was written to the resolved incident without asking; a note
    cancelled with Escape was gone."""
    from functools import partial

    from screens.prompt import Confirm, IncidentChoice

    journal = SQLiteJournal(tmp_path / "j.db", actor="alice")
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=journal, poll=False)

    def notes(inc: str) -> list[str]:
        return [e.payload["text"] for e in journal.events(inc) if e.kind == "note"]

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.desk_do(app.desk.declare, "checkout 5xx")
        await settle(pilot)
        first = app.desk.current
        await pilot.press("n", *"db failover done")
        assert isinstance(app.screen, TextPrompt) and first in app.screen.title_text
        # meanwhile: resolved (another responder), and a new incident declared on a critical alert
        app.desk_do(app.desk.set_status, "resolved")
        app.desk_do(partial(app.desk.declare, "latency critical", auto=True))
        await settle(pilot)
        second = app.desk.current
        assert second != first
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, Confirm) and second in app.screen.question
        await pilot.press("escape")  # not there: kept for later
        await settle(pilot)
        assert notes(first) == notes(second) == []
        assert any("n brings it back" in n.message for n in app._notifications)
        await pilot.press("n")
        assert app.screen.query_one("#prompt-input").value == "db failover done"
        await pilot.press("enter")  # the dialog now names the open incident: written there
        await settle(pilot)
        assert notes(second) == ["db failover done"] and notes(first) == []
        # Escape keeps what was typed; the next n offers it again
        await pilot.press("n", *"check the replica lag", "escape")
        await settle(pilot)
        await pilot.press("n")
        assert app.screen.query_one("#prompt-input").value == "check the replica lag"
        await pilot.press("escape")
        # after a resolve, a note asks where it goes (declare or reopen), and a cancel keeps it
        app.desk_do(app.desk.set_status, "resolved")
        await settle(pilot)
        await pilot.press("n")
        assert "none is open" in app.screen.title_text
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, IncidentChoice)
        await pilot.press("escape")
        await settle(pilot)
        assert notes(second) == ["db failover done"]
        await pilot.press("n")
        assert app.screen.query_one("#prompt-input").value == "check the replica lag"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("o")  # reopen the last one and write it there
        await settle(pilot)
        assert notes(second) == ["db failover done", "check the replica lag"]
        assert app.desk.state().status != "resolved"


async def test_keys_that_follow_enter_in_one_burst_do_not_join_the_line(calm_server, tmp_path):
    """A terminal delivers "Enter a" typed fast as one read. Textual ran Input's enter only
    after the 'a' had been typed into the box: the note was saved as "check dba"."""
    from textual import events

    journal = SQLiteJournal(tmp_path / "j.db", actor="alice")
    app = CockpitApp(demo_config(calm_server.url), mode="LIVE", journal=journal, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.desk_do(app.desk.declare, "checkout 5xx")
        await settle(pilot)
        await pilot.press("n", *"check db")
        for key, char in (("enter", "\r"), ("a", "a")):  # as the driver posts one read's keys
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert [e.payload["text"] for e in journal.events(app.desk.current) if e.kind == "note"] == ["check db"]
