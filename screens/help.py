"""The help screen: every key the cockpit answers to, read from the live bindings."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {
    "question_mark": "?",
    "ctrl+p": "ctrl+p",
    "escape": "esc",
    "plus": "+",
    "minus": "-",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "space": "space",
}


def key_label(key: str) -> str:
    return ", ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in key.split(","))


#: the widest key label the help keeps on its description's line
KEY_COLUMN = 14


class HelpScreen(ModalScreen[None]):
    """Lists (key, what it does, whether it is available now)."""

    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss_help", "Close help", id="help.close"),
    ]

    def __init__(self, keys: list[tuple[str, str, bool, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static("Incident cockpit — keys", id="help-title")
            yield Static(self._table(), id="help-keys")
            yield Static("esc, ? or q closes this screen. Greyed keys do not apply right now.", id="help-hint")

    def _table(self) -> Text:
        """One line per key, the descriptions in one column: as wide as the longest key
        label up to KEY_COLUMN; a longer label (ctrl+pageup, pageup, ...) has its description
        on the next line, in that column."""
        out = Text()
        section = None
        column = min(KEY_COLUMN, max((len(key_label(k)) for k, *_ in self.keys), default=0))
        for key, description, enabled, where in self.keys:
            if where != section:
                if section is not None:
                    out.append("\n")
                out.append(f"{where}\n", "bold underline")
                section = where
            style = "" if enabled else "dim"
            label = key_label(key)
            out.append(f"{label:>{column}}  " if len(label) <= column else f"{label}\n{'':>{column}}  ",
                       "bold" if enabled else "dim")
            out.append(description + ("" if enabled else " (not available now)"), style)
            out.append("\n")
        return out

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


COCKPIT, NAVIGATION = "Cockpit", "In the focused list or table"


def describe_bindings(active_bindings) -> list[tuple[str, str, bool, str]]:
    """(key, what it does, enabled, section) from an App.active_bindings mapping, one
    line per action; the cockpit's own keys (app and screen) first, then the focused
    widget's navigation keys.

    Widget-internal navigation (bindings without a description) is left out; keys
    that ``check_action`` hides (False) are not in the mapping at all, and greyed
    ones (None) are listed as not available now."""
    from textual.app import App
    from textual.screen import Screen

    seen: dict[tuple[str, str], tuple[str, str, bool, str]] = {}
    for key, active in active_bindings.items():
        b: Binding = active.binding
        if not b.description:
            continue
        section = COCKPIT if isinstance(active.node, (App, Screen)) else NAVIGATION
        words = b.tooltip or b.description  # the footer's label is short; help has room for the tooltip
        entry = seen.get((section, b.action))
        if entry is None:
            seen[(section, b.action)] = (key, words, active.enabled, section)
        else:
            seen[(section, b.action)] = (f"{entry[0]},{key}", words, entry[2] or active.enabled, section)
    return sorted(seen.values(), key=lambda e: e[3] != COCKPIT)
