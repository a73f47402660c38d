"""The whole text of a panel, a component row or a timeline line: what the dashboard cuts
to fit (an error, a detail, an event's payload), scrollable and selectable for copying."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from cockpit.safetext import clean


class DetailScreen(ModalScreen[None]):
    """esc (or enter, or q) closes; the text is a read-only TextArea: arrows scroll,
    shift+arrows select, ctrl+c copies."""

    BINDINGS = [Binding("escape,q", "close", "Close", id="detail.close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = clean(title)
        self.text = clean(text, lines=True)  # shown as written: never markup, never an escape sequence

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog detail-dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield TextArea(self.text, read_only=True, soft_wrap=True, id="detail-text")
            yield Static(Text("esc closes · shift+arrows select · ctrl+c copies", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
