"""The `cockpit` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cockpit.drill.demo import demo_raw

ROOT = Path(__file__).resolve().parent.parent
SUBCOMMANDS = ["demo", "run", "check", "schema", "simulate", "journal"]


def cockpit_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m cockpit.cli``."""
    script = Path(sys.executable).with_name("cockpit")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "cockpit.cli"]


def cockpit(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [*cockpit_command(), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


def config_for(base_url: str) -> dict:
    """The demo config with generous timeouts: a slow CI machine must not turn
    "connection refused" into "timed out"."""
    raw = demo_raw(base_url)
    for source in raw["sources"]:
        source["timeout"] = 5.0
    return raw


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


# ---------------------------------------------------------------- check


def test_check_invalid_config_exits_2_with_one_line_per_problem(write_config):
    raw = demo_raw("http://127.0.0.1:1")
    raw["sources"][0]["intervall"] = 2.0  # typo
    raw["sources"][2]["timeout"] = "soon"  # wrong type
    path = write_config(raw)
    result = cockpit("check", "-c", str(path))
    no_traceback(result)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{path}: sources[0].intervall: unknown key (did you mean 'interval'?)",
        f"{path}: sources[2].timeout: expected a number, got 'soon'",
        f"cockpit: 2 problems in {path}; `cockpit schema --markdown` lists every key.",
    ], result.stderr
    assert "connection" not in result.stdout, "an invalid config must not be polled"


def test_check_missing_file_exits_2_with_one_line(tmp_path):
    path = tmp_path / "missing.toml"
    result = cockpit("check", "-c", str(path))
    no_traceback(result)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"{path}: file not found", f"cockpit: 1 problem in {path}."]


def test_check_toml_syntax_error_exits_2(write_config):
    path = write_config("[service\nname = 'x'\n")
    result = cockpit("check", "-c", str(path))
    no_traceback(result)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(f"{path}: TOML syntax error")
    # a syntax error that says "key" is not a key the schema lacks: no schema hint (issue 17)
    path = write_config("foo\n")
    result = cockpit("check", "-c", str(path))
    assert result.returncode == 2 and result.stderr.splitlines() == [
        f"{path}: TOML syntax error: Expected '=' after a key in a key/value pair (at line 1, column 4)",
        f"cockpit: 1 problem in {path}."]


def test_check_against_running_simulator_exits_0(sim_server, write_config):
    sim_server.sim.clock.advance(10)  # some traffic counted; the bad deploy lands at 20 s
    path = write_config(config_for(sim_server.url))
    result = cockpit("check", "-c", str(path))
    no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert out[0] == f"{path}: config valid (3 sources)"
    assert out[1].split() == ["SOURCE", "KIND", "RESULT", "LATENCY", "VALUE", "OR", "ERROR"]
    rows = {line.split()[0]: line.split() for line in out[2:]}
    assert set(rows) == {"health", "components", "metrics"}
    assert rows["health"][1:3] == ["http_health", "ok"]
    assert rows["components"][1:3] == ["http_components", "ok"]
    assert rows["metrics"][1:3] == ["prom_scrape", "ok"]
    assert "4/4 healthy" in result.stdout


def test_check_against_closed_port_exits_1(closed_port, write_config):
    path = write_config(config_for(f"http://127.0.0.1:{closed_port}"))
    result = cockpit("check", "-c", str(path))
    no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines()[2:] if line.strip()]
    assert len(rows) == 3
    for row in rows:
        assert "FAILED" in row and "connection refused" in row, row


def test_check_non_critical_failure_exits_0(closed_port, sim_server, write_config):
    raw = config_for(sim_server.url)
    raw["sources"][2]["url"] = f"http://127.0.0.1:{closed_port}/metrics"
    raw["sources"][2]["critical"] = False
    result = cockpit("check", "-c", str(write_config(raw)))
    no_traceback(result)
    assert result.returncode == 0, result.stdout
    metrics = next(line for line in result.stdout.splitlines() if line.startswith("metrics"))
    assert "failed (not critical)" in metrics and "connection refused" in metrics


def test_check_offline_does_not_poll(closed_port, write_config):
    path = write_config(demo_raw(f"http://127.0.0.1:{closed_port}"))
    result = cockpit("check", "--offline", "-c", str(path))
    assert result.returncode == 0
    assert result.stdout.strip() == f"{path}: config valid (3 sources)"


# ---------------------------------------------------------------- help and schema


def test_top_level_help():
    result = cockpit("--help")
    no_traceback(result)
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


