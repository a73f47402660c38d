"""Shared fixtures for the plain (non-UI) tests.

Everything here binds to 127.0.0.1 only:

- ``sim_server`` / ``make_sim_server``: the real simulator served over loopback HTTP;
- ``fault_server``: a real HTTP server whose behaviour per path a test sets (answer,
  answer 500, hang past the client's timeout, send malformed metrics, hang up);
- ``closed_port``: a loopback port nobody listens on ("connection refused");
- ``write_config``: writes a config (dict or TOML text) to ``tmp_path``.
"""

from __future__ import annotations

import json
import re
import socket
import shutil
import subprocess
import threading
import time
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cockpit.clock import ManualClock
from cockpit.drill.simulator import DEMO_SCRIPT, Fault, Simulator, SimulatorServer, hard_close

LOOPBACK = "127.0.0.1"


# ---------------------------------------------------------------- waiting


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


# ---------------------------------------------------------------- simulator


@pytest.fixture
def make_sim_server():
    """Factory: ``make_sim_server(clock=..., seed=..., faults=..., port=...)`` -> started server.

    Every server it made is stopped after the test.
    """
    servers: list[SimulatorServer] = []

    def make(*, clock=None, seed: int = 7, faults=DEMO_SCRIPT, port: int = 0) -> SimulatorServer:
        server = SimulatorServer(Simulator(clock=clock, seed=seed, faults=faults), port=port, host=LOOPBACK)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def sim_server(make_sim_server) -> SimulatorServer:
    """A seeded Simulator (seed 7, the demo's bad deploy at 20 s) on a ManualClock, served
    on 127.0.0.1. Advance simulated time with ``sim_server.sim.clock.advance(seconds)``."""
    return make_sim_server(clock=ManualClock(), seed=7)


# ---------------------------------------------------------------- closed port


def free_closed_port() -> int:
    """A loopback port that was just bound and released: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    return free_closed_port()


# ---------------------------------------------------------------- fault server


@dataclass(frozen=True)
class Respond:
    """Answer with this status and body."""

    status: int = 200
    body: bytes | str = b"ok"
    content_type: str = "text/plain; charset=utf-8"
    delay: float = 0.0  # seconds before answering (interrupted when the server stops)
    headers: dict = field(default_factory=dict)  # extra response headers, e.g. Retry-After


@dataclass(frozen=True)
class Hang:
    """Accept the request and answer nothing for ``seconds`` (longer than the client's timeout)."""

    seconds: float = 30.0


@dataclass(frozen=True)
class HangUp:
    """Read the request, then close the connection without any response."""


MALFORMED_METRICS = (
    "# HELP http_requests_total Requests handled.\n"
    "# TYPE http_requests_total counter\n"
    'http_requests_total{route="/a" 12\n'  # line 3: the label set is never closed
)


class FaultServer:
    """A real loopback HTTP/1.1 server; each path's behaviour is set by the test.

    Unknown paths get 404. It counts requests per path and the most requests of one
    path it was ever working on at the same moment (``max_concurrent``).
    """

    # behaviours, reachable from the fixture: fault_server.set(path, [fault_server.HangUp(), ...])
    Respond = Respond
    Hang = Hang
    HangUp = HangUp

    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.hits: dict[str, int] = {}
        self.max_concurrent: dict[str, int] = {}
        self._active: dict[str, int] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd = _FaultHTTPServer((LOOPBACK, 0), _FaultHandler, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-server", daemon=True
        )
        self._thread.start()

    # -------------------------------------------------------- test API

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def set(self, path: str, behaviour) -> None:
        """``behaviour`` is a Respond, Hang or HangUp, or a list of them served in turn
        (the last one repeats)."""
        if isinstance(behaviour, (list, tuple)):
            behaviour = list(behaviour)
            if not behaviour:
                raise ValueError("an empty sequence")
        with self._lock:
            self.routes[path] = behaviour

    def respond(self, path: str, body: bytes | str, status: int = 200, content_type: str = "text/plain; charset=utf-8",
                delay: float = 0.0) -> None:
        self.set(path, Respond(status, body, content_type, delay))

    def respond_json(self, path: str, doc: dict, status: int = 200) -> None:
        self.set(path, Respond(status, json.dumps(doc), "application/json"))

    def error(self, path: str, status: int = 500) -> None:
        self.set(path, Respond(status, f"error {status}"))

    def hang(self, path: str, seconds: float = 30.0) -> None:
        self.set(path, Hang(seconds))

    def malformed_metrics(self, path: str = "/metrics") -> None:
        self.set(path, Respond(200, MALFORMED_METRICS, "text/plain; version=0.0.4"))

    def hang_up(self, path: str) -> None:
        self.set(path, HangUp())

    def count(self, path: str) -> int:
        with self._lock:
            return self.hits.get(path, 0)

    def wait_for_hits(self, path: str, n: int, timeout: float = 5.0) -> None:
        wait_until(lambda: self.count(path) >= n, timeout, f"{n} requests to {path} (got {self.count(path)})")

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns, self._connections = list(self._connections), set()
        hard_close(conns)
        self._thread.join(timeout=2)

    # -------------------------------------------------------- server side

    def _next(self, path: str):
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            self._active[path] = self._active.get(path, 0) + 1
            self.max_concurrent[path] = max(self.max_concurrent.get(path, 0), self._active[path])
            behaviour = self.routes.get(path)
            if isinstance(behaviour, list):
                behaviour = behaviour.pop(0) if len(behaviour) > 1 else behaviour[0]
            return behaviour

    def _done(self, path: str) -> None:
        with self._lock:
            self._active[path] -= 1


class _FaultHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, owner: FaultServer) -> None:
        self.owner = owner
        super().__init__(addr, handler)

    def process_request(self, request, client_address) -> None:
        with self.owner._lock:
            self.owner._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self.owner._lock:
            self.owner._connections.discard(request)
        super().shutdown_request(request)


