"""The drill's executors: they plan from the config alone and record what would have
been done. A drill app is built with these and no others, so no key in a drill can
reach a real target (there is no flag to forget)."""

from __future__ import annotations

import dataclasses

from actions.model import Outcome, Plan, Step, Verification, is_destructive


class SandboxExecutor:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls: list[Plan] = []

    def plan(self, cfg, guard: str) -> Plan:
        return Plan(action=cfg.name, key=cfg.key, kind=self.kind, target=cfg.target,
                    steps=(Step("sandbox", {"would_run": f"{self.kind} on {cfg.target}"}),), before={}, after={},
                    destructive=is_destructive(cfg), blast_radius=tuple(cfg.components), expected=cfg.expected,
                    guard=guard, notes=("drill: recorded, nothing real is called",), sandbox=True)

    def execute(self, cfg, plan: Plan) -> Outcome:
        self.calls.append(plan)
        return Outcome("ok", "drill: recorded, nothing real was called")

    def verify(self, cfg, plan: Plan) -> Verification:
        return Verification(None, "drill: nothing to verify")

    def undo(self, cfg, plan: Plan, guard: str) -> Plan | None:
        """Recorded like the action, where the real one could be undone from the config
        alone (an http action's undo_body); other kinds undo from the target's state, which
        a drill never reads."""
        if getattr(cfg, "undo_body", None) is None:
            return None
        undo = self.plan(cfg, guard)
        return dataclasses.replace(undo, action=f"undo {plan.action}",
                                   steps=(Step("sandbox", {"would_run": f"undo {self.kind} on {cfg.target}"}),))


class SimulatorExecutor(SandboxExecutor):
    """A scenario drill's executor for the demo's http actions: the action is applied to
    the simulator in this process (its admin model, as POST /admin/<what> would), so the
    simulated service reacts, and nothing goes over the network or to a real system."""

    def __init__(self, simulator) -> None:
        super().__init__("http")
        self.simulator = simulator

    def plan(self, cfg, guard: str) -> Plan:
        return self._plan(cfg, guard, cfg.name, cfg.body, cfg.undo_body)

    def _plan(self, cfg, guard: str, name: str, body, undo_body) -> Plan:
        return dataclasses.replace(super().plan(cfg, guard), action=name,
                                   steps=(Step("simulated", {"admin": self._what(cfg), "body": body}),),
                                   after={"body": body} if body is not None else {},
                                   undo={"body": undo_body} if undo_body is not None else None,
                                   notes=("drill: applied to the simulated service only",))

    def execute(self, cfg, plan: Plan) -> Outcome:
        self.calls.append(plan)
        status, doc = self.simulator.admin(self._what(cfg), dict(plan.after.get("body") or {}))
        if status != 200:
            return Outcome("failed", f"drill: the simulated service refused: {doc.get('error', status)}")
        return Outcome("ok", f"drill (simulated): {doc.get('note', 'done')}")

    def undo(self, cfg, plan: Plan, guard: str) -> Plan | None:
        """Undone as the demo undoes it (the action's undo_body), on the simulated service."""
        if plan.undo is None:
            return None
        return self._plan(cfg, guard, f"undo {plan.action}", plan.undo["body"], plan.after.get("body"))

    @staticmethod
    def _what(cfg) -> str:
        return cfg.url.rstrip("/").rsplit("/", 1)[-1]
