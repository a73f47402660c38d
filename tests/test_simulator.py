"""The simulator: deterministic on a manual clock, the demo's bad deploy really shows,
and its HTTP server dies and comes back like a real process."""

from __future__ import annotations

import socket
import statistics
import time

import httpx
import pytest

from cockpit.clock import ManualClock
from cockpit.config import config_from_dict
from cockpit.drill.demo import demo_raw
from cockpit.model import Reading
from cockpit.signals.poller import Poller
from cockpit.drill.simulator import COMPONENTS, DEMO_SCRIPT, Fault, Simulator
from cockpit.signals.sources import SourceContext, build_source

# ---------------------------------------------------------------- determinism


def run(sim: Simulator, clock: ManualClock, seconds: float, step: float, query_every: int | None) -> None:
    """Advance ``clock`` by ``step`` until ``seconds``; query the model every ``query_every`` steps."""
    for i in range(int(round(seconds / step))):
        clock.advance(step)
        if query_every and i % query_every == 0:
            sim.metrics_text()
            sim.health()
            sim.component(COMPONENTS[i % len(COMPONENTS)])


def snapshot(sim: Simulator) -> tuple:
    return (sim.metrics_text(), sim.health(), [sim.component(c) for c in COMPONENTS])


def test_same_seed_same_clock_same_metrics_however_often_queried():
    clock_a, clock_b = ManualClock(), ManualClock()
    a, b = Simulator(clock_a, seed=42), Simulator(clock_b, seed=42)
    run(a, clock_a, 60, 0.5, query_every=1)  # asked twice a second
    run(b, clock_b, 60, 0.5, query_every=None)  # asked only at the end
    assert snapshot(a) == snapshot(b)
    assert "http_requests_total" in a.metrics_text()


def test_same_seed_identical_at_every_step():
    clock_a, clock_b = ManualClock(), ManualClock()
    a, b = Simulator(clock_a, seed=3), Simulator(clock_b, seed=3)
    for _ in range(50):
        clock_a.advance(0.7)
        clock_b.advance(0.7)
        assert a.metrics_text() == b.metrics_text()


def test_different_seed_gives_different_metrics():
    clock_a, clock_b = ManualClock(), ManualClock()
    a, b = Simulator(clock_a, seed=1), Simulator(clock_b, seed=2)
    clock_a.advance(10)
    clock_b.advance(10)
    assert a.metrics_text() != b.metrics_text()


def test_frozen_clock_freezes_the_model():
    clock = ManualClock()
    sim = Simulator(clock, seed=7)
    clock.advance(5)
    first = sim.metrics_text()
    assert sim.metrics_text() == first
    clock.advance(1)
    assert sim.metrics_text() != first


def test_unknown_fault_kind_rejected():
    with pytest.raises(ValueError, match="unknown fault kind 'meteor'"):
        Fault("meteor", at=1.0)


# ---------------------------------------------------------------- the demo's bad deploy


async def test_demo_bad_deploy_shows_on_every_panel_within_40s(sim_server):
    """Polls the simulator over HTTP once per simulated second with the demo config's
    real sources, and finds when each signal crosses its critical level."""
    assert sim_server.sim.faults == DEMO_SCRIPT and DEMO_SCRIPT[0].at == 20.0
    clock = sim_server.sim.clock
    ctx = SourceContext(clock)
    raw = demo_raw(sim_server.url)
    for source in raw["sources"]:
        source["timeout"] = 5.0  # a slow machine must not turn a late answer into a failed poll
    cfg = config_from_dict(raw, "<test>", {})
    sources = [build_source(s, ctx) for s in cfg.sources]
    latest: dict[str, Reading] = {}
    poller = Poller(sources, lambda name, readings: latest.update({r.key: r for r in readings}))
    first: dict[str, float] = {}
    checks = {
        "error rate > 10%": lambda: (latest["metrics:error_rate"].value or 0) > 0.10,
        "p95 > 1 s": lambda: (latest["metrics:latency_p95"].value or 0) > 1.0,
        "api unhealthy": lambda: latest["components:component/api"].state == "unhealthy",
        "cost > $100/day": lambda: (latest["metrics:cost_per_day"].value or 0) > 100.0,
    }
    try:
        for t in range(0, 41):
            if t:
                clock.advance(1.0)
            for source in sources:
                await poller.poll_once(source)
            assert all(st.failures == 0 for st in poller.state.values()), poller.state
            if t == 0:
                continue  # the scrape's baseline
            if t <= 20:  # before the deploy everything is calm
                assert latest["metrics:error_rate"].value < 0.02, t
                assert latest["metrics:latency_p95"].value < 0.5, t
                assert latest["metrics:cost_per_day"].value < 80.0, t
                assert latest["health:health"].state == "up", t
                assert {latest[f"components:component/{c}"].state for c in COMPONENTS} == {"healthy"}, t
            for name, check in checks.items():
                if name not in first and check():
                    first[name] = t
    finally:
        await ctx.aclose()
    assert set(first) == set(checks), f"never crossed within 40 s: {sorted(set(checks) - set(first))}"
    assert all(20 < t <= 40 for t in first.values()), first
    assert latest["health:health"].state == "degraded"
    assert "v1.5.0" in latest["components:component/api"].detail


# ---------------------------------------------------------------- the HTTP server


def http_get(sock: socket.socket, path: str) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 GET on an open socket."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-response"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), body