class _FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes
    server: _FaultHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        behaviour = owner._next(path)
        try:
            if isinstance(behaviour, Hang):
                owner.stopping.wait(behaviour.seconds)
                self.close_connection = True
                return
            if isinstance(behaviour, HangUp):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if behaviour is None:
                behaviour = Respond(404, f"no route {path}")
            if behaviour.delay:
                owner.stopping.wait(behaviour.delay)
        finally:
            # Counted as active until the answer starts, so a client never sees an
            # answer from a request the server still counts as in progress.
            owner._done(path)
        body = behaviour.body.encode() if isinstance(behaviour.body, str) else behaviour.body
        self.send_response(behaviour.status)
        self.send_header("Content-Type", behaviour.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in behaviour.headers.items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(body)
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True  # the client gave up (timed out, quit): nothing to answer

    def do_POST(self) -> None:  # noqa: N802 - webhooks: read the body, then answer as for GET
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.do_GET()

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        return


@pytest.fixture
def moto_url(monkeypatch):
    """moto's real HTTP server on 127.0.0.1 (a fresh one per test: no state leaks between
    tests), with dummy credentials in the environment."""
    from moto.server import ThreadedMotoServer

    for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                 ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    url = f"http://{LOOPBACK}:{server._server.server_address[1]}"

    # moto keeps its state per process, not per server: start each test from nothing
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        server.stop()


RATE = "sum(rate(http_errors_total[15s])) / sum(rate(http_requests_total[15s]))"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base: str, promql: str) -> list:
    from urllib.parse import urlencode

    with urllib.request.urlopen(f"{base}/api/v1/query?{urlencode({'query': promql})}", timeout=5) as r:
        return json.load(r)["data"]["result"]


def wait_started(proc, ready: Callable[[], bool], what: str, log: Path, timeout: float = 30.0,
                 every: float = 0.1) -> None:
    """Wait until a server this fixture started answers ``ready()`` (an OSError is not yet);
    fail with the end of its log when it exits or takes longer than ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"{what} did not start: " + log.read_text()[-2000:])
        time.sleep(every)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory):
    """A real Prometheus on 127.0.0.1 scraping a simulator with a bad deploy under way."""
    binary = shutil.which("prometheus")
    if binary is None:
        import os

        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed; .ci/test installs it")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    # the bad deploy began a minute before: fully developed from the first scrape
    sim = SimulatorServer(Simulator(seed=11, faults=(Fault("bad_deploy", at=-60.0, version="v1.5.0"),))).start()
    root = tmp_path_factory.mktemp("prometheus")
    target = sim.url.removeprefix("http://")
    (root / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: checkout\n    static_configs:\n      - targets: ['{target}']\n")
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=open(root / "prometheus.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        # up, and enough scrapes for a rate over 15 s
        wait_started(proc, lambda: bool(query(base, RATE)), "Prometheus", root / "prometheus.log", every=0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        sim.stop()


def iso(dt) -> str:
    """An RFC 3339 time as Alertmanager writes it (milliseconds, Z)."""
    from datetime import timezone

    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Alertmanager:
    """A real Alertmanager on 127.0.0.1, driven through its own v2 API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/api/v2/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def fire(self, labels: dict, summary: str = "", *, resolved: bool = False) -> None:
        """Post an alert firing for three minutes (``resolved``: one that ended 5 s ago)."""
        from datetime import datetime, timedelta, timezone

        now = datetime.now(timezone.utc)
        alert = {"labels": labels, "annotations": {"summary": summary} if summary else {},
                 "startsAt": iso(now - timedelta(minutes=3))}
        if resolved:
            alert["endsAt"] = iso(now - timedelta(seconds=5))
        self.call("POST", "alerts", [alert])

    def silences(self) -> list[dict]:
        return self.call("GET", "silences")


