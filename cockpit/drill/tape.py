"""Tapes: a recording of every reading and timeline event of a run, for drills.

File layout (little-endian)::

    b"COCKPIT TAPE\\n" + u16 format version
    frame*   frame = tag(4) t0(f64) t1(f64) length(u32) crc32(u32) + zlib payload

- ``HEAD``: JSON: format, service, environment, config fingerprint, start time, the
  config itself (secrets in it are references only, and any value of a referenced
  variable is scrubbed from every string written).
- ``RDGS``: the readings of a stretch of time (``flush_every`` seconds), columnar:
  series keys and the frame's distinct strings, then per reading the key index,
  timestamp, value, latency (float64, XOR-ed with the previous one and byte-shuffled,
  which zlib packs tightly for telemetry), status, flags, and state, detail and error
  as indexes into the strings.
- ``EVTS``: timeline events of that stretch, JSON.

Append-only: frames are only ever added. A tape cut off by a crash is read up to its
last complete frame (each frame carries its length and a CRC); the reader says where
it stopped. Every frame's time span is in its header, so opening a tape reads only
frame headers and seeking reads only the frames it needs.
"""

from __future__ import annotations

import json
import struct
import threading
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cockpit.model import Level, Reading, Status, TimelineEvent

MAGIC = b"COCKPIT TAPE\n"
FORMAT_VERSION = 2  # 1: a development format of 2026-11-23 (strings in JSON), not read
_VERSION = struct.Struct("<H")
_FRAME = struct.Struct("<4sddII")
HEAD, READINGS, EVENTS = b"HEAD", b"RDGS", b"EVTS"
_STATUS = {Status.OK: 0, Status.ERROR: 1}
_STATUS_BACK = {v: k for k, v in _STATUS.items()}
_NONE_VALUE, _NONE_LATENCY, _HISTORY = 1, 2, 4
MAX_FRAME = 256 * 1024 * 1024  # a length beyond this is damage, not data
MAX_DECODED = 64 * 1024 * 1024  # a frame never inflates beyond this (a 30 s frame of 50,000 readings is ~3 MB)
MAX_HEADER = 4 * 1024 * 1024
#: times a tape may hold: 1970 to 2286 (epoch seconds); anything else is not a recording
EARLIEST, LATEST = 0.0, 10_000_000_000.0
REDACTED = "[redacted]"


class TapeError(Exception):
    """A tape that cannot be written or read, said in one line naming the file."""


# ---------------------------------------------------------------- column codecs


def _pack_floats(values: list[float]) -> bytes:
    """float64s XOR-ed with their predecessor, then byte-shuffled (all first bytes, all
    second bytes, ...): slowly changing telemetry becomes long runs zlib packs well."""
    ints = array("Q", array("d", values).tobytes())
    prev = 0
    for i, v in enumerate(ints):
        ints[i], prev = v ^ prev, v
    raw = ints.tobytes()
    return b"".join(raw[k::8] for k in range(8))


def _unpack_floats(data: bytes, n: int) -> list[float]:
    if len(data) != 8 * n:
        raise ValueError("float column of the wrong size")
    raw = bytearray(8 * n)
    for k in range(8):
        raw[k::8] = data[k * n:(k + 1) * n]
    ints = array("Q", bytes(raw))
    prev = 0
    for i, v in enumerate(ints):
        prev = ints[i] = v ^ prev
    return array("d", ints.tobytes()).tolist()


def _encode_readings(readings: list[Reading]) -> bytes:
    """Columns: key index, timestamp, value, latency, status, flags, and state, detail
    and error as indexes into one table of the frame's distinct strings (index 0: none)."""
    keys: dict[str, int] = {}
    words: dict[str | None, int] = {None: 0, "": 0}
    ordered = sorted(readings, key=lambda r: (r.key, r.ts))
    index, strings = array("H"), array("H")
    ts, values, latencies, status, flags = [], [], [], bytearray(), bytearray()
    for r in ordered:
        index.append(keys.setdefault(r.key, len(keys)))
        ts.append(r.ts)
        values.append(r.value if r.value is not None else 0.0)
        latencies.append(r.latency if r.latency is not None else 0.0)
        status.append(_STATUS.get(r.status, 1))
        flags.append((_NONE_VALUE if r.value is None else 0) | (_NONE_LATENCY if r.latency is None else 0)
                     | (_HISTORY if r.history else 0))
        for text in (r.state, r.detail, r.error):
            strings.append(words.setdefault(text, len(words) - 1))
    table = [w for w in words if w]
    meta = json.dumps({"keys": list(keys), "strings": table}, separators=(",", ":")).encode()
    return b"".join((struct.pack("<II", len(meta), len(ordered)), meta, index.tobytes(), _pack_floats(ts),
                     _pack_floats(values), _pack_floats(latencies), bytes(status), bytes(flags), strings.tobytes()))


