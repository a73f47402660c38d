"""Team drills: several cockpits on one shared journal replaying one tape together.

The first cockpit leads: it keeps the drill's clock (where the tape is, how fast, paused)
in the journal's meta table under the tape's team key, at every change of pace and once a
second, stamped with the journal's own time. The others follow: they read it off the UI
thread, move their replay to where the leader's is (a seek when they are more than
FOLLOW_SLACK apart) and take its pace; their own pace keys are refused, naming the leader.
They journal onto the leader's drill incident (declared by the leader's cockpit, or by
whoever presses D first), and the scorecard covers the team: who acknowledged, who acted,
the hand-offs of roles.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

#: followers seek when their replay is this far (tape seconds) from the leader's
FOLLOW_SLACK = 0.5
#: a leader's clock not written for this long (seconds, journal time) has gone: its cockpit
#: stopped without saying so; another may lead the tape, and followers play on alone
STALE = 5.0
#: how often the leader writes its clock (seconds), besides every change of pace
EVERY = 1.0


def team_key(tape) -> str:
    """The same recording, wherever its file is: the recorded config's fingerprint and the
    moment the recording began."""
    h = tape.header
    return hashlib.sha256(f"{h.get('fingerprint', '')}|{h.get('started', '')}".encode()).hexdigest()[:12]


def meta_key(team: str) -> str:
    return f"drill:{team}"


@dataclass(frozen=True)
class LeaderClock:
    """The leader's replay as it last wrote it: at journal time ``at`` the tape was at
    ``position``, moving ``speed`` times real time unless ``paused``; ``ended``: the
    leader left the drill (its cockpit quit)."""

    leader: str  # the leading responder's name
    cockpit: str  # the leading cockpit's id (IncidentDesk.cockpit)
    position: float
    speed: float
    paused: bool
    at: float
    ended: bool = False

    def where(self, now: float, end: float) -> float:
        """Where the leader's tape is at journal time ``now`` (never past the tape's ``end``)."""
        if self.paused or self.ended:
            return min(end, self.position)
        return min(end, self.position + max(0.0, now - self.at) * self.speed)

    def gone(self, now: float) -> bool:
        return self.ended or now - self.at > STALE

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> LeaderClock | None:
        """The clock from the journal, or None when there is none or it does not read as one
        (another version's, a damaged row: a follower then plays on alone)."""
        if not text:
            return None
        try:
            doc = json.loads(text)
            return cls(str(doc["leader"]), str(doc["cockpit"]), float(doc["position"]), float(doc["speed"]),
                       bool(doc["paused"]), float(doc["at"]), bool(doc.get("ended", False)))
        except (ValueError, TypeError, KeyError):
            return None


@dataclass
class Team:
    """This cockpit's part in a team drill: ``leads`` or follows ``leader``'s clock."""

    key: str  # the tape's (team_key)
    leads: bool
    leader: str  # the leading responder's name (this one's, when it leads)
    cockpit: str = ""  # the leading cockpit's id (IncidentDesk.cockpit)
    #: a follower has said the leader is gone (said once)
    told_gone: bool = False

    @property
    def steers(self) -> bool:
        """Whether this cockpit's pace keys work: it leads, or its leader has gone."""
        return self.leads or self.told_gone

    @property
    def meta(self) -> str:
        return meta_key(self.key)

    @property
    def run(self) -> str:
        """This drill of the tape (its incidents say so): not an earlier team's left open."""
        return f"{self.key}-{self.cockpit[:8]}"

    def write(self, journal, position: float, speed: float, paused: bool, ended: bool = False) -> None:
        """On the journal thread: the leader's clock, stamped with the journal's time. A
        journal away is shown by the desk's own writes; the followers play on meanwhile."""
        from cockpit.incident.journal import JournalError

        try:
            doc = LeaderClock(self.leader, self.cockpit, position, speed, paused, journal.now(), ended)
            journal.put_meta(self.meta, doc.dumps())
        except JournalError:
            pass

    def read(self, journal) -> tuple[LeaderClock | None, float] | None:
        """On the journal thread: the leader's clock and the journal's time now (None: the
        journal did not answer)."""
        from cockpit.incident.journal import JournalError

        try:
            return LeaderClock.loads(journal.get_meta(self.meta)), journal.now()
        except JournalError:
            return None

    def follow(self, replay, found: tuple[LeaderClock | None, float]) -> tuple[float | None, str | None]:
        """On the UI thread, with what :meth:`read` found: take the leader's pace, and return
        where to seek (None: close enough) and a line to tell the trainee when the leader has
        gone (said once; the tape then plays on here)."""
        clock, now = found
        if clock is None or clock.gone(now) or clock.cockpit != self.cockpit:
            if self.told_gone:
                return None, None
            self.told_gone = True
            why = ("left the drill" if clock is not None and clock.ended and clock.cockpit == self.cockpit
                   else "is not heard from")
            return None, f"{self.leader}, who led this team drill, {why}; the tape plays on here at x{replay.speed:g}"
        self.told_gone = False
        replay.speed, replay.paused = clock.speed, clock.paused
        there = clock.where(now, replay.end)
        return (there if abs(there - replay.position) > FOLLOW_SLACK else None), None

    def refusal(self) -> str:
        """Why a follower's pace key does nothing."""
        return f"the drill clock is {self.leader}'s (they lead this team drill): ask them to pause, seek or change speed"


class TeamError(Exception):
    """This cockpit cannot take that part in the team drill (one line, for the command line)."""


def take_part(tape, journal, *, join: bool) -> tuple[Team, float | None, float | None]:
    """This cockpit's part in the team drill of ``tape`` on the shared ``journal``: it leads
    (the first: nobody leads the tape there now), or with ``join`` follows the leader from
    where the leader's tape is, at its speed. Returns (the part, where to start, the speed;
    None, None when leading). Raises TeamError, or JournalError (the journal does not answer)."""
    key = team_key(tape)
    now = journal.now()
    leader = joining(journal, key, now)
    if join:
        if leader is None:
            raise TeamError(f"nobody leads a team drill of {tape.path} on that journal now; start it without --join "
                            f"(the first cockpit leads)")
        return Team(key, leads=False, leader=leader.leader, cockpit=leader.cockpit), \
            leader.where(now, tape.end), leader.speed
    if leader is not None:
        raise TeamError(f"{leader.leader} leads a team drill of {tape.path} on that journal now; add --join to "
                        f"follow it")
    return Team(key, leads=True, leader=""), None, None


def joining(journal, team: str, now: float) -> LeaderClock | None:
    """The live leader of ``team`` on ``journal`` at journal time ``now`` (None: nobody leads it)."""
    clock = LeaderClock.loads(journal.get_meta(meta_key(team)))
    return None if clock is None or clock.gone(now) else clock

