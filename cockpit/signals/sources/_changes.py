"""What several kinds share to say changes (see cockpit.model.CHANGE_PREFIX): the version a
Prometheus ``*_build_info`` series carries in its labels (prom_scrape, prom_query), and
when a change happened as an outside answer says it (changes, aws_status)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

#: labels that name a build, in the order they are shown ("v1.5.0 (rev 3f2a9c1)")
VERSION_LABELS = ("version", "tag", "image")
REVISION_LABELS = ("revision", "commit", "git_commit", "gitCommit", "sha")
#: labels that tell two copies of one program apart (a canary beside the fleet)
WHERE_LABELS = ("instance", "pod", "job", "service")

BUILD_INFO = "_build_info"


def build_versions(series: Iterable[tuple[str, dict[str, str]]]) -> list[tuple[str, str]]:
    """(where, version) of each ``<program>_build_info`` series given as (metric name,
    labels): where is "<program> version", with the label that tells copies apart when
    one program has several series; a series with no version or revision label says
    nothing. Sorted by where, each where once (the last series of it wins)."""
    found: dict[str, list[tuple[dict[str, str], str]]] = {}
    for name, labels in series:
        version = next((labels[k] for k in VERSION_LABELS if labels.get(k)), "")
        revision = next((labels[k] for k in REVISION_LABELS if labels.get(k)), "")
        if not (version or revision):
            continue
        shown = version + (f" (rev {revision[:12]})" if version and revision else revision[:12] if revision else "")
        program = name[:-len(BUILD_INFO)] if name.endswith(BUILD_INFO) and len(name) > len(BUILD_INFO) else name
        found.setdefault(program, []).append((labels, shown))
    out: dict[str, str] = {}
    for program, copies in found.items():
        if len(copies) == 1:
            out[f"{program} version"] = copies[0][1]
            continue
        tell = next((k for k in WHERE_LABELS if len({c[0].get(k) for c in copies}) == len(copies)), None)
        for labels, shown in copies:
            apart = labels.get(tell, "") if tell else ",".join(f"{k}={v}" for k, v in sorted(labels.items())
                                                              if k not in VERSION_LABELS + REVISION_LABELS)
            out[f"{program} {apart} version".replace("  ", " ")] = shown
    return sorted(out.items())


def epoch_of(value: Any) -> float | None:
    """A time an outside answer gives, in epoch seconds: a datetime with its zone (boto3),
    epoch seconds or milliseconds, or an RFC 3339 text with its zone ("…Z", "…+0000");
    None for anything else (a time without its zone could be anyone's: not believed)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        t = float(value)
        if not math.isfinite(t) or t <= 0:
            return None
        return t / 1000.0 if t > 1e11 else t  # milliseconds since the epoch
    if isinstance(value, str):
        return rfc3339(value)
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo is not None else None
    return None


_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d{1,12})?([Zz]|[+-]\d\d:?\d\d)")


def rfc3339(text: Any) -> float | None:
    """Epoch seconds of an RFC 3339 time with its zone (Alertmanager's nanoseconds too, and
    Lambda's "+0000"), or None when ``text`` is not one."""
    if not isinstance(text, str):
        return None
    m = _TIME.fullmatch(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = float(m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    try:
        offset = timedelta(0)
        if zone not in ("Z", "z"):
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        when = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=timezone(offset))
    except (ValueError, OverflowError):
        return None
    return when.timestamp() + frac
