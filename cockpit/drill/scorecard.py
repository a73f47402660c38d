"""A drill's scorecard: how the trainee did, from the drill's journal, against the
scenario's targets (a scenario drill) or the original responders' times (a tape).

Every figure counts from the moment the trouble started (the first fault, or the
start of the tape), so "acknowledged after 2m10s" means the same thing in both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from cockpit.clock import format_duration
from cockpit.incident.journal import Event


@dataclass(frozen=True)
class Row:
    measure: str
    got: str  # the trainee's figure, as shown
    target: str  # what it is measured against, as shown
    verdict: str  # one of VERDICTS
    by: str = ""  # who did it (a team drill's scorecard names them)


#: kept: done, in time; late: done, after the target; missed: not done; wrong: done, but not
#: what was expected (another severity, an action that was not a fix)
VERDICTS = ("kept", "late", "missed", "wrong")


@dataclass(frozen=True)
class Expectations:
    """What a drill is scored against; None: nothing to hold that measure against."""

    against: str  # "scenario bad-deploy's targets" / "the original responders"
    acknowledge: float | None
    severity: str | None
    severity_within: float | None
    mitigate: float | None
    fixes: frozenset[str] | None  # action keys that fix the trouble (None: unknown, an old tape)
    update_every: float | None = None
    unexpected: str = "wrong or unnecessary actions"  # the row for actions not among the fixes


def _first(events: list[Event], kind: str, **payload: Any) -> Event | None:
    return next((e for e in events if e.kind == kind and all(e.payload.get(k) == v for k, v in payload.items())),
                None)


def _timed(measure: str, ev: Event | None, start: float, within: float) -> Row:
    target = f"within {format_duration(within)}"
    if ev is None:
        return Row(measure, "not done", target, "missed")
    took = max(0.0, ev.ts - start)
    return Row(measure, f"after {format_duration(took)}", target, "kept" if took <= within else "late", ev.actor)


def score(events: list[Event], start: float, end: float, exp: Expectations) -> tuple[list[Row], list[str]]:
    """The scorecard rows for the drill incident's journal ``events``, and what could not be
    scored (nothing to hold it against: the original responders never did it), one line each."""
    rows: list[Row] = []
    unscored: list[str] = []

    def timed(measure: str, ev: Event | None, within: float | None) -> None:
        if within is not None:
            rows.append(_timed(measure, ev, start, within))
        else:
            done = f"after {format_duration(max(0.0, ev.ts - start))} by {ev.actor}" if ev is not None else "not done"
            unscored.append(f"{measure}: {done}; not scored, nothing to compare with ({exp.against} did not do it)")

    timed("time to acknowledge", _first(events, "status_changed", to="acknowledged"), exp.acknowledge)
    if exp.severity and exp.severity_within is not None:
        right = _first(events, "severity_set", severity=exp.severity)
        row = _timed("time to correct severity", right, start, exp.severity_within)
        set_to = [e.payload.get("severity") for e in events if e.kind == "severity_set"]
        if row.verdict == "missed" and set_to:
            row = dataclasses.replace(row, got=f"set to {', '.join(set_to)}, never {exp.severity}", verdict="wrong",
                                      by=_who(e for e in events if e.kind == "severity_set"))
        rows.append(dataclasses.replace(row, target=f"{exp.severity} {row.target}"))
    else:
        timed("time to correct severity", None, None)
    intents = [e for e in events if e.kind == "action_intent"]

    def key(e: Event) -> str | None:
        return (e.payload.get("plan") or {}).get("key")

    fixing = [e for e in intents if exp.fixes is None or key(e) in exp.fixes]
    timed("time to first correct mitigation", fixing[0] if fixing else None, exp.mitigate)
    if exp.fixes is not None:
        wrong = [e for e in intents if key(e) not in exp.fixes]
        rows.append(Row(exp.unexpected, ", ".join(e.payload.get("action", "?") for e in wrong) if wrong else "none",
                        "none", "wrong" if wrong else "kept", _who(wrong)))
    if exp.update_every is not None:
        sent = [e.ts for e in events if e.kind == "communication_sent"]
        gaps = [b - a for a, b in zip([start, *sent], [*sent, end])]
        worst = max(gaps) if gaps else end - start
        verdict = "missed" if not sent else "kept" if worst <= exp.update_every else "late"
        rows.append(Row("status update cadence", f"{len(sent)} sent" + (f", longest gap {format_duration(worst)}"
                                                                         if sent else ""),
                        f"≥1, every {format_duration(exp.update_every)}", verdict,
                        _who(e for e in events if e.kind == "communication_sent")))
    return rows, unscored


def _who(events) -> str:
    """Who did these, each once, in the order they first did."""
    return ", ".join(dict.fromkeys(e.actor for e in events))


def columns(doc: dict) -> list[tuple[str, str]]:
    """The scorecard table's (heading, row key) pairs: a team drill's has a "by" column."""
    if isinstance(doc.get("team"), dict):
        return [("measure", "measure"), ("team", "got"), ("by", "by"), ("target", "target"), ("verdict", "verdict")]
    return [("measure", "measure"), ("trainee", "got"), ("target", "target"), ("verdict", "verdict")]


#: what counts as a responder's act on a team's scorecard
_ACTS = {"status_changed": "status", "severity_set": "severity", "note": "notes", "action_intent": "actions",
         "communication_sent": "updates", "role_set": "roles", "title_set": "title", "action_item": "action items"}


def team(events: list[Event], start: float) -> dict:
    """A team drill's part of the scorecard: who was in it (in the order they first acted),
    what each did, and the hand-offs (a role passing from one responder to another)."""
    from cockpit.clock import hms
    from cockpit.incident.journal import MACHINE_ACTOR

    acts: dict[str, dict[str, int]] = {}
    hand_offs: list[str] = []
    holders: dict[str, str] = {}
    for e in events:
        if e.actor == MACHINE_ACTOR or e.kind not in _ACTS:
            continue
        mine = acts.setdefault(e.actor, {})
        mine[_ACTS[e.kind]] = mine.get(_ACTS[e.kind], 0) + 1
        if e.kind == "role_set":
            role, holder = str(e.payload.get("role", "")), str(e.payload.get("holder", ""))
            was = holders.get(role)
            if was and holder and was != holder:
                hand_offs.append(f"{hms(e.ts)} (+{format_duration(max(0.0, e.ts - start))}) {role}: {was} → {holder}"
                                 f" (set by {e.actor})")
            holders[role] = holder
    return {"members": list(acts), "acts": {who: ", ".join(f"{n} {what}" for what, n in did.items())
                                            for who, did in acts.items()},
            "hand_offs": hand_offs, "roles": holders}


def from_scenario(sc, against: str | None = None) -> Expectations:
    keys = frozenset(k for ks in sc.fixes.values() for k in ks)
    t = sc.targets
    return Expectations(against or f"scenario {sc.scenario.name}'s targets", t.acknowledge, sc.scenario.severity,
                        t.severity, t.mitigate, keys, t.update_every)


def from_ghost(ghosts: list, start: float) -> Expectations:
    """The original responders' own times, from a tape's ghost events (journal kinds in
    their payload): what the trainee is compared with when replaying a real incident. The
    actions expected are the ones the recording shows verified before the recovery (the
    incident mitigated or resolved); a tape from before actions were named in its lines
    grades none."""
    def first(kind: str, **p: Any):
        return next((g for g in ghosts if g.payload.get("journal") == kind
                     and all(g.payload.get(k) == v for k, v in p.items())), None)

    fixes = recorded_fixes(ghosts)
    ack, sev = first("status_changed", to="acknowledged"), first("severity_set")
    act = next((g for g in ghosts if g.payload.get("journal") == "action_intent"
                and (fixes is None or g.payload.get("key") in fixes)), None)
    severity = None
    if sev is not None:  # "severity P1 by alice: ..."
        words = sev.text.split()
        severity = words[1] if len(words) > 1 else None
    return Expectations("the original responders", ack.ts - start if ack else None, severity,
                        sev.ts - start if sev else None, act.ts - start if act else None, fixes,
                        unexpected="actions not in the original response")


def recorded_fixes(ghosts: list) -> frozenset[str] | None:
    """The keys of the recorded actions whose verification passed before the recovery."""
    intents = {g.payload.get("id"): g for g in ghosts if g.payload.get("journal") == "action_intent"}
    if not intents or not all(g.payload.get("key") for g in intents.values()):
        return None  # a tape that does not say which action a line was: nothing to grade by
    recovered = min((g.ts for g in ghosts if g.payload.get("journal") == "status_changed"
                     and g.payload.get("to") in ("mitigated", "resolved")), default=float("inf"))
    passed = {g.payload.get("intent") for g in ghosts
              if g.payload.get("journal") == "action_verified" and g.payload.get("ok") is True and g.ts <= recovered}
    return frozenset(g.payload["key"] for i, g in intents.items() if i in passed)


def rows_doc(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]


def markdown(doc: dict) -> list[str]:
    """The postmortem's drill appendix from a journaled scorecard."""
    out = ["## Drill scorecard", "", f"Scored against {doc.get('against', '?')}; counted from "
           f"{doc.get('from', 'the start of the trouble')}.", ""]
    table = columns(doc)
    out += ["| " + " | ".join(head for head, _ in table) + " |", "|" + "---|" * len(table)] if doc.get("rows") else \
        ["Nothing to score against."]
    for r in doc.get("rows", []):
        cells = [str(r.get(k, "")).replace("|", "\\|") for _, k in table]
        out.append("| " + " | ".join(cells) + " |")
    if isinstance(doc.get("team"), dict):
        out += ["", *team_lines(doc["team"])]
    if doc.get("unscored"):
        out += ["", *(f"- {line}" for line in doc["unscored"])]
    for attempt in doc.get("earlier", []):
        out += ["", f"Attempt {attempt.get('attempt', '?')} ({attempt.get('incident', '?')}), ended by a rewind: "
                + earlier_summary(attempt)]
    return out


def team_lines(team: dict) -> list[str]:
    """A team drill's members, what each did and the hand-offs, one line each."""
    acts = team.get("acts") or {}
    out = [f"Team: {', '.join(str(m) for m in team.get('members', [])) or 'nobody acted'}"]
    out += [f"- {who}: {did}" for who, did in acts.items()]
    hand_offs = team.get("hand_offs") or []
    out += [f"- hand-off {h}" for h in hand_offs] if hand_offs else ["- no hand-offs"]
    return out


def earlier_summary(attempt: dict) -> str:
    """One line for an attempt a rewind ended: each measure's verdict."""
    return "; ".join(f"{r.get('measure', '?')} {r.get('verdict', '?')} ({r.get('got', '')})"
                     for r in attempt.get("rows", [])) or "nothing to score"
