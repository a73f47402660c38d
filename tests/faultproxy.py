"""A loopback TCP proxy in front of a real server (the simulator, Prometheus, moto,
PostgreSQL) whose behaviour a test switches while a cockpit is watching through it.

Modes (``proxy.set(mode, ...)``); a switch cuts the connections already open (except
into ``hang`` and ``slow``, which open connections suffer too), so the client's next
request meets the new behaviour:

- ``pass``: bytes go through untouched;
- ``refuse``: nothing listens on the port ("connection refused");
- ``hang``: new connections are accepted and never answered, and open ones stop
  delivering (a frozen server or a partition: the client's timeout);
- ``slow``: like ``pass`` but every answer starts ``delay`` seconds late;
- ``reply``: whatever is asked, ``reply`` bytes are sent back and the connection closed
  (an HTTP 503, a body that is not what the protocol promises);
- ``gate``: an HTTP gateway in front of the service (as nginx or oauth2-proxy are):
  a request whose head lacks ``needle`` gets a 401, the others go through.
"""

from __future__ import annotations

import socket
import threading
import time

from cockpit.drill.simulator import hard_close

LOOPBACK = "127.0.0.1"

UNAUTHORIZED = (b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
                b"Connection: close\r\n\r\nunauthorized\n")


def http_reply(status: int, reason: str, body: bytes, content_type: str = "text/plain") -> bytes:
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = LOOPBACK) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.delay = 0.0
        self.reply = b""
        self.needle = b""
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._closed = threading.Event()
        self._listener: socket.socket | None = None
        self.port = 0
        self._listen()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # ------------------------------------------------------------ test API

    def set(self, mode: str, *, delay: float = 0.0, reply: bytes = b"", needle: bytes = b"") -> None:
        assert mode in ("pass", "refuse", "hang", "slow", "reply", "gate"), mode
        with self._lock:
            self.mode, self.delay, self.reply, self.needle = mode, delay, reply, needle.lower()
        if mode not in ("hang", "slow"):
            self._cut()
        if mode == "refuse":
            self._stop_listening()
        elif self._listener is None:
            self._listen()

    def close(self) -> None:
        self._closed.set()
        self._stop_listening()
        self._cut()

    # ------------------------------------------------------------ internals

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:
            try:
                sock.bind((LOOPBACK, self.port))
                break
            except OSError:  # the old listener's port, not free yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True, name="fault-proxy").start()

    def _stop_listening(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _cut(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns), set()
        hard_close(conns)

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._conns.update(socks)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            mode, reply, needle = self.mode, self.reply, self.needle
        try:
            if mode == "hang":
                while client.recv(65536):
                    pass
                return
            if mode == "reply":
                client.settimeout(2.0)
                _read_head(client)
                client.sendall(reply)
                client.shutdown(socket.SHUT_WR)
                return
            first = b""
            if mode == "gate":
                first = _read_head(client)
                if needle not in first.lower():
                    client.sendall(UNAUTHORIZED)
                    return
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
            self._track(upstream)
            if first:
                upstream.sendall(first)
            asked = threading.Event()
            threading.Thread(target=self._pump, args=(client, upstream, asked, False), daemon=True).start()
            self._pump(upstream, client, asked, True)
        except OSError:
            pass
        finally:
            try:
                client.close()
            except OSError:
                pass

    def _pump(self, src: socket.socket, dst: socket.socket, asked: threading.Event, answers: bool) -> None:
        """Copy src to dst. The client-to-server pump marks each request; the server-to-client
        one (``answers``) holds the start of every answer back in ``slow`` mode and holds
        everything in ``hang`` mode."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not answers:
                    asked.set()
                elif asked.is_set() and self.mode == "slow":
                    asked.clear()
                    if self._closed.wait(self.delay):
                        break
                while self.mode == "hang":  # frozen: held until the mode changes (which cuts us)
                    if self._closed.wait(0.05):
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _read_head(sock: socket.socket) -> bytes:
    """What the client sent first: an HTTP request head (up to the blank line), or the
    first message of another protocol (whatever arrives first)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if not data[:8].isascii() or not data[:1].isalpha():
            break  # not HTTP (PostgreSQL's startup message): one read is the message
    return data
