"""The real program in a real terminal: `cockpit demo` under tmux."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.terminal

COCKPIT = Path(sys.executable).with_name("cockpit")
TITLES = ("Health", "Error rate", "Latency", "Cost burn", "Components")


# Textual's test harness leaves COLUMNS/LINES in this process's environment; a program
# that inherits them draws at that size whatever the terminal's.
def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}


def unset() -> str:
    """The program's environment prefix: no inherited size, this test's private data dirs
    (a tmux server started earlier keeps the environment it was started with)."""
    dirs = " ".join(f"{k}={os.environ[k]}" for k in ("XDG_DATA_HOME", "XDG_STATE_HOME") if k in os.environ)
    return f"env -u COLUMNS -u LINES {dirs}"


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True, env=clean_env()).stdout


@pytest.fixture
def session():
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed; .ci/run installs it")
        pytest.skip("tmux is not installed")
    name = f"cockpit-test-{uuid.uuid4().hex[:8]}"
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
          f"{unset()} {COCKPIT} demo --incident-at 5; echo COCKPIT-EXITED=$?; sleep 30")
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def capture(name: str) -> str:
    return _tmux("capture-pane", "-p", "-t", name)


def wait_screen(name: str, predicate, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(name)
        if predicate(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; screen was:\n{screen}")


def test_demo_in_tmux_shows_five_panels_with_values_and_quits(session):
    screen = wait_screen(session, lambda s: all(t in s for t in TITLES) and "● OK" in s and "%" in s, 15,
                         "the five panel titles with values")
    assert "checkout-api" in screen and "DEMO" in screen
    assert "$" in screen and "ms" in screen  # cost and latency values
    assert "4/4 healthy" in screen
    assert "Traceback" not in screen
    _tmux("send-keys", "-t", session, "?")
    wait_screen(session, lambda s: "keys" in s and "Quit" in s, 5, "the help screen")
    _tmux("send-keys", "-t", session, "q")  # q closes help rather than quitting
    wait_screen(session, lambda s: "Greyed keys" not in s and "Components" in s, 5, "help to close")
    _tmux("send-keys", "-t", session, "K")
    wait_screen(session, lambda s: "UNREACHABLE" in s and "connection refused" in s, 8, "the killed service")
    _tmux("send-keys", "-t", session, "K")
    wait_screen(session, lambda s: "1/1 up" in s, 10, "the service to come back")
    _tmux("send-keys", "-t", session, "q")
    screen = wait_screen(session, lambda s: "COCKPIT-EXITED=" in s, 8, "the program to exit")
    assert "COCKPIT-EXITED=0" in screen
    assert "Traceback" not in screen


def overrides(base: str) -> str:
    """COCKPIT_ variables pointing examples/demo.toml's sources and rollback at ``base``."""
    pairs = [(f"SOURCES__{src.upper()}__URL", f"{base}{path}")
             for src, path in (("health", "/health"), ("components", "/health/component/{name}"),
                               ("metrics", "/metrics"))]
    pairs += [("ACTIONS__R__URL", f"{base}/admin/rollback"), ("ACTIONS__R__STATE_URL", f"{base}/admin/state"),
              ("ACTIONS__R__VERIFY_URL", f"{base}/health/component/api")]
    return " ".join(f"COCKPIT_{k}={v}" for k, v in pairs)


def test_run_with_example_config_and_env_overrides_in_tmux(sim_server_url):
    """`cockpit run -c examples/demo.toml`, its URLs pointed at a live simulator by
    COCKPIT_ overrides: starts READ-ONLY and shows live values."""
    name = f"cockpit-test-{uuid.uuid4().hex[:8]}"
    env = overrides(sim_server_url)
    root = Path(__file__).resolve().parent.parent
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40", "-c", str(root),
          f"{unset()} {env} {COCKPIT} run -c examples/demo.toml; echo COCKPIT-EXITED=$?; sleep 30")
    try:
        screen = wait_screen(name, lambda s: "READ-ONLY" in s and "● OK" in s and "4/4 healthy" in s, 15,
                             "live values in READ-ONLY mode")
        assert "LIVE" in screen and "ARMED" not in screen
        assert "Kill svc" not in screen  # no simulator key outside the demo
        _tmux("send-keys", "-t", name, "r")  # READ-ONLY: greyed, nothing opens
        time.sleep(0.5)
        assert "Run Rollback" not in capture(name)
        _tmux("send-keys", "-t", name, "q")
        assert "COCKPIT-EXITED=0" in wait_screen(name, lambda s: "COCKPIT-EXITED=" in s, 8, "exit")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


