"""The `cockpit` command line. Textual is imported only by the commands that draw."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from cockpit import __version__

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cockpit",
        description="Incident cockpit: live panels, remediation actions, timeline and drills for on-call engineers.",
    )
    p.add_argument("--version", action="version", version=f"cockpit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run against a built-in simulated service (no config, no cloud)",
                          description="Start a simulated service on a free loopback port and watch it. "
                          "A bad deploy lands a short while after start; press K to kill and revive the service.")
    demo.add_argument("--seed", type=int, default=7, help="simulator random seed (default 7)")
    demo.add_argument("--incident-at", type=float, default=20.0, metavar="SECONDS",
                      help="seconds after start when the bad deploy lands (default 20; negative for none)")
    demo.add_argument("--port", type=int, default=0, help="port for the simulated service (default: a free one)")
    demo.add_argument("--theme", default=None, help="theme name (cockpit-dark, cockpit-high-contrast, ...)")
    demo.add_argument("--record", type=Path, default=None, metavar="FILE",
                      help="record every reading and timeline event to this new tape file (for drills)")

    drill = sub.add_parser("drill", help="replay a recorded tape as a drill (nothing real is called)",
                           description="Replay a tape made with --record through the same dashboard, on a drill "
                           "clock: space pauses, + and - change the speed (1x to 60x), ] and [ step one interval, "
                           "g goes to a time, G shows the original responders' acts (ghost). Every action key "
                           "runs against the sandbox: nothing real is called, and nothing is polled. The drill's "
                           "incident, notes and actions go to its own journal (drill-journal.db, or --journal). "
                           "A team drill: the first cockpit runs `cockpit drill TAPE --journal URL` and leads the "
                           "tape's clock; the others run the same with --join and follow it, on one drill incident; "
                           "the scorecard covers the team.")
    drill.add_argument("tape", nargs="?", metavar="SCENARIO|TAPE",
                       help="a built-in scenario (see --list), a scenario .toml file, or a tape made with --record")
    drill.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    drill.add_argument("--speed", type=float, default=1.0, help="replay speed, 1 to 60 (default 1)")
    drill.add_argument("--from", dest="start", default=None, metavar="TIME",
                       help="start here: an offset into the tape (90, 5m, 1h30m) or a UTC time (03:12, ISO 8601)")
    drill.add_argument("--expect", default=None, metavar="SCENARIO",
                       help="score a tape drill against a scenario's targets, severity and fixes (a built-in "
                            "name or a .toml) instead of the recorded responders'")
    drill.add_argument("--journal", default=None, metavar="FILE|URL",
                       help="the drill's journal: a SQLite file or a shared postgresql:// URL (or env:NAME holding "
                            "one); a tape drill on it is a team drill, led by this cockpit unless --join")
    drill.add_argument("--join", action="store_true",
                       help="join the team drill of this tape running on --journal: follow its leader's clock")
    drill.add_argument("--as", dest="actor", default=None, metavar="NAME",
                       help="your name in the drill's journal and scorecard (default: your login name)")
    drill.add_argument("--theme", default=None, help="theme name")

    run = sub.add_parser("run", help="watch the service described by a config file",
                         description="Watch a live service. Starts READ-ONLY: the configured actions are "
                         "shown but greyed out; --armed lets them run (each still behind its confirmation).")
    run.add_argument("-c", "--config", required=True, type=Path, help="TOML config file")
    run.add_argument("--armed", action="store_true", help="allow the configured actions to run")
    run.add_argument("--theme", default=None, help="theme name")
    run.add_argument("--record", type=Path, default=None, metavar="FILE",
                     help="record every reading and timeline event to this new tape file (for drills)")

    check = sub.add_parser("check", help="validate a config file and reach every source once",
                           description="Validate a config and poll every source once. Exit 0 when every "
                           "critical source answered, 1 when one failed, 2 when the config is invalid.")
    check.add_argument("-c", "--config", required=True, type=Path, help="TOML config file")
    check.add_argument("--offline", action="store_true", help="only validate; do not contact any source")

    schema = sub.add_parser("schema", help="print the config file's JSON schema",
                            description="Print the JSON schema of the config file, or its Markdown reference.")
    schema.add_argument("--markdown", action="store_true", help="print the Markdown config reference instead")
    schema.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")

    export = sub.add_parser("export", help="write an incident's postmortem (Markdown or JSON)",
                            description="Build the postmortem of INCIDENT from the journal.")
    export.add_argument("incident", help="incident id, e.g. INC-20261123-0312-ab12 (see `cockpit journal list`)")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    export.add_argument("--format", choices=("md", "json"), default="md", help="md (default) or json")
    _journal_options(export)

    journal = sub.add_parser("journal", help="inspect the incident journal",
                             description="Work with the incident journal (the embedded SQLite file by default).")
    jsub = journal.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    verify = jsub.add_parser("verify", help="check the hash chain of every (or one) incident",
                             description="Recompute each event's hash and its link to the one before, and check "
                             "every head recorded beside the journal (the heads file, the shared journal's heads "
                             "table) so that removed events, removed incidents and a cut-short journal are found. "
                             "Exit 0 when intact, 1 when an event was changed, removed, reordered or cut short "
                             "(or an incident has no head to check it against), 2 when the journal cannot be read "
                             "(missing, not a journal, damaged, unknown incident). A journal on a read-only "
                             "filesystem is read from a temporary copy.")
    verify.add_argument("incident", nargs="?", help="only this incident")
    verify.add_argument("--head", action="append", metavar="HASH",
                        help="a head printed by `cockpit export` (its hash, or its first 16 or more characters): "
                        "the journal must still hold that event, unchanged (repeatable)")
    _journal_options(verify)
    jlist = jsub.add_parser("list", help="list the incidents in the journal",
                            description="One line per incident: id, status, severity, declared, title.")
    _journal_options(jlist)
    jimport = jsub.add_parser("import", help="write into the journal what a cockpit saved at exit",
                              description="Write the events of an unsaved-*.jsonl file (what a cockpit could not "
                              "journal before it stopped) into the journal, in order, with the times they "
                              "happened. Events already there (same id) are not written twice, so importing a "
                              "file again, or after the cockpit merged its spool, is harmless. Exit 0 when every "
                              "event is in the journal, 1 when the journal refused one, 2 when the file cannot be "
                              "used (nothing is written then).")
    jimport.add_argument("file", type=Path, help="an unsaved-<time>.jsonl file")
    jimport.add_argument("--journal", default=None, metavar="JOURNAL", help=JOURNAL_HELP)

    sim = sub.add_parser("simulate", help="serve the simulated service alone (for examples/demo.toml)",
                         description="Serve the simulator's /health, /health/component/<name> and /metrics "
                         "on 127.0.0.1 until interrupted.")
    sim.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    sim.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    sim.add_argument("--incident-at", type=float, default=20.0, metavar="SECONDS",
                     help="seconds after start when the bad deploy lands (default 20; negative for none)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    handler = {"demo": cmd_demo, "run": cmd_run, "check": cmd_check, "schema": cmd_schema,
               "simulate": cmd_simulate, "journal": cmd_journal, "export": cmd_export, "drill": cmd_drill}
    try:
        return handler[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `cockpit journal list | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141  # as a shell reports a writer stopped by SIGPIPE
    except Exception as e:  # noqa: BLE001 - one line for the user, the traceback to the log
        from cockpit import crashlog

        path = crashlog.write(e, f"cockpit {args.command}")
        _err(f"cockpit {args.command}: unexpected error: {crashlog.one_line(e)}"
             + (f" (details in {path})" if path else ""))
        return EXIT_FAILED


JOURNAL_HELP = ("SQLite file, or postgresql:// URL (or env:NAME holding it) of a shared journal "
                "(default: the embedded file)")


def _journal_options(parser) -> None:
    """--journal, or the demo's or the drills' own journal file."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--journal", default=None, metavar="JOURNAL", help=JOURNAL_HELP)
    which.add_argument("--demo", action="store_true", help="the journal of `cockpit demo` (demo-journal.db)")
    which.add_argument("--drill", action="store_true",
                       help="the journal of `cockpit drill` (drill-journal.db, unless it was given --journal)")


