"""What an action is, before and after it runs. No textual, no I/O.

- :class:`Plan`: what will be done, read from the target before anything changes:
  each call or command with its parameters (secrets only as ``env:NAME``), the
  current values it will change, whether it is destructive, the blast radius, the
  expected effect, how to undo it, and the confirmation it needs.
- :class:`Outcome`: ok / failed / unknown, details, duration, what it changed.
- :class:`Verification`: whether the intended state was reached.
- :class:`Executor`: the protocol each kind implements (``plan``, ``execute``,
  ``verify``, ``undo``). Executors are blocking; the runner calls them in a thread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

GUARD_ORDER = ("confirm", "type_to_confirm", "deny")
MASK = "***"


class ActionError(Exception):
    """An action that cannot be planned or run; the message is one line for the dialog."""


@dataclass(frozen=True)
class Step:
    """One API call or command the action makes."""

    call: str  # "POST http://host/admin/rollback", "lambda:UpdateFunctionConfiguration", "argv"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    action: str  # the configured name
    key: str
    kind: str
    target: str
    steps: tuple[Step, ...]
    before: dict[str, Any]  # current values it will change, read before
    after: dict[str, Any]  # the values it will set
    destructive: bool
    blast_radius: tuple[str, ...]
    expected: str
    guard: str  # confirm | type_to_confirm | deny
    undo: dict[str, Any] | None = None  # how to undo it (kind-specific); None: not undoable
    notes: tuple[str, ...] = ()  # what the planner noticed (e.g. "already in emergency mode")
    sandbox: bool = False  # planned for a drill: nothing real will be called
    #: a number the responder gives in the dialog: {"name", "now", "min", "max", "default"}
    ask: dict[str, Any] | None = None
    #: confirmed while the journal was away: its intent goes to the local spool, and no other
    #: cockpit's lease could be checked (the dialog said so and asked for the target's name)
    offline: bool = False
    #: a rollback: the change it reverts, as the timeline said it (``reverted_change``)
    reverts: str = ""

    def with_value(self, n: int) -> "Plan":
        """The plan with the asked-for number filled in (and undo back to the current one)."""
        from dataclasses import replace

        if self.ask is None:
            return self
        lo, hi = self.ask["min"], self.ask["max"]
        if not lo <= n <= hi:
            raise ActionError(f"{self.ask['name']} must be from {lo} to {hi}")
        # undo puts back what was found; nothing found: undo removes the setting (where the kind can)
        return replace(self, after={**self.after, self.ask["name"]: n}, undo={self.ask["name"]: self.ask.get("now")})

    def to_dict(self) -> dict[str, Any]:
        """For the journal: JSON-safe, secrets already only references."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "Plan":
        steps = tuple(Step(s["call"], s.get("params", {})) for s in doc.get("steps", ()))
        return cls(**{**doc, "steps": steps, "blast_radius": tuple(doc.get("blast_radius", ())),
                      "notes": tuple(doc.get("notes", ()))})


@dataclass
class Outcome:
    result: str  # ok | failed | unknown
    details: str
    duration: float = 0.0
    changed: dict[str, Any] = field(default_factory=dict)  # values read back after


@dataclass
class Verification:
    ok: bool | None  # None: nothing to verify with
    details: str


class Executor(Protocol):
    """A kind's executor. One that sets ``takes_context = True`` gets ``context=`` (a dict)
    in ``plan`` and ``undo`` too: what the dashboard knew when the key was pressed (``source``,
    ``kind``, ``url`` and ``row`` of the highlighted components row, ``incident``, ``actor``)
    and, for an undo, ``changed``: what the action's journaled outcome recorded."""

    kind: str

    def plan(self, cfg: Any, guard: str) -> Plan: ...

    def execute(self, cfg: Any, plan: Plan) -> Outcome: ...

    def verify(self, cfg: Any, plan: Plan) -> Verification: ...

    def undo(self, cfg: Any, plan: Plan, guard: str) -> Plan | None:
        """The plan that reverses ``plan`` (from what it recorded), or None."""
        ...


def reverted_change(plan: Plan, components: list[str], changes: list, now: float) -> str:
    """What a rollback reverts, in one line, from the changes seen (timeline events of kind
    "change", oldest first): the newest whose subject ("checkout" of "checkout version")
    names the plan's target or one of its components, or is named by them; else the newest
    change, said to be another's; "" for an action that is not a rollback (nor for the undo
    of one: that puts back what the rollback replaced)."""
    from cockpit.clock import format_duration, hms

    if not (plan.kind.endswith("rollback") or "rollback" in plan.action.lower()) or \
            plan.action.lower().startswith("undo "):
        return ""
    names = [n.lower() for n in (plan.target, *components) if n]

    def names_it(ev) -> bool:
        subject = str(ev.signal or ev.payload.get("where", "")).split(" ", 1)[0].lower()
        return bool(subject) and any(subject in n or n in subject for n in names)

    def said(ev) -> str:
        return f"{ev.text} at {hms(ev.ts)} ({format_duration(max(0.0, now - ev.ts))} ago)"

    mine = [ev for ev in changes if names_it(ev)]
    if mine:
        return said(mine[-1])
    if changes:
        return f"no change seen on {plan.target}; the newest change seen: {said(changes[-1])}"
    return "no change seen: check what this rolls back to"


def guard_for(cfg: Any, environment: str, production: bool, rules: dict[str, str]) -> str:
    """The confirmation an action needs: the strictest of its own guard, the
    environment's rule and the default (destructive in production: type the target)."""
    default = "type_to_confirm" if is_destructive(cfg) and (production or cfg.kind.endswith("restore")) else "confirm"
    candidates = [default, rules.get(environment) or "confirm", cfg.guard or "confirm"]
    return max(candidates, key=GUARD_ORDER.index)


def is_destructive(cfg: Any) -> bool:
    """Its own ``destructive``, or its kind's (restores and rollbacks are)."""
    return cfg.destructive if cfg.destructive is not None else getattr(type(cfg), "destructive_kind", False)


def one_line(e: BaseException) -> str:
    """An exception as one cleaned line (its text may carry what a target sent back)."""
    from cockpit.safetext import clean

    text = str(e).strip().splitlines()
    return clean(f"{type(e).__name__}: {text[0]}" if text else type(e).__name__, limit=300)
