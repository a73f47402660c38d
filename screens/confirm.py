"""The action dialog: the plan, in full, before anything runs.

`y` runs a plain action; a destructive one needs its target's name typed. Escape
always cancels. It can be confirmed once: a second `y` or enter does nothing.
"""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from actions.model import Plan


def _compact(value) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    except (TypeError, ValueError):
        return str(value)


def describe_plan(plan: Plan) -> Text:
    """The plan as the dialog shows it (plain Text: nothing in it is markup)."""
    out = Text()

    def line(label: str, value: str, style: str = "") -> None:
        out.append(f"{label:<12}", "bold")
        out.append(value + "\n", style)

    line("kind", plan.kind + ("  (DRILL: nothing real is called)" if plan.sandbox else ""))
    line("target", plan.target)
    for i, step in enumerate(plan.steps):
        params = {k: v for k, v in step.params.items() if v not in (None, {}, [])}
        line("calls" if i == 0 else "", step.call + (f"  {_compact(params)}" if params else ""))
    if plan.before:
        line("now", _compact(plan.before))
    if plan.after:
        line("will set", _compact(plan.after))
    line("destructive", "YES: it overwrites state" if plan.destructive else "no",
         "bold red" if plan.destructive else "")
    line("affects", ", ".join(plan.blast_radius) or "(no components listed)")
    if plan.expected:
        line("expected", plan.expected)
    line("undo", "available from the timeline (z)" if plan.undo else "not undoable from the cockpit")
    for note in plan.notes:
        line("note", note, "italic")
    return out


class ActionConfirm(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "confirm", "Run", id="action.confirm"),
        Binding("escape", "cancel", "Cancel", id="action.cancel"),
    ]

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan
        self._answered = False

    def compose(self) -> ComposeResult:
        plan = self.plan
        verb = "Undo" if plan.action.startswith("undo ") else "Run"
        with Vertical(classes="dialog action-dialog"):
            yield Static(Text(f"{verb} {plan.action.removeprefix('undo ')} on {plan.target}?", style="bold"),
                         classes="dialog-title")
            with VerticalScroll(id="action-plan"):
                yield Static(describe_plan(plan))
            if plan.guard == "type_to_confirm":
                yield Input(placeholder=f"type {plan.target} to run it", id="action-typed")
                hint = f"type the target's name, then enter · esc cancels (nothing runs)"
            else:
                hint = "y runs it · esc cancels (nothing runs)"
            yield Static(Text(hint, style="dim"), id="action-hint")

    def on_mount(self) -> None:
        if self.plan.guard == "type_to_confirm":
            self.query_one(Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":  # y is a letter in the name box
            return self.plan.guard == "confirm"
        return True

    def _done(self, run: bool) -> None:
        if self._answered:
            return  # confirmed (or cancelled) once: a second press does nothing
        self._answered = True
        self.dismiss(run)

    def action_confirm(self) -> None:
        self._done(True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip() == self.plan.target:
            self._done(True)
        else:
            self.query_one("#action-hint", Static).update(
                Text(f"that is not {self.plan.target!r}: type it exactly, or esc to cancel", style="bold"))

    def action_cancel(self) -> None:
        self._done(False)