def _err(msg: str) -> None:
    from cockpit.safetext import clean

    print(clean(msg, lines=True, limit=10_000), file=sys.stderr)


def _out(text: str, end: str = "\n") -> None:
    """Everything the CLI prints goes through the sanitiser and the redactor: journal rows,
    exports and check results carry outside text."""
    from cockpit.safetext import clean

    sys.stdout.write(clean(text, lines=True, limit=1 << 30) + end)


def _load(path: Path):
    from cockpit.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        for line in e.problems:
            _err(line)
        n = len(e.problems)
        unreadable = any(why in p for p in e.problems for why in ("TOML syntax error", "file not found", ": cannot read:"))
        hint = "; `cockpit schema --markdown` lists every key" if not unreadable and any(
            "key" in p for p in e.problems) else ""
        _err(f"cockpit: {n} problem{'s' if n != 1 else ''} in {path}{hint}.")
        return None


def _serve_simulator(args, hint: str):
    """Start the simulator on 127.0.0.1:args.port; None (after one line on stderr) if it cannot listen."""
    from cockpit.drill.simulator import Fault, Simulator, SimulatorServer

    faults = () if args.incident_at < 0 else (Fault("bad_deploy", at=args.incident_at, version="v1.5.0"),)
    try:
        return SimulatorServer(Simulator(seed=args.seed, faults=faults), port=args.port).start()
    except OSError as e:
        _err(f"cockpit {args.command}: cannot listen on 127.0.0.1:{args.port}: {e.strerror or e}; {hint}")
        return None