def _decode_readings(payload: bytes) -> list[Reading]:
    meta_len, n = struct.unpack_from("<II", payload)
    pos = 8
    meta = json.loads(payload[pos:pos + meta_len])
    pos += meta_len
    from cockpit.safetext import clean

    if not all(isinstance(k, str) and ":" in k for k in meta["keys"]):
        raise ValueError("a series key is not 'source:series'")
    if not all(isinstance(w, str) for w in meta["strings"]):
        raise ValueError("the string table holds a non-string")
    keys = [[clean(part, limit=200) for part in k.split(":", 1)] for k in meta["keys"]]
    table = [None, *meta["strings"]]
    index = array("H", payload[pos:pos + 2 * n])
    pos += 2 * n
    cols = []
    for _ in range(3):
        cols.append(_unpack_floats(payload[pos:pos + 8 * n], n))
        pos += 8 * n
    ts, values, latencies = cols
    status, flags = payload[pos:pos + n], payload[pos + n:pos + 2 * n]
    strings = array("H", payload[pos + 2 * n:pos + 8 * n])
    if len(strings) != 3 * n:
        raise ValueError("readings frame cut short")
    states = [table[k] for k in strings[0::3]]
    details = [table[k] or "" for k in strings[1::3]]
    errors = [table[k] or "" for k in strings[2::3]]
    stat = [_STATUS_BACK.get(k, Status.ERROR) for k in status]
    from cockpit.safetext import clean_reading

    out = []
    for k, t, v, lat, st, f, state, detail, error in zip(index, ts, values, latencies, stat, flags, states, details,
                                                          errors):
        source, series = keys[k]
        out.append(clean_reading(Reading(source, series, _when(t), None if f & _NONE_VALUE else v, st, error, state,
                                         detail, None if f & _NONE_LATENCY else lat, None, bool(f & _HISTORY))))
    return out


def _inflate(body: bytes, limit: int = MAX_DECODED) -> bytes:
    """zlib-decompress a frame, refusing one that would grow past ``limit`` (a few KB of
    crafted input can otherwise inflate to gigabytes)."""
    d = zlib.decompressobj()
    out = d.decompress(body, limit)
    if d.unconsumed_tail:
        raise ValueError(f"it inflates past {limit // (1024 * 1024)} MB")
    return out + d.flush()


def _when(t: Any) -> float:
    """A time from a tape: a finite number of epoch seconds in range, or ValueError."""
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not EARLIEST <= t <= LATEST:
        raise ValueError(f"time {str(t)[:30]} is not a moment between 1970 and 2286")
    return float(t)


def _event_doc(ev: TimelineEvent) -> dict:
    return {"ts": ev.ts, "kind": ev.kind, "text": ev.text, "level": int(ev.level), "signal": ev.signal,
            "payload": ev.payload}


def _event_of(doc: dict) -> TimelineEvent:
    """A recorded timeline event, its text cleaned (a tape is outside input)."""
    from cockpit.safetext import clean, clean_value

    level = doc.get("level", 0)
    if not isinstance(level, int) or level not in tuple(Level):
        raise ValueError(f"level {str(level)[:20]} is not a level")
    payload = doc.get("payload") or {}
    if not isinstance(payload, dict):
        raise ValueError("an event's payload is not an object")
    return TimelineEvent(_when(doc["ts"]), clean(doc["kind"], limit=40), clean(doc["text"]), Level(level),
                         clean(doc.get("signal", ""), limit=200), clean_value(payload))


# ---------------------------------------------------------------- writing


