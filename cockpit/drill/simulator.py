"""A model service with scripted faults, served over loopback HTTP.

The model advances in fixed steps (0.1 s of simulated time) from its start, and
draws its noise from a seeded generator one step at a time, so the state at a
given clock time is the same however often or rarely it is asked: a seeded
simulator on a manual clock is fully deterministic.

Endpoints: ``/health``, ``/health/component/<name>``, ``/metrics`` (Prometheus
text format: http_requests_total, http_errors_total, the
http_request_duration_seconds histogram, ai_tokens_total and
ai_token_cost_usd_total).
"""

from __future__ import annotations

import json
import math
import random
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from cockpit.clock import Clock, SystemClock

COMPONENTS = ("api", "worker", "database", "ai-gateway")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STEP = 0.1
SIGMA = 0.55  # spread of the log-normal latency
USD_PER_TOKEN = 0.00002  # seed 000's cost query
FAULT_KINDS = ("bad_deploy", "db_exhaustion", "cost_runaway", "throttling", "component_failure", "outage",
               "data_corruption")
MAX_REPLICAS = 20


@dataclass(frozen=True)
class Fault:
    """A scripted fault: ``kind`` starts ``at`` seconds after the simulator starts."""

    kind: str
    at: float
    component: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")


#: The demo's story: a bad deploy 20 s in.
DEMO_SCRIPT = (Fault("bad_deploy", at=20.0, version="v1.5.0"),)


@dataclass
class Counters:
    requests: float = 0.0
    errors_5xx: float = 0.0
    errors_timeout: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(BUCKETS) + 1))
    duration_sum: float = 0.0
    tokens: float = 0.0


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


