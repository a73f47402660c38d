"""Unexpected errors go to a log file, never as a traceback on the responder's screen."""

from __future__ import annotations

import os
import time
import traceback
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path

#: Distinct errors remembered as already told (where, type, message). The message can hold
#: what changes each time (a count, a time, a path), so the set is capped: one that went
#: 200 distinct errors without coming back is told (and logged) again, which is rare and
#: harmless; a set that only grows is a leak in a cockpit left open for days.
TOLD_KEPT = 200


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "cockpit"


def write(exc: BaseException, where: str) -> Path | None:
    """Append the traceback to the crash log; return its path (None if it cannot be written)."""
    from cockpit.safetext import clean

    path = state_dir() / "errors.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {where}\n")
            f.write(clean("".join(traceback.format_exception(exc)), lines=True, limit=100_000))  # no secret in a log
        return path
    except OSError:
        return None


def one_line(exc: BaseException) -> str:
    from cockpit.safetext import clean

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return clean(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, limit=300)


class Once:
    """Which errors were already told, the last ``keep`` distinct ones: :meth:`first` is
    True the first time a key is seen (or again once it was forgotten)."""

    def __init__(self, keep: int = TOLD_KEPT) -> None:
        self.keep = keep
        self._told: OrderedDict[Hashable, None] = OrderedDict()

    def first(self, key: Hashable) -> bool:
        if key in self._told:
            self._told.move_to_end(key)  # seen again: kept longer
            return False
        self._told[key] = None
        if len(self._told) > self.keep:
            self._told.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._told)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._told
