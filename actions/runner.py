"""Running an action: claim its target, journal the intent, execute, journal the
outcome, verify and journal the verification (at the time the check ran), and
after ``effect_after`` seconds journal the key signals before and after, so the
timeline shows whether it helped.

The rules it keeps:
- nothing runs unless its intent was journaled first (a refused intent: not run);
- once it ran, its outcome is journaled (the recorder keeps what the journal refuses);
- one action per target at a time (:meth:`ActionRunner.claim`).

Blocking; the app calls it from a worker thread. No textual.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from actions.model import ActionError, Executor, Outcome, Plan, Verification, one_line


def undone(plan: Plan) -> str:
    """What undoing ``plan`` is expected to do: put back what it changed, so that its own
    expected effect goes."""
    return (f"{plan.action} reversed: what it changed is put back"
            + (f"; what it was expected to do ({plan.expected}) no longer holds" if plan.expected else ""))


class Recorder(Protocol):
    def intent(self, plan: Plan) -> Any: ...

    def outcome(self, intent: Any, plan: Plan, outcome: Outcome) -> None: ...

    def verified(self, intent: Any, plan: Plan, verification: Verification) -> None: ...

    def done(self, plan: Plan) -> None:
        """The action and its verification are over (its target is free again)."""

    def effect(self, intent: Any, plan: Plan, before: dict, after: dict, after_s: float) -> None: ...


@dataclass
class Report:
    plan: Plan
    outcome: Outcome
    verification: Verification
    before: dict[str, float]
    after: dict[str, float]


def _context(executor: Executor, context: dict[str, Any] | None) -> dict[str, Any]:
    """The keyword a kind that plans from the dashboard's context (``takes_context``) is
    given; other kinds are called as before."""
    return {"context": dict(context or {})} if getattr(executor, "takes_context", False) else {}


class ActionRunner:
    def __init__(self, executors: Mapping[str, Executor], recorder: Recorder,
                 signals: Callable[[], dict[str, float]], sleep: Callable[[float], None] | None = None) -> None:
        self.executors = dict(executors)
        self.recorder = recorder
        self.signals = signals
        #: set when the cockpit closes: the wait for an action's effect ends at once
        self.stopping = threading.Event()
        self.sleep = sleep or self.stopping.wait
        self._busy: dict[str, str] = {}  # target -> action name
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Condition(self._lock)

    # ------------------------------------------------------------ one per target

    def claim(self, target: str, action: str) -> str | None:
        """Reserve ``target``; the problem line if something already holds it."""
        with self._lock:
            if target in self._busy:
                return f"{self._busy[target]} is already running on {target}; wait for its outcome"
            self._busy[target] = action
            return None

    def release(self, target: str) -> None:
        with self._lock:
            self._busy.pop(target, None)

    def busy(self, target: str) -> bool:
        with self._lock:
            return target in self._busy

    # ------------------------------------------------------------ planning

    def executor(self, kind: str) -> Executor:
        try:
            return self.executors[kind]
        except KeyError:
            raise ActionError(f"no executor for {kind!r} actions here") from None

    def plan(self, cfg, guard: str, context: dict[str, Any] | None = None) -> Plan:
        """What running ``cfg`` would do. ``context``: what the dashboard knows when the key
        was pressed (the highlighted row of the components table, the incident, the
        responder), given to the kinds that ask for it (``takes_context``)."""
        try:
            executor = self.executor(cfg.kind)
            return executor.plan(cfg, guard, **_context(executor, context))
        except ActionError:
            raise
        except Exception as e:  # noqa: BLE001 - credentials, permissions, unreachable: one line in the dialog
            raise ActionError(f"cannot plan {cfg.name}: {one_line(e)}") from None

    def undo_plan(self, cfg, plan: Plan, guard: str, context: dict[str, Any] | None = None) -> Plan | None:
        """How to undo ``plan`` (None: this kind cannot), expecting the action's own effect to
        go, not the action's expected effect again. ``context`` as for :meth:`plan`, with
        ``changed``: what the action's journaled outcome says it changed."""
        try:
            executor = self.executor(cfg.kind)
            undo = executor.undo(cfg, plan, guard, **_context(executor, context))
            return None if undo is None else dataclasses.replace(undo, expected=undone(plan))
        except ActionError:
            raise
        except Exception as e:  # noqa: BLE001
            raise ActionError(f"cannot plan the undo of {plan.action}: {one_line(e)}") from None

    # ------------------------------------------------------------ running

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no action is running (each has journaled its outcome); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def run(self, cfg, plan: Plan) -> Report:
        """Run a confirmed plan whose target the caller claimed; releases it when verified."""
        with self._lock:
            self._running += 1
        try:
            return self._run(cfg, plan)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def _run(self, cfg, plan: Plan) -> Report:
        executor = self.executor(plan.kind)
        intent = None
        try:
            try:
                intent = self.recorder.intent(plan)
            except Exception as e:  # noqa: BLE001
                raise ActionError(f"NOT RUN: {e}" if type(e).__name__ == "ActionRefused" else
                                  f"NOT RUN: the journal did not take the intent ({e})") from None
            before = self.signals()
            try:
                outcome = executor.execute(cfg, plan)
            except Exception as e:  # noqa: BLE001 - it may have changed something before failing
                outcome = Outcome("unknown", f"the executor failed midway: {one_line(e)}")
            self.recorder.outcome(intent, plan, outcome)
            done = time.monotonic()
            if outcome.result == "ok":
                verification = self._verify(executor, cfg, plan)
            else:
                verification = Verification(None, f"not verified: the outcome was {outcome.result}")
            self.recorder.verified(intent, plan, verification)  # stamped now: when the check ran
        finally:
            self.release(plan.target)
            if intent is not None:
                self.recorder.done(plan)
        wait = cfg.effect_after - (time.monotonic() - done)
        if wait > 0 and not self.stopping.is_set():
            self.sleep(wait)
        if self.stopping.is_set():  # closing: the effect was not seen
            after = {}
        else:
            after = self.signals()
            self.recorder.effect(intent, plan, before, after, time.monotonic() - done)
        return Report(plan, outcome, verification, before, after)

    def _verify(self, executor: Executor, cfg, plan: Plan) -> Verification:
        """The executor's check, which may poll for minutes (a rollout settling), abandoned
        at once when the cockpit closes: quitting is never held hostage by it."""
        box: list[Verification] = []

        def check() -> None:
            try:
                box.append(executor.verify(cfg, plan))
            except Exception as e:  # noqa: BLE001
                box.append(Verification(False, f"verification failed: {one_line(e)}"))

        thread = threading.Thread(target=check, name=f"verify {plan.action}", daemon=True)
        thread.start()
        while thread.is_alive():
            if self.stopping.is_set():
                return Verification(None, "verification abandoned at exit (the cockpit was closed; the outcome "
                                    "stands: check the target)")
            thread.join(0.05)
        return box[0]