class Simulator:
    """The model service. Thread-safe: the HTTP server calls it from its threads."""

    def __init__(self, clock: Clock | None = None, seed: int = 7, faults: tuple[Fault, ...] = DEMO_SCRIPT) -> None:
        self.clock = clock or SystemClock()
        self.seed = seed
        self.faults = tuple(sorted(faults, key=lambda f: f.at))
        self.started = self.clock.now()
        self.version = "v1.4.2"
        self.previous_version = "v1.4.1"
        self.replicas = 3
        self.emergency = False
        self.cleared: set[Fault] = set()
        self.c = Counters()
        self._rng = random.Random(seed)
        self._steps = 0
        self._lock = threading.RLock()

    # ------------------------------------------------------------ model

    def elapsed(self) -> float:
        return self._steps * STEP

    def active(self, kind: str, t: float | None = None) -> Fault | None:
        """The fault of this kind in effect at simulated time ``t`` (default: now), if any."""
        t = self.elapsed() if t is None else t
        for f in self.faults:
            if f.kind == kind and f.at <= t and f not in self.cleared:
                return f
        return None

    def _ramp(self, kind: str, t: float, over: float) -> float:
        """0..1: how far a fault of this kind has developed."""
        f = self.active(kind, t)
        if f is None:
            return 0.0
        return min(1.0, (t - f.at) / over)

    def advance_to(self, now: float) -> None:
        with self._lock:
            target = int((now - self.started) / STEP + 1e-9)
            while self._steps < target:
                self._step()

    def _step(self) -> None:
        t = self._steps * STEP
        rng = self._rng
        deploy = self._ramp("bad_deploy", t, 20.0)
        db = self._ramp("db_exhaustion", t, 15.0)
        throttle = self._ramp("throttling", t, 10.0)
        runaway = self._ramp("cost_runaway", t, 30.0)
        outage = self.active("outage", t) is not None

        wobble = 1.0 + 0.08 * math.sin(2 * math.pi * t / 90.0)
        rate = 120.0 * wobble * rng.uniform(0.93, 1.07)
        load = rate / (self.replicas * 45.0)  # above 1 means saturated replicas
        corrupt = 1.0 if self.active("data_corruption", t) else 0.0
        err = 0.004 * rng.uniform(0.6, 1.4) + 0.21 * deploy + 0.12 * db + 0.06 * throttle + 0.08 * corrupt
        # more replicas, less queueing: latency falls as load per replica does (the demo's `s`)
        median = 0.075 * (1 + max(0.0, load - 0.5) * 0.6 + max(0.0, load - 1.0) * 3)
        median *= 1 + 7.0 * deploy + 5.0 * db + 3.0 * throttle
        median *= rng.uniform(0.95, 1.05)
        if outage:
            err = 1.0
        n = rate * STEP
        c = self.c
        c.requests += n
        errors = n * min(err, 1.0)
        c.errors_5xx += errors * 0.8
        c.errors_timeout += errors * 0.2
        mu = math.log(median)
        for i, bound in enumerate(BUCKETS):
            c.buckets[i] += n * _phi((math.log(bound) - mu) / SIGMA)
        c.buckets[-1] += n
        c.duration_sum += n * median * math.exp(SIGMA**2 / 2)
        # About one request in a hundred calls the model (~28 tokens): ~$60/day at rest.
        tokens_per_req = 0.28 * (1 + 1.6 * deploy + 5.0 * runaway) * (0.1 if self.emergency else 1.0)
        c.tokens += n * tokens_per_req * rng.uniform(0.9, 1.1)
        self._steps += 1

    def component_state(self, name: str) -> tuple[str, str]:
        """(status, message) of one component now."""
        t = self.elapsed()
        if self.active("outage", t):
            return "unhealthy", "service unavailable"
        f = self.active("component_failure", t)
        if f and (f.component or "worker") == name:
            return "unhealthy", "component not responding"
        if name == "api":
            d = self._ramp("bad_deploy", t, 20.0)
            if d >= 0.5:
                return "unhealthy", f"{self.version}: 5xx on /api/v1/process"
            if d > 0:
                return "degraded", f"{self.version}: error rate rising"
        if name == "database":
            d = self._ramp("db_exhaustion", t, 15.0)
            if d >= 0.6:
                return "unhealthy", "too many connections"
            if d > 0:
                return "degraded", "connection pool near limit"
        if name == "database" and self.active("data_corruption", t):
            return "unhealthy", "checksum mismatch in ai_action_logs"
        if name == "ai-gateway":
            if self.emergency:
                return "degraded", "emergency mode: fallback responses"
            if self.active("throttling", t):
                return "degraded", "Bedrock ThrottlingException"
        return "healthy", ""

    def _on_fault_start(self) -> None:
        f = self.active("bad_deploy")
        if f and self.version != (f.version or "v1.5.0"):
            self.previous_version, self.version = self.version, f.version or "v1.5.0"

    # ------------------------------------------------------------ remediation (the demo's actions)

    def _clear(self, kind: str) -> bool:
        f = self.active(kind)
        if f is None:
            return False
        self.cleared.add(f)
        return True

    def admin(self, what: str, doc: dict) -> tuple[int, dict]:
        """POST /admin/<what>: the demo's remediations, really changing the model."""
        with self._lock:
            self.advance_to(self.clock.now())
            self._on_fault_start()
            if what == "rollback":
                if self._clear("bad_deploy"):
                    self.version, self.previous_version = self.previous_version, self.version
                    note = f"rolled back to {self.version}"
                else:
                    note = f"nothing to roll back: {self.version} is healthy"
            elif what == "scale":
                n = doc.get("replicas")
                if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_REPLICAS:
                    return 400, {"error": f"replicas must be a whole number from 1 to {MAX_REPLICAS}"}
                note = f"replicas {self.replicas} -> {n}"
                self.replicas = n
                self._clear("db_exhaustion")  # more capacity: the pool drains
            elif what == "emergency":
                on = doc.get("on")
                if not isinstance(on, bool):
                    return 400, {"error": "on must be true or false"}
                self.emergency = on
                if on:  # fallback responses: no runaway spend, no calls to a throttled model or failed gateway
                    for kind in ("cost_runaway", "throttling", "component_failure"):
                        self._clear(kind)
                note = f"emergency mode {'on' if on else 'off'}"
            elif what == "restore":
                note = "restored the latest backup" + (" (corruption cleared)" if self._clear("data_corruption")
                                                        else "")
            else:
                return 404, {"error": f"no admin action {what!r}"}
            return 200, {"ok": True, "note": note, **self.admin_state()}

    def admin_state(self) -> dict:
        with self._lock:
            self.advance_to(self.clock.now())
            self._on_fault_start()
            active = sorted({f.kind for f in self.faults if f.at <= self.elapsed() and f not in self.cleared})
            return {"version": self.version, "replicas": self.replicas, "emergency": self.emergency,
                    "faults": active}

    # ------------------------------------------------------------ views

    def health(self) -> tuple[int, dict]:
        with self._lock:
            self.advance_to(self.clock.now())
            self._on_fault_start()
            states = {n: self.component_state(n)[0] for n in COMPONENTS}
        if all(s == "unhealthy" for s in states.values()):
            overall = "unhealthy"
        elif any(s != "healthy" for s in states.values()):
            overall = "degraded"
        else:
            overall = "healthy"
        code = 503 if overall == "unhealthy" else 200
        return code, {"status": overall, "version": self.version, "components": states}

    def component(self, name: str) -> tuple[int, dict]:
        if name not in COMPONENTS:
            return 404, {"status": "unknown", "message": f"no component {name!r}"}
        with self._lock:
            self.advance_to(self.clock.now())
            self._on_fault_start()
            state, message = self.component_state(name)
        return (200 if state != "unhealthy" else 503), {"component": name, "status": state, "message": message}

    def metrics_text(self) -> str:
        with self._lock:
            self.advance_to(self.clock.now())
            self._on_fault_start()
            c = self.c
            lines = [
                "# HELP http_requests_total Requests handled.",
                "# TYPE http_requests_total counter",
                f'http_requests_total{{route="/api/v1/process"}} {math.floor(c.requests)}',
                "# HELP http_errors_total Requests that failed.",
                "# TYPE http_errors_total counter",
                f'http_errors_total{{type="5xx"}} {math.floor(c.errors_5xx)}',
                f'http_errors_total{{type="timeout"}} {math.floor(c.errors_timeout)}',
                "# HELP http_request_duration_seconds Request duration.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for bound, count in zip(BUCKETS, c.buckets):
                lines.append(f'http_request_duration_seconds_bucket{{le="{bound:g}"}} {math.floor(count)}')
            lines += [
                f'http_request_duration_seconds_bucket{{le="+Inf"}} {math.floor(c.buckets[-1])}',
                f"http_request_duration_seconds_sum {c.duration_sum:.3f}",
                f"http_request_duration_seconds_count {math.floor(c.buckets[-1])}",
                "# HELP ai_tokens_total Model tokens used.",
                "# TYPE ai_tokens_total counter",
                f"ai_tokens_total {math.floor(c.tokens)}",
                "# HELP ai_token_cost_usd_total Money spent on model tokens (USD).",
                "# TYPE ai_token_cost_usd_total counter",
                f"ai_token_cost_usd_total {c.tokens * USD_PER_TOKEN:.6f}",
                "# TYPE app_replicas gauge",
                f"app_replicas {self.replicas}",
                "# HELP checkout_build_info The version running (a deploy changes it).",
                "# TYPE checkout_build_info gauge",
                f'checkout_build_info{{version="{self.version}"}} 1',
                "# TYPE process_start_time_seconds gauge",
                f"process_start_time_seconds {self.started:.3f}",
            ]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; with Nagle on, a keep-alive client waits
    # for the delayed ACK (~40 ms) and every response looks 40 ms slow.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        sim = self.server.sim
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body = sim.metrics_text().encode()
            self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/health":
            code, doc = sim.health()
            self._json(code, doc)
        elif path.startswith("/health/component/"):
            code, doc = sim.component(unquote(path.rsplit("/", 1)[1]))
            self._json(code, doc)
        elif path == "/admin/state":
            self._json(200, sim.admin_state())
        else:
            self._json(404, {"error": f"no such endpoint {path}"})

    def do_POST(self) -> None:  # noqa: N802
        sim = self.server.sim
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            self._json(400, {"error": "body is not JSON"})
            return
        if not path.startswith("/admin/") or not isinstance(doc, dict):
            self._json(404, {"error": f"no such endpoint {path}"})
            return
        code, answer = sim.admin(path.removeprefix("/admin/"), doc)
        self._json(code, answer)

    def _json(self, code: int, doc: dict) -> None:
        self._send(code, json.dumps(doc).encode(), "application/json")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep the terminal clean
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request, client_address) -> None:
        with self._conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        """A client hanging up or resetting (a cockpit quitting, a poll given up on) is
        normal traffic: never a traceback printed over the dashboard's terminal."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        """Close every open connection, as a dying process would."""
        with self._conn_lock:
            conns, self.connections = list(self.connections), set()
        hard_close(conns)


def hard_close(conns) -> None:
    """Shut down and close sockets so their peers see the connection drop at once."""
    for conn in conns:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


class SimulatorServer:
    """Serves a Simulator on 127.0.0.1. ``stop()`` kills the listener (clients get
    'connection refused'); ``start()`` brings it back on the same port."""

    def __init__(self, sim: Simulator, port: int = 0, host: str = "127.0.0.1") -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "SimulatorServer":
        if self._server is None:
            self._server = _Server((self.host, self.port), self.sim)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="simulator", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