def _journal(spec: str | None, command: str, *, demo: bool = False, drill: bool = False, readonly: bool = False):
    """Open a journal (a SQLite file, or a postgresql:// URL / env:NAME for the shared one);
    None, after one line on stderr, if it cannot be opened. ``readonly``: it must exist
    already and nothing is created or changed (verify, list, export). The demo and drills
    keep their own files, away from real incidents."""
    from cockpit.incident.journal import JournalError, default_path
    from cockpit.incident.journals import open_journal

    default = default_path().with_name("demo-journal.db" if demo else "drill-journal.db" if drill else
                                       default_path().name)
    try:
        journal = open_journal(spec, default=default, readonly=readonly)
        if readonly:
            journal.incidents()  # a shared journal connects here: fail now, with one line
        return journal
    except JournalError as e:
        hint = ""
        if "no journal there" in str(e):
            others = [f"--{flag} ({path})" for flag, path in _own_journals(default) if path.exists()]
            hint = "; pass --journal FILE or a postgresql:// URL" + (
                f", or {' or '.join(others)}" if others else "")
        _err(f"cockpit {command}: {e}{hint}")
        return None


def _own_journals(but) -> list[tuple[str, Path]]:
    """The demo's and the drills' journal files, other than ``but``."""
    from cockpit.incident.journal import default_path

    home = default_path()
    return [(flag, home.with_name(f"{flag}-journal.db")) for flag in ("demo", "drill")
            if home.with_name(f"{flag}-journal.db") != but]


def _early_polls(config):
    """The sources' context, with their first GETs already on their way and the HTTP
    client's import started beside Textual's (see SourceContext.start_early, warm_http)."""
    from cockpit.signals.sources import SourceContext, build_source
    from cockpit.signals.sources._base import warm_http

    context = SourceContext()
    sources = [build_source(s, context) for s in config.sources]
    if any(s.uses_http for s in sources):
        context.start_early(sources)
        warm_http()
    return context