@pytest.fixture
def sim_server_url():
    from cockpit.drill.simulator import Simulator, SimulatorServer

    server = SimulatorServer(Simulator(seed=1, faults=())).start()
    yield server.url
    server.stop()


def test_run_armed_rolls_back_in_tmux(sim_server_url):
    """`cockpit run --armed`: r shows the plan, y runs it, the timeline shows the outcome."""
    name = f"cockpit-test-{uuid.uuid4().hex[:8]}"
    root = Path(__file__).resolve().parent.parent
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40", "-c", str(root),
          f"{unset()} {overrides(sim_server_url)} {COCKPIT} run -c examples/demo.toml --armed; "
          "echo COCKPIT-EXITED=$?; sleep 30")
    try:
        wait_screen(name, lambda s: "ARMED" in s and "● OK" in s, 15, "live values, ARMED")
        _tmux("send-keys", "-t", name, "r")
        # no incident is open: asked first (n declares one), then the plan
        wait_screen(name, lambda s: "No incident is open to record Rollback" in s, 8, "the question")
        _tmux("send-keys", "-t", name, "n")
        screen = wait_screen(name, lambda s: "Run Rollback on checkout-api?" in s, 8, "the plan dialog")
        assert "/admin/rollback" in screen and "y runs it" in screen
        _tmux("send-keys", "-t", name, "y")
        wait_screen(name, lambda s: "Rollback: OK" in s, 10, "the outcome on the timeline")
        _tmux("send-keys", "-t", name, "q")
        assert "COCKPIT-EXITED=0" in wait_screen(name, lambda s: "COCKPIT-EXITED=" in s, 8, "exit")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_escapes_from_a_hostile_service_never_reach_the_terminal(tmp_path, write_config):
    """Before issue 12 a service's status carrying OSC 0 renamed the tmux pane ("PWNED"):
    the real program in a real terminal shows the escapes as ␛ and the pane keeps its
    title; no clipboard write lands in tmux's buffers; the echoed token is not shown."""
    from hostile import HostileServer, config

    server = HostileServer()
    name = f"cockpit-test-{uuid.uuid4().hex[:8]}"
    path = write_config(config(server))
    token = "CANARY-4d1e0b7a9c3f5e21"
    try:
        _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
              f"{unset()} HOSTILE_TOKEN='Bearer {token}' {COCKPIT} run -c {path}; echo COCKPIT-EXITED=$?; sleep 30")
        before = _tmux("list-buffers", "-F", "#{buffer_sample}") if _has_buffers() else ""
        screen = wait_screen(name, lambda s: "␛]0;" in s.lower() and "UNHEALTHY" in s, 15,
                             "the hostile answers, escapes shown")
        time.sleep(1.0)  # a few more polls of every hostile endpoint
        title = _tmux("display", "-p", "-t", name, "#{pane_title}")
        assert "pwned" not in title.lower(), title
        after = _tmux("list-buffers", "-F", "#{buffer_sample}") if _has_buffers() else ""
        assert "pwned" not in after.lower() and after == before
        screen = capture(name)
        assert token not in screen and "[redacted]" in screen
        _tmux("send-keys", "-t", name, "q")
        assert "COCKPIT-EXITED=0" in wait_screen(name, lambda s: "COCKPIT-EXITED=" in s, 8, "exit")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
        server.close()


def _has_buffers() -> bool:
    return subprocess.run(["tmux", "list-buffers"], capture_output=True, env=clean_env()).returncode == 0


