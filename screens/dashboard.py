"""The dashboard: header, five panels, timeline, footer of key hints."""

from __future__ import annotations

import time
from functools import partial

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static

from cockpit.clock import Now, hms
from cockpit.model import Status, TimelineEvent, series_key
from cockpit.signals.views import CheckView, Freshness, check_view, freshness, health_views, signal_view, stale_after
from screens.leaks import Footer
from screens.header import CockpitHeader
from screens.panels import ComponentsPanel, HealthPanel, SignalPanelWidget, TimelinePane


SAMPLES = 240  # sparkline samples handed to a panel; it draws as many as fit
CHANGE_MARKS = 100  # the newest change times kept for the sparklines' marks


def panel_id(key: str) -> str:
    """The widget id of a signal panel: error-rate, latency, cost, extra-0…"""
    return key.replace("_", "-").replace(".", "-")


def still_open(st, firing: tuple[str, ...] | list[str] = ()) -> list[str]:
    """What a responder should know before marking an incident mitigated or resolved:
    what is still firing (resolving then splits the episode: a critical alert declares a
    new incident), and what was never acknowledged or verified."""
    from cockpit.incident.postmortem import actions

    out = [f"still firing: {what}" for what in firing]
    if st.status == "declared":
        out.append("it was never acknowledged")
    for a in actions(st.events):
        if a["result"] == "outcome unknown":
            out.append(f"{a['action']} on {a['target']}: outcome unknown")
        elif not a["effect"].startswith("verified"):
            out.append(f"{a['action']} on {a['target']}: not verified")
    return out or ["nothing: every action was verified"]


def update_channels(settings) -> list[str]:
    """Where a status update goes, from the incident settings."""
    return [name for name, on in (("Slack", settings.slack_webhook), ("Statuspage", settings.statuspage)) if on]


class ActionStrip(Static):
    """The configured remediations on their keys, one line under the panels (greyed while
    READ-ONLY); the footer has no room for them."""

    def __init__(self, actions, armed: bool, **kw) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(" actions " if armed else " actions (READ-ONLY) ", "bold" if armed else "dim")
        for cfg in actions:
            line.append(f" {cfg.key} ", "reverse" if armed else "dim reverse")
            line.append(f" {cfg.name}  ", "" if armed else "dim")
        line.append(" A lists them", "dim")
        super().__init__(line, **kw)


