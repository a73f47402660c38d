"""A hostile service on loopback for issue 12's tests: every answer carries terminal
escapes (OSC 0 window title, OSC 52 clipboard write, CSI clear screen, a one-byte C1
CSI, a bidi override) and echoes back the token it was sent, as broken services and
proxies' error pages do. Real HTTP over a real socket; nothing is mocked."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TITLE = "\x1b]0;pwned\x07"  # renames the terminal window
CLIPBOARD = "\x1b]52;c;cHduZWQ=\x07"  # writes "pwned" to the clipboard
CLEAR = "\x1b[2J\x1b[H"  # wipes the screen
C1 = "\x9b31m"  # a one-byte CSI
BIDI = "\u202egnp.exe"  # right-to-left override
ATTACKS = (TITLE, CLIPBOARD, CLEAR, C1, BIDI)
EVERY = "".join(ATTACKS)
#: what must never appear in anything the cockpit shows, writes or prints
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def _echo(self) -> str:
        """The token part of the Authorization header, as an error page would show it."""
        return self.headers.get("Authorization", "").split()[-1] if self.headers.get("Authorization") else ""

    def _send(self, code: int, body: str, reason: str | None = None, headers: dict | None = None,
              ctype: str = "application/json") -> None:
        data = body.encode("utf-8", "surrogatepass")
        self.send_response_only(code, reason)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        tok = self._echo()
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(200, json.dumps({"status": f"degraded{TITLE}", "message": f"upstream{CLEAR} token {tok}"}))
        elif path == "/c/ok":
            self._send(200, json.dumps({"status": "healthy", "message": f"fine{CLIPBOARD}{BIDI}"}))
        elif path == "/c/status":
            self._send(200, json.dumps({"status": f"unhealthy{EVERY}", "message": f"db {tok}{C1}"}))
        elif path == "/c/reason":
            self._send(503, "down", reason=f"Unavailable {tok}\x1b[31m", ctype="text/plain")
        elif path == "/c/redirect":
            self._send(302, "", headers={"Location": f"http://127.0.0.1:1/{TITLE}{tok}"}, ctype="text/plain")
        elif path.startswith("/api/v1/query"):
            self._send(400, json.dumps({"status": "error", "errorType": f"bad_data{CLEAR}",
                                        "error": f"parse error{TITLE} near {tok}"}))
        else:
            self._send(404, f"no route {path}{TITLE}", ctype="text/plain")


class HostileServer:
    def __init__(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def config(server: HostileServer, token_var: str = "HOSTILE_TOKEN") -> dict:
    """A config that reads every hostile endpoint, each with the secret header."""
    auth = {"Authorization": f"env:{token_var}"}
    fast = {"interval": 0.5, "timeout": 1.0, "max_backoff": 1.0}
    return {
        "service": {"name": "hostile", "environment": "test", "production": False},
        "settings": {"refresh": 0.2},
        "sources": [
            {"name": "health", "kind": "http_health", "url": server.url("/health"), "headers": auth, **fast},
            {"name": "components", "kind": "http_components", "url": server.url("/c/{name}"),
             "components": ["ok", "status", "reason", "redirect"], "headers": auth, **fast},
            {"name": "prom", "kind": "prom_query", "url": server.url("/"), "headers": auth, "backfill": 60,
             "queries": {"error_rate": "sum(rate(x[5m]))", "latency_p95": "y", "cost_per_day": "z"}, **fast},
        ],
        "panels": {
            "health": {"sources": ["health"]},
            "error_rate": {"series": "prom:error_rate", "unit": "ratio", "threshold": {"warn": 0.05, "critical": 0.1}},
            "latency": {"series": "prom:latency_p95", "unit": "seconds", "threshold": {"warn": 0.5, "critical": 1.0}},
            "cost": {"series": "prom:cost_per_day", "unit": "usd_per_day"},
            "components": {"sources": ["components"]},
        },
    }


#: the attacks' own bytes, for files whose binary structure holds any byte by chance
SEQUENCES = ("\x1b]0;", "\x1b]52;", "\x1b[2J", "\x1b[31m", "\x9b31m", "\u202e")


def leaks(data: bytes | str, canaries: tuple[str, ...]) -> list[str]:
    """What of the forbidden characters (in text) or the attack sequences (in a binary
    file such as a SQLite database, whose pages hold every byte value) and the canaries
    is in ``data``."""
    if isinstance(data, bytes):
        return [repr(x) for x in (*SEQUENCES, *canaries) if x and x.encode() in data]
    return [repr(x) for x in (*FORBIDDEN, *canaries) if x and x in data]