def test_no_command_prints_help():
    result = cockpit()
    assert result.returncode == 0
    assert "usage: cockpit" in result.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command):
    result = cockpit(command, "--help")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: cockpit {command}")


def test_version():
    result = cockpit("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == "cockpit 0.1.0"


def test_unknown_command_is_a_usage_error():
    result = cockpit("frobnicate")
    no_traceback(result)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_schema_prints_valid_json():
    result = cockpit("schema")
    no_traceback(result)
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["title"] == "CockpitConfig"
    assert set(doc["required"]) == {"service", "sources", "panels"}
    assert {"service", "settings", "sources", "panels"} <= set(doc["properties"])


def test_schema_markdown_to_file_matches_committed_reference(tmp_path):
    out = tmp_path / "CONFIG.md"
    result = cockpit("schema", "--markdown", "-o", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert out.read_text(encoding="utf-8") == (ROOT / "examples" / "CONFIG.md").read_text(encoding="utf-8"), (
        "regenerate with `cockpit schema --markdown -o examples/CONFIG.md`"
    )


# ---------------------------------------------------------------- run / demo / simulate errors


def test_run_with_invalid_config_exits_2_without_starting(write_config):
    raw = config_for("http://127.0.0.1:1")
    raw["settings"]["refresh"] = "soon"
    result = cockpit("run", "-c", str(write_config(raw)), timeout=20)
    assert result.returncode == 2
    assert "settings.refresh: expected a number, got 'soon'" in result.stderr
    no_traceback(result)


def test_demo_on_a_busy_port_is_one_clear_line():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cockpit("demo", "--port", str(port), timeout=20)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "--port" in lines[0]
    no_traceback(result)


def test_the_journal_commands_find_the_demo_and_drill_journals(tmp_path):
    """Issue 17: after the demo, `cockpit journal list` and `cockpit export ID` said "no
    journal there" without naming demo-journal.db. They name the journals that exist, and
    --demo / --drill open them."""
    from cockpit.incident.journal import SQLiteJournal, default_path

    demo = SQLiteJournal(default_path().with_name("demo-journal.db"))
    inc = "INC-20261202-0100-abcd"
    demo.append(inc, "incident_declared", {"title": "checkout 5xx", "service": "checkout"})
    demo.close()
    r = cockpit("journal", "list")
    assert r.returncode == 2 and r.stderr.strip().endswith(
        f"no journal there; pass --journal FILE or a postgresql:// URL, or --demo "
        f"({default_path().with_name('demo-journal.db')})")
    r = cockpit("journal", "list", "--demo")
    assert r.returncode == 0 and inc in r.stdout
    r = cockpit("export", inc, "--demo")
    assert r.returncode == 0 and f"id: {inc}" in r.stdout
    r = cockpit("journal", "list", "--drill")
    assert r.returncode == 2 and "drill-journal.db: no journal there" in r.stderr and "--demo (" in r.stderr
    SQLiteJournal(default_path()).append("INC-20261202-0200-ffff", "note", {"text": "a real one"})
    r = cockpit("export", inc)  # the default journal is there, without it
    assert r.returncode == 2 and r.stderr.strip().endswith(
        f"it is in {default_path().with_name('demo-journal.db')}: add --demo")


def test_the_readme_links_only_to_what_a_clone_has():
    """Issue 17: the README linked ../shared/DESIGN.md, which is not in a clone. Every
    relative link and picture it has is a file of the repository."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t.split("#", 1)[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t and
               not t.startswith(("#", "mailto:"))]
    assert targets, "the README's pictures are links too"
    for target in targets:
        path = (ROOT / target).resolve()
        assert path.is_file() and ROOT in path.parents, f"README links {target}, not a file of the repository"


def test_output_into_a_closed_pipe_is_not_an_error(tmp_path):
    """`cockpit journal list | head -3` printed 'unexpected error: BrokenPipeError' and
    logged a traceback once head had its lines."""
    from cockpit.incident.journal import SQLiteJournal
    from cockpit.incident.state import Incidents

    journal = tmp_path / "j.db"
    incidents = Incidents(SQLiteJournal(journal))
    for i in range(3):
        incidents.set_status(incidents.declare(f"incident {i}"), "resolved")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.Popen([*cockpit_command(), "journal", "list", "--journal", str(journal)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    proc.stdout.close()  # the reader is gone before the first line
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert b"unexpected error" not in err and b"Traceback" not in err
    assert not (tmp_path / "state" / "cockpit" / "errors.log").exists()
