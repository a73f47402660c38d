"""The first poll's GETs go out before the app runs (SourceContext.start_early), on a real
loopback server: taken once by the first poll, stamped with when they were read, dropped
when stale, under the same rules (redirects, size caps) as the polling client."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_poller import by_series, health, poll, prom

from cockpit.clock import ManualClock
from cockpit.model import Status
from cockpit.signals.sources import SourceContext, SourceError, build_source
from cockpit.signals.sources import _base
from cockpit.signals.sources.http_components import HttpComponentsSource

SCRAPE = "http_requests_total {n}\nhttp_errors_total 0\n" \
         "# TYPE http_request_duration_seconds histogram\n" \
         'http_request_duration_seconds_bucket{{le="+Inf"}} {n}\n' \
         "ai_token_cost_usd_total 1\n"


async def _early_done(context: SourceContext) -> None:
    """Wait (off the loop) until every early GET has its answer."""
    await asyncio.gather(*(asyncio.wrap_future(f) for f in context._early.values()), return_exceptions=True)


async def _health_read_early(fault_server, status: str):
    """(clock, context, source): a health source whose first GET was made early, answered."""
    clock = ManualClock()
    context = SourceContext(clock)
    fault_server.respond_json("/health", {"status": status})
    source = build_source(health(fault_server.url("/health")), context)
    context.start_early([source])
    await _early_done(context)
    return clock, context, source


async def test_the_first_poll_takes_the_early_answer_stamped_when_it_was_read(fault_server):
    clock, context, source = await _health_read_early(fault_server, "healthy")
    assert fault_server.hits.get("/health") == 1
    read_at = clock.monotonic()
    clock.advance(1.5)  # the app mounts a while later
    _, readings = await poll(build_source(health(fault_server.url("/health")), context))
    got = by_series(readings)
    assert fault_server.hits["/health"] == 1, "the first poll took the early answer: no second request"
    assert context._session is None, "no HTTP client was needed for it"
    assert got["health"].state == "up"
    assert got["health"].received == pytest.approx(read_at), "stamped when it was read, not when taken"
    assert got["health"].ts == pytest.approx(clock.now() - 1.5)
    _, readings = await poll(source)  # the next poll asks the server again
    assert fault_server.hits["/health"] == 2 and by_series(readings)["health"].received == clock.monotonic()
    await context.aclose()


async def test_a_stale_early_answer_is_dropped_and_asked_again(fault_server):
    clock, context, source = await _health_read_early(fault_server, "down")
    fault_server.respond_json("/health", {"status": "healthy"})
    clock.advance(_base.EARLY_FRESH + 0.5)  # the app took long to come up
    _, readings = await poll(source)
    assert fault_server.hits["/health"] == 2
    assert by_series(readings)["health"].state == "up", "the fresh answer, not the stale one"
    assert by_series(readings)["health"].received == clock.monotonic()
    await context.aclose()


async def test_a_rate_window_starts_when_the_early_scrape_went_out(fault_server):
    """The early scrape is the rate's baseline, timed from its own start: with the window
    passed since then (not since the poll took it), the next scrape gives the true rate."""
    clock = ManualClock()
    context = SourceContext(clock)
    fault_server.respond("/metrics", SCRAPE.format(n=100))
    cfg = prom(fault_server.url("/metrics"), min_rate_window=2.0)
    source = build_source(cfg, context)
    context.start_early([source])
    await _early_done(context)
    clock.advance(1.0)
    _, first = await poll(source)
    assert first == [] and source.warming_up()
    clock.advance(1.0)  # 2 s since the early scrape, 1 s since the poll took it
    fault_server.respond("/metrics", SCRAPE.format(n=120))
    _, second = await poll(source)
    assert by_series(second)["request_rate"].value == pytest.approx(10.0)
    assert fault_server.hits["/metrics"] == 2
    await context.aclose()


async def test_components_and_errors_made_early(fault_server, closed_port):
    clock = ManualClock()
    context = SourceContext(clock)
    fault_server.respond_json("/c/a", {"status": "healthy"})
    fault_server.respond("/c/b", "moved", status=302)
    comps = build_source(HttpComponentsSource(kind="http_components", name="comp", url=fault_server.url("/c/{name}"),
                                              components=["a", "b"]), context)
    gone = build_source(health(f"http://127.0.0.1:{closed_port}/health", name="gone"), context)
    context.start_early([comps, gone])
    await _early_done(context)
    _, readings = await poll(comps)
    got = by_series(readings)
    assert got["component/a"].state == "healthy"
    assert got["component/b"].status is Status.ERROR and "HTTP 302 redirect" in got["component/b"].error
    assert fault_server.hits == {"/c/a": 1, "/c/b": 1}
    _, readings = await poll(gone)
    assert by_series(readings)["health"].state == "unreachable"
    assert "refused" in by_series(readings)["health"].error
    await context.aclose()


async def test_big_answers_keep_the_polling_clients_rules(fault_server):
    context = SourceContext(ManualClock())
    fault_server.respond("/metrics", "# padding\n" * (1024 * 1024))  # 10 MiB
    fault_server.respond("/health", b'{"status": "healthy"}' + b" " * (4 * 1024 * 1024))
    scrape = build_source(prom(fault_server.url("/metrics")), context)
    check = build_source(health(fault_server.url("/health")), context)
    context.start_early([scrape, check])
    await _early_done(context)
    _, readings = await poll(scrape)
    assert all(r.status is Status.ERROR and "larger than" in r.error for r in readings)
    _, readings = await poll(check)
    assert by_series(readings)["health"].state == "up", "read up to the cap, the rest dropped"
    await context.aclose()


def test_nothing_early_for_urls_the_stdlib_client_would_treat_differently(monkeypatch):
    context = SourceContext(ManualClock())
    with_user = build_source(health("http://user@127.0.0.1:9/health"), context)
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    no_secret = build_source(health("http://127.0.0.1:9/health", name="s",
                                    headers={"Authorization": "env:NO_SUCH_TOKEN"}), context)
    context.start_early([with_user, no_secret])
    assert context._early == {}


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=40), max_size=12), limit=st.integers(0, 200), truncate=st.booleans())
def test_reading_a_body_in_chunks_keeps_the_cap(chunks, limit, truncate):
    """Whatever chunks a server sends: a truncating read keeps exactly the first ``limit``
    bytes; a refusing read gives the whole body or refuses once it passes the limit."""
    whole = b"".join(chunks)
    body = bytearray()
    try:
        for chunk in chunks:
            if _base._take(body, chunk, limit, truncate):
                break
    except SourceError as e:
        assert not truncate and len(whole) > limit and "larger than" in str(e)
        return
    assert bytes(body) == whole[:limit] if truncate else bytes(body) == whole
    assert len(whole) <= limit or truncate
