"""A drill as it runs: the replay's position, pace and seek, when the drill is over, and
its scorecard. UI-free: the app calls these from its keys and timers and draws the result.
"""

from __future__ import annotations

import dataclasses

from cockpit.clock import hms
from cockpit.drill import scorecard
from cockpit.drill.tape import TapeError
from cockpit.model import Level


#: a seek forward plays the tape in at most this many steps (a day-long jump: 43 s steps)
SEEK_STEPS = 2000


class DrillSession:
    """One drill: a tape replayed (``replay``, a :class:`cockpit.drill.replay.Replayer`),
    a scenario played on the simulator (``scenario``), or neither (a drill of the config
    alone). ``watch`` is the cockpit's :class:`cockpit.signals.watch.SignalWatch`."""

    def __init__(self, config, clock, watch, *, replay=None, scenario=None, expect=None) -> None:
        self.config, self.clock, self.watch = config, clock, watch
        self.replay = replay
        self.scenario = scenario
        #: a tape drill's expectations from a scenario file (--expect), instead of the recording's
        self.expect = expect
        self.started = clock.now()
        self.scored = False  # the scorecard has been shown
        self.recovery_told = False  # a scenario's service recovered, and the trainee was told
        #: the incident as each earlier attempt left it (a rewind ended it), for the scorecard
        self.attempts: list = []
        #: a team drill's part (cockpit.drill.team.Team), or None
        self.team = None

    # ------------------------------------------------------------ the replay

    def status(self, short: bool = False) -> str:
        """What the header says: where the replay is, how fast, paused or ended (``short``:
        how fast, paused or ended, and a follower's leader; the drill bar shows where)."""
        r = self.replay
        if r is None:
            return f"scenario {self.scenario.scenario.name}" if self.scenario is not None else ""
        state = "ENDED" if r.finished else "PAUSED" if r.paused else f"x{r.speed:g}"
        team = self.team
        lead = "" if team is None else " · team lead" if team.leads else \
            f" · {team.leader} leads" if not team.told_gone else " · team (leader gone)"
        if short:
            return state + ("" if team is None or team.leads or team.told_gone else f" · {team.leader}'s")
        return f"{hms(r.position)} {state} {r.position - r.begin:.0f}/{r.end - r.begin:.0f}s{lead}"

    def advance(self, elapsed: float) -> tuple[bool, str | None]:
        """Play ``elapsed`` wall seconds of the tape. Returns (whether the position moved,
        the problem if a frame did not decode: the replay ends there)."""
        r = self.replay
        was = r.position
        problem = None
        try:
            r.tick(elapsed)
        except TapeError as e:
            r.end = r.position
            problem = f"{e}; the replay stops here"
        return r.position != was, problem

    @property
    def tape_over(self) -> bool:
        return self.replay is not None and self.replay.finished

    def pause(self) -> bool:
        self.replay.paused = not self.replay.paused
        return self.replay.paused

    def speed(self, direction: int) -> float:
        return self.replay.faster() if direction > 0 else self.replay.slower()

    def interval(self) -> float:
        """One step of ] and [: the shortest poll interval of the recorded sources."""
        return min((s.interval for s in self.config.sources), default=1.0)

    def step(self, direction: int) -> None:
        """One poll interval on (played) or back (paused there)."""
        if direction > 0:
            self.replay.step(self.interval())
        else:
            self.replay.paused = True
            self.seek(self.replay.position - self.interval())

    def seek(self, at: float) -> None:
        """Show the tape as it was at ``at``. Forward, everything in between is played at
        once, so what a responder saw by then happened (alerts raised at their times, an
        incident declared on a critical one). Back, the store is refilled with the history
        before ``at`` and the alert trackers set to its levels without announcing them again
        (the timeline and the incident are the app's: see CockpitApp.drill_seek)."""
        r = self.replay
        at = min(r.end, max(r.begin, at))
        if at >= r.position:  # in poll-interval steps (at most SEEK_STEPS): each crossing seen when it came
            step = max(self.interval(), (at - r.position) / SEEK_STEPS)
            while r.position + step < at:
                r.advance_to(r.position + step)
            r.advance_to(at)
            return
        self.watch.store.clear()
        r.seek(at, float(self.config.settings.history))
        self.watch.settle()

    # ------------------------------------------------------------ the end

    def resolved(self, simulator) -> bool:
        """A scenario is over: every scripted fault has come and been cleared, and the
        error rate reads OK (the reading, not the alert: that waits out its clear hold)."""
        from cockpit.signals.evaluator import level_of

        if self.scenario is None or simulator is None:
            return False
        if not all(f in simulator.cleared for f in simulator.faults):
            return False
        panel = self.config.panels.error_rate
        latest = self.watch.store.latest(panel.series)
        return latest is not None and latest.ok and level_of(latest.value, panel.threshold) is Level.OK

    def scorecard(self, why: str, state) -> dict:
        """Score the responders' events in ``state`` (the incident, or None) against what the
        scenario or the tape's ghosts expected, from when the drill's trouble began."""
        self.scored = True
        events = list(state.events) if state is not None else []
        now = self.clock.now()
        if self.scenario is not None:
            exp = scorecard.from_scenario(self.scenario)
            start = self.started + min(f.at for f in self.scenario.faults)
            origin = f"the first fault ({hms(start)})"
        elif self.replay is not None:
            start = self.replay.begin
            exp = (scorecard.from_ghost(self.replay.ghosts, start) if self.expect is None else
                   scorecard.from_scenario(self.expect, f"the expectations of {self.expect.scenario.name} (--expect)"))
            origin = f"the start of the tape ({hms(start)})"
        else:
            start, exp, origin = now, scorecard.Expectations("nothing", None, None, None, None, None), "now"
        if exp.update_every is None:  # the config's cadence for the severity the incident should have
            severity = exp.severity or (state.severity if state is not None else None)
            cadence = self.config.incident.update_every.get(severity or "")
            if cadence:
                exp = dataclasses.replace(exp, update_every=float(cadence))
        rows, unscored = scorecard.score(events, start, now, exp)
        earlier = []
        for n, st in enumerate(self.attempts, 1):
            ended = max((e.ts for e in st.events), default=start)
            earlier.append({"attempt": n, "incident": st.id,
                            "rows": scorecard.rows_doc(scorecard.score(list(st.events), start, ended, exp)[0])})
        doc = {"why": why, "against": exp.against, "from": origin, "rows": scorecard.rows_doc(rows),
               "unscored": unscored}
        if self.team is not None:
            doc["team"] = scorecard.team(events, start)
        if earlier:
            doc["attempt"] = len(earlier) + 1
            doc["earlier"] = earlier
        return doc