@pytest.fixture
def alertmanager(tmp_path):
    """A fresh Alertmanager (Debian's prometheus-alertmanager) per test on a free loopback
    port: a route to a null receiver, no cluster gossip, a temp store."""
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        import os

        if os.environ.get("CI"):
            pytest.fail("prometheus-alertmanager is not installed; .ci/test installs it")
        pytest.skip("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    root = tmp_path / "alertmanager"
    root.mkdir()
    (root / "alertmanager.yml").write_text('route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n')
    port = free_port()
    log = open(root / "alertmanager.log", "w")
    proc = subprocess.Popen([binary, f"--config.file={root / 'alertmanager.yml'}", f"--storage.path={root / 'data'}",
                             "--cluster.listen-address=", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                return resp.status == 200

        wait_started(proc, ready, "Alertmanager", root / "alertmanager.log")
        yield Alertmanager(url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


PG_ADMIN = "postgresql://127.0.0.1:5432/postgres"


def pg_outage(url: str, on: bool) -> None:
    """Really refuse (or allow again) new connections to a test database, dropping open ones."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if on else "true"}')
        if on:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


@pytest.fixture
def pg_url():
    """A fresh database on the machine's real PostgreSQL (127.0.0.1:5432), dropped afterwards."""
    import uuid

    import psycopg

    name = f"cockpit_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fault_server():
    server = FaultServer()
    yield server
    server.close()


# ---------------------------------------------------------------- config files


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def to_toml(raw: dict, prefix: str = "") -> str:
    """A small TOML writer for config dicts: tables, arrays of tables, inline values."""
    lines: list[str] = []
    later: list[str] = []
    for k, v in raw.items():
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        if isinstance(v, dict):
            later.append(f"[{name}]\n" + to_toml(v, name))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                inner = "\n".join(f"{_key(ik)} = {_toml_value(iv)}" for ik, iv in item.items())
                later.append(f"[[{name}]]\n{inner}\n")
        else:
            lines.append(f"{_key(k)} = {_toml_value(v)}")
    return "\n".join(lines) + ("\n" if lines else "") + "\n".join(later)


@pytest.fixture
def write_config(tmp_path: Path):
    """``write_config(dict_or_text, name="cockpit.toml")`` -> path of the written file."""

    def write(content: dict | str, name: str = "cockpit.toml") -> Path:
        if isinstance(content, dict):
            text = to_toml(content)
            assert tomllib.loads(text) == content, "to_toml did not round-trip; fix the test helper"
        else:
            text = content
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def forget_secrets():
    """The secret registry is one per process (as in the cockpit): each test starts empty."""
    import cockpit.safetext
    from cockpit.safetext import SECRETS

    SECRETS.clear()
    yield
    SECRETS.clear()
    cockpit.safetext.lock_secrets("")  # a drill run in this process locks them


@pytest.fixture(autouse=True)
def private_user_dirs(tmp_path, monkeypatch):
    """Journals and error logs of programs started by a test go to its tmp dir, never the user's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    yield
    # an unexpected error the cockpit caught and logged (never shown as a traceback) still fails the test
    log = tmp_path / "xdg-state" / "cockpit" / "errors.log"
    assert not log.exists(), f"the cockpit logged an unexpected error:\n{log.read_text()[-3000:]}"


@pytest.fixture
def small_disk(tmp_path):
    """A real filesystem of its own: a tmpfs mounted for the test (``small_disk(size)`` gives
    its path; ``.readonly()`` remounts it read-only). Needs root, as CI has; elsewhere the
    test is skipped, and under CI=true it fails instead."""
    import os
    import subprocess

    mounts: list = []

    class Disk:
        def __call__(self, size: str = "1m"):
            path = tmp_path / f"disk{len(mounts)}"
            path.mkdir()
            run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                why = f"cannot mount a tmpfs here ({run.stderr.strip() or 'mount failed'}): run the tests as root"
                if os.environ.get("CI"):
                    pytest.fail(why)
                pytest.skip(why)
            mounts.append(path)
            return path

        @staticmethod
        def readonly(path) -> None:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)

        @staticmethod
        def writable(path) -> None:
            subprocess.run(["mount", "-o", "remount,rw", str(path)], check=True, capture_output=True)

    yield Disk()
    for path in reversed(mounts):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
