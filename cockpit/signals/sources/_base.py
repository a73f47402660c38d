from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

from cockpit.clock import Clock, SystemClock
from cockpit.model import Reading, Status

if TYPE_CHECKING:
    import aiohttp
    import httpx

T = TypeVar("T")


class SourceError(Exception):
    """A poll failed for a reason worth one short line on a panel."""


class SourceContext:
    """What sources share: the clock and lazily made HTTP clients.

    Polling GETs go through one aiohttp session whose connector keeps at most
    ``http_limit`` connections (queued requests wait cheaply per host). httpx, used
    for this first, spent ~1 ms of CPU per request in its pool and parser and slowed
    down as O(n^2) with many hosts in one pool; aiohttp answers 1,000 loopback health
    checks several times faster (bench/endpoints.py). The posts to Slack and status
    pages, a few a minute, still use one httpx client (``http()``)."""

    def __init__(self, clock: Clock | None = None, http_limit: int = 100) -> None:
        self.clock = clock or SystemClock()
        self.http_limit = http_limit
        self._http: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        #: first GETs made before the app's event loop runs (see start_early), by request
        self._early: dict[tuple, concurrent.futures.Future] = {}

    async def session(self) -> "aiohttp.ClientSession":
        """The polling session. Importing aiohttp takes ~160 ms of CPU (much more on a
        loaded machine): done in a thread (started early by warm_http), then the session
        is made on the event loop, which it belongs to."""
        if self._session is None:
            async with self._lock:
                if self._session is None:
                    # shielded: a poll cancelled at its deadline must not cancel the import every
                    # later poll waits for (wrap_future passes a cancellation on to the future)
                    aiohttp = await asyncio.shield(asyncio.wrap_future(warm_http()))
                    # ssl=True: aiohttp's own verifying context, made when it was imported (a
                    # context of our own loaded the CA bundle a third time, ~30 ms)
                    connector = aiohttp.TCPConnector(limit=self.http_limit, limit_per_host=0, ssl=True,
                                                     ttl_dns_cache=300, enable_cleanup_closed=False)
                    self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                          cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def get(self, url: str, headers: dict[str, str], timeout: float, limit: int, truncate: bool) -> Answer:
        """GET ``url`` (see :func:`get_capped`); the wait for a free connection counts
        against ``timeout``. The answer is stamped with when the request started and when
        it was read; a first GET made early (start_early) is taken once, while fresh."""
        early = self._early.pop(_request_key(url, headers, timeout, limit, truncate), None)
        if early is not None:
            answer = await asyncio.wrap_future(early)
            if self.clock.monotonic() - answer.answered <= EARLY_FRESH:
                return answer
        started = self.clock.monotonic()
        status, reason, body = await get_capped(await self.session(), url, headers, timeout, limit, truncate)
        return Answer(status, reason, body, started, self.clock.monotonic())

    def start_early(self, sources: list[Source]) -> None:
        """Make each source's first GETs now, on threads with the standard library's
        client, while the app is still loading: a rate needs two scrapes min_rate_window
        apart, and aiohttp and Textual take ~400 ms to load. Each answer is taken by the
        source's first poll if it is at most EARLY_FRESH seconds old by then (else the poll
        asks again), and its readings are stamped with when it was read, not when taken."""
        requests: list[Request] = []
        for source in sources:
            try:
                requests += [r for r in source.poll_gets() if _plain(r[0])]
            except Exception:  # noqa: BLE001 - e.g. a secret not set: the first poll says so
                continue
        requests = requests[:EARLY_MAX]
        todo: list[tuple[concurrent.futures.Future, Request]] = []
        for request in requests:
            key = _request_key(*request)
            if key not in self._early:
                self._early[key] = concurrent.futures.Future()
                todo.append((self._early[key], request))
        lock = threading.Lock()

        def work() -> None:  # daemon threads: a frozen server must not hold up the exit
            while True:
                with lock:
                    if not todo:
                        return
                    future, request = todo.pop(0)
                _run_into(future, lambda: self._get_now(*request))

        for i in range(min(4, len(todo))):
            threading.Thread(target=work, name=f"early-get-{i}", daemon=True).start()

    def answered_early(self, source: Source) -> bool:
        """Whether every GET of ``source``'s next poll was made early (no HTTP client needed
        for it). Nothing is worked out once the early answers are taken: a poll's path."""
        if not self._early:
            return False
        try:
            requests = source.poll_gets()
        except Exception:  # noqa: BLE001 - e.g. a secret not set: fetch says so
            return False
        return bool(requests) and all(_request_key(*r) in self._early for r in requests)

    def _get_now(self, url: str, headers: dict[str, str], timeout: float, limit: int, truncate: bool) -> Answer:
        started = self.clock.monotonic()
        status, reason, body = get_blocking(url, headers, timeout, limit, truncate)
        return Answer(status, reason, body, started, self.clock.monotonic())

    async def http(self) -> "httpx.AsyncClient":
        """The httpx client for posting updates (Slack, status pages), made in a thread."""
        if self._http is None:
            async with self._lock:
                if self._http is None:
                    self._http = await asyncio.to_thread(_httpx_client, self.http_limit)
        return self._http

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        client, self._http = self._http, None
        if client is not None:
            await client.aclose()


