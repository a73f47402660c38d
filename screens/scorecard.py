"""The drill's scorecard, shown when the drill ends (the incident resolved, the tape over, or q)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from cockpit.drill.scorecard import columns, earlier_summary, team_lines


class ScorecardScreen(ModalScreen[bool]):
    """q quits the drill; escape goes back to it. Returns whether to quit."""

    BINDINGS = [Binding("q", "finish", "Quit the drill", priority=True, id="scorecard.quit"),
                Binding("escape", "back", "Back to the drill", id="scorecard.back")]

    def __init__(self, doc: dict) -> None:
        super().__init__()
        self.doc = doc

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="scorecard"):
            attempt = f" · attempt {self.doc['attempt']}" if self.doc.get("attempt") else ""
            yield Static(Text(f"Drill scorecard · {self.doc.get('why', '')}{attempt}", style="bold"),
                         classes="dialog-title")
            yield Static(Text(f"against {self.doc.get('against', '?')}; counted from {self.doc.get('from', '?')}",
                              style="dim"))
            team = self.doc.get("team") if isinstance(self.doc.get("team"), dict) else None
            if self.doc.get("rows"):
                table: DataTable = DataTable(show_cursor=False, id="scorecard-table")
                shown = columns(self.doc)
                table.add_columns(*(head for head, _ in shown))
                for r in self.doc["rows"]:
                    style = {"kept": "green", "late": "yellow", "missed": "bold red",
                             "wrong": "bold red"}.get(r["verdict"], "")
                    table.add_row(*(Text(str(r.get(k, "")), style=style) if k == "verdict" else str(r.get(k, ""))
                                    for _, k in shown))
                yield table
            else:
                yield Static(Text("Nothing to score against: the recording shows no responder doing these. "
                                  "cockpit drill TAPE --expect SCENARIO scores against a scenario's targets.",
                                  style="bold"))
            for line in self.doc.get("unscored", []):
                yield Static(Text(line, style="dim"))
            if team is not None:
                for line in team_lines(team):
                    yield Static(Text(line), classes="scorecard-team")
            for attempt in self.doc.get("earlier", []):
                yield Static(Text(f"attempt {attempt.get('attempt')}, ended by a rewind: "
                                  f"{earlier_summary(attempt)}", style="dim"))
            yield Static(Text("q quits the drill · esc goes back to it · it is in the postmortem's drill appendix",
                              style="dim"))

    def action_finish(self) -> None:
        self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(False)
