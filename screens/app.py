"""The Textual application: wires config, clock, store, poller and screens."""

from __future__ import annotations

import asyncio
import contextvars
import getpass
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.worker import Worker, WorkerState

from cockpit.clock import Clock, SystemClock
from cockpit.config import CockpitConfig
from cockpit.drill.session import DrillSession
from cockpit.drill.team import EVERY as TEAM_EVERY
from cockpit.incident.worker import JournalWorker, RunnerRecorder
from cockpit.model import Reading, RecentLines, TimelineEvent
from cockpit.signals.poller import Poller
from cockpit.signals.sources import SourceContext, build_source
from cockpit.signals.store import Store
from cockpit.signals.watch import SignalWatch
from themes import DEFAULT_THEME, DRILL_THEME, STYLESHEET, THEMES

MODES = ("LIVE", "DEMO", "DRILL")
ACTION_EXIT_WAIT = 0.8  # seconds quitting waits for a running action (its verification is abandoned at once)
KEEP_ALIVE = 5.0  # seconds between heartbeats to the journal (presence, leases)
SNAPSHOT_RETRY = 5.0  # seconds before asking for a snapshot again (one is still on its way)


class CockpitApp(App):
    """The incident cockpit."""

    CSS_PATH = str(STYLESHEET)
    TITLE = "Incident cockpit"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit", priority=True, id="app.quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="app.interrupt"),  # like q, never a traceback
        Binding("question_mark", "help", "Help", priority=True, id="app.help"),
        Binding("ctrl+p", "command_palette", "Commands", show=False, id="app.palette"),  # the footer docks its own
        # a drill's replay (only while replaying a tape; they win over an action on the same key,
        # which stays reachable from the actions menu, A)
        Binding("space", "drill_pause", "Pause", priority=True, id="drill.pause"),
        Binding("plus,equals_sign", "drill_speed(1)", "Faster", key_display="+", show=False, priority=True,
                id="drill.faster"),
        Binding("minus", "drill_speed(-1)", "Slower", key_display="-", show=False, priority=True, id="drill.slower"),
        Binding("right_square_bracket", "drill_step(1)", "Step one interval", key_display="]", show=False,
                priority=True, id="drill.step"),
        Binding("left_square_bracket", "drill_step(-1)", "Back one interval", key_display="[", show=False,
                priority=True, id="drill.back"),
        Binding("g", "drill_seek", "Go to a time", show=False, priority=True, id="drill.seek"),
        Binding("G", "drill_ghost", "Ghost", tooltip="Show the original responders' acts", priority=True,
                id="drill.ghost"),
    ]

    def __init__(
        self,
        config: CockpitConfig,
        *,
        mode: str = "LIVE",
        armed: bool = False,
        clock: Clock | None = None,
        store: Store | None = None,
        poll: bool = True,
        simulator=None,
        theme: str | None = None,
        journal=None,
        spool=None,
        executors: dict | None = None,
        tape=None,
        replay=None,
        scenario=None,
        context: SourceContext | None = None,
        expect=None,
        team=None,
        actor: str | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.config = config
        self.mode = mode
        self.armed = armed
        self.clock = clock or SystemClock()
        self.watch = SignalWatch(config, store)
        self.store, self.tracker, self.states = self.watch.store, self.watch.tracker, self.watch.states
        self.simulator = simulator  # a SimulatorServer in demo mode
        self.actor = actor or config.settings.actor or os_user()
        #: the timeline's lines, the newest TIMELINE_KEPT of them (older ones are in the journal)
        self.events = RecentLines()
        self._poll = poll
        self._theme_name = theme or (DRILL_THEME if mode == "DRILL" else DEFAULT_THEME)
        self.context = context or SourceContext(self.clock)  # the command line's holds its early GETs
        self.poller: Poller | None = None
        from cockpit.crashlog import Once

        self._reported = Once()  # errors already told: the last TOLD_KEPT distinct ones
        self._snapshot_asked = float("-inf")
        self._said_not_saved = False
        from cockpit.incident.desk import IncidentDesk
        from cockpit.incident.journal import SQLiteJournal

        self.journal = journal if journal is not None else SQLiteJournal(":memory:", clock=self.clock)
        self.desk = IncidentDesk(self.journal, self.clock, self.actor, config.service.name,
                                 config.incident.declare_on_critical, on_event=self.record, drill=mode == "DRILL",
                                 spool=spool, mode=mode)
        self.desk.change_window = float(config.settings.history)
        # Every journal read and write runs on its own thread, one at a time and in order.
        self.worker = JournalWorker(self.desk, self.journal, say=self.say,
                                    failed=lambda e: self.report_once("journal", e), changed=self.desk_changed)
        self._desk_refresh_queued = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._build_runner(executors)
        self.rescued = None  # the file unsaved changes went to at exit, if any
        self.tape = tape  # a cockpit.drill.tape.TapeWriter when recording (--record)
        self.tape_error = ""
        if replay is not None and (mode != "DRILL" or poll):
            raise ValueError("a replay runs in a DRILL app that does not poll")
        #: the drill's replay (a cockpit.drill.replay.Replayer, its clock is this app's) or scenario
        self.drill = DrillSession(config, self.clock, self.watch, replay=replay, scenario=scenario, expect=expect)
        self.replay, self.scenario = replay, scenario
        #: a team drill's part (cockpit.drill.team.Team): leads the tape's clock, or follows it
        self.team = team
        if team is not None:
            if replay is None:
                raise ValueError("a team drill replays a tape")
            if team.leads:
                team.leader, team.cockpit = self.actor, self.desk.cockpit
            else:
                self.desk.declare_on_critical = False  # the leader's cockpit declares; this one joins it
            self.desk.team = team.run
            self.desk.on_replaced = lambda ids: self.from_thread(
                self.events.keep_only, lambda line: line.payload.get("id") not in ids)
            self.drill.team = team
        self.desk.units = self.watch.units()

    # ------------------------------------------------------------ lifecycle

    def get_system_commands(self, screen):
        """The palette (ctrl+p): Textual's own, then every cockpit key that acts now, by
        what it does (declare, acknowledge, export, each configured action by its name...)."""
        from functools import partial

        from textual.actions import parse
        from textual.app import SystemCommand

        from screens.dashboard import DashboardScreen

        yield from super().get_system_commands(screen)
        if not isinstance(screen, DashboardScreen):
            return
        seen = set()
        for key, bindings in screen._bindings.key_to_bindings.items():
            for b in bindings:
                _, name, params = parse(b.action)
                if not b.description or b.action in seen or name in ("quit", "help") or b.action.startswith("app."):
                    continue
                seen.add(b.action)
                if screen.check_action(name, params) and screen.why_not(name, params) is None:
                    yield SystemCommand(b.tooltip or b.description, f"key {b.key_display or key}",
                                        partial(self.run_action, b.action, screen))

    def on_mount(self) -> None:
        for t in THEMES:
            if t.name == DRILL_THEME and self.mode != "DRILL":
                continue  # the drill's amber is for drills: never offered in a live or demo cockpit
            self.register_theme(t)
        if self._theme_name in self.available_themes:
            self.theme = self._theme_name
        else:
            self.theme = DEFAULT_THEME
            self.notify(f"Unknown theme {self._theme_name!r}; using {DEFAULT_THEME}.", severity="warning")
        from screens.dashboard import DashboardScreen

        self.push_screen(DashboardScreen())
        from screens.leaks import forget_styles

        self.screen_change_signal.subscribe(self, forget_styles)  # a dialog gone: let its lines go (Textual #6665)
        self._loop = asyncio.get_running_loop()
        self._app_context = contextvars.copy_context()  # callbacks from other threads run as the app
        self.worker.attach(self._loop)
        self.worker.start(self._adopts, self._announced)
        if self._poll:
            self.start_polling()
        if self.replay is not None:
            self._start_replay()
        if self.team is not None:
            self._team_tick()
            self.set_interval(TEAM_EVERY, self._team_tick, name="team")
        self.set_interval(self.config.settings.refresh, self._tick, name="refresh")
        self.desk_do(self.desk.keep_alive)
        self.set_interval(KEEP_ALIVE, lambda: self.desk_do(self.desk.keep_alive), name="keep-alive")

    def start_polling(self) -> None:
        sources = [build_source(s, self.context) for s in self.config.sources]
        self.poller = Poller(sources, self.on_readings)
        self.run_worker(self.poller.run(), name="poller", group="poller", exit_on_error=False)

    async def on_unmount(self) -> None:
        if self.poller is not None:
            await self.poller.aclose()
        await self.context.aclose()
        await asyncio.to_thread(self.worker.stop_listening)
        if self.team is not None and self.team.leads:  # the followers play on alone, and are told
            self.desk_do(self.team.write, self.journal, self.replay.position, self.replay.speed, True, True)
        self.runner.stopping.set()  # an action running now journals its outcome before the cockpit goes
        await asyncio.to_thread(self.runner.wait_idle, ACTION_EXIT_WAIT)
        self.snapshot_now()  # the readings since the last snapshot, for the postmortem
        self.desk_do(self.desk.leave)  # the other cockpits stop showing this one
        await self.journal_idle()  # what the responder did is written before the cockpit goes
        self.worker.shutdown()
        self.rescued = self._rescue()
        if self.tape is not None:
            try:
                self.tape.close()
            except OSError as e:
                self.tape_error = f"the tape {self.tape.path} could not be finished: {e.strerror or e}"

    def _rescue(self):
        """What the journal refused and never took, into a file the responder is told about."""
        from pathlib import Path

        from cockpit.incident.journal import default_path

        if not self.desk.unsaved:
            return None
        name = f"unsaved-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.jsonl"
        for folder in (default_path().parent, Path.cwd()):
            try:
                return self.desk.rescue(folder / name)
            except OSError:
                continue
        return None

    # ------------------------------------------------------------ actions

    def _build_runner(self, executors: dict | None) -> None:
        """Drills are built with the sandbox executors only; nothing else decides that later."""
        from actions import ActionRunner, real_executors, sandbox_executors

        if executors is None:
            # only the kinds this config uses: each kind's module is imported for its executor
            executors = sandbox_executors() if self.mode == "DRILL" else real_executors(
                sorted({a.kind for a in self.config.actions}))
        recorder = RunnerRecorder(self.worker, self.clock, say=partial(self.from_thread, self.say),
                                  changed=partial(self.from_thread, self.desk_changed))
        self.runner = ActionRunner(executors, recorder, self._signals_now)

    def action_guard(self, cfg) -> str:
        from actions import guard_for

        service = self.config.service
        return guard_for(cfg, service.environment, service.is_production, self.config.guards.environments)

    def _signals_now(self) -> dict[str, float]:
        """The key signals, read on the UI thread (the runner asks from its worker thread)."""
        if self._loop is None:
            return self.signal_values()
        return self.call_from_thread(self.signal_values)

    def from_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Schedule ``fn(*args, **kwargs)`` on the UI thread without waiting (safe while shutting down)."""
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(partial(fn, *args, **kwargs), context=self._app_context)
            except RuntimeError:
                pass  # the loop closed meanwhile

    # ------------------------------------------------------------ the journal thread

    def desk_do(self, fn: Callable[..., Any], *args: Any, then: Callable[[Any], None] | None = None) -> None:
        """Run a desk operation on the journal thread (see JournalWorker.do)."""
        self.worker.do(fn, *args, then=then)

    def desk_changed(self) -> None:
        """Redraw soon after the incident changed (one redraw for a burst of operations)."""
        if self._loop is not None and not self._desk_refresh_queued:
            self._desk_refresh_queued = True
            self.set_timer(0.02, self._desk_refresh)

    def _desk_refresh(self) -> None:
        self._desk_refresh_queued = False
        self.refresh_dashboard()

    async def journal_idle(self) -> None:
        """Wait until every journal operation asked for so far is done and shown."""
        await self.worker.idle()

    def _announced(self, what: str | None) -> None:
        """From the journal's listener thread: another cockpit wrote (an incident's events,
        or ``lease:<target>``: a target was taken or freed)."""
        if what and what.startswith("lease:"):
            self.from_thread(self.worker.refresh_leases)
        else:
            self.from_thread(self.follow_journal, True)

    @property
    def _adopts(self) -> bool:
        """Whether this cockpit takes up an incident another declared: live, or a team drill's."""
        return self.mode == "LIVE" or self.team is not None

    def follow_journal(self, announced: bool = False) -> None:
        """Show what other cockpits wrote (at once when announced, else looked for each tick)."""
        self.worker.follow(announced, adopt=self._adopts)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker failure lands here: shown, never a crash."""
        if event.state is WorkerState.ERROR:
            err = event.worker.error
            self.notify(f"{event.worker.name} failed: {type(err).__name__}: {err}", severity="error",
                        title="Background task failed", markup=False, timeout=10)
            if event.worker.group == "poller":
                self.set_timer(1.0, self.start_polling)

    # ------------------------------------------------------------ data

    def on_readings(self, source: str, readings: list[Reading]) -> None:
        """The poller's sink: store, evaluate crossings, mark the incident clock.
        Errors here are reported once and never stop the poller."""
        try:
            self._take(readings)
        except Exception as e:  # noqa: BLE001
            self.report_once("readings", e)
        if self.tape is not None:
            try:
                self.tape.readings(readings)
            except Exception as e:  # noqa: BLE001 - a full disk stops the tape, never the cockpit
                self.report_once("tape", e)

    def _take(self, readings: list[Reading]) -> None:
        taken = self.watch.take(readings)
        if taken.first:  # a panel's first data: draw it now rather than at the next tick
            self.call_later(self.refresh_dashboard)
        now = self.clock.now()
        due = self.desk.snapshot_due(now) and now - self._snapshot_asked >= SNAPSHOT_RETRY
        snapshot = self._snapshot() if due else None
        if taken.alerts or snapshot is not None:  # the poll's machine events: one journal transaction
            self.desk_do(partial(self.desk.from_poll, at=now), taken.alerts,
                         self.watch.suggestion() if taken.alerts else None, snapshot)

    def snapshot_now(self) -> None:
        """Journal the key signals' readings since the last snapshot (before a status change,
        an export or quitting, so the record holds every value seen until then)."""
        snapshot = self._snapshot()
        if snapshot is not None:
            self.desk_do(self.desk.snapshot, *snapshot)

    def _snapshot(self) -> tuple[dict, float, float] | None:
        """The key signals' readings since the last snapshot, as desk.snapshot takes them
        (None: no open incident, or nothing new)."""
        now = self.clock.now()
        since = self.desk.snapshot_since()
        if since is None:
            return None
        self._snapshot_asked = now
        doc = self.watch.record(since, now)
        return (doc, since, now) if any(doc["samples"].values()) else None

    def signal_panels(self):
        """(key, panel config, name on the timeline) of every numeric signal."""
        return self.watch.panels()

    @property
    def incident_start(self) -> float | None:
        """When the current incident was declared (derived from the journal)."""
        st = self.desk.state()
        return st.declared_at if st else None

    def signal_values(self) -> dict[str, float]:
        """The key signals as they read now, by series name."""
        return self.watch.values()

    def say(self, problem: str | None) -> None:
        """Show a refused or failed change as one line. While the journal is away the header
        counts what is kept: a "NOT SAVED" line is said once, not on every key."""
        if not problem:
            return
        if problem.startswith("NOT SAVED"):
            if self._said_not_saved:
                return
            self._said_not_saved = True
        self.notify(problem, severity="error", timeout=8)

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Every toast is plain text, cleaned: a name or message may come from a config, a
        target or a tape (``Restore [/var/backups/latest.sql]`` is not markup, an escape
        sequence is shown, not sent to the terminal)."""
        from cockpit.safetext import clean

        super().notify(clean(message, lines=True, limit=1000), title=clean(title, limit=200), severity=severity,
                       timeout=timeout, markup=False)

    def _fatal_error(self) -> None:
        """Textual's own handler prints a traceback with local variables (secrets among them)
        over the responder's terminal. Here: the traceback to the crash log, one line on
        the terminal."""
        import sys

        from rich.text import Text

        from cockpit import crashlog

        exc = sys.exc_info()[1] or self._exception
        path = crashlog.write(exc, "the dashboard") if exc is not None else None
        line = f"cockpit stopped on an unexpected error: {crashlog.one_line(exc) if exc else 'unknown'}"
        self._exit_renderables.append(Text(line + (f" (details in {path})" if path else "")))
        self._close_messages_no_wait()

    def record(self, ev: TimelineEvent) -> None:
        """A line for the timeline pane (the desk calls this for every journaled event, on
        the journal thread: RecentLines takes it under its lock, and the pane takes what is
        new with ``since``)."""
        self.events.append(ev)
        if self.tape is not None:
            try:
                self.tape.event(ev)
            except Exception as e:  # noqa: BLE001
                self.from_thread(self.report_once, "tape", e)

    def _tick(self) -> None:
        if self.desk.journal_error is None:
            self._said_not_saved = False  # the journal answers again: the next outage is said again
        if not self.journal.notifies:
            self.follow_journal()  # what another cockpit wrote to this journal file
        self.refresh_dashboard()
        if self.mode == "DRILL" and not self.drill.scored:
            self._drill_progress()

    def _drill_progress(self) -> None:
        """The scorecard comes when the trainee resolves the incident (or the tape ends, or
        q): a scenario whose service recovered only says so once."""
        st = self.desk.state()
        if st is not None and st.status == "resolved" and not isinstance(self.screen, ModalScreen):
            self.show_scorecard("the incident is resolved")
        elif (self.scenario is not None and not self.drill.recovery_told
                and self.drill.resolved(getattr(self.runner.executors.get("http"), "simulator", None))):
            self.drill.recovery_told = True
            self.notify("The simulated service has recovered. Finish as you would for real (status, update, "
                        "resolve); the scorecard comes when the incident is resolved, or with q.",
                        title="Drill", timeout=20)

    def refresh_dashboard(self) -> None:
        from screens.dashboard import DashboardScreen

        try:
            for screen in self.screen_stack:
                if isinstance(screen, DashboardScreen):
                    screen.refresh_data()
        except Exception as e:  # noqa: BLE001 - a drawing bug must not take the cockpit down mid-incident
            self.report_once("refresh", e)

    def report_once(self, where: str, exc: Exception) -> None:
        """Log an unexpected error and tell the user once per distinct error."""
        from cockpit import crashlog

        if not self._reported.first((where, type(exc).__name__, str(exc))):
            return
        path = crashlog.write(exc, where)
        self.notify(f"{crashlog.one_line(exc)}" + (f"; details in {path}" if path else ""),
                    title=f"Unexpected error in {where}; polling continues", severity="error",
                    markup=False, timeout=15)

    # ------------------------------------------------------------ drill scorecard

    async def action_quit(self) -> None:
        """In a drill, q first shows the scorecard (its own q then quits)."""
        if self.mode == "DRILL" and not self.drill.scored:
            self.show_scorecard("ended with q")
            return
        await super().action_quit()

    def show_scorecard(self, why: str) -> None:
        """Score the drill, journal the scorecard (the postmortem's drill appendix), show it."""
        from screens.scorecard import ScorecardScreen

        doc = self.drill.scorecard(why, self.desk.state())
        if self.desk.current and (self.team is None or self.team.leads):  # a team's, once: the leader's
            self.desk_do(self.desk.record_scorecard, doc)

        def done(quit_now: bool | None) -> None:
            if quit_now:
                self.exit()

        self.push_screen(ScorecardScreen(doc), done)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # On a dialog, q belongs to the dialog (it closes help; it is a letter in a text box).
        if action == "quit" and isinstance(self.screen, ModalScreen):
            return False
        if action.startswith("drill_"):
            return self.replay is not None and not isinstance(self.screen, ModalScreen)
        return True

    # ------------------------------------------------------------ drill replay

    def _start_replay(self) -> None:
        self.replay.on_ghost = self.events.append
        self.replay.attach(self.on_readings, float(self.config.settings.history))
        self._replay_wall = time.monotonic()
        self.set_interval(0.1, self._replay_tick, name="replay")

    def _replay_tick(self) -> None:
        now = time.monotonic()
        elapsed, self._replay_wall = now - self._replay_wall, now
        moved, problem = self.drill.advance(elapsed)
        if problem:  # a frame that does not decode: the replay ends there, the cockpit stays
            self.notify(problem, severity="error", title="Tape damaged", timeout=30)
        if moved:
            self.refresh_dashboard()
        if self.drill.tape_over and not self.drill.scored and not isinstance(self.screen, ModalScreen):
            self.show_scorecard("the tape ended")

    def drill_status(self, short: bool = False) -> str:
        """What the header says of the drill."""
        return self.drill.status(short)

    # ------------------------------------------------------------ team drill

    def _team_tick(self) -> None:
        """The leader writes its clock; a follower reads the leader's and moves to it."""
        team = self.team
        if team.leads:
            self._team_publish()
        else:
            self.desk_do(team.read, self.journal, then=self._team_follow)

    def _team_publish(self) -> None:
        r = self.replay
        if self.team is not None and self.team.leads:
            self.desk_do(self.team.write, self.journal, r.position, r.speed, r.paused)

    def _team_follow(self, found) -> None:
        if found is None:  # the journal did not answer (shown in the header); the tape plays on
            return
        at, say = self.team.follow(self.replay, found)
        if say:
            self.notify(say, title="Team drill", timeout=15)
        if at is not None:
            self.drill_seek(at)
        self.refresh_dashboard()

    def _pace_refused(self) -> bool:
        """A team drill's follower does not move the tape: the leader's clock does."""
        if self.team is None or self.team.steers:
            return False
        self.say(self.team.refusal())
        return True

    def action_drill_pause(self) -> None:
        if self._pace_refused():
            return
        self.drill.pause()
        self._team_publish()
        self.refresh_dashboard()

    def action_drill_speed(self, direction: int) -> None:
        if self._pace_refused():
            return
        self.notify(f"Replay at x{self.drill.speed(direction):g}", timeout=2)
        self._team_publish()
        self.refresh_dashboard()

    def action_drill_step(self, direction: int) -> None:
        if self._pace_refused():
            return
        if direction > 0:
            self.drill.step(direction)
        else:  # one interval back, paused there: a rewind like any other
            self.replay.paused = True
            self.drill_seek(self.replay.position - self.drill.interval())
        self._team_publish()
        self.refresh_dashboard()

    def action_drill_ghost(self) -> None:
        from screens.panels import TimelinePane

        pane = self.screen.query_one(TimelinePane)
        pane.ghosts = not pane.ghosts
        pane.set_filter(pane.filter, self.events)
        self.notify("Ghost on: the original responders' acts show as '◇ was:' lines" if pane.ghosts
                    else "Ghost off", timeout=3)

    def action_drill_seek(self) -> None:
        from cockpit.drill.replay import parse_position
        from screens.prompt import TextPrompt

        if self._pace_refused():
            return
        r = self.replay

        def go(text: str | None) -> None:
            if text is None:
                return
            try:
                at = parse_position(text, r.begin, r.end)
            except ValueError as e:
                self.say(f"Go to: {e}")
                return
            self.drill_seek(at)
            self._team_publish()
            self.refresh_dashboard()

        self.push_screen(TextPrompt("Go to a time on the tape", "90, 5m, 1h30m from its start; or 03:12 (UTC)",
                                    f"the tape runs {r.end - r.begin:.0f} s · enter goes · esc cancels"), go)

    def drill_seek(self, at: float) -> None:
        """Show the tape as it was at ``at`` (see DrillSession.seek). Back, the timeline
        lets go of what came later; and when the trainee's incident had moved on after ``at``,
        that attempt ends and a new one starts from the incident as it stood then
        (IncidentDesk.new_attempt), the ended one kept for the scorecard."""
        from cockpit.incident.desk import CARRIED, attempt_ends

        back = at < self.replay.position
        st = self.desk.state()
        self.drill.seek(at)
        if not back:
            return
        if self.team is not None and not self.team.leads:
            # the leader's cockpit ends the attempt; this one takes up the next from the journal
            self.events.keep_only(lambda line: line.ts <= at)
        elif attempt_ends(st, at):
            self.drill.attempts.append(st)
            # the new attempt shows these itself (the lines that showed them, by their ids); before
            # the declaration, what came first is the episode again and its lines stay
            again = self.desk.lines_of([e.id for e in st.events if e.kind in CARRIED]) if st.declared_at <= at \
                else set()
            self.events.keep_only(lambda line: line.ts <= at and line.payload.get("id") not in again)
            self.desk_do(self.desk.new_attempt, at)
        else:
            self.events.keep_only(lambda line: line.ts <= at)

    def action_help(self) -> None:
        from screens.help import HelpScreen, describe_bindings

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(describe_bindings(self.active_bindings)))

    def toggle_simulator(self) -> None:
        if self.simulator is None:
            return
        self._toggle_simulator()

    @work(thread=True, exclusive=True, group="simulator", exit_on_error=False)
    def _toggle_simulator(self) -> None:
        server = self.simulator
        if server.running:
            server.stop()
            msg = f"Simulated service stopped: {server.url} now refuses connections. Press K to revive it."
        else:
            server.start()
            msg = f"Simulated service back on {server.url}."
        self.call_from_thread(self.notify, msg, timeout=4)


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "responder"