def cmd_demo(args) -> int:
    from cockpit.drill.demo import demo_config

    journal = _journal(None, "demo", demo=True)
    if journal is None:
        return EXIT_CONFIG
    server = _serve_simulator(args, "choose another --port or leave it out for a free one.")
    if server is None:
        return EXIT_FAILED
    try:
        config = demo_config(server.url)
        context = _early_polls(config)
        from screens.app import CockpitApp

        tape = _recording(args.record, config, "DEMO")
        if args.record is not None and tape is None:
            return EXIT_CONFIG
        app = CockpitApp(config, mode="DEMO", armed=True, simulator=server, theme=args.theme, journal=journal,
                         tape=tape, context=context)
        return _run(app)
    finally:
        server.stop()


def cmd_run(args) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    context = _early_polls(config)
    journal = _journal(config.incident.journal, "run")
    if journal is None:
        return EXIT_CONFIG
    tape = _recording(args.record, config, "LIVE")
    if args.record is not None and tape is None:
        return EXIT_CONFIG
    from screens.app import CockpitApp
    from cockpit.incident.spool import Spool, spool_path

    app = CockpitApp(config, mode="LIVE", armed=args.armed, theme=args.theme, journal=journal, tape=tape,
                     spool=Spool(spool_path(journal.where)), context=context)
    return _run(app)


def cmd_drill(args) -> int:
    from cockpit.drill import scenario

    if args.list:
        for name, description in scenario.listing():
            _out(f"{name:<20} {description}")
        return EXIT_OK
    if not args.tape:
        _err("cockpit drill: name a scenario (cockpit drill --list) or a tape made with --record")
        return EXIT_CONFIG
    from cockpit.safetext import SecretError, is_secret_ref, lock_secrets, resolve_secret

    if args.join and not args.journal:
        _err("cockpit drill: --join needs --journal, the shared journal the team drill runs on")
        return EXIT_CONFIG
    if args.journal and is_secret_ref(args.journal):  # the trainee's own reference, read before the lock
        try:
            args.journal = resolve_secret(args.journal, "--journal")
        except SecretError as e:
            _err(f"cockpit drill: --journal: {e}")
            return EXIT_CONFIG
    lock_secrets("a drill reads no secret and sends nothing")
    if scenario.is_scenario(args.tape):
        if args.join:
            _err("cockpit drill: --join follows a team drill of a tape; a scenario drill runs on its own simulator")
            return EXIT_CONFIG
        return _scenario_drill(args)
    args.tape = Path(args.tape)
    from cockpit.config import ConfigError
    from cockpit.drill.replay import parse_position
    from cockpit.drill.tape import Tape, TapeError

    if not 1 <= args.speed <= 60:
        _err(f"cockpit drill: --speed {args.speed:g} is outside 1 to 60")
        return EXIT_CONFIG
    if not args.tape.exists() and (close := scenario.closest(str(args.tape))):
        _err(f"cockpit drill: {args.tape} is neither a built-in scenario nor a tape; did you mean "
             f"{' or '.join(close)}? (cockpit drill --list names them all)")
        return EXIT_CONFIG
    try:
        tape = Tape.open(args.tape)
    except TapeError as e:
        hint = "" if args.tape.exists() else " (a built-in scenario? cockpit drill --list names them)"
        _err(f"cockpit drill: {e}{hint}")
        return EXIT_CONFIG
    if tape.damage:
        _err(f"cockpit drill: {tape.path}: {tape.damage}; replaying what was recorded before that")
    start = None
    if args.start:
        try:
            start = parse_position(args.start, tape.start, tape.end)
        except ValueError as e:
            _err(f"cockpit drill: --from {e}")
            return EXIT_CONFIG
    expect = None
    if args.expect:
        try:
            expect = scenario.load(args.expect)
        except scenario.ScenarioError as e:
            _err(f"cockpit drill: --expect {e}")
            return EXIT_CONFIG
    journal = _journal(args.journal, "drill", drill=True)
    if journal is None:
        return EXIT_CONFIG
    team = None
    if args.journal:  # a team drill: this cockpit leads it, or (--join) follows its leader
        from cockpit.drill.team import TeamError, take_part
        from cockpit.incident.journal import JournalError

        try:
            team, joined_at, speed = take_part(tape, journal, join=args.join)
        except (TeamError, JournalError) as e:
            _err(f"cockpit drill: {e}")
            return EXIT_CONFIG
        if args.join:
            if start is not None:
                _err("cockpit drill: --from is ignored: a team drill's tape starts where its leader's is")
            start, args.speed = joined_at, speed
    try:
        app = tape_drill(tape, journal, speed=args.speed, start=start, theme=args.theme, expect=expect, team=team,
                         actor=args.actor)
    except ConfigError as e:
        _err(f"cockpit drill: {e.problems[0] if e.problems else e}")
        return EXIT_CONFIG
    except TapeError as e:
        _err(f"cockpit drill: {e}")
        return EXIT_CONFIG
    return _run(app)


