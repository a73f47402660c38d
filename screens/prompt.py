"""Small dialogs the dashboard opens: a line of text, a severity choice."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from cockpit.signals.evaluator import DEFINITIONS, SEVERITIES


class LineInput(Input):
    """An Input whose Enter submits the line as it was when Enter was pressed. Textual runs
    Input's enter binding only once the key has bubbled up to the app, after the keys that
    came in the same burst: "check db", Enter, "a" saved the note "check dba"."""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.value, self.validate(self.value)
                                             if "submitted" in self.validate_on else None))
            return
        await super()._on_key(event)


class TextPrompt(ModalScreen[str | None]):
    """One line of text. Enter saves, Escape cancels; an empty line is not accepted."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, placeholder: str = "", hint: str = "", value: str = "") -> None:
        super().__init__()
        self.title_text, self.placeholder, self.hint, self.value = title, placeholder, hint, value
        #: what was typed when it was cancelled (a caller may offer it again)
        self.left = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield LineInput(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static(Text(self.hint or "enter saves · esc cancels", style="dim"), id="prompt-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss(event.value)
        else:
            self.query_one("#prompt-hint", Static).update(Text("type something, or esc to cancel", style="bold"))

    def action_cancel(self) -> None:
        self.left = self.query_one("#prompt-input", Input).value
        self.dismiss(None)


class SeverityPrompt(ModalScreen[tuple[str, str, bool] | None]):
    """Pick P0-P3. Choosing the suggestion accepts it; anything else needs a reason."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="severity.cancel")]

    def __init__(self, suggested: str | None, driver: str, current: str | None) -> None:
        super().__init__()
        self.suggested, self.driver, self.current = suggested, driver, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            head = f"Set severity (now {self.current or 'not set'})"
            yield Static(Text(head, style="bold"), classes="dialog-title")
            if self.suggested:
                yield Static(Text(f"suggested {self.suggested}: {self.driver}"), id="severity-suggestion")
            options = []
            for sev in SEVERITIES:
                label = Text(f"{sev}  ", style="bold")
                label.append(DEFINITIONS[sev])
                if sev == self.suggested:
                    label.append("  (suggested)", "bold")
                options.append(Option(label, id=sev))
            yield OptionList(*options, id="severity-options")
            yield LineInput(placeholder="reason (needed when not the suggestion)", id="severity-reason")
            yield Static(Text("↑↓ choose · enter sets · esc cancels", style="dim"), id="severity-hint")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if self.suggested in SEVERITIES:
            ol.highlighted = SEVERITIES.index(self.suggested)
        ol.focus()

    def _choose(self, severity: str) -> None:
        reason = self.query_one(Input).value.strip()
        if severity == self.suggested and not reason:
            self.dismiss((severity, "", True))
        elif reason:
            self.dismiss((severity, reason, severity == self.suggested))
        else:
            self.query_one("#severity-hint", Static).update(
                Text(f"{severity} is not the suggestion: type a reason, then enter", style="bold"))
            self.query_one(Input).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        ol = self.query_one(OptionList)
        if ol.highlighted is not None:
            self._choose(SEVERITIES[ol.highlighted])

    def action_cancel(self) -> None:
        self.dismiss(None)


class UpdateEditor(ModalScreen[str | None]):
    """Edit a drafted status update; ctrl+s sends it, Escape cancels (nothing is sent)."""

    BINDINGS = [
        Binding("ctrl+s", "send", "Send", id="update.send"),
        Binding("escape", "cancel", "Cancel", id="update.cancel"),
    ]

    def __init__(self, draft: str, channel: str) -> None:
        super().__init__()
        self.draft, self.channel = draft, channel

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog update-dialog"):
            yield Static(Text(f"Status update → {self.channel}", style="bold"), classes="dialog-title")
            yield TextArea(self.draft, id="update-text", soft_wrap=True)
            yield Static(Text("ctrl+s sends · esc cancels (nothing is sent)", style="dim"))

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_send(self) -> None:
        text = self.query_one(TextArea).text.strip()
        if text:
            self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MilestonePrompt(ModalScreen[tuple[str, float, str] | None]):
    """Correct one of the incident's milestones: pick it, type when, say why.
    The time is read here (one clear line if it cannot be); the order is checked by
    the desk before anything is written."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="milestone.cancel")]

    def __init__(self, milestones: dict[str, float], now: float) -> None:
        super().__init__()
        self.milestones, self.now = milestones, now

    def compose(self) -> ComposeResult:
        from cockpit.clock import utc
        from cockpit.incident.journal import MILESTONES

        with Vertical(classes="dialog"):
            yield Static(Text("Correct a milestone (times in UTC)", style="bold"), classes="dialog-title")
            options = []
            for name in MILESTONES:
                label = Text(f"{name.replace('_', ' '):<16}", style="bold")
                at = self.milestones.get(name)
                label.append(f"{utc(at):%Y-%m-%d %H:%M:%S}" if at is not None else "not set", "" if at else "dim")
                options.append(Option(label, id=name))
            yield OptionList(*options, id="milestone-options")
            yield LineInput(placeholder="when: -15m · 1h ago · 03:12 · 2026-11-23T03:12Z", id="milestone-when")
            yield LineInput(placeholder="why (it moves the incident's durations)", id="milestone-reason")
            yield Static(Text("↑↓ choose, enter · type when, enter · type why, enter saves · esc cancels",
                              style="dim"),
                         id="milestone-hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def _hint(self, text: str) -> None:
        self.query_one("#milestone-hint", Static).update(Text(text, style="bold"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#milestone-when", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from cockpit.clock import hms, parse_when
        from cockpit.incident.journal import MILESTONES

        event.stop()
        ol = self.query_one(OptionList)
        when = self.query_one("#milestone-when", Input)
        reason = self.query_one("#milestone-reason", Input)
        if ol.highlighted is None:
            self._hint("choose a milestone first (↑↓)")
            ol.focus()
            return
        try:
            at = parse_when(when.value, self.now)
        except ValueError as e:
            self._hint(str(e))
            when.focus()
            return
        if not reason.value.strip():
            if event.input is when:  # enter in the time box moves on to the reason
                self._hint(f"{MILESTONES[ol.highlighted].replace('_', ' ')} at {hms(at)} UTC: now say why, then enter")
            else:
                self._hint("say why: the postmortem shows it next to the change")
            reason.focus()
            return
        self.dismiss((MILESTONES[ol.highlighted], at, reason.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ActionsMenu(ModalScreen[str | None]):
    """The configured actions, each with its key; enter starts the highlighted one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="actions.cancel")]

    def __init__(self, actions: list, armed: bool) -> None:
        super().__init__()
        self.actions, self.armed = actions, armed

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text("Actions", style="bold"), classes="dialog-title")
            options = []
            for a in self.actions:
                label = Text(f"{a.key}  ", style="bold")
                label.append(a.name, "bold")
                label.append(f"  on {a.target}")
                if a.description:
                    label.append(f"\n   {a.description}", "dim")
                options.append(Option(label, id=a.key))
            yield OptionList(*options, id="actions-options")
            hint = ("↑↓ choose · enter shows its plan (nothing runs yet) · esc closes" if self.armed else
                    "READ-ONLY: start with --armed to run actions · esc closes")
            yield Static(Text(hint, style="dim"))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ActionItemPrompt(ModalScreen[tuple[str, str, str, str] | None]):
    """A follow-up for the postmortem: what, who owns it, priority, due date. Enter moves
    to the next box and saves from the last, once the values pass the desk's check (else the
    problem is said here and every box keeps what was typed); Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="item.cancel")]
    FIELDS = (("item-text", "what to do, e.g. alert on deploy error budget"), ("item-owner", "owner (a name)"),
              ("item-priority", "priority: P0 P1 P2 P3 (optional)"), ("item-due", "due: YYYY-MM-DD (optional)"))

    def __init__(self, incident: str) -> None:
        super().__init__()
        self.incident = incident

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"Action item for {self.incident}", style="bold"), classes="dialog-title")
            for ident, placeholder in self.FIELDS:
                yield LineInput(placeholder=placeholder, id=ident)
            yield Static(Text("enter: next box, saves from the last · esc cancels", style="dim"), id="item-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        boxes = [self.query_one(f"#{ident}", Input) for ident, _ in self.FIELDS]
        if not boxes[0].value.strip():
            self.query_one("#item-hint", Static).update(Text("say what is to be done first", style="bold"))
            boxes[0].focus()
            return
        at = boxes.index(event.input)
        if at < len(boxes) - 1:
            boxes[at + 1].focus()
            return
        from cockpit.incident.state import IncidentError, action_item

        values = tuple(b.value.strip() for b in boxes)
        try:
            action_item(*values)  # the desk's own check, said here so nothing typed is lost
        except IncidentError as e:
            self.query_one("#item-hint", Static).update(Text(f"{e} · esc cancels", style="bold"))
            boxes[2 if str(e).startswith("priority") else 3 if str(e).startswith("due") else 0].focus()
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)


class IncidentChoice(ModalScreen[str | None]):
    """Something must be recorded on an incident and none is open: declare a new one (n),
    reopen the last one (o, when there is one) or cancel (Escape): nothing happens until
    the responder says which."""

    BINDINGS = [
        Binding("n", "choose('new')", "New incident", id="choice.new"),
        Binding("o", "choose('reopen')", "Reopen", id="choice.reopen"),
        Binding("escape", "cancel", "Cancel", id="choice.cancel"),
    ]

    def __init__(self, what: str, last: str | None) -> None:
        super().__init__()
        self.what, self.last = what, last

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"No incident is open to record {self.what} on", style="bold"),
                         classes="dialog-title")
            lines = Text("n  declare a new incident\n", style="bold")
            if self.last:
                lines.append(f"o  reopen {self.last}\n", "bold")
            lines.append("esc  cancel: nothing is run or recorded", "dim")
            yield Static(lines, id="choice-options")

    def action_choose(self, choice: str) -> None:
        if choice == "reopen" and not self.last:
            return
        self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """A yes/no question with what the responder should know first: y (one key, not an
    Enter that came with the keys before it) says yes, Escape (or n) says no and nothing
    happens."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("escape,n", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, notes: list[str], heading: str = "Still open:") -> None:
        super().__init__()
        self.question, self.notes, self.heading = question, notes, heading

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question, style="bold"), classes="dialog-title")
            body = Text(f"{self.heading}\n" if self.heading else "", style="bold")
            for note in self.notes:
                body.append(f"  • {note}\n", "")
            yield Static(body, id="confirm-notes")
            yield Static(Text("y confirms · esc cancels (nothing changes)", style="dim"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class RolesPrompt(ModalScreen[tuple[str, str] | None]):
    """Take a role or hand it over: incident commander, communications lead."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="roles.cancel")]

    def __init__(self, st, me: str) -> None:
        super().__init__()
        self.st, self.me = st, me

    def compose(self) -> ComposeResult:
        from cockpit.incident.state import ROLES

        with Vertical(classes="dialog"):
            yield Static(Text(f"Roles on {self.st.id}", style="bold"), classes="dialog-title")
            options = []
            for role, name in ROLES.items():
                now = self.st.holder(role)
                label = Text(f"{name:<22}", style="bold")
                label.append(f"now {now}" if now else "nobody yet", "" if now else "dim")
                options.append(Option(label, id=role))
            yield OptionList(*options, id="roles-options")
            yield LineInput(placeholder=f"who takes it (empty: you, {self.me})", id="roles-who", select_on_focus=False)
            yield Static(Text("↑↓ choose · type a name to hand it over · enter saves · esc cancels", style="dim"))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one(Input).focus()

    def on_key(self, event) -> None:
        """A name typed while the roles list has the focus goes to the name box (the hint
        says "type a name"), for the highlighted role (the first when none is)."""
        ol, box = self.query_one(OptionList), self.query_one(Input)
        if ol.has_focus and event.is_printable and event.character and event.character.strip():
            event.stop()
            event.prevent_default()
            if ol.highlighted is None:
                ol.highlighted = 0
            box.focus()
            box.insert_text_at_cursor(event.character)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        ol = self.query_one(OptionList)
        if ol.highlighted is None:
            ol.focus()
            return
        from cockpit.incident.state import ROLES

        self.dismiss((list(ROLES)[ol.highlighted], event.value.strip() or self.me))

    def action_cancel(self) -> None:
        self.dismiss(None)
