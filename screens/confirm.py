"""The action dialog: the plan, in full, before anything runs.

`y` runs a plain action; a destructive one needs its target's name typed. Escape
always cancels. It can be confirmed once: a second `y` or enter does nothing.
"""

from __future__ import annotations

import json

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from actions.model import Plan
from cockpit.safetext import clean
from screens.prompt import LineInput


def _compact(value) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    except (TypeError, ValueError):
        return str(value)


def describe_plan(plan: Plan) -> Table:
    """The plan as the dialog shows it: label | value, values wrapping in their column
    (plain Text: nothing in a plan is markup)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")

    def row(label: str, value: str, style: str = "") -> None:
        # a plan holds what the target answered (its current state): outside text, cleaned
        table.add_row(label, Text(clean(value, lines=True), style=style))

    row("kind", plan.kind + ("  (DRILL: nothing real is called)" if plan.sandbox else ""))
    row("target", plan.target)
    for i, step in enumerate(plan.steps):
        params = {k: v for k, v in step.params.items() if v not in (None, {}, [])}
        row("calls" if i == 0 else "", step.call + (f"  {_compact(params)}" if params else ""))
    if plan.before:
        row("now", _compact(plan.before))
    if plan.after:
        row("will set", _compact(plan.after))
    row("destructive", "YES: it overwrites state" if plan.destructive else "no", "bold red" if plan.destructive else "")
    row("affects", ", ".join(plan.blast_radius) or "(no components listed)")
    if plan.reverts:
        row("reverts", plan.reverts, "bold")
    if plan.expected:
        row("expected", plan.expected)
    row("undo", "available from the timeline (z)" if plan.undo or plan.ask else "not undoable from the cockpit")
    for note in plan.notes:
        row("note", note, "italic")
    return table


class ActionConfirm(ModalScreen["Plan | None"]):
    BINDINGS = [
        Binding("y", "confirm", "Run", id="action.confirm"),
        Binding("escape", "cancel", "Cancel", id="action.cancel"),
    ]

    def __init__(self, plan: Plan, held_by: str | None = None) -> None:
        super().__init__()
        self.plan = plan
        self.held_by = held_by  # another cockpit's action running on this target, if any
        self._answered = False

    def compose(self) -> ComposeResult:
        plan = self.plan
        verb = "Undo" if plan.action.startswith("undo ") else "Run"
        with Vertical(classes="dialog action-dialog"):
            yield Static(Text(f"{verb} {plan.action.removeprefix('undo ')} on {plan.target}?", style="bold"),
                         classes="dialog-title")
            if self.held_by:
                yield Static(Text(f"⚠ {self.held_by}: confirming will be refused until it is over",
                                  style="bold red"), id="action-held")
            with VerticalScroll(id="action-plan"):
                yield Static(describe_plan(plan))
            if plan.ask is not None:
                ask = plan.ask
                now = f", now {ask['now']}" if ask.get("now") is not None else ""
                yield Static(Text(f"{ask['name']} ({ask['min']}–{ask['max']}{now}):", style="bold"))
                yield LineInput(str(ask.get("default", "")), id="action-number", type="integer")
            if plan.guard == "type_to_confirm":
                yield LineInput(placeholder=f"type {plan.target} to run it", id="action-typed")
                hint = "type the target's name, then enter · esc cancels (nothing runs)"
            elif plan.ask is not None:
                hint = "enter runs it with this number · esc cancels (nothing runs)"
            else:
                hint = "y runs it · esc cancels (nothing runs)"
            yield Static(Text(hint, style="dim"), id="action-hint")

    def on_mount(self) -> None:
        if self.plan.ask is not None:
            self.query_one("#action-number", Input).focus()
        elif self.plan.guard == "type_to_confirm":
            self.query_one("#action-typed", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":  # y would be typed into a box otherwise
            return self.plan.guard == "confirm" and self.plan.ask is None
        return True

    def _hint(self, text: str) -> None:
        self.query_one("#action-hint", Static).update(Text(text, style="bold"))

    def _done(self, plan: Plan | None) -> None:
        if self._answered:
            return  # confirmed (or cancelled) once: a second press does nothing
        self._answered = True
        self.dismiss(plan)

    def _confirmed_plan(self) -> Plan | None:
        """The plan to run, with the number filled in; None (and a hint) if it is not valid."""
        from actions.model import ActionError

        if self.plan.ask is None:
            return self.plan
        text = self.query_one("#action-number", Input).value.strip()
        try:
            return self.plan.with_value(int(text))
        except ValueError:
            self._hint(f"{self.plan.ask['name']} must be a whole number")
        except ActionError as e:
            self._hint(str(e))
        return None

    def action_confirm(self) -> None:
        self._done(self.plan)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        plan = self._confirmed_plan()
        if plan is None:
            self.query_one("#action-number", Input).focus()
            return
        if self.plan.guard == "type_to_confirm":
            typed = self.query_one("#action-typed", Input)
            if event.input is not typed:
                typed.focus()
                self._hint(f"now type {self.plan.target} to run it")
                return
            if typed.value.strip() != self.plan.target:
                self._hint(f"that is not {self.plan.target!r}: type it exactly, or esc to cancel")
                return
        self._done(plan)

    def action_cancel(self) -> None:
        self._done(None)