_warm: concurrent.futures.Future | None = None
_warm_lock = threading.Lock()


def warm_http() -> concurrent.futures.Future:
    """Start importing aiohttp on a thread of its own (once); the future holds the module.
    Called by the command line as soon as it knows a config polls over HTTP, so that ~160 ms
    of CPU overlaps Textual's import and the first frame instead of delaying the second poll."""
    global _warm
    with _warm_lock:
        if _warm is None or _warm.cancelled() or (_warm.done() and _warm.exception() is not None):  # tried again
            _warm = concurrent.futures.Future()
            threading.Thread(target=_run_into, args=(_warm, _import_aiohttp), name="warm-http",
                             daemon=True).start()
        return _warm


def _run_into(future: concurrent.futures.Future, fn: Callable[[], Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return  # cancelled before it started (the poll waiting for it was): nothing to do
    try:
        future.set_result(fn())
    except BaseException as e:  # noqa: BLE001 - handed to whoever awaits it
        future.set_exception(e)


def _import_aiohttp() -> Any:
    """aiohttp, imported here, off the event loop: ~160 ms of CPU, most of it the two TLS
    contexts (verifying and not) it builds from the CA bundle when imported."""
    import aiohttp

    return aiohttp


def _httpx_client(limit: int) -> "httpx.AsyncClient":
    import httpx

    limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
    from cockpit.tls import tls_context

    return httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False, verify=tls_context())


class Source(ABC):
    """One configured source. Subclasses set ``kind`` and implement ``fetch``."""

    kind: ClassVar[str]
    #: whether fetch() uses the shared HTTP client (made once, before the first poll's deadline starts)
    uses_http: ClassVar[bool] = False

    def __init__(self, cfg: Any, ctx: SourceContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.name: str = cfg.name
        self._thread_since: float | None = None  # monotonic start of a blocking call still running

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread, one call at a time per source. A call the
        poller gave up on at its deadline (a frozen server) can still be running: the
        next poll then fails at once, saying so, instead of stacking another thread
        behind it, so one frozen server cannot use up the threads the others need."""
        if self._thread_since is not None:
            waited = time.monotonic() - self._thread_since
            raise SourceError(f"timed out: still no answer to the call made {waited:.0f}s ago")

        started = False

        def call() -> T:
            nonlocal started
            started = True
            try:
                return fn(*args)
            finally:
                self._thread_since = None

        self._thread_since = time.monotonic()
        try:
            return await asyncio.get_running_loop().run_in_executor(None, call)
        except asyncio.CancelledError:
            if not started:  # cancelled while queued: it will never run
                self._thread_since = None
            raise

    @property
    def interval(self) -> float:
        return self.cfg.interval

    @property
    def timeout(self) -> float:
        return self.cfg.timeout

    @property
    def max_backoff(self) -> float:
        return self.cfg.max_backoff

    def series(self) -> list[str]:
        """Names of the series this source produces (declared by its config)."""
        return self.cfg.series_names()

    async def prepare(self) -> None:
        """What a poll needs that is not the poll itself (building the HTTP client takes
        ~100 ms, much longer on a loaded machine): done outside the poll's deadline, so a
        first poll is not reported as timed out for it."""
        if self.uses_http and not self.ctx.answered_early(self):
            await self.ctx.session()

    @abstractmethod
    async def fetch(self) -> list[Reading]:
        """Poll once. Raise on failure; the poller records it."""

    async def poll(self) -> list[Reading]:
        """Poll once, every string the service sent back cleaned (control characters and
        escapes made visible, secrets redacted): the only way readings come in."""
        from cockpit.safetext import clean_reading

        return [clean_reading(r) for r in await self.fetch()]

    def next_delay(self) -> float:
        """Seconds to wait before the next poll after a success."""
        return self.interval

    def checking(self) -> None:
        """Polled once by `cockpit check`: skip what only a running cockpit needs (history)."""

    def warming_up(self) -> str:
        """Why the last poll answered but gave no readings yet, in one line ("" if not so): a
        rate source waiting for a scrape far enough from its first. ``next_delay()`` then
        says when a poll can give them."""
        return ""

    def reset(self) -> None:
        """Forget state carried between polls; called after a failed poll."""

    @property
    def deadline(self) -> float:
        """Seconds the poller lets one whole poll take."""
        return self.timeout

    def failure(self, ts: float, error: str) -> list[Reading]:
        """Readings that record a failed poll, one per series."""
        mono = self.ctx.clock.monotonic()
        return [Reading(self.name, s, ts, None, Status.ERROR, error, received=mono) for s in self.series()]

    def poll_gets(self) -> list[Request]:
        """The GETs a poll of this source makes (its fetch makes them; SourceContext.start_early
        makes the first poll's before the app runs). None by default: only sources whose poll
        is plain GETs say them."""
        return []

    def reading(self, series: str, value: float | None, *, as_of: float | None = None, **kw: Any) -> Reading:
        """A reading stamped now, or as of ``as_of`` (the clock's monotonic time the answer
        it comes from was read: an early answer is taken a little after that)."""
        clock = self.ctx.clock
        mono = clock.monotonic()
        if as_of is None or as_of > mono:
            return Reading(self.name, series, clock.now(), value, received=mono, **kw)
        return Reading(self.name, series, clock.now() - (mono - as_of), value, received=as_of, **kw)

    def change(self, where: str, now: str, *, since: float | None = None, by: str = "",
               as_of: float | None = None) -> Reading:
        """A change reading (see cockpit.model.CHANGE_PREFIX): ``where`` is ``now`` (a version,
        a revision), since ``since`` (epoch seconds) when the source knows, changed ``by``."""
        from cockpit.model import CHANGE_PREFIX

        return self.reading(CHANGE_PREFIX + where, since, state=now, detail=by, as_of=as_of)

    async def aclose(self) -> None:
        return None


#: an early answer older than this when the first poll comes is not used (seconds)
EARLY_FRESH = 2.0
#: at most this many early GETs (a components source can name a thousand URLs)
EARLY_MAX = 16

#: what a source's first poll will GET: (url, headers, timeout, byte limit, truncate)
Request = tuple[str, dict[str, str], float, int, bool]


def _plain(url: str) -> bool:
    """A URL the standard library's client GETs as aiohttp would (no credentials in it)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.username is None
    except ValueError:
        return False


def _request_key(url: str, headers: dict[str, str], timeout: float, limit: int, truncate: bool) -> tuple:
    return url, tuple(sorted(headers.items())), timeout, limit, truncate


class Answer(NamedTuple):
    status: int
    reason: str
    body: bytes
    started: float  # the clock's monotonic time when the request went out
    answered: float  # ... and when the whole answer had been read

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _refuse(status: int, location: str | None, length: int | None, limit: int, truncate: bool) -> None:
    """The rules both clients keep before reading a body: a redirect is an error that names
    where it points (following it silently would hide a misconfigured URL), and a body
    announced larger than ``limit`` is refused unless it may be truncated."""
    if 300 <= status < 400:
        raise SourceError(f"HTTP {status} redirect to {(location or '?')[:100]}; configure that URL instead")
    if not truncate and length is not None and length > limit:
        raise _too_big(limit)


def _too_big(limit: int) -> SourceError:
    return SourceError(f"response larger than {limit // 1024} KiB; refusing to read it")


def _take(body: bytearray, chunk: bytes, limit: int, truncate: bool) -> bool:
    """Add ``chunk`` to ``body``; True once the limit is reached (the rest is not read)."""
    body += chunk
    if len(body) > limit:
        if not truncate:
            raise _too_big(limit)
        del body[limit:]
        return True
    return False


def get_blocking(url: str, headers: dict[str, str], timeout: float, limit: int,
                 truncate: bool) -> tuple[int, str, bytes]:
    """:func:`get_capped` with the standard library's client, for a thread (start_early).
    ``timeout`` bounds each socket operation; the poll awaiting it keeps its deadline."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        from cockpit.tls import tls_context

        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=tls_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), headers=headers)
        resp = conn.getresponse()
        _refuse(resp.status, resp.getheader("location"), resp.length, limit, truncate)
        body = bytearray()
        while chunk := resp.read1(64 * 1024):
            if _take(body, chunk, limit, truncate):
                break
        return resp.status, resp.reason or "", bytes(body)
    finally:
        conn.close()


async def get_capped(session, url: str, headers: dict[str, str], timeout: float, limit: int,
                     truncate: bool) -> tuple[int, str, bytes]:
    """GET (aiohttp) without reading more than ``limit`` bytes: the rest is dropped
    (``truncate``) or the answer is refused. ``timeout`` covers the whole request, the
    wait for a free connection included. A redirect is an error that names where it
    points, because following it silently would hide a misconfigured URL."""
    import aiohttp

    async with session.get(url, headers=headers, allow_redirects=False,
                           timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        _refuse(resp.status, resp.headers.get("location"), resp.content_length, limit, truncate)
        body = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            if _take(body, chunk, limit, truncate):
                break
        return resp.status, resp.reason or "", bytes(body)


def describe_error(exc: BaseException, timeout: float | None = None) -> str:
    """One short line for a failure, without a traceback, cleaned: an exception's text
    carries what the server sent (a reason phrase, a Location, an echoed token)."""
    from cockpit.safetext import clean

    try:
        said = _describe(exc, timeout)
    except Exception:  # noqa: BLE001 - an odd exception must not turn one failed poll into a crash
        said = type(exc).__name__
    return clean(said, limit=300)


def _describe(exc: BaseException, timeout: float | None) -> str:
    if (untrusted := _untrusted_certificate(exc)) is not None:  # from aiohttp, httpx or the standard library
        return untrusted
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"timed out after {timeout:g}s" if timeout else "timed out"
    if isinstance(exc, SourceError):
        return str(exc)
    mod = type(exc).__module__
    if mod.startswith(("httpx", "httpcore")):
        return _describe_http(exc, timeout)
    if mod.startswith("aiohttp"):
        return _describe_aiohttp(exc, timeout)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _root_os_error(exc: BaseException) -> OSError | None:
    """The OSError at the bottom of an exception chain (httpx wraps it in several layers)."""
    seen = 0
    node: BaseException | None = exc
    found = None
    while node is not None and seen < 10:
        if isinstance(node, OSError):
            found = node
        if isinstance(node, BaseExceptionGroup) and node.exceptions:
            node = node.exceptions[0]
        else:
            node = node.__cause__ or node.__context__
        seen += 1
    return found


def _untrusted_certificate(exc: BaseException) -> str | None:
    """A server certificate that failed verification, said with what to do (None: not that)."""
    import ssl

    todo: list[BaseException] = [exc]
    for _ in range(12):
        if not todo:
            return None
        node = todo.pop(0)
        inner = getattr(node, "certificate_error", None)  # aiohttp's wrapper (itself a CertificateError)
        if isinstance(inner, BaseException):
            todo.insert(0, inner)
            continue
        if isinstance(node, ssl.SSLCertVerificationError):
            said = getattr(node, "verify_message", None) or getattr(node, "reason", None)
            reason = str(said or "certificate verify failed").lower()
            private = any(w in reason for w in ("issuer", "self-signed", "self signed"))
            return (f"TLS certificate not trusted: {reason}" + (
                " (signed by a private CA? export SSL_CERT_FILE=<that CA's PEM file> before starting the cockpit)"
                if private else ""))
        if isinstance(node, BaseExceptionGroup):
            todo += node.exceptions
        todo += [n for n in (getattr(node, "os_error", None), node.__cause__, node.__context__)
                 if isinstance(n, BaseException)]
    return None


def _describe_aiohttp(exc: BaseException, timeout: float | None) -> str:
    import socket

    import aiohttp

    if isinstance(exc, aiohttp.ServerTimeoutError):
        return f"timed out after {timeout:g}s" if timeout else "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        return f"cannot connect: {(cause.strerror or str(cause)).lower()}" if cause else "cannot connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed without a response"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"bad HTTP response: {exc.message}" if exc.message else "bad HTTP response"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "bad HTTP response: the body was cut short"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc}"
    cause = _root_os_error(exc)
    if isinstance(cause, ConnectionResetError):
        return "connection reset by the server"
    if cause is not None and cause.strerror:
        return cause.strerror.lower()
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _describe_http(exc: BaseException, timeout: float | None) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s" if timeout else "timed out"
    if isinstance(exc, httpx.ConnectError):
        cause = _root_os_error(exc)
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused"
        if "name or service" in text or "nodename" in text or "name resolution" in text:
            return "host name not found"
        return f"cannot connect: {exc}" if str(exc) else "cannot connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"bad HTTP response: {exc}" if str(exc) else "connection closed without a response"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} {exc.response.reason_phrase}".strip()
    if isinstance(exc, httpx.InvalidURL):
        return f"invalid URL: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def summarize_components(readings: list[Reading]) -> tuple[bool, str]:
    """A component source: its one row, or how many rows are healthy and which failed."""
    rows = [r for r in readings if r.series.startswith("component/")]
    errors = [r for r in rows if r.status is Status.ERROR]
    if len(rows) == 1 and not errors:
        r = rows[0]
        return True, f"{r.series.removeprefix('component/')} {r.state}" + (f" ({r.detail})" if r.detail else "")
    healthy = sum(1 for r in rows if r.status is Status.OK and r.value == 1.0)
    text = f"{healthy}/{len(rows)} healthy"
    if errors:
        text += f", {len(errors)} unreachable: " + "; ".join(
            f"{r.series.removeprefix('component/')}: {r.error}" for r in errors)
    return not errors, text
