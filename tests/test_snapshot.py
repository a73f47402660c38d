"""Snapshot of the dashboard at 120x40: seeded simulator, manual clock, poller off.

Regenerate after an intended visual change with:
    .venv/bin/pytest tests/test_snapshot.py --snapshot-update
"""

from __future__ import annotations

import asyncio

import pytest
from apphelpers import frozen_demo, prefilled_app


def _app(fault_at: float, seconds: int):
    server, clock = frozen_demo(seed=7, fault_at=fault_at)
    try:
        return asyncio.run(prefilled_app(server, clock, seconds=seconds))
    finally:
        server.stop()


@pytest.fixture
def incident_app():
    return _app(fault_at=20.0, seconds=60)


@pytest.fixture
def calm_app():
    return _app(fault_at=10_000.0, seconds=30)


def test_dashboard_during_bad_deploy(snap_compare, incident_app):
    assert snap_compare(incident_app, terminal_size=(120, 40))


def test_dashboard_calm_high_contrast(snap_compare, calm_app):
    calm_app._theme_name = "cockpit-high-contrast"
    assert snap_compare(calm_app, terminal_size=(120, 40))


@pytest.fixture
def drill_app(tmp_path):
    """A tape drill of the seeded demo (its own manual clock): the trainee acknowledged at
    +35 s and set P2 where the incident was P1."""
    from test_replay import drill_app as tape_drill_app
    from test_replay import record

    from cockpit.drill.scenario import load

    path, _ = asyncio.run(record(tmp_path))
    app = tape_drill_app(path)
    app.drill.expect = load("bad-deploy")
    return app


#: the simulator's port in the action dialog's snapshot (its URLs are in the plan)
DIALOG_PORT = 38787


def test_action_dialog_during_bad_deploy(snap_compare):
    """The README's action dialog: r, the rollback's plan (what it calls, the state now,
    destructive, blast radius, expected effect, undo), against the simulator still running."""
    server, clock = frozen_demo(seed=7, fault_at=20.0, port=DIALOG_PORT)
    try:
        app = asyncio.run(prefilled_app(server, clock, seconds=60))

        async def plan(pilot) -> None:
            from screens.confirm import ActionConfirm

            await pilot.press("r")
            for _ in range(100):  # the plan reads the service's state first (on its own thread)
                if isinstance(app.screen, ActionConfirm):
                    break
                await pilot.pause(0.05)
            await pilot.pause()

        assert snap_compare(app, run_before=plan, terminal_size=(120, 40))
    finally:
        server.stop()


def test_drill_scorecard(snap_compare, drill_app):
    """The README's drill scorecard: a wrong severity, a late acknowledgement, no update."""
    async def play(pilot) -> None:
        drill_app.replay.paused = True
        drill_app.drill_seek(drill_app.replay.begin + 38)
        await pilot.pause()
        await drill_app.journal_idle()
        drill_app.desk_do(drill_app.desk.set_status, "acknowledged")
        drill_app.desk_do(drill_app.desk.set_severity, "P2", "looks minor")
        await drill_app.journal_idle()
        await pilot.press("q")
        await pilot.pause()

    assert snap_compare(drill_app, run_before=play, terminal_size=(120, 40))


def test_postmortem_chart_is_current(tmp_path):
    """The README's postmortem chart (docs/postmortem-error_rate.svg): the error-rate chart
    `cockpit export -o` draws for the seeded demo's bad deploy, rolled back. Regenerate it
    with UPDATE_DOCS=1 after an intended change to the charts."""
    import os
    from pathlib import Path

    from apphelpers import prefilled_app as filled
    from test_record import _poll_on

    from cockpit.incident.journal import SQLiteJournal
    from cockpit.incident.postmortem import write_markdown
    from cockpit.incident.state import fold

    server, clock = frozen_demo(seed=7, fault_at=20.0)
    try:
        app = asyncio.run(filled(server, clock, seconds=45, journal=SQLiteJournal(tmp_path / "j.db")))
        server.sim.admin("rollback", {})
        asyncio.run(_poll_on(app, server, clock, 40))
        app.snapshot_now()
        app.desk.set_status("mitigated")
        app.desk.set_status("resolved")
    finally:
        server.stop()
    st = app.desk.state()
    write_markdown(fold(st.id, app.journal.events(st.id)), clock.now(), tmp_path / "postmortem.md")
    drawn = (tmp_path / "postmortem-error_rate.svg").read_text()
    committed = Path(__file__).resolve().parent.parent / "docs" / "postmortem-error_rate.svg"
    if os.environ.get("UPDATE_DOCS"):
        committed.parent.mkdir(exist_ok=True)
        committed.write_text(drawn)
    assert committed.read_text() == drawn, "the chart changed: UPDATE_DOCS=1 pytest tests/test_snapshot.py"