def test_stop_refuses_new_connections_and_drops_keepalive_ones(make_sim_server):
    server = make_sim_server(clock=ManualClock())
    port = server.port
    assert server.host == "127.0.0.1" and port > 0
    with httpx.Client(timeout=2.0, trust_env=False) as client, socket.create_connection(("127.0.0.1", port)) as raw:
        assert client.get(f"{server.url}/health").status_code == 200
        assert http_get(raw, "/health")[0] == 200  # this connection stays open (keep-alive)
        assert http_get(raw, "/metrics")[0] == 200

        server.stop()
        assert not server.running

        raw.settimeout(2.0)
        try:
            leftover = raw.recv(1)
        except ConnectionResetError:
            leftover = b""
        assert leftover == b"", "an open keep-alive connection must be dropped by stop()"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2.0).close()
        with pytest.raises(httpx.TransportError):
            client.get(f"{server.url}/health")  # its pooled connection is gone too

        server.start()
        assert server.running and server.port == port, "start() must come back on the same port"
        assert client.get(f"{server.url}/health").status_code == 200
        assert client.get(f"{server.url}/metrics").text.startswith("# HELP")


def test_stop_and_start_are_idempotent(make_sim_server):
    server = make_sim_server(clock=ManualClock())
    server.stop()
    server.stop()
    server.start()
    server.start()
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        assert client.get(f"{server.url}/health").status_code == 200


def test_endpoints(sim_server):
    with httpx.Client(base_url=sim_server.url, timeout=2.0, trust_env=False) as client:
        h = client.get("/health")
        assert h.status_code == 200 and h.json()["status"] == "healthy"
        assert set(h.json()["components"]) == set(COMPONENTS)
        c = client.get("/health/component/ai-gateway")
        assert c.status_code == 200 and c.json() == {"component": "ai-gateway", "status": "healthy", "message": ""}
        assert client.get("/health/component/nope").status_code == 404
        assert client.get("/nope").status_code == 404
        m = client.get("/metrics")
        assert m.headers["content-type"].startswith("text/plain")
        assert "http_request_duration_seconds_bucket" in m.text


def test_keepalive_responses_are_not_delayed(sim_server):
    """Every response on a reused connection must come at once: a server that writes
    headers and body separately with Nagle on makes each one wait ~40 ms for an ACK,
    which the demo would then show as the service's response time."""
    with httpx.Client(base_url=sim_server.url, timeout=2.0, trust_env=False) as client:
        client.get("/health")
        times = []
        for path in ["/metrics", "/health/component/api", "/health"] * 4:
            t0 = time.perf_counter()
            assert client.get(path).status_code == 200
            times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.025, f"median {statistics.median(times) * 1000:.0f} ms per request"


def _window(sim: Simulator, clock: ManualClock, seconds: float = 60.0) -> dict:
    """Rates over the next ``seconds`` of simulated time: error ratio, mean latency, $/day."""
    from cockpit.drill.simulator import USD_PER_TOKEN

    sim.advance_to(clock.now())
    c0 = (sim.c.requests, sim.c.errors_5xx + sim.c.errors_timeout, sim.c.duration_sum, sim.c.tokens)
    clock.advance(seconds)
    sim.advance_to(clock.now())
    c1 = (sim.c.requests, sim.c.errors_5xx + sim.c.errors_timeout, sim.c.duration_sum, sim.c.tokens)
    n = c1[0] - c0[0]
    return {"error_ratio": (c1[1] - c0[1]) / n, "latency": (c1[2] - c0[2]) / n,
            "usd_per_day": (c1[3] - c0[3]) * USD_PER_TOKEN * 86400 / seconds}


def test_admin_actions_really_change_the_service():
    """The demo's remediations: rollback clears the bad deploy, scale lowers latency,
    emergency mode cuts the cost burn and degrades the AI component, restore clears
    a data-corruption fault. Bad requests are refused."""
    clock = ManualClock()
    sim = Simulator(clock=clock, seed=9, faults=(Fault("bad_deploy", at=1.0, version="v1.5.0"),
                                                  Fault("data_corruption", at=1.0)))
    clock.advance(60)
    bad = _window(sim, clock)
    assert bad["error_ratio"] > 0.2 and sim.component("api")[1]["status"] == "unhealthy"
    assert sim.admin("rollback", {})[1]["version"] == "v1.4.2"
    rolled = _window(sim, clock)
    assert rolled["error_ratio"] < bad["error_ratio"] / 2 and sim.component("api")[1]["status"] == "healthy"
    assert sim.component("database")[1]["status"] == "unhealthy"
    assert sim.admin("restore", {})[1]["faults"] == []
    assert sim.component("database")[1]["status"] == "healthy"
    calm = _window(sim, clock)
    assert calm["error_ratio"] < 0.01
    assert sim.admin("scale", {"replicas": 6})[0] == 200
    scaled = _window(sim, clock)
    assert scaled["latency"] < calm["latency"] * 0.9
    assert sim.admin("emergency", {"on": True})[0] == 200
    emergency = _window(sim, clock)
    assert emergency["usd_per_day"] < calm["usd_per_day"] * 0.2
    assert sim.component("ai-gateway")[1]["status"] == "degraded"
    assert sim.admin("emergency", {"on": False})[1]["emergency"] is False
    for what, doc in (("scale", {"replicas": 0}), ("scale", {"replicas": True}), ("emergency", {"on": "yes"})):
        assert sim.admin(what, doc)[0] == 400
    assert sim.admin("reboot", {})[0] == 404


def test_a_client_resetting_its_connection_prints_nothing(sim_server, capsys):
    """A cockpit quitting resets its keep-alive connections: the simulator, serving the
    demo in the same terminal, must not print a traceback over it."""
    import struct
    import time

    port = int(sim_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.recv(65536)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    time.sleep(0.3)
    assert "Traceback" not in capsys.readouterr().err
