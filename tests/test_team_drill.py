"""Issue 16, team drills: several cockpits replay one tape on a shared journal. The first
leads the drill clock, the others follow it (and are refused its pace keys, naming the
leader); all work on one drill incident; a rewind by the leader starts the team's next
attempt on every cockpit; the scorecard covers the team (who acknowledged, who acted, the
hand-offs). Two app instances on a real PostgreSQL journal, as two responders would run
them; the clock's rules on their own, with Hypothesis for what a journal row may hold."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apphelpers import settle
from test_responders import until
from test_replay import header, record

from cockpit.cli import tape_drill
from cockpit.drill.scenario import load
from cockpit.drill.tape import Tape
from cockpit.drill.team import (FOLLOW_SLACK, STALE, LeaderClock, Team, TeamError, meta_key, take_part,
                                team_key)
from cockpit.incident.journal import SQLiteJournal
from cockpit.incident.pgjournal import PostgresJournal
from screens.scorecard import ScorecardScreen


# ------------------------------------------------------------------ the clock's rules


class _Replay:
    def __init__(self, position=100.0, speed=1.0, paused=False, end=200.0):
        self.position, self.speed, self.paused, self.end = position, speed, paused, end


def test_the_leaders_clock_says_where_its_tape_is_now():
    c = LeaderClock("alice", "c1", position=100.0, speed=5.0, paused=False, at=1000.0)
    assert c.where(1002.0, end=500.0) == 110.0  # two journal seconds at x5
    assert c.where(1100.0, end=150.0) == 150.0  # never past the tape's end
    assert c.where(999.0, end=500.0) == 100.0  # a clock read before it was written: not backwards
    assert LeaderClock("alice", "c1", 100.0, 5.0, True, 1000.0).where(1010.0, 500.0) == 100.0  # paused
    assert not c.gone(1000.0 + STALE - 0.1) and c.gone(1000.0 + STALE + 0.1)
    assert LeaderClock("alice", "c1", 100.0, 1.0, False, 1000.0, ended=True).gone(1000.0)


def test_a_follower_moves_only_when_apart_takes_the_pace_and_is_told_once_when_the_leader_goes():
    team = Team("k", leads=False, leader="alice", cockpit="c1")
    replay = _Replay(position=100.0)
    near = LeaderClock("alice", "c1", 100.0 + FOLLOW_SLACK / 2, 10.0, True, 50.0)
    assert team.follow(replay, (near, 51.0)) == (None, None)  # close enough: no seek
    assert (replay.speed, replay.paused) == (10.0, True)  # the leader's pace
    far = LeaderClock("alice", "c1", 130.0, 2.0, False, 50.0)
    assert team.follow(replay, (far, 51.0)) == (132.0, None)
    assert not team.steers and "alice's" in team.refusal()
    gone = LeaderClock("alice", "c1", 130.0, 2.0, False, 50.0, ended=True)
    at, said = team.follow(replay, (gone, 51.0))
    assert at is None and said.startswith("alice, who led this team drill, left the drill")
    assert team.follow(replay, (gone, 52.0)) == (None, None)  # said once
    assert team.steers  # the leader gone: this cockpit's keys move its own tape
    other = LeaderClock("carol", "c2", 10.0, 1.0, False, 60.0)  # another drill of the tape, not this team's
    assert team.follow(replay, (other, 61.0)) == (None, None) and replay.position == 100.0


@given(st.one_of(st.none(), st.text(), st.binary().map(lambda b: b.decode("latin-1")),
                 st.dictionaries(st.sampled_from(["leader", "cockpit", "position", "speed", "paused", "at", "ended"]),
                                 st.one_of(st.none(), st.integers(), st.floats(), st.text(), st.booleans()))
                 .map(json.dumps)))
def test_any_journal_row_is_a_clock_or_none(text):
    clock = LeaderClock.loads(text)
    assert clock is None or isinstance(clock.position, float)


def test_taking_part_leads_the_first_and_joins_the_others_on_one_journal(tmp_path):
    """SQLite file journal (two cockpits on one machine): the first leads; a second without
    --join is told who leads; --join with nobody leading says to start it; a leader that
    stopped writing (its cockpit died) no longer holds the tape."""
    from cockpit.drill.tape import start_recording
    from cockpit.config import config_from_dict
    from cockpit.drill.demo import demo_raw
    from cockpit.model import Reading

    writer = start_recording(tmp_path / "t.tape", config_from_dict(demo_raw("http://127.0.0.1:9"), "<t>", {}),
                             "DEMO", 1_000.0)
    writer.readings([Reading("metrics", "metrics:error_rate", 1_060.0, 0.01)])  # a minute of tape
    writer.close()
    tape = Tape.open(tmp_path / "t.tape")
    journal = SQLiteJournal(tmp_path / "j.db")
    with pytest.raises(TeamError, match="nobody leads a team drill of .* start it without --join"):
        take_part(tape, journal, join=True)
    lead, start, speed = take_part(tape, journal, join=False)
    assert lead.leads and (start, speed) == (None, None)
    lead.leader, lead.cockpit = "alice", "c1"
    lead.write(journal, tape.start + 12.0, 4.0, False)
    with pytest.raises(TeamError, match="alice leads a team drill of .* add --join"):
        take_part(tape, journal, join=False)
    follower, start, speed = take_part(tape, journal, join=True)
    assert not follower.leads and follower.leader == "alice" and follower.run == lead.run
    assert start >= tape.start + 12.0 and speed == 4.0
    stale = LeaderClock("alice", "c1", tape.start, 1.0, False, journal.now() - STALE - 1)
    journal.put_meta(meta_key(team_key(tape)), stale.dumps())
    assert take_part(tape, journal, join=False)[0].leads


def test_the_journal_keeps_one_value_per_key_on_postgresql(pg_url):
    j = PostgresJournal(pg_url)
    assert j.get_meta("drill:x") is None
    j.put_meta("drill:x", "1")
    j.put_meta("drill:x", "2")
    assert PostgresJournal(pg_url).get_meta("drill:x") == "2"


def test_join_and_journal_mistakes_are_one_line(tmp_path):
    from test_cli import cockpit

    run = lambda *a: cockpit("drill", *a)  # noqa: E731
    r = run(str(tmp_path / "t.tape"), "--join")
    assert r.returncode == 2 and r.stderr.strip() == \
        "cockpit drill: --join needs --journal, the shared journal the team drill runs on"
    r = run("bad-deploy", "--join", "--journal", str(tmp_path / "j.db"))
    assert r.returncode == 2 and "a scenario drill runs on its own simulator" in r.stderr
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------ two cockpits, one drill


def _said(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_two_cockpits_run_one_drill_on_postgresql(tmp_path, pg_url):
    """alice leads, bob joins. bob's replay follows alice's seek and pause, his own pace
    keys are refused naming her; he joins the incident alice's cockpit declared and
    acknowledges it; the commander role passes from alice to bob; alice's rewind before the
    acknowledgement starts the team's second attempt on both cockpits; alice's scorecard
    (journaled once) names who did what and the hand-off; when alice quits, bob is told and
    his keys move his tape."""
    path, _ = await record(tmp_path)
    tape = Tape.open(path)
    team_a, _, _ = take_part(tape, PostgresJournal(pg_url), join=False)
    alice = tape_drill(tape, PostgresJournal(pg_url, actor="alice"), team=team_a, actor="alice")
    begin = alice.replay.begin
    async with contextlib.AsyncExitStack() as later:  # bob's cockpit outlives alice's
        async with alice.run_test(size=(120, 40)) as pa:
            await pa.press("space")  # paused at the start while bob joins
            await settle(pa)
            team_b, start, speed = take_part(tape, PostgresJournal(pg_url), join=True)
            assert team_b.leader == "alice" and abs(start - begin) < 1.0
            bob = tape_drill(tape, PostgresJournal(pg_url, actor="bob"), team=team_b, actor="bob", start=start,
                             speed=speed)
            pb = await later.enter_async_context(bob.run_test(size=(120, 40)))
            pilots = (pa, pb)
            await pa.press("g", *"25", "enter")  # the first symptoms (+21): on both timelines, no incident yet
            await until(pilots, lambda: abs(bob.replay.position - (begin + 25)) <= FOLLOW_SLACK
                        and any(line.kind == "alert" for line in bob.events), 8.0, "bob to see the symptoms")
            assert bob.desk.current is None
            await pa.press("g", *"35", "enter")  # alice goes to +35: the incident is declared on the way (~+30)
            await until(pilots, lambda: abs(bob.replay.position - (begin + 35)) <= FOLLOW_SLACK, 8.0, "bob to follow")
            assert bob.replay.paused and "alice leads" in bob.drill_status() and "team lead" in alice.drill_status()
            assert "PAUSED · alice's" in header(bob)  # a narrow header keeps whose clock it is
            await until(pilots, lambda: alice.desk.current is not None and bob.desk.current == alice.desk.current, 8.0,
                        "bob to join alice's drill incident")
            first = alice.desk.current
            seen = [(line.ts, line.text) for line in bob.events]  # his own symptoms, not again as alice's
            assert len(seen) == len(set(seen)), sorted(seen)
            await pb.press("space")  # bob cannot move the tape
            await pb.pause()
            assert bob.replay.paused and any("the drill clock is alice's" in m for m in _said(bob))
            await pb.press("a")  # bob acknowledges the team's incident
            await until(pilots, lambda: alice.desk.state().status == "acknowledged", 8.0, "alice to see bob's ack")
            assert sum(1 for line in bob.events if line.kind == "incident" and "declared" in line.text) == 1

            await pa.press("space")  # alice plays on at x1
            await until(pilots, lambda: not bob.replay.paused, 8.0, "bob to play on")
            await pa.press("space")
            await until(pilots, lambda: bob.replay.paused, 8.0, "bob to pause with alice")
            await pa.press("g", *"33", "enter")  # back before bob's acknowledgement: the next attempt
            await until(pilots, lambda: bob.desk.current not in (None, first) and
                        bob.desk.current == alice.desk.current, 8.0, "bob to take up the second attempt")
            second = bob.desk.state()
            assert second.status == "declared" and "ACKNOWLEDGED" not in header(bob)
            assert all(line.ts <= begin + 33 + FOLLOW_SLACK for line in bob.events)
            assert sum(1 for line in bob.events if line.kind == "incident" and "declared" in line.text) == 1
            seen = [(line.ts, line.text) for line in bob.events]  # the carried lines once, as the new attempt's
            assert len(seen) == len(set(seen)), sorted(seen)
            await pb.press("a")
            await until(pilots, lambda: alice.desk.state().status == "acknowledged", 8.0, "the second ack")
            alice.desk_do(alice.desk.set_role, "commander", "alice")
            await settle(pa)
            await until(pilots, lambda: bob.desk.state().holder("commander") == "alice", 8.0, "bob to see the role")
            bob.desk_do(bob.desk.set_role, "commander", "bob")  # alice hands command to bob
            await settle(pb)
            await until(pilots, lambda: alice.desk.state().holder("commander") == "bob", 8.0, "the hand-off")

            alice.drill.expect = load("bad-deploy")  # targets for every measure (--expect)
            await pa.press("q")  # alice's scorecard: the team's, journaled once
            await until(pilots, lambda: isinstance(alice.screen, ScorecardScreen), 8.0, "alice's scorecard")
            doc = alice.screen.doc
            rows = {r["measure"]: r for r in doc["rows"]}
            assert rows["time to acknowledge"]["by"] == "bob"
            assert set(doc["team"]["members"]) == {"alice", "bob"}
            assert any("commander: alice → bob" in h for h in doc["team"]["hand_offs"])
            text = " ".join(str(w.render()) for w in alice.screen.query(".scorecard-team"))
            assert "bob: " in text and "Team: " in text
            await pa.press("q")  # alice leaves: her cockpit says so as it goes
            await settle(pa)
        await until((pb,), lambda: any("alice, who led this team drill, left the drill" in m for m in _said(bob)), 8.0,
                    "bob to be told alice left")
        await pb.press("space")  # his keys are his now
        await pb.pause()
        assert not bob.replay.paused
        await pb.press("q")
        await until((pb,), lambda: isinstance(bob.screen, ScorecardScreen), 8.0, "bob's scorecard")
        assert set(bob.screen.doc["team"]["members"]) == {"alice", "bob"}
        assert any(line.startswith("time to acknowledge: after ") and " by bob;" in line
                   for line in bob.screen.doc["unscored"])  # no targets on his side: still who did it
        await pb.press("q")
    journal = PostgresJournal(pg_url)
    cards = [e for e in journal.events(second.id) if e.kind == "drill_marker" and "scorecard" in e.payload]
    assert len(cards) == 1 and cards[0].actor == "alice"
    ended = [e for e in journal.events(first) if e.kind == "drill_marker" and "attempt_ended" in e.payload]
    assert len(ended) == 1
    declared = next(e for e in journal.events(second.id) if e.kind == "incident_declared")
    assert declared.payload["team"] == team_a.run and declared.payload["carried_from"] == first