def test_a_cockpit_that_leaves_unsaved_work_says_so_and_exits_non_zero(tmp_path, write_config, closed_port):
    """Unsaved changes went to unsaved-*.jsonl at exit with exit code 0, and could not be
    brought back: now exit 1, and the line says how to import them."""
    from cockpit.drill.demo import demo_raw

    raw = demo_raw("http://127.0.0.1:9")
    raw["incident"] = {"journal": "env:COCKPIT_T_JOURNAL"}
    path = write_config(raw)
    name = f"cockpit-test-{uuid.uuid4().hex[:8]}"
    try:
        _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
              f"{unset()} COCKPIT_T_JOURNAL=postgresql://127.0.0.1:{closed_port}/incidents {COCKPIT} run -c {path}; "
              "echo COCKPIT-EXITED=$?; sleep 30")
        wait_screen(name, lambda s: "JOURNAL DOWN" in s, 15, "the journal to be down")
        # (its sources are unreachable too: the first reading declares an incident, kept with the rest)
        _tmux("send-keys", "-t", name, "n")
        wait_screen(name, lambda s: "Note on" in s, 5, "the note prompt")
        _tmux("send-keys", "-t", name, "tried restarting the pool", "Enter")
        wait_screen(name, lambda s: "root: tried restarting" in s or ": tried restarting the pool" in s, 8,
                    "the note on the timeline, kept")
        _tmux("send-keys", "-t", name, "q")
        screen = wait_screen(name, lambda s: "COCKPIT-EXITED=" in s, 10, "exit")
        joined = " ".join(screen.split())
        assert "COCKPIT-EXITED=1" in screen and "cockpit journal import" in joined, screen
        rescue = next((tmp_path / "xdg-data" / "cockpit").glob("unsaved-*.jsonl"))
        assert "tried restarting the pool" in rescue.read_text()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


@pytest.mark.parametrize("width,height", [(80, 24), (200, 60)])
def test_header_footer_and_the_action_dialog_fit_the_terminal(width, height):
    """Issue 17: at 80x24 the header lost the status, T+ and the ack countdown, the footer
    ? and q (a stray letter in their place), and the action dialog (~100 columns) its right
    border and the end of its "now" line. At 80x24 and 200x60: the header says the mode,
    ARMED, severity, status, T+ and ack due; the footer starts with q Quit and ? Help; the
    action keys have their own line; the dialog's box is whole and its lines wrap."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed; .ci/run installs it")
        pytest.skip("tmux is not installed")
    name = f"cockpit-size-{uuid.uuid4().hex[:8]}"
    _tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
          f"{unset()} {COCKPIT} demo --incident-at 2; sleep 30")
    try:
        screen = wait_screen(name, lambda s: "DECLARED T+" in s and "ack" in s.splitlines()[0], 20,
                             "an incident in the header")
        lines = screen.splitlines()
        header = lines[0]
        for word in ("DEMO", "ARMED", "?", "DECLARED", "T+00:0"):
            assert word in header, (word, header)
        assert re.search(r"ack (due in )?(01:00:00|59:[0-5]\d|14:[0-5]\d|15:00)", header), header
        assert all(len(line) <= width for line in lines)
        footer = lines[-1]
        assert footer.startswith("q Quit ? Help n Note a Ack"), footer
        assert footer.rstrip()[-1] not in "▏", footer
        assert lines[-2].startswith(" actions  e  Emergency mode   r  Rollback   s  Scale out")
        _tmux("send-keys", "-t", name, "r")
        screen = wait_screen(name, lambda s: "y runs it" in s, 10, "the action dialog")
        box = [line.strip() for line in screen.splitlines() if line.strip().startswith("█")]
        assert len(box) > 10 and all(line.endswith("█") for line in box), screen  # the right border is there
        assert any('"v1.5.0"}}' in line for line in box), screen  # the whole "now" line, wrapped
        _tmux("send-keys", "-t", name, "Escape")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
