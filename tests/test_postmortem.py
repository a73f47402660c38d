"""The postmortem of a scripted incident: sections, durations, escaping, formats."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cockpit.clock import ManualClock
from cockpit.incident.state import Incidents
from cockpit.incident.journal import SQLiteJournal
from cockpit.incident.postmortem import md, to_json, to_markdown

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


@pytest.fixture
def scripted(tmp_path):
    """Impact at 23:50 (set by hand), detected 00:00, acked 00:03, mitigated 00:20, resolved 00:30."""
    clock = ManualClock(T0)
    journal = SQLiteJournal(tmp_path / "j.db", clock=clock, actor="alice")
    inc_ = Incidents(journal, clock)
    bob = Incidents(journal, clock, actor="bob")
    inc = inc_.declare("checkout 5xx | after deploy", auto=True)
    journal.append(inc, "alert_raised", {"signal": "error rate", "level": "CRIT", "text": "error rate CRIT 21.9%"},
                   actor="cockpit", ts=clock.now())
    journal.append(inc, "metrics_snapshot", {"error_rate": 0.219, "latency_p95": 2.07, "cost_per_day": 144.0},
                   actor="cockpit", ts=clock.now())
    inc_.set_milestone(inc, "impact_started", T0 - 600, "deploy v1.5.0 at 23:50 per CD log")
    inc_.suggest_severity(inc, "P1", "error rate CRIT 21.9%")
    inc_.set_severity(inc, "P1", accepted=True)
    clock.advance(180)
    bob.set_status(inc, "acknowledged")
    note = bob.note(inc, "rolled back? <script>alert(1)</script> | pipes\nand newlines")
    inc_.pin(inc, note.id)
    clock.advance(300)
    intent = journal.intent(inc, "rollback", {"target": "checkout-api", "to": "v1.4.2"}, actor="bob", ts=clock.now())
    clock.advance(60)
    journal.outcome(inc, intent, "ok", "deployment steady on v1.4.2", actor="bob", ts=clock.now())
    journal.append(inc, "action_verified", {"intent": intent.id, "action": "rollback", "ok": True,
                                            "details": "api healthy", "before": {"error_rate": 0.21},
                                            "after": {"error_rate": 0.004}}, actor="cockpit", ts=clock.now())
    journal.intent(inc, "scale", {"desired": 6}, actor="bob", ts=clock.now())  # never finished
    journal.append(inc, "metrics_snapshot", {"error_rate": 0.31, "latency_p95": 1.2, "cost_per_day": 144.0},
                   actor="cockpit", ts=clock.now())
    inc_.set_severity(inc, "P0", "EU checkout fully down")
    clock.advance(660)
    inc_.set_status(inc, "mitigated")
    inc_.note(inc, "TODO: alert on deploy error budget | owner sre")
    clock.advance(600)
    inc_.set_status(inc, "resolved")
    yield journal, inc_.state(inc), clock
    journal.close()


def test_markdown_has_every_section_in_order(scripted):
    _, st, clock = scripted
    text = to_markdown(st, clock.now())
    order = ["---\nid: " + st.id, "# Postmortem: ", "## Summary", "## Impact", "## Key timestamps and durations",
             "## Trigger / what changed", "## Detection", "## Response and recovery", "## Timeline", "## Roles",
             "## Root cause and contributing factors", "## Lessons learned", "## Action items",
             "## Communications sent", "## Appendix: full event log"]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
    assert 'severity: "P1 (00:00 UTC) → P0 (00:09 UTC)"' in text
    assert 'authors: ["alice", "bob"]' in text


def test_durations_are_measured_from_the_right_anchors(scripted):
    _, st, clock = scripted
    text = to_markdown(st, clock.now())
    assert "- TTD: 00:10:00" in text  # impact 23:50 -> detected 00:00
    assert "- TTA: 00:03:00" in text  # detected -> acknowledged
    assert "- TTM: 00:30:00" in text  # impact -> mitigated 00:20
    assert "- TTR: 00:40:00" in text  # impact -> resolved 00:30
    assert "| impact_started | 2025-12-31 23:50:00 UTC | set by alice: deploy v1.5.0 at 23:50 per CD log |" in text
    assert "| detected | 2026-01-01 00:00:00 UTC | declared automatically on a critical alert |" in text
    assert "| acknowledged | 2026-01-01 00:03:00 UTC | bob set the status to acknowledged |" in text
    assert "- Time at P1: 9 min 0 s" in text and "- Time at P0: 21 min 0 s" in text
    # in words, from what it is measured from (it said "06:44:33" and "from the first symptom" when
    # impact was set by hand, or was the declaration)
    assert ("- Duration: 40 min 0 s, from impact started (2025-12-31 23:50:00 UTC; set by alice: deploy v1.5.0 "
            "at 23:50 per CD log)") in text


def test_a_milestone_set_on_another_day_says_its_date_on_the_timeline(scripted):
    from cockpit.incident.lines import timeline_line

    journal, st, _ = scripted
    line = next(timeline_line(e) for e in st.events if e.kind == "milestone_set")
    assert "milestone impact started set to 2025-12-31 23:50:00 by alice" in line.text, line.text


def test_impact_peaks_and_cost_come_from_the_journal(scripted):
    _, st, clock = scripted
    text = to_markdown(st, clock.now())
    assert "Peak error rate: 31.0%" in text
    assert "Peak p95 latency: 2.07s" in text
    # $144/day for 30 min, from the first snapshot to the resolution
    assert "Cost during the incident: $3.00" in text


def test_actions_outcomes_and_unknown_outcomes(scripted):
    _, st, clock = scripted
    text = to_markdown(st, clock.now())
    assert ("| 00:08:00 | rollback | checkout-api | bob | ok | deployment steady on v1.4.2 | "
            "verified (api healthy); error rate 0.21 → 0.004 |") in text
    assert "| scale |  | bob | outcome unknown |" in text


def test_external_text_cannot_break_tables_or_inject_markup(scripted):
    _, st, clock = scripted
    text = to_markdown(st, clock.now())
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    row = next(ln for ln in text.splitlines() if "rolled back?" in ln and ln.startswith("| 00:03"))
    assert row.count(" | ") == 2  # three cells, the note's own pipe escaped
    assert "\\| pipes and newlines" in row and "📌" in row
    assert md("a|b\nc`d") == "a\\|b c\\`d"


def test_action_items_from_todo_notes(scripted):
    _, st, clock = scripted
    text = to_markdown(st, clock.now())
    assert "- [ ] alert on deploy error budget \\| owner sre (owner: _unassigned_)" in text


def test_json_carries_the_same_facts(scripted):
    _, st, clock = scripted
    doc = json.loads(to_json(st, clock.now()))
    assert doc["severity_initial"] == "P1" and doc["severity_final"] == "P0"
    assert doc["durations"]["TTR"] == 2400
    assert doc["peaks"]["error_rate"] == 0.31
    assert [a["result"] for a in doc["actions"]] == ["ok", "outcome unknown"]


def test_cli_export_to_file_and_unknown_incident(scripted, tmp_path):
    journal, st, _ = scripted
    out = tmp_path / "pm.md"
    run = subprocess.run([sys.executable, "-m", "cockpit.cli", "export", st.id, "-o", str(out),
                          "--journal", str(journal.path)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert out.read_text().startswith("---\nid: " + st.id)
    bad = subprocess.run([sys.executable, "-m", "cockpit.cli", "export", "INC-nope", "--journal", str(journal.path)],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and f"recent: {st.id}" in bad.stderr and "Traceback" not in bad.stderr
    listed = subprocess.run([sys.executable, "-m", "cockpit.cli", "journal", "list", "--journal", str(journal.path)],
                            capture_output=True, text=True, timeout=30)
    assert st.id in listed.stdout and "resolved" in listed.stdout and "P0" in listed.stdout