def tape_drill(tape, journal, *, speed: float = 1.0, start: float | None = None, theme: str | None = None,
               expect=None, team=None, actor: str | None = None):
    """The app `cockpit drill TAPE` runs. A tape is data, never configuration: its recorded
    config only draws the dashboard (its env: references are not read, in this process
    nothing reads one: :func:`cockpit.safetext.lock_secrets`), nothing is polled, every action
    goes to the sandbox and every update to the drill's journal. Raises ConfigError or
    TapeError."""
    from screens.app import CockpitApp, os_user
    from cockpit.clock import DrillClock
    from cockpit.config import config_from_dict
    from cockpit.safetext import lock_secrets
    from cockpit.drill.replay import Replayer

    lock_secrets("a drill reads no secret and sends nothing")
    config = config_from_dict(tape.header.get("config") or {}, f"{tape.path} (its recorded config)", {},
                              secrets=False)
    clock = DrillClock(tape.start)
    replay = Replayer(tape, clock, speed=speed, start=start)
    # the trainee's name: never the recorded config's (the original responder's)
    return CockpitApp(config, mode="DRILL", armed=True, clock=clock, poll=False, theme=theme, journal=journal,
                      replay=replay, expect=expect, team=team, actor=actor or os_user())


def _scenario_drill(args) -> int:
    """The simulator with the scenario's faults, reacting to the trainee's actions."""
    from actions.sandbox import SimulatorExecutor
    from cockpit.drill.scenario import ScenarioError, load
    from cockpit.drill.simulator import Simulator, SimulatorServer

    try:
        sc = load(args.tape)
    except ScenarioError as e:
        _err(f"cockpit drill: {e}")
        return EXIT_CONFIG
    journal = _journal(args.journal, "drill", drill=True)
    if journal is None:
        return EXIT_CONFIG
    server = SimulatorServer(Simulator(seed=sc.scenario.seed, faults=sc.sim_faults())).start()
    try:
        from screens.app import CockpitApp
        from cockpit.drill.demo import demo_config

        app = CockpitApp(demo_config(server.url), mode="DRILL", armed=True, theme=args.theme, journal=journal,
                         executors={"http": SimulatorExecutor(server.sim)}, scenario=sc, actor=args.actor)
        return _run(app)
    finally:
        server.stop()


def _recording(path: Path | None, config, mode: str):
    """The tape writer for --record, or None (with the reason printed) when it cannot be made."""
    if path is None:
        return None
    import time

    from cockpit.drill.tape import TapeError, start_recording

    try:
        return start_recording(path, config, mode, time.time())
    except TapeError as e:
        _err(f"cockpit: --record {e}")
        return None


def _run(app) -> int:
    """Run the dashboard; afterwards, say where anything unsaved or recorded went. Exit 1
    when the journal did not take everything: a script or a wrapper notices."""
    app.run()
    _told_rescue(app)
    if app.rescued is not None:
        return app.return_code or EXIT_FAILED
    return app.return_code or EXIT_OK


