"""Many health endpoints: one polling round of N loopback endpoints by the cockpit's
own sources, against a raw aiohttp client doing the same GETs in the same run.

    .venv/bin/python bench/endpoints.py [--endpoints 1000] [--rounds 7]

A child process serves N endpoints on 127.0.0.1 (asyncio, HTTP/1.1 keep-alive, a
small JSON body), each on its own port: N hosts, as a fleet's health checks are.
Two shapes of config, each measured against aiohttp on the same URLs:

  health      N `http_health` sources, one per endpoint, every one polled once
              (Poller.poll_once for all of them at the same moment, as at start-up
              or after "poll now"): the shared HTTP client carries them all.
  components  one `http_components` source listing N components on one host
              (/health/component/<name>), at its default max_in_flight.

aiohttp: one ClientSession, TCPConnector(limit=100), all N GETs gathered at once,
each body read and parsed as JSON. Per shape: the first round (connections being
made) and the median of --rounds warm rounds, wall time by perf_counter, and the
ratio cockpit/aiohttp (target: within 3x). Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

from _common import checkout_state  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 3.0
BODY = json.dumps({"status": "healthy", "message": "ok"}).encode()
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(BODY)).encode()
          + b"\r\n\r\n" + BODY)


# ---------------------------------------------------------------- the endpoints (child process)


def serve(count: int, ready, stop) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024) for _ in range(count)]
        ready.send([s.sockets[0].getsockname()[1] for s in servers])
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)

    asyncio.run(main())


# ---------------------------------------------------------------- the two clients


async def aiohttp_round(session, urls: list[str]) -> float:
    async def one(url: str) -> None:
        async with session.get(url) as resp:
            json.loads(await resp.read())

    t0 = time.perf_counter()
    await asyncio.gather(*(one(u) for u in urls))
    return time.perf_counter() - t0


async def cockpit_round(poller, sources) -> float:
    t0 = time.perf_counter()
    results = await asyncio.gather(*(poller.poll_once(s) for s in sources))
    elapsed = time.perf_counter() - t0
    failed = [r for rs in results for r in rs if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} readings failed, e.g. {failed[0].error}")
    return elapsed


def cockpit_sources(shape: str, ports: list[int]):
    from cockpit.config import config_from_dict
    from cockpit.drill.demo import demo_raw

    raw = demo_raw("http://127.0.0.1:9")
    if shape == "health":
        raw["sources"] += [{"name": f"h{i}", "kind": "http_health", "url": f"http://127.0.0.1:{p}/health",
                            "timeout": 30.0, "interval": 60.0} for i, p in enumerate(ports)]
        names = [f"h{i}" for i in range(len(ports))]
    else:
        raw["sources"].append({"name": "many", "kind": "http_components", "timeout": 30.0, "interval": 60.0,
                               "url": f"http://127.0.0.1:{ports[0]}/health/component/{{name}}",
                               "components": [f"c{i:04d}" for i in range(len(ports))]})
        names = ["many"]
    config = config_from_dict(raw, "<bench>", {})
    return [config.source(n) for n in names]


async def measure(shape: str, ports: list[int], rounds: int) -> dict[str, list[float]]:
    import aiohttp

    from cockpit.signals.poller import Poller
    from cockpit.signals.sources import SourceContext, build_source

    if shape == "health":
        urls = [f"http://127.0.0.1:{p}/health" for p in ports]
    else:
        urls = [f"http://127.0.0.1:{ports[0]}/health/component/c{i:04d}" for i in range(len(ports))]
    ctx = SourceContext()
    sources = [build_source(c, ctx) for c in cockpit_sources(shape, ports)]
    poller = Poller(sources, lambda name, readings: None)
    await ctx.http()  # built once, outside the rounds (as Source.prepare does before a first poll)
    times: dict[str, list[float]] = {"cockpit": [], "aiohttp": []}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        for _ in range(rounds + 1):  # the first round of each makes the connections
            times["cockpit"].append(await cockpit_round(poller, sources))
            times["aiohttp"].append(await aiohttp_round(session, urls))
    await ctx.aclose()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoints", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--shape", choices=("health", "components", "both"), default="both")
    args = ap.parse_args()

    ready_recv, ready_send = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    child = multiprocessing.Process(target=serve, args=(args.endpoints, ready_send, stop), daemon=True)
    child.start()
    ports = ready_recv.recv()
    print(f"checkout: {checkout_state(ROOT)}")
    print(f"{args.endpoints} loopback endpoints, {args.rounds} warm rounds (median) after one cold round")
    try:
        for shape in (("health", "components") if args.shape == "both" else (args.shape,)):
            times = asyncio.run(measure(shape, ports, args.rounds))
            cold = {k: v[0] for k, v in times.items()}
            warm = {k: statistics.median(v[1:]) for k, v in times.items()}
            print(f"\n{shape}:")
            for label, fig in (("cold round", cold), ("warm round", warm)):
                ratio = fig["cockpit"] / fig["aiohttp"]
                print(f"  {label}: cockpit {fig['cockpit'] * 1000:8.1f} ms   aiohttp {fig['aiohttp'] * 1000:8.1f} ms"
                      f"   ratio {ratio:4.2f} (target <= {TARGET_RATIO:g})")
    finally:
        stop.set()
        child.join(timeout=10)


if __name__ == "__main__":
    main()
