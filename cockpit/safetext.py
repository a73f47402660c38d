"""One sanitiser and one secret redactor for every string that comes from outside.

During an incident the cockpit reads from systems that misbehave: a broken service, a
proxy's error page, a tape someone sent over chat, another cockpit's journal rows.
Their text is hostile. Every such string goes through :func:`clean` where it enters
the cockpit (source readings, tapes, journal reads, command output, what is written to
the journal), so the screen, the CLI, the journal, tapes, exports and logs get only:

- **sanitised** text: terminal control characters and escapes (ESC, CSI, OSC 52
  clipboard writes, BEL, backspace, carriage return), other C0/C1 controls, bidi
  overrides and lone surrogates become visible placeholders (``␛`` …), never raw;
- **redacted** text: every value of an ``env:NAME`` the config references, and the
  parts of it a server may echo alone (the token in ``Bearer <token>``, the password
  in a URL, a webhook URL's path), replaced by ``[redacted]``.

No I/O and no imports beyond the standard library: cheap on the hot path (a string
that is printable and holds no secret is returned as it is).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

REDACTED = "[redacted]"
#: secrets shorter than this are not redacted piecemeal (a short part would mangle ordinary text)
MIN_SECRET = 8
#: the longest external string kept (an error page is not a log file)
MAX_TEXT = 4000

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))


def _table(keep_lines: bool) -> dict[int, str]:
    table: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20)}  # C0 controls: ␀ … ␟ (ESC is ␛)
    table[0x7F] = "␡"
    table.update({c: "⍰" for c in range(0x80, 0xA0)})  # C1 controls (0x9B is a one-byte CSI)
    table.update({c: "⍰" for c in _BIDI})  # reordering what the responder reads
    table.update({c: "\N{REPLACEMENT CHARACTER}" for c in range(0xD800, 0xE000)})  # lone surrogates
    table[0x2028] = table[0x2029] = "⏎"
    table[0x09] = " "
    table[0x0A] = "\n" if keep_lines else "⏎"
    if keep_lines:
        table[0x09] = "\t"
    return table


_ONE_LINE = _table(keep_lines=False)
_LINES = _table(keep_lines=True)


def sanitise(text: str, lines: bool = False) -> str:
    """``text`` with every control character and escape made visible. ``lines`` keeps
    newlines and tabs (command output, an update's text); otherwise a newline is ``⏎``."""
    if text.isprintable():
        return text
    return text.translate(_LINES if lines else _ONE_LINE)


class SecretRegistry:
    """Every secret value the cockpit has seen referenced, and the parts of it that could
    be echoed on their own. Thread-safe; one per process (:data:`SECRETS`)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        """Register a secret's value and its parts (nothing shorter than MIN_SECRET)."""
        if not value:
            return
        parts = set(_parts(value))
        with self._lock:
            new = {p for p in parts if len(p) >= MIN_SECRET} - self._values
            if new:
                self._values |= new
                ordered = sorted(self._values, key=len, reverse=True)  # the longest match wins
                self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def __contains__(self, value: str) -> bool:
        return value in self._values

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(REDACTED, text)


def _parts(value: str) -> Iterable[str]:
    """The value, each whitespace-separated part of it, and for a URL or a connection
    string its password (and user:password); for a web URL also its path, its long path
    segments and its query values (a webhook's secret is its path). A URL as a whole is
    not redacted (its host and database name say where the cockpit connects); a database
    URL's path is a database name, not a secret."""
    if "://" not in value:
        yield value
        yield from value.split()
    for piece in [value, *value.split()]:
        if "://" in piece and "@" in piece.split("://", 1)[1]:
            # userinfo up to the last "@", whatever it holds ('#', '?', '/' defeat URL parsers)
            userinfo = piece.split("://", 1)[1].rsplit("@", 1)[0]
            if ":" in userinfo:  # a user name alone is not a secret
                yield userinfo
                yield userinfo.split(":", 1)[1]
        if "://" in piece:
            try:
                u = urlsplit(piece)
                password = u.password
            except ValueError:
                continue
            if password:
                yield password
                yield f"{u.username}:{password}"
            if u.scheme in ("http", "https"):
                if u.path and u.path != "/":
                    yield u.path
                    yield from (seg for seg in u.path.split("/") if len(seg) >= 16)
                if u.query:
                    yield u.query
                    yield from (kv.split("=", 1)[-1] for kv in u.query.split("&"))
        for m in re.finditer(r"(?:password|passwd|pwd|secret|token|key)\s*[=:]\s*'?([^\s']+)", piece, re.I):
            yield m.group(1)


SECRETS = SecretRegistry()


def clean(text: Any, lines: bool = False, limit: int = MAX_TEXT) -> str:
    """The one way external text enters the cockpit: cut to ``limit`` characters,
    sanitised, secrets redacted."""
    if not isinstance(text, str):
        text = str(text)
    if len(text) > limit:
        text = text[:limit] + "…"
    return SECRETS.redact(sanitise(text, lines))


def clean_value(value: Any, lines: bool = True) -> Any:
    """Every string in a JSON-like value (payloads, plans, tape headers) cleaned, keys too;
    numbers and the rest as they are."""
    if isinstance(value, str):
        return clean(value, lines=lines, limit=max(MAX_TEXT, 64_000))
    if isinstance(value, dict):
        return {clean(str(k)): clean_value(v, lines) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_value(v, lines) for v in value]
    return value


def clean_reading(r):
    """A reading with its state, detail and error cleaned (the same object when they
    need nothing: the common case costs three isprintable() calls)."""
    from cockpit.model import Reading

    fields = (r.state, r.detail, r.error)
    if all(f is None or (f.isprintable() and len(f) <= MAX_TEXT and SECRETS._pattern is None) for f in fields):
        return r
    state = clean(r.state, limit=80) if r.state is not None else None
    return Reading(r.source, r.series, r.ts, r.value, r.status, clean(r.error), state, clean(r.detail),
                   r.latency, r.received, r.history)


# ---------------------------------------------------------------- secret references

ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
SENSITIVE_HEADER = re.compile(r"authorization|token|secret|api[-_]?key|password|cookie|signature", re.I)


class SecretError(Exception):
    """A secret reference that cannot be resolved right now."""


def is_secret_ref(value: str) -> bool:
    return bool(ENV_REF.match(value))

_SECRETS_LOCKED = ""


def lock_secrets(why: str) -> None:
    """From now on :func:`resolve_secret` refuses every reference (a drill sends nothing
    anywhere and reads no secret, whatever its tape's config says)."""
    global _SECRETS_LOCKED
    _SECRETS_LOCKED = why


def resolve_secret(value: str, where: str = "") -> str:
    """Resolve an ``env:NAME`` reference at the moment of use; plain values pass through."""
    m = ENV_REF.match(value)
    if not m:
        return value
    name = m.group(1)
    if _SECRETS_LOCKED:
        raise SecretError(f"{_SECRETS_LOCKED}: {value} is not read")
    try:
        value = os.environ[name]
    except KeyError:
        place = f" (referenced by {where})" if where else ""
        raise SecretError(f"environment variable {name} is not set{place}") from None
    SECRETS.add(value)  # whatever the cockpit sends, it never shows, journals or records
    return value


def register_secrets(raw: Any, environ: Mapping[str, str]) -> None:
    """Every value an ``env:NAME`` in the config refers to (and its parts) goes to the
    secret registry at load time, so it is redacted from everything, even before first use."""
    stack = [raw]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            m = ENV_REF.match(node)
            if m and environ.get(m.group(1)):
                SECRETS.add(environ[m.group(1)])