class TapeWriter:
    """Records readings and events to ``path`` (a new file: an existing tape is never
    overwritten). Thread-safe: readings come from the event loop, timeline events from
    the journal thread. A frame is written every ``flush_every`` seconds of data and at
    close; a crash loses at most that much."""

    def __init__(self, path: str | Path, header: dict[str, Any], secrets: Iterable[str] = (),
                 flush_every: float = 30.0) -> None:
        from cockpit.safetext import SECRETS

        self.path = Path(path)
        self.flush_every = flush_every
        for s in secrets:
            SECRETS.add(s)
        self._lock = threading.Lock()
        self._readings: list[Reading] = []
        self._events: list[TimelineEvent] = []
        self._span: list[float] = []
        self.frames = 0
        try:
            self._file: BinaryIO | None = open(self.path, "xb")  # noqa: SIM115 - kept open while recording
        except FileExistsError:
            raise TapeError(f"{self.path}: already exists; record to a new file (tapes are never overwritten)") from None
        except OSError as e:
            raise TapeError(f"{self.path}: cannot create the tape: {e.strerror or e}") from None
        self._file.write(MAGIC + _VERSION.pack(FORMAT_VERSION))
        doc = {**header, "format": FORMAT_VERSION}
        started = float(doc.get("started", 0.0))
        self._frame(HEAD, started, started, json.dumps(self._scrub(doc)).encode())
        self._file.flush()

    def readings(self, readings: Iterable[Reading]) -> None:
        with self._lock:
            for r in readings:
                if r.error or r.detail:
                    r = Reading(r.source, r.series, r.ts, r.value, r.status, self._scrub(r.error), r.state,
                                self._scrub(r.detail), r.latency, r.received, r.history)
                if not r.history:  # a backfilled past reading goes with the frame it arrived in
                    self._advance(r.ts)
                self._readings.append(r)

    def event(self, ev: TimelineEvent) -> None:
        with self._lock:
            self._advance(ev.ts)
            self._events.append(TimelineEvent(ev.ts, ev.kind, self._scrub(ev.text), ev.level, ev.signal,
                                              self._scrub(ev.payload)))

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def close(self) -> None:
        with self._lock:
            if self._file is None:
                return
            self._flush()
            self._file.close()
            self._file = None

    # -------------------------------------------------------- internals

    def _advance(self, ts: float) -> None:
        """Write the frame being filled first if ``ts`` would stretch it past
        ``flush_every`` seconds (or it is very full)."""
        if self._span and (max(self._span[1], ts) - self._span[0] > self.flush_every
                           or len(self._readings) >= 50_000):
            self._flush()
        self._span = [min(self._span[0], ts), max(self._span[1], ts)] if self._span else [ts, ts]

    def _flush(self) -> None:
        if self._file is None or not (self._readings or self._events):
            return
        stamps = [r.ts for r in self._readings] + [e.ts for e in self._events]
        t0, t1 = min(stamps), max(stamps)
        if self._readings:
            self._frame(READINGS, t0, t1, _encode_readings(self._readings))
        if self._events:
            self._frame(EVENTS, t0, t1, json.dumps([_event_doc(e) for e in self._events]).encode())
        self._file.flush()
        self._readings, self._events, self._span = [], [], []

    def _frame(self, tag: bytes, t0: float, t1: float, payload: bytes) -> None:
        body = zlib.compress(payload, 6)
        assert self._file is not None
        self._file.write(_FRAME.pack(tag, t0, t1, len(body), zlib.crc32(body)) + body)
        self.frames += 1

    @staticmethod
    def _scrub(value: Any) -> Any:
        """Any secret, wherever it turns up (an error echoing a URL or a header), and any
        escape, replaced before it reaches the file (see :mod:`cockpit.safetext`)."""
        from cockpit.safetext import clean_value

        return clean_value(value)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Frame:
    tag: bytes
    t0: float
    t1: float
    offset: int  # of the payload
    length: int