def _told_rescue(app) -> None:
    if app.rescued is not None:
        _err(f"the journal refused {len(app.desk.unsaved)} change(s) until the end; they are in {app.rescued} "
             f"(and in the local spool, merged when a cockpit next starts on this journal); to write them "
             f"yourself: cockpit journal import {app.rescued}")
    if app.tape is not None:
        _err(app.tape_error or f"recorded {app.tape.path}")


def cmd_check(args) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    _out(f"{args.config}: config valid ({len(config.sources)} sources)")
    if args.offline:
        return EXIT_OK
    from cockpit.signals.check import check_sources, format_table

    results = asyncio.run(check_sources(config))
    _out(format_table(results))
    failed = [r for r in results if not r.ok and r.critical]
    return EXIT_FAILED if failed else EXIT_OK


def cmd_schema(args) -> int:
    from cockpit.config import schema
    from cockpit.reference import markdown_reference

    text = markdown_reference() if args.markdown else json.dumps(schema(), indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        _out(text, end="")
    return EXIT_OK


def cmd_export(args) -> int:
    import time

    from cockpit.incident.state import fold
    from cockpit.incident.journal import JournalError
    from cockpit.incident.postmortem import to_json, to_markdown, write_markdown

    journal = _journal(args.journal, "export", readonly=True, demo=args.demo, drill=args.drill)
    if journal is None:
        return EXIT_CONFIG
    try:
        events = journal.events(args.incident)
        if not events:
            known = journal.incidents()[-5:]
            _err(f"cockpit export: no incident {args.incident} in {journal.where}"
                 + (f"; recent: {', '.join(known)}" if known else "; the journal is empty")
                 + _found_elsewhere(args.incident, journal.where))
            return EXIT_CONFIG
        problems = journal.verify(args.incident)
    except JournalError as e:
        _err(f"cockpit export: {e}")
        return EXIT_CONFIG
    state = fold(args.incident, events)
    head = events[-1]
    if args.format == "json":
        text = to_json(state, time.time(), head=head)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        else:
            _out(text, end="")
    elif args.output:
        charts = write_markdown(state, time.time(), args.output, head=head)
        _out(f"wrote {args.output}" + (f" and {len(charts)} chart(s) beside it" if charts else ""))
    else:
        _out(to_markdown(state, time.time(), head=head), end="")
    if args.output:
        _out(f"head of {args.incident}: #{head.seq} {head.hash} (check it later with "
              f"`cockpit journal verify {args.incident} --head {head.hash[:16]}`)")
    for p in problems:
        _err(f"warning: {p}")
    return EXIT_OK


def _found_elsewhere(incident: str, where) -> str:
    """"; it is in the demo's journal: add --demo" when the demo's or the drills' journal
    file (not the one looked in) holds ``incident``."""
    from cockpit.incident.journal import JournalError, SQLiteJournal

    for flag, path in _own_journals(Path(str(where))):
        if not path.exists():
            continue
        try:
            other = SQLiteJournal(path, readonly=True)
            try:
                if incident in other.incidents():
                    return f"; it is in {path}: add --{flag}"
            finally:
                other.close()
        except JournalError:
            continue
    return ""


def cmd_journal(args) -> int:
    from cockpit.incident.journal import JournalError

    if args.journal_command == "import":
        return _journal_import(args)
    journal = _journal(args.journal, "journal", readonly=True, demo=args.demo, drill=args.drill)
    if journal is None:
        return EXIT_CONFIG
    try:
        if args.journal_command == "list":
            return _journal_list(journal)
        return _journal_verify(journal, args.incident, args.head or [])
    except JournalError as e:
        _err(f"cockpit journal: {e}")
        return EXIT_CONFIG
    finally:
        journal.close()


def _journal_import(args) -> int:
    """Every line is checked before anything is written: a file that cannot be used
    changes nothing."""
    from cockpit.incident.journal import KINDS, JournalError

    rows = []
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        _err(f"cockpit journal import: {args.file}: cannot read it: {getattr(e, 'strerror', None) or e}")
        return EXIT_CONFIG
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ok = (isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("incident"), str)
                  and row.get("kind") in KINDS and isinstance(row.get("payload"), dict)
                  and isinstance(row.get("at"), (int, float)) and isinstance(row.get("actor", ""), str))
        except ValueError:
            ok = False
        if not ok:
            _err(f"cockpit journal import: {args.file}, line {n}: not an event the cockpit saved (id, incident, "
                 "kind, at, actor, payload); nothing was written")
            return EXIT_CONFIG
        rows.append(row)
    journal = _journal(args.journal, "journal import")
    if journal is None:
        return EXIT_CONFIG
    new = old = 0
    try:
        for row in rows:
            asked = journal.clock.now()
            stored = journal.append(row["incident"], row["kind"], row["payload"], actor=row.get("actor") or None,
                                    ts=float(row["at"]), pinned=bool(row.get("pinned")), id=row["id"])
            if stored.written is not None and stored.written >= asked:  # written by this call
                new += 1
            else:
                old += 1
    except JournalError as e:
        _err(f"cockpit journal import: {e}; {new} event(s) were written before it, the rest were not")
        return EXIT_FAILED
    finally:
        journal.close()
    incidents = sorted({r["incident"] for r in rows})
    _out(f"{args.file}: {len(rows)} event(s) of {', '.join(incidents) or 'no incident'} are in {journal.where} "
         f"({new} written now, {old} were there already)")
    return EXIT_OK


