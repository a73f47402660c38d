"""Bounded in-memory history: one ring buffer per series.

Each buffer holds a fixed number of samples in flat arrays (timestamps and
values as doubles, status as a byte), so memory is fixed at creation however
long the cockpit runs. The latest reading and the latest good reading are kept
whole, for error text and "last good value" display.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable

from cockpit.model import Reading, Status

_NAN = float("nan")
_STATUS_CODES = {Status.OK: 0, Status.STALE: 1, Status.ERROR: 2}


class RingBuffer:
    """Fixed-capacity history of one series."""

    __slots__ = ("capacity", "_ts", "_values", "_status", "_head", "_size", "latest", "last_ok", "version")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ts = array("d", bytes(8 * capacity))
        self._values = array("d", [_NAN]) * capacity
        self._status = bytearray(capacity)
        self._head = 0  # next slot to write
        self._size = 0
        self.latest: Reading | None = None
        self.last_ok: Reading | None = None
        self.version = 0

    def __len__(self) -> int:
        return self._size

    def append(self, reading: Reading) -> None:
        i = self._head
        self._ts[i] = reading.ts
        self._values[i] = reading.value if reading.value is not None else _NAN
        self._status[i] = _STATUS_CODES[reading.status]
        self._head = (i + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)
        self.latest = reading
        if reading.status is Status.OK:
            self.last_ok = reading
        self.version += 1

    def _indices(self, n: int) -> Iterable[int]:
        n = min(n, self._size)
        start = (self._head - n) % self.capacity
        return ((start + k) % self.capacity for k in range(n))

    def clear(self) -> None:
        """Forget every sample (a drill seeking elsewhere on its tape)."""
        self._head = self._size = 0
        self.latest = self.last_ok = None
        self.version += 1

    def values(self, n: int | None = None) -> list[float | None]:
        """The last ``n`` values, oldest first; None marks a gap (no value or a failed poll)."""
        n = self._size if n is None else min(n, self._size)
        if n <= 0:
            return []
        start = (self._head - n) % self.capacity
        end = start + n
        if end <= self.capacity:  # read as slices of the arrays (a panel reads 240 on every poll)
            values, status = self._values[start:end], self._status[start:end]
        else:
            end -= self.capacity
            values, status = self._values[start:] + self._values[:end], self._status[start:] + self._status[:end]
        return [None if bad or v != v else v for v, bad in zip(values, status)]  # v != v: NaN

    def samples(self, n: int | None = None) -> list[tuple[float, float | None]]:
        """The last ``n`` (timestamp, value) pairs, oldest first."""
        vals = self.values(self._size if n is None else n)
        idx = list(self._indices(len(vals)))
        return [(self._ts[i], v) for i, v in zip(idx, vals)]

    def times(self, n: int) -> list[float]:
        """The timestamps of the last ``n`` samples, oldest first."""
        return [self._ts[i] for i in self._indices(n)]

    def appended_since(self, version: int) -> list[tuple[float, float | None]]:
        """The (timestamp, value) pairs appended after the buffer was at ``version``, oldest
        first, whatever their timestamps (a reading stamped at the end of a period that
        ended a minute ago is new all the same)."""
        return self.samples(min(max(self.version - version, 0), self._size))

    def samples_after(self, ts: float) -> list[tuple[float, float | None]]:
        """(timestamp, value) pairs newer than ``ts``, oldest first; walks back from the
        newest, so a short window of a long buffer costs only its own samples."""
        out: list[tuple[float, float | None]] = []
        for k in range(self._size):
            i = (self._head - 1 - k) % self.capacity
            t = self._ts[i]
            if t <= ts:
                break
            v = self._values[i]
            out.append((t, None if math.isnan(v) or self._status[i] else v))
        out.reverse()
        return out

    def since(self, ts: float) -> list[float | None]:
        """Values with a timestamp at or after ``ts``, oldest first."""
        return [v for t, v in self.samples() if t >= ts]


class Store:
    """All series, each in its own ring buffer, created on first use.

    ``capacity_for(key)`` decides a new buffer's size (the app sizes buffers
    from each source's interval and the configured history).
    """

    def __init__(self, capacity_for: Callable[[str], int] | int = 3600) -> None:
        if isinstance(capacity_for, int):
            fixed = capacity_for
            capacity_for = lambda _key: fixed  # noqa: E731
        self._capacity_for = capacity_for
        self._buffers: dict[str, RingBuffer] = {}
        self._said: dict[str, int] = {}  # source -> see said()
        self.version = 0

    def add(self, reading: Reading) -> None:
        key = reading.key
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = RingBuffer(self._capacity_for(key))
        before = buf.latest
        buf.append(reading)
        if (before is None or before.status is not reading.status or before.state != reading.state
                or before.detail != reading.detail or before.error != reading.error):
            self._said[reading.source] = self._said.get(reading.source, 0) + 1
        self.version += 1

    def said(self, source: str) -> int:
        """How many times, so far, a series of ``source`` got a reading that says something
        other than the one before it, its value aside (status, state, detail, error). A
        reader that remembers it skips the source's series while it has not moved: a poll
        of 1,000 components all as they were is one comparison, not a thousand."""
        return self._said.get(source, 0)

    def clear(self) -> None:
        """Empty every series, keeping the buffers (a drill seeking elsewhere)."""
        for buf in self._buffers.values():
            buf.clear()
        self._said = {source: n + 1 for source, n in self._said.items()}  # no reading is news too
        self.version += 1

    def extend(self, readings: Iterable[Reading]) -> None:
        for r in readings:
            self.add(r)

    def get(self, key: str) -> RingBuffer | None:
        return self._buffers.get(key)

    def latest(self, key: str) -> Reading | None:
        buf = self._buffers.get(key)
        return buf.latest if buf else None

    def keys(self, prefix: str = "") -> list[str]:
        return [k for k in self._buffers if k.startswith(prefix)]

    def __contains__(self, key: str) -> bool:
        return key in self._buffers

    def __len__(self) -> int:
        return len(self._buffers)