class Tape:
    """A tape opened for replay: its header and an index of its frames (only frame
    headers are read to open it; payloads when asked for)."""

    def __init__(self, path: Path, header: dict, frames: list[Frame], damage: str) -> None:
        self.path = path
        self.header = header
        self.frames = frames
        #: why reading stopped before the end of the file ("" when it did not)
        self.damage = damage
        self._cache: dict[int, Any] = {}  # the last few decoded frames, by offset (a replay reads ahead in steps)

    @classmethod
    def open(cls, path: str | Path) -> Tape:
        path = Path(path)
        try:
            f = open(path, "rb")  # noqa: SIM115
        except OSError as e:
            raise TapeError(f"{path}: cannot open the tape: {e.strerror or e}") from None
        with f:
            lead = f.read(len(MAGIC) + _VERSION.size)
            if not lead.startswith(MAGIC):
                raise TapeError(f"{path}: not a cockpit tape (record one with --record FILE)")
            if len(lead) < len(MAGIC) + _VERSION.size:
                raise TapeError(f"{path}: the tape is empty (cut off before its header)")
            (version,) = _VERSION.unpack_from(lead, len(MAGIC))
            if version > FORMAT_VERSION:
                raise TapeError(f"{path}: tape format {version} is newer than this cockpit reads "
                                f"({FORMAT_VERSION}); upgrade the cockpit to replay it")
            if version < FORMAT_VERSION:
                raise TapeError(f"{path}: tape format {version} is an early development format this cockpit "
                                f"no longer reads; record the run again")
            frames, damage = _scan(f, path)
            if not frames or frames[0].tag != HEAD:
                raise TapeError(f"{path}: the tape has no readable header ({damage or 'no frames'})")
            try:
                f.seek(frames[0].offset)
                header = json.loads(_inflate(f.read(frames[0].length), MAX_HEADER))
                if not isinstance(header, dict):
                    raise ValueError("it is not an object")
                if "started" in header:
                    header["started"] = _when(header["started"])
                if not isinstance(header.get("config", {}), dict):
                    raise ValueError("its config is not a table")
            except (ValueError, zlib.error, RecursionError) as e:
                raise TapeError(f"{path}: the tape's header is damaged ({str(e)[:120]})") from None
        from cockpit.safetext import clean_value

        return cls(path, clean_value(header), frames[1:], damage)

    @property
    def start(self) -> float:
        return float(self.header.get("started", self.frames[0].t0 if self.frames else 0.0))

    @property
    def end(self) -> float:
        return max((fr.t1 for fr in self.frames), default=self.start)

    def readings(self, t_from: float = float("-inf"), t_to: float = float("inf")) -> list[Reading]:
        """Readings with t_from <= ts <= t_to, in time order."""
        out = [r for rs in self._decoded(READINGS, t_from, t_to, _decode_readings) for r in rs
               if t_from <= r.ts <= t_to]
        out.sort(key=lambda r: r.ts)
        return out

    def events(self, t_from: float = float("-inf"), t_to: float = float("inf")) -> list[TimelineEvent]:
        def decode(payload: bytes) -> list[TimelineEvent]:
            docs = json.loads(payload)
            if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
                raise ValueError("an events frame is not a list of objects")
            return [_event_of(d) for d in docs]

        out = [e for es in self._decoded(EVENTS, t_from, t_to, decode) for e in es if t_from <= e.ts <= t_to]
        out.sort(key=lambda e: e.ts)
        return out

    def _decoded(self, tag: bytes, t_from: float, t_to: float, decode) -> Iterator[Any]:
        """Each wanted frame decoded; a frame that passed its checksum but does not decode
        (written by a broken or foreign writer) is one TapeError naming where it is."""
        wanted = [fr for fr in self.frames if fr.tag == tag and fr.t1 >= t_from and fr.t0 <= t_to]
        if not wanted:
            return
        with open(self.path, "rb") as f:
            for fr in wanted:
                if fr.offset in self._cache:
                    yield self._cache[fr.offset]
                    continue
                f.seek(fr.offset)
                try:
                    got = decode(_inflate(f.read(fr.length)))
                except (zlib.error, ValueError, KeyError, IndexError, TypeError, struct.error, RecursionError) as e:
                    raise TapeError(f"{self.path}: the frame at byte {fr.offset - _FRAME.size} does not decode "
                                    f"({type(e).__name__}: {e})") from None
                if len(self._cache) >= 4:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[fr.offset] = got
                yield got


def _scan(f: BinaryIO, path: Path) -> tuple[list[Frame], str]:
    """Every complete, intact frame from the current position; and why scanning
    stopped early, if it did."""
    frames: list[Frame] = []
    while True:
        at = f.tell()
        head = f.read(_FRAME.size)
        if not head:
            return frames, ""
        when = f" after {frames[-1].t1:.0f}" if frames else ""
        if len(head) < _FRAME.size:
            return frames, f"cut off at byte {at}{when} (the recording stopped mid-write)"
        tag, t0, t1, length, crc = _FRAME.unpack(head)
        if tag not in (HEAD, READINGS, EVENTS) or length > MAX_FRAME:
            return frames, f"damaged at byte {at}{when} (unknown frame); the rest is not read"
        if not (EARLIEST <= t0 <= t1 <= LATEST):
            return frames, f"damaged at byte {at}{when} (its times are not moments of a recording); the rest is not read"
        body = f.read(length)
        if len(body) < length:
            return frames, f"cut off at byte {at}{when} (the recording stopped mid-write)"
        if zlib.crc32(body) != crc:
            return frames, f"damaged at byte {at}{when} (checksum mismatch); the rest is not read"
        frames.append(Frame(tag, t0, t1, at + _FRAME.size, length))


# ---------------------------------------------------------------- recording a run


def start_recording(path: str | Path, config: Any, mode: str, started: float) -> TapeWriter:
    """A writer for ``--record PATH``: the header names the service, the mode and the
    config (by fingerprint, and the config itself so a drill can rebuild the dashboard);
    every value of an ``env:NAME`` the config references is scrubbed from what is written."""
    import hashlib
    import os

    from cockpit.safetext import ENV_REF

    doc = config.model_dump(mode="json")
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    names = {m.group(1) for m in (ENV_REF.match(s) for s in _strings(doc)) if m}
    header = {"service": config.service.name, "environment": config.service.environment, "mode": mode,
              "started": started, "fingerprint": hashlib.sha256(canonical).hexdigest()[:16], "config": doc}
    return TapeWriter(path, header, secrets=[os.environ.get(n, "") for n in names])


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