def _journal_list(journal) -> int:
    from cockpit.clock import utc
    from cockpit.incident.state import fold

    for inc in journal.incidents():
        st = fold(inc, journal.events(inc))
        _out(f"{inc}  {st.status:<12} {st.severity or '—':<3} {utc(st.declared_at):%Y-%m-%d %H:%M} UTC  "
              f"{st.title}{'  (drill)' if st.drill else ''}")
    return EXIT_OK


def _journal_verify(journal, incident: str | None, heads: list[str]) -> int:
    """Exit 0 when every incident's chain is whole and sealed by a recorded head; 1 when
    something was changed, removed, reordered or cut short (or cannot be shown not to
    have been: unsealed); 2 (raised) when the journal cannot be read."""
    report = journal.check(incident, heads)
    for line in report.all_problems:
        _out(line)
    for c in report.incidents:
        if c.unsealed_tail:
            _out(f"incident {c.incident}: note: {c.unsealed_tail} event(s) after its last recorded head, their "
                  "chain intact (a cockpit stopped between writing and sealing them, or they were added outside it)")
        if c.events and not c.sealed and not c.problems:
            _out(f"incident {c.incident}: UNSEALED: no recorded head matches it, so removal from its end cannot be "
                  "ruled out; pass --head HASH from its export")
    for note in report.notes:
        _out(f"note: {note}")
    total = sum(c.events for c in report.incidents)
    n = len(report.incidents)
    problems = len(report.all_problems)
    if problems:
        verdict = f"{problems} PROBLEM{'S' if problems != 1 else ''}"
    elif not n:
        verdict = "nothing recorded, nothing to verify"
    elif report.intact:
        verdict = "INTACT"
    else:
        verdict = "UNSEALED"
    _out(f"{report.where}: {n} incident(s), {total} event(s): chain {verdict}")
    return EXIT_OK if report.intact else EXIT_FAILED


def cmd_simulate(args) -> int:
    import threading

    server = _serve_simulator(args, "choose another --port.")
    if server is None:
        return EXIT_FAILED
    _out(f"simulated service on {server.url} (/health, /health/component/<name>, /metrics); ctrl+c stops it")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    finally:
        server.stop()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