class DashboardScreen(Screen):
    """Live panels over the store; redrawn by the app's refresh timer."""

    AUTO_FOCUS = "StatusTable, TimelineList"  # the lists first; tab reaches the panels too (enter: whole text)

    BINDINGS = [
        # shown first, so that a narrow footer keeps them (the app's own bindings run them)
        Binding("q", "app.quit", "Quit", id="dashboard.quit"),
        Binding("question_mark", "app.help", "Help", key_display="?", id="dashboard.help"),
        Binding("n", "note", "Note", id="dashboard.note"),
        Binding("a", "status('acknowledged')", "Ack", tooltip="Acknowledge the incident", id="dashboard.acknowledge"),
        Binding("m", "status('mitigated')", "Mitigated", id="dashboard.mitigated"),
        Binding("R", "status('resolved')", "Resolve", id="dashboard.resolve"),
        Binding("S", "severity", "Severity", id="dashboard.severity"),
        Binding("M", "milestone", "Milestones", show=False, tooltip="Correct a milestone (e.g. when impact started)",
                id="dashboard.milestone"),
        Binding("D", "declare", "Declare", id="dashboard.declare"),
        Binding("T", "title", "Title", show=False, tooltip="Set the incident's title", id="dashboard.title"),
        Binding("O", "roles", "Roles", show=False, tooltip="Take or hand over incident commander or "
                "communications lead", id="dashboard.roles"),
        Binding("i", "action_item", "Action item", show=False,
                tooltip="Add a follow-up (owner, priority, due) to the postmortem", id="dashboard.action_item"),
        Binding("x", "export", "Export", id="dashboard.export"),
        Binding("u", "update", "Update", id="dashboard.update"),
        Binding("p", "pin", "Pin", show=False, id="dashboard.pin"),
        Binding("f", "filter", "Filter timeline", show=False, id="dashboard.filter"),
        Binding("ctrl+r", "poll_now", "Poll now", show=False, id="dashboard.poll_now"),
        Binding("A", "actions_menu", "Actions", tooltip="The configured remediations, with their keys",
                id="dashboard.actions"),
        Binding("K", "toggle_service", "Kill svc", tooltip="Kill or revive the simulated service",
                id="dashboard.toggle_service"),
        Binding("z", "undo", "Undo action", show=False, tooltip="Undo the highlighted action", id="dashboard.undo"),
    ]

    # self.app is the CockpitApp (screens/app.py, which imports this module): the dashboard uses
    # its public interface only: config, store, clock, desk, runner, desk_do, say, snapshot_now…

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self._events_shown = 0
        self._events_generation = 0
        self._change_times: list[float] = []  # when things changed, oldest first (see _note_changes)
        self._keys_depend_on: tuple | None = None  # what the footer's keys were last worked out from
        self._component_keys: dict[str, list[str]] = {}
        self._source_status: dict[str, str] = {}
        self._source_said: dict[str, int] = {}  # store.said(source) when its rows were last looked at
        self._row_seen: dict[str, tuple | None] = {}
        self._sample_cache: dict = {}
        self._row_views: dict[str, CheckView] = {}
        self._send_lock = None  # asyncio.Lock, made on first use (inside the running loop)
        self._note_draft = ""  # a note cancelled (or left without an incident), offered again by n
        for cfg in self.app.config.actions:  # the configured actions, each on its key
            self._bindings.bind(cfg.key, f"run_action('{cfg.key}')", cfg.name, show=False)

    def compose(self) -> ComposeResult:
        cfg = self.app.config
        yield CockpitHeader(cfg.service.name, cfg.service.environment, self.app.mode, self.app.armed)
        if self.app.replay is not None:
            from screens.drillbar import DrillBar

            yield DrillBar(id="drillbar")
        with Grid(id="panels"):
            if cfg.panels.health is not None:
                yield HealthPanel(cfg.panels.health.title or "Health", id="health")
            for key, _ in cfg.panels.signals():
                yield SignalPanelWidget(key, id=panel_id(key))
        with Horizontal(id="lower"):
            if cfg.panels.components is not None:
                yield ComponentsPanel(cfg.panels.components.title or "Components", id="components")
            yield TimelinePane(id="timeline")
        if cfg.actions:
            yield ActionStrip(cfg.actions, self.app.armed, id="action-strip")
        yield Footer(compact=True, show_command_palette=False)  # ctrl+p: in help (?), not a column here

    def on_mount(self) -> None:
        panels = self.app.config.panels
        count = len(panels.signals()) + (panels.health is not None)
        grid = self.query_one("#panels", Grid)
        rows = -(-count // 4)
        grid.styles.grid_size_columns = min(4, count)
        grid.styles.grid_size_rows = rows
        grid.styles.height = 9 * rows  # four panels to a row, each 9 lines high
        self.refresh_data()

    # ------------------------------------------------------------ refresh

    def refresh_data(self) -> None:
        """Redraw every part; one part failing neither stops the others nor goes unreported."""
        now = Now.of(self.app.clock)
        for part in (self._refresh_header, self._refresh_health, self._refresh_signals,
                     self._refresh_components, self._refresh_timeline):
            try:
                part(now)
            except NoMatches:
                return  # the screen is being built or torn down (a refresh racing quit): nothing to draw
            except Exception as e:  # noqa: BLE001 - reported, and the other panels keep updating
                self.app.report_once(part.__name__.removeprefix("_refresh_"), e)

    def _refresh_header(self, now: Now) -> None:
        app = self.app
        header = self.query_one(CockpitHeader)
        st = app.desk.state()
        keys_depend_on = (st.id, st.status, st.open) if st is not None else None
        if keys_depend_on != self._keys_depend_on:
            # keys that depend on the incident (declared by an alert, another cockpit); not on
            # every event: redrawing the footer costs a frame of its own
            self._keys_depend_on = keys_depend_on
            self.refresh_bindings()
        header.update_due = app.desk.next_update_due(app.config.incident.update_every)
        header.journal_error = app.desk.journal_error
        header.unsaved = len(app.desk.unsaved)
        header.others = app.desk.others()
        header.drill, header.drill_short = app.drill_status(), app.drill_status(short=True)
        if app.replay is not None:
            from screens.drillbar import DrillBar

            r = app.replay
            self.query_one(DrillBar).show(r.begin, r.end, r.position, r.milestones)
        header.tick(now.wall, app.desk.state(), app.config.incident.response_targets)

    def _refresh_health(self, now: Now) -> None:
        cfg, store = self.app.config, self.app.store
        if cfg.panels.health is None:
            return
        rt = store.get(series_key(cfg.panels.health.sources[0], "response_time"))
        self.query_one(HealthPanel).show(health_views(cfg, store, now), rt.values(SAMPLES) if rt else [])

    def _refresh_signals(self, now: Now) -> None:
        cfg, store = self.app.config, self.app.store
        for key, _ in cfg.panels.signals():
            widget = self.query_one(f"#{panel_id(key)}", SignalPanelWidget)
            widget.show(signal_view(cfg, key, store, now, SAMPLES, self._sample_cache, self._change_times))

    def _refresh_timeline(self, now: Now) -> None:
        events = self.app.events
        if events.generation != self._events_generation:  # lines were taken away (a drill rewound): all again
            lines, self._events_shown, self._events_generation = events.snapshot()
            pane = self.query_one(TimelinePane)
            pane.set_filter(pane.filter, lines)
            self._change_times = []
            self._note_changes(lines)
            return
        new, taken = events.since(self._events_shown)  # the journal thread may append meanwhile
        self.query_one(TimelinePane).add(new)
        self._note_changes(new)
        self._events_shown = taken

    def _note_changes(self, lines: list[TimelineEvent]) -> None:
        """Keep when things changed (a deploy, an action started), for the sparklines' marks."""
        times = [ev.ts for ev in lines if ev.kind == "change" or ev.payload.get("journal") == "action_intent"]
        if times:
            self._change_times = sorted(self._change_times + times)[-CHANGE_MARKS:]

    def _refresh_components(self, now: Now) -> None:
        """Re-evaluate only rows whose series changed, or all rows of a source whose
        freshness changed; the table then updates just those cells. A source with
        ``dynamic_rows`` (alertmanager: its alerts come and go) has its own row first,
        then a row per ``component/<row>`` series it tells, taken from the store; a row
        it no longer tells while it answers leaves the table once stale."""
        app, cfg = self.app, self.app.config
        store = app.store
        if not cfg.panels.component_sources:
            return
        panel = self.query_one(ComponentsPanel)
        changed = []
        gone: list[str] = []
        subtitle = ""
        for src_name in cfg.panels.component_sources:
            src = cfg.source(src_name)
            limit = stale_after(cfg, src_name)
            dynamic = getattr(src, "dynamic_rows", False)
            keys = self._component_keys.get(src_name)
            if keys is None:
                keys = self._component_keys[src_name] = [
                    series_key(src_name, s) for s in src.series_names()[:1]] if dynamic else [
                    series_key(src_name, f"component/{c}") for c in src.components
                ]
            fresh = self._source_freshness(keys[:1] if dynamic else keys, now, limit)
            subtitle = subtitle or fresh.label()
            every_row = self._source_status.get(src_name) != fresh.status
            self._source_status[src_name] = fresh.status
            if dynamic and fresh.status == "ok":
                gone += self._rows_gone(keys, now, limit)
            said = store.said(src_name)
            if not every_row and self._source_said.get(src_name) == said:
                continue  # no reading of this source says anything new: no row to look at
            self._source_said[src_name] = said
            if dynamic:
                self._rows_found(src_name, keys, now, limit)
            seen = self._row_seen
            names = [src_name, *(k.split(":component/", 1)[1] for k in keys[1:])] if dynamic else src.components
            for comp, key in zip(names, keys):
                buf = store.get(key)
                latest = buf.latest if buf is not None else None
                # a new poll that says the same thing changes nothing on screen
                sig = (latest.status, latest.state, latest.detail, latest.error) if latest is not None else None
                if every_row or key not in seen or seen[key] != sig:
                    seen[key] = sig
                    view = check_view(comp, buf, now, limit)
                    self._row_views[key] = view
                    changed.append((key, view))
        panel.set_subtitle(subtitle)
        if changed or gone:
            with app.batch_update():
                if changed:
                    panel.show_rows(changed, self._row_views.values(), now.wall, app.states.since)
                if gone:
                    self._drop_rows(panel, gone, now)

    def _rows_found(self, src_name: str, keys: list[str], now: Now, limit: float) -> None:
        """Add to ``keys`` the rows a dynamic source tells now (fresh series not yet shown)."""
        store, known = self.app.store, set(keys)
        for key in store.keys(f"{src_name}:component/"):
            latest = store.latest(key) if key not in known else None
            if latest is not None and now.age(latest.ts, latest.received) <= limit:
                keys.append(key)

    def _rows_gone(self, keys: list[str], now: Now, limit: float) -> list[str]:
        """Rows of a dynamic source (its own row aside) it has not told for longer than
        ``limit`` while it answers: alerts over (told resolved, then no more); taken out of
        ``keys``."""
        store = self.app.store
        gone = []
        for key in keys[1:]:
            latest = store.latest(key)
            if latest is None or now.age(latest.ts, latest.received) > limit:
                gone.append(key)
        if gone:
            keys[1:] = [k for k in keys[1:] if k not in set(gone)]
        return gone

    def _drop_rows(self, panel: ComponentsPanel, keys: list[str], now: Now) -> None:
        """Take rows out of the table. Each is first shown as it is now (stale), so that the
        panel, which skips a row shown unchanged, adds it again if it comes back."""
        store = self.app.store
        last = []
        for key in keys:
            view = self._row_views.pop(key, None)
            self._row_seen.pop(key, None)
            if view is not None:
                limit = stale_after(self.app.config, key.split(":", 1)[0])
                last.append((key, check_view(view.name, store.get(key), now, limit)))
        panel.show_rows(last, self._row_views.values(), now.wall)
        for key in keys:
            panel.table.remove_row(key)

    def _source_freshness(self, keys: list[str], now: Now, limit: float) -> Freshness:
        store = self.app.store
        for key in keys:
            buf = store.get(key)
            if buf is not None and buf.latest is not None and buf.latest.status is Status.OK:
                return freshness(buf, now, limit)
        return freshness(store.get(keys[0]) if keys else None, now, limit)

    # ------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Textual: False hides a key, None shows it greyed out. A key that does nothing says
        # why when pressed (on_key, from why_not).
        if action == "toggle_service":
            return self.app.simulator is not None
        if action == "actions_menu":
            return bool(self.app.config.actions)
        why = self.why_not(action, parameters)
        if action == "declare":
            return why is None  # hidden while an incident is open
        return None if why else True

    def why_not(self, action: str, parameters: tuple[object, ...]) -> str | None:
        """Why the key of ``action`` does nothing now, in one line; None when it acts."""
        app, desk = self.app, self.app.desk
        st = desk.state()
        nothing = "No incident: press D to declare one"
        if action == "toggle_service" and app.simulator is None:
            return "K kills the simulated service: only in cockpit demo"
        if action == "actions_menu" and not app.config.actions:
            return "No actions configured: add [[actions]] to the config (examples/CONFIG.md lists the kinds)"
        if action in ("run_action", "undo") and not app.armed:
            return "READ-ONLY: actions do not run; start with --armed to run them (each behind its confirmation)"
        if action == "status":
            to = str(parameters[0])
            if st is None:
                return f"{nothing} (then it can be {to})"
            if not desk.can(to):
                from cockpit.incident.state import IncidentError, status_change

                try:
                    status_change(st, to, "reason")
                except IncidentError as e:
                    return str(e)
        if action in ("export", "title", "action_item", "roles", "update") and not desk.current:
            return f"{nothing} (a title, roles, follow-ups, updates and the postmortem are an incident's)"
        if action in ("severity", "pin", "milestone") and (st is None or not st.open):
            return nothing if st is None else f"{st.id} is {st.status}: a reopens it first"
        if action == "declare" and st is not None and st.open:
            return f"{st.id} is already declared ({st.status}); R resolves it before another is declared"
        return None

    # ------------------------------------------------------------ whole text (enter)

    def on_line_panel_chosen(self, event) -> None:
        from screens.detail import DetailScreen

        self.app.push_screen(DetailScreen(*event.panel.whole_text()))

    def on_status_table_chosen(self, event) -> None:
        from screens.detail import DetailScreen

        panel = self.query_one(ComponentsPanel)
        cells = panel.table.get_row(event.key)
        level_state_detail = panel.shown(event.key)
        name = cells[0].plain
        state, detail = (level_state_detail[1], level_state_detail[2]) if level_state_detail else (cells[1].plain, "")
        self.app.push_screen(DetailScreen(f"Component {name}",
                                          f"{name}: {state} since {cells[2].plain}\n\n{detail or 'no detail'}"))

    def on_option_list_option_selected(self, event) -> None:
        """Enter on a timeline line: the line and, for a journaled event, everything the
        journal holds of it (an action's plan and outcome, a note's whole text)."""
        import json

        from screens.detail import DetailScreen

        pane = self.query_one(TimelinePane)
        if event.option_list.id != "timeline-list":
            return
        ev = pane.event_at(event.option_index)
        if ev is None:
            return
        st = self.app.desk.state()
        journaled = next((e for e in st.events if e.id == ev.payload.get("id")), None) if st is not None else None
        text = f"{hms(ev.ts)} UTC  {ev.level.word}  {ev.text}"
        if journaled is not None:
            text += (f"\n\n{journaled.kind} by {journaled.actor} on {journaled.incident}\n"
                     + json.dumps(journaled.payload, indent=2, sort_keys=True, ensure_ascii=False))
        self.app.push_screen(DetailScreen(f"Timeline {hms(ev.ts)} · {ev.kind}", text))

    def on_key(self, event) -> None:
        """A key whose action cannot act now says why (the footer only greys it)."""
        from textual.actions import parse

        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            _, name, params = parse(binding.action)
            why = self.why_not(name, params)
            if why:
                self.app.notify(why, severity="warning", timeout=5, markup=False)
                return

    def _do(self, fn, *args) -> None:
        """A desk operation for a key: on the journal thread, stamped with the moment the
        responder acted (not when the journal took it); its problem is shown after."""
        self.app.desk_do(partial(fn, at=self.app.clock.now()), *args)

    def with_incident(self, what: str, then, cancelled=None) -> None:
        """Run ``then()`` once an incident is open: when none is, ask whether to declare a
        new one or reopen the last one (Escape: nothing happens but ``cancelled()``)."""
        from screens.prompt import IncidentChoice

        app, desk = self.app, self.app.desk
        st = desk.state()
        if st is not None and st.open:
            then()
            return

        def go(problem: str | None) -> None:
            app.say(problem)  # refused, or taken but not written yet (the journal is away)
            app.desk_changed()
            now = desk.state()
            if now is not None and now.open:
                then()

        def chosen(choice: str | None) -> None:
            if choice == "new":
                app.desk_do(partial(desk.declare, f"declared to record {what}", at=app.clock.now()), then=go)
            elif choice == "reopen":
                app.desk_do(partial(desk.reopen, f"reopened to record {what}", at=app.clock.now()), then=go)
            elif cancelled is not None:
                cancelled()
            else:
                app.notify(f"{what}: cancelled, nothing was run or recorded.", markup=False, timeout=4)

        app.push_screen(IncidentChoice(what, st.id if st is not None else None), chosen)

    def action_note(self) -> None:
        """A note on the open incident, the one the dialog names: if that one is resolved
        while the note is typed (and maybe another declared), the responder is asked where
        it goes. A note cancelled, here or there, is offered again by the next ``n``."""
        from screens.prompt import Confirm, TextPrompt

        app, desk = self.app, self.app.desk
        st = desk.state()
        named = st.id if st is not None and st.open else None

        def keep(text: str) -> None:
            self._note_draft = text
            if text.strip():
                app.notify("The note was not saved; n brings it back.", markup=False, timeout=6)

        def write(text: str) -> None:
            self._note_draft = ""
            self._do(desk.note, text)

        def save(text: str | None) -> None:
            if text is None:
                keep(prompt.left)
                return
            now = desk.state()
            open_now = now.id if now is not None and now.open else None
            if named is None or open_now is None:
                self.with_incident("a note", lambda: write(text), cancelled=lambda: keep(text))
            elif open_now == named:
                write(text)
            else:
                app.push_screen(Confirm(f"Add the note to {open_now}?",
                                        [f"{named}, which the note was written on, was resolved while you typed",
                                         f"{open_now} is open now",
                                         "esc keeps the note for later (n brings it back)"], heading=""),
                                lambda yes: write(text) if yes else keep(text))

        where = named or "an incident (none is open: you will be asked)"
        prompt = TextPrompt(f"Note on {where}", "what you saw, did or decided", value=self._note_draft)
        app.push_screen(prompt, save)

    def action_title(self) -> None:
        from screens.prompt import TextPrompt

        st = self.app.desk.state()
        if st is None:
            return
        self.app.push_screen(TextPrompt(f"Title of {st.id}", "what is broken, for whom", value=st.title),
                             lambda title: title is not None and self._do(self.app.desk.set_title, title))

    def action_action_item(self) -> None:
        from screens.prompt import ActionItemPrompt

        st = self.app.desk.state()
        if st is None:
            return
        self.app.push_screen(ActionItemPrompt(st.id),
                             lambda item: item is not None and self._do(self.app.desk.add_action_item, *item))

    def action_status(self, to: str) -> None:
        from cockpit.incident.journal import STATUSES
        from screens.prompt import Confirm, TextPrompt

        desk = self.app.desk
        st = desk.state()
        if st is None:
            return
        self.app.snapshot_now()  # the readings until this moment go on the record first
        if STATUSES.index(to) < STATUSES.index(st.status):
            self.app.push_screen(
                TextPrompt(f"Reopen {st.id} ({st.status} → {to}): why?", "what came back"),
                lambda reason: reason is not None and self._do(desk.set_status, to, reason),
            )
        elif to in ("mitigated", "resolved"):  # easy to hit (R is shift+r): asked, with what is still open
            stamp = self.app.clock.now()  # the moment the key was pressed, not the answer
            word = "Resolve" if to == "resolved" else "Mark mitigated"
            self.app.push_screen(Confirm(f"{word} {st.id}?", still_open(st, self.app.watch.firing())),
                                 lambda yes: yes and self.app.desk_do(partial(desk.set_status, to, at=stamp)))
        else:
            self._do(desk.set_status, to)

    def action_roles(self) -> None:
        from screens.prompt import RolesPrompt

        st = self.app.desk.state()
        if st is None:
            return
        self.app.push_screen(RolesPrompt(st, self.app.actor),
                             lambda choice: choice is not None and self._do(self.app.desk.set_role, *choice))

    def action_severity(self) -> None:
        from screens.prompt import SeverityPrompt

        st = self.app.desk.state()
        if st is None:
            return
        suggested, driver = st.suggestion if st.suggestion else (None, "")

        def save(choice: tuple[str, str, bool] | None) -> None:
            if choice is not None:
                self._do(self.app.desk.set_severity, *choice)

        self.app.push_screen(SeverityPrompt(suggested, driver, st.severity), save)

    def action_milestone(self) -> None:
        from screens.prompt import MilestonePrompt

        st = self.app.desk.state()
        if st is None:
            return

        def save(choice: tuple[str, float, str] | None) -> None:
            if choice is not None:
                self._do(self.app.desk.set_milestone, *choice)

        self.app.push_screen(MilestonePrompt(dict(st.milestones), self.app.clock.now()), save)

    def action_declare(self) -> None:
        from screens.prompt import TextPrompt

        self.app.push_screen(
            TextPrompt("Declare an incident: title", "e.g. checkout 5xx after v1.5.0 deploy"),
            lambda title: title is not None and self._do(self.app.desk.declare, title),
        )

    def action_update(self) -> None:
        from cockpit.incident.comms import draft
        from screens.prompt import UpdateEditor

        app, desk = self.app, self.app.desk
        st = desk.state()
        if st is None:
            return
        now = app.clock.now()
        signals = [f"{k.replace('_', ' ')} {v}" for k, v in app.watch.shown().items()]
        text = draft(st, now, app.config.service.environment, signals,
                     desk.next_update_due(app.config.incident.update_every))
        channels = update_channels(app.config.incident)
        where = " and ".join(channels) if channels else "the journal only (no channel configured: copy it to yours)"
        app.push_screen(UpdateEditor(text, where), lambda edited: edited is not None and self._send(edited))

    @work(group="update", exit_on_error=False)
    async def _send(self, text: str) -> None:
        """Send to every configured channel, one update at a time (never cancelled midway:
        what was posted is journaled); each attempt is journaled with its outcome."""
        import asyncio

        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            await self._send_now(text)
            await self.app.journal_idle()  # the next update sees this one (its status page id)

    async def _send_now(self, text: str) -> None:
        from cockpit.incident.comms import send_slack, send_statuspage
        from cockpit.safetext import SecretError, resolve_secret

        app = self.app
        settings = app.config.incident
        if not update_channels(settings):
            self._do(app.desk.communication, "journal only", text, True, "recorded, not sent")
            return
        if app.mode == "DRILL":  # the sandbox: journaled as what would have been sent, nothing leaves
            for channel in update_channels(settings):
                self._do(app.desk.communication, f"{channel.lower()} (drill sandbox)", text, True,
                         "drill: not sent")
            app.notify("Drill: the update is journaled as it would have been sent; nothing was sent.", timeout=5)
            return
        sent = []
        for channel in update_channels(settings):
            try:
                if channel == "Slack":
                    url = resolve_secret(settings.slack_webhook, "incident.slack_webhook")
                    result = await send_slack(await app.context.http(), url, text)
                else:
                    sp = settings.statuspage
                    key = resolve_secret(sp.api_key, "incident.statuspage.api_key")
                    st = app.desk.state()
                    if st is None:
                        return
                    result = await send_statuspage(await app.context.http(), sp.url, sp.page_id, key, st, text)
            except SecretError as e:
                self._do(app.desk.communication, channel.lower(), text, False, str(e))
                continue
            self._do(app.desk.communication, channel.lower(), text, result.ok, result.detail, result.external_id)
            if result.ok:
                sent.append(f"{channel} ({result.attempts} attempt{'s' if result.attempts > 1 else ''})")
        if sent:
            app.notify(f"Update sent to {', '.join(sent)}.", timeout=5)

    def action_export(self) -> None:
        """Write the postmortem next to where the cockpit runs (or the data dir) and say where."""
        from pathlib import Path

        from cockpit.incident.journal import default_path

        app = self.app
        if not app.desk.current:
            return
        app.snapshot_now()  # every reading until now is in the postmortem

        def done(written: Path | None) -> None:
            if written is not None:
                app.notify(f"Postmortem written to {written}", title="Exported", markup=False, timeout=10)
            else:
                app.say(f"cannot write the postmortem here or in {default_path().parent}; "
                        f"use `cockpit export {app.desk.current}`")

        app.desk_do(app.desk.export_file, app.clock.now(), [Path.cwd(), default_path().parent], then=done)

    def action_filter(self) -> None:
        from screens.panels import TIMELINE_FILTERS

        pane = self.query_one(TimelinePane)
        names = list(TIMELINE_FILTERS)
        pane.set_filter(names[(names.index(pane.filter) + 1) % len(names)], self.app.events)

    def action_pin(self) -> None:
        event_id = self.query_one(TimelinePane).highlighted_event_id()
        if event_id is None:
            self.app.say("highlight a journaled timeline entry first (click it or use the arrows in the timeline)")
            return
        st = self.app.desk.state()
        self._do(self.app.desk.pin, event_id, st is None or event_id not in st.pinned)

    def action_poll_now(self) -> None:
        if self.app.poller is not None:
            self.app.poller.poll_now()
            self.notify("Polling every source now.", timeout=2)

    # ------------------------------------------------------------ remediation

    def on_worker_state_changed(self, event) -> None:
        """A failed worker of this screen (planning, running, sending) is reported, never silent."""
        from textual.worker import WorkerState

        if event.state is WorkerState.ERROR:
            self.app.report_once(event.worker.name or "worker", event.worker.error)

    def action_actions_menu(self) -> None:
        from screens.prompt import ActionsMenu

        app = self.app

        def chosen(key: str | None) -> None:
            if key is not None:
                self.action_run_action(key)

        app.push_screen(ActionsMenu(list(app.config.actions), app.armed), chosen)

    def action_run_action(self, key: str) -> None:
        app = self.app
        cfg = app.config.action(key)
        self._start_action(cfg, app.action_guard(cfg), undo_of=None, context=self._highlighted_row())

    def _highlighted_row(self) -> dict:
        """The components row the cursor is on, for an action that acts on it (a silence of
        the highlighted alert): its source, the source's kind and url, the row's name."""
        cfg = self.app.config
        if not cfg.panels.component_sources:
            return {}
        key = self.query_one(ComponentsPanel).table.highlighted
        if key is None or ":component/" not in key:
            return {}
        src_name, row = key.split(":component/", 1)
        src = cfg.source(src_name)
        return {"source": src_name, "kind": src.kind, "url": getattr(src, "url", None), "row": row}

    def _start_action(self, cfg, guard: str, undo_of, context: dict | None = None) -> None:
        app = self.app
        if not app.armed:
            app.say("READ-ONLY: actions are off; start the cockpit with --armed to run them")
            return
        if guard == "deny":
            app.say(f"{cfg.name} is denied in {app.config.service.environment} (guards in the config)")
            return
        st = app.desk.state()
        if st is None or not st.open:  # one rule: an action is recorded on an open incident, asked for
            self.with_incident(f"{cfg.name} on {cfg.target}",
                               lambda: self._start_action(cfg, guard, undo_of, context))
            return
        problem = app.runner.claim(cfg.target, cfg.name)
        if problem:
            app.say(problem)
            return
        # what a kind that asks for it (takes_context) plans from: the row, the incident, who
        context = {**(context or {}), "incident": st.id, "actor": app.actor}
        self._plan_action(cfg, guard, undo_of, context)

    @work(thread=True, group="actions", exit_on_error=False)
    def _plan_action(self, cfg, guard: str, undo_of, context: dict) -> None:
        """Read the target's current state off the UI thread, then show the plan."""
        from actions import ActionError

        app = self.app
        try:
            plan = (app.runner.plan(cfg, guard, context) if undo_of is None
                    else app.runner.undo_plan(cfg, undo_of, guard, context))
        except ActionError as e:
            plan, problem = None, str(e)
        else:
            problem = None if plan is not None else f"{undo_of.action} cannot be undone from the cockpit"
        if plan is None:
            app.runner.release(cfg.target)
            app.from_thread(app.say, problem)
            return
        app.from_thread(self._confirm, cfg, plan)

    def _confirm(self, cfg, plan) -> None:
        import dataclasses

        from screens.confirm import ActionConfirm

        desk = self.app.desk
        if desk.journal_error is not None and not plan.sandbox:
            # the shared journal may be the very thing failing: the action can still run, recorded
            # here first, but no other cockpit's lease can be seen: the target's name is asked for
            plan = dataclasses.replace(plan, offline=True, guard="type_to_confirm", notes=(
                *plan.notes, "journal down: this action will be recorded locally and merged when the journal "
                "answers; another responder's action on this target cannot be seen"))
        from actions.model import reverted_change

        changes = [ev for ev in self.app.events if ev.kind == "change"]  # the newest 2,000 lines at most
        plan = dataclasses.replace(plan, reverts=reverted_change(plan, cfg.components, changes, self.app.clock.now()))
        holder = desk.lease_on(plan.target)

        def answered(confirmed) -> None:
            if confirmed is not None:
                self._execute(cfg, confirmed)  # the plan as confirmed (with any number given)
            else:
                self.app.runner.release(cfg.target)
                self.app.notify(f"{plan.action}: cancelled, nothing was run.", timeout=4)

        self.app.push_screen(ActionConfirm(plan, holder.describe(time.time()) if holder else None), answered)

    @work(thread=True, group="actions", exit_on_error=False)
    def _execute(self, cfg, plan) -> None:
        from actions import ActionError
        app = self.app
        app.from_thread(app.notify, f"{plan.action} on {plan.target}: running…", timeout=3)
        try:
            report = app.runner.run(cfg, plan)
        except ActionError as e:
            app.from_thread(app.say, str(e))
            return
        except Exception as e:  # noqa: BLE001 - reported, never a crash
            app.runner.release(plan.target)
            app.from_thread(app.report_once, "action", e)
            return
        o = report.outcome
        app.from_thread(app.notify, f"{plan.action}: {o.result.upper()}: {o.details}",
                        severity="information" if o.result == "ok" else "error", markup=False, timeout=8)

    def action_undo(self) -> None:
        from actions import Plan

        app = self.app
        event_id = self.query_one(TimelinePane).highlighted_event_id()
        intent = app.desk.action_of(event_id) if event_id else None
        if intent is None:
            app.say("highlight an action's entry on the timeline first (click it or use the arrows)")
            return
        plan = Plan.from_dict(intent.payload["plan"])
        try:
            cfg = app.config.action(plan.key)
        except KeyError:
            app.say(f"{plan.action} is no longer configured; undo it by hand")
            return
        outcome = app.desk.outcome(intent.id)
        if outcome is None or outcome.payload.get("result") != "ok":
            app.say(f"{plan.action} did not finish ok; check the target before undoing anything")
            return
        # what the outcome recorded it changed (a silence's id): the undo of some kinds needs it
        changed = outcome.payload.get("changed") or {}
        self._start_action(cfg, app.action_guard(cfg), undo_of=plan, context={"changed": changed})

    def action_toggle_service(self) -> None:
        self.app.toggle_simulator()
