"""`prom_scrape`: a Prometheus text `/metrics` endpoint: a strict parser and the scrape source.

The scrape source keeps earlier scrapes and turns counter and histogram deltas
into rates: request rate, error ratio, latency quantiles (linear interpolation
inside the bucket, as PromQL's histogram_quantile does) and a cost burn projected
to a day. A rate is taken only between scrapes at least ``min_rate_window`` apart
(timed, as Prometheus does, from when each scrape was started): over a fraction of
a second the jitter of answering and parsing, or counters a service refreshes in
steps, make it a wrong number, so until then there is no data ("warming up").

Each metric field is a PromQL selector, ``name`` or ``name{label="v", label!="v",
label=~"re", label!~"re"}``, parsed and checked when the config is loaded; only the
series it selects are summed.
"""

from __future__ import annotations

import asyncio
import math
import re
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator

from cockpit.configmodel import SourceBase, _check_headers, _check_url
from cockpit.model import CHANGE_PREFIX, Reading, quantile_series
from cockpit.signals.sources._base import Request, Source, SourceError
from cockpit.signals.sources._changes import BUILD_INFO, build_versions
from cockpit.signals.sources._http import resolve_headers

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')

_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

MAX_BYTES = 8 * 1024 * 1024


class MalformedMetrics(SourceError):
    pass

Labels = tuple[tuple[str, str], ...]


@dataclass
class Scrape:
    """Samples by metric name; ``declared`` holds names seen in # TYPE lines."""

    samples: dict[str, dict[Labels, float]] = field(default_factory=dict)
    declared: set[str] = field(default_factory=set)

    def has(self, name: str) -> bool:
        return name in self.samples or name in self.declared


def _value(text: str) -> float:
    low = text.lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    return float(text)


def parse(text: str) -> Scrape:
    """Parse the text format. Raises MalformedMetrics naming the first bad line."""
    out = Scrape()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                out.declared.add(parts[2])
                if len(parts) == 4 and parts[3] in ("histogram", "summary"):
                    out.declared.update({parts[2] + "_bucket", parts[2] + "_sum", parts[2] + "_count"})
            continue
        try:
            name, labels, value = _sample(line)
        except (ValueError, IndexError) as e:
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise MalformedMetrics(f"malformed metrics at line {n}: {e}: {shown!r}") from None
        out.samples.setdefault(name, {})[labels] = value
    return out


def _sample(line: str) -> tuple[str, Labels, float]:
    m = _NAME.match(line)
    if not m:
        raise ValueError("expected a metric name")
    name, pos = m.group(0), m.end()
    labels: list[tuple[str, str]] = []
    if pos < len(line) and line[pos] == "{":
        pos += 1
        if line[pos:].lstrip().startswith("}"):
            pos = line.index("}", pos) + 1
        else:
            while True:
                lm = _LABEL.match(line, pos)
                if not lm:
                    raise ValueError("bad label set")
                val = re.sub(r'\\[\\"n]', lambda e: _ESCAPES[e.group(0)], lm.group(2))
                labels.append((lm.group(1), val))
                pos = lm.end()
                if lm.group(3) == "}":
                    break
                if line[pos:].lstrip().startswith("}"):  # a trailing comma is valid
                    pos = line.index("}", pos) + 1
                    break
    rest = line[pos:].split()
    if not rest or len(rest) > 2:
        raise ValueError("expected a value and an optional timestamp")
    try:
        value = _value(rest[0])
    except ValueError:
        raise ValueError(f"value {rest[0]!r} is not a number") from None
    if len(rest) == 2:
        try:
            float(rest[1])
        except ValueError:
            raise ValueError(f"timestamp {rest[1]!r} is not a number") from None
    return name, tuple(sorted(labels)), value


def _check_counter(name: str, samples: dict[Labels, float]) -> None:
    for v in samples.values():
        if not math.isfinite(v) or v < 0:
            raise MalformedMetrics(f"malformed metrics: counter {name} is {v:g}; counters are finite and >= 0")


def _delta(cur: dict[Labels, float], prev: dict[Labels, float]) -> float:
    """Sum of per-series increases; a series that went down was reset and counts from zero."""
    total = 0.0
    for labels, v in cur.items():
        p = prev.get(labels)
        total += v if p is None or v < p else v - p
    return total


def _bucket_deltas(cur: dict[Labels, float], prev: dict[Labels, float]) -> list[tuple[float, float]]:
    """Cumulative bucket increases summed over all other labels, sorted by upper bound."""
    by_le: dict[float, float] = {}
    for labels, v in cur.items():
        le = dict(labels).get("le")
        if le is None:
            raise MalformedMetrics("malformed metrics: histogram bucket without an 'le' label")
        try:
            bound = _value(le)
        except ValueError:
            raise MalformedMetrics(f"malformed metrics: histogram bucket le={le!r} is not a number") from None
        p = prev.get(labels)
        inc = v if p is None or v < p else v - p
        by_le[bound] = by_le.get(bound, 0.0) + inc
    if by_le and math.inf not in by_le:
        raise MalformedMetrics("malformed metrics: histogram has no le=\"+Inf\" bucket")
    return sorted(by_le.items())


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """histogram_quantile over cumulative (upper bound, count) pairs; None with no observations."""
    if not buckets or buckets[-1][0] != math.inf:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == math.inf:
                return prev_bound if len(buckets) > 1 else None
            if count == prev_count:
                return bound
            lower = prev_bound if prev_bound > 0 or bound > 0 else bound
            return lower + (bound - lower) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return None


# ---------------------------------------------------------------- selectors

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPS = ("=~", "!~", "!=", "=")  # two-character operators first
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


@dataclass(frozen=True)
class Matcher:
    """One label matcher. A label a series lacks has the value "", as in PromQL; a
    regex must match the whole value (Prometheus anchors it as ``^(?s:re)$``)."""

    label: str
    op: str  # "=", "!=", "=~" or "!~"
    value: str
    regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.label, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = self.regex.fullmatch(v) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.label}{self.op}{_quote(self.value)}"


@dataclass(frozen=True)
class Selector:
    """A metric name and label matchers: which series of a scrape are summed."""

    name: str
    matchers: tuple[Matcher, ...] = ()

    def select(self, samples: dict[Labels, float]) -> dict[Labels, float]:
        if not self.matchers:
            return samples
        return {labels: v for labels, v in samples.items()
                if all(m.matches(dict(labels)) for m in self.matchers)}

    def __str__(self) -> str:
        return self.name + ("{" + ", ".join(map(str, self.matchers)) + "}" if self.matchers else "")


def _quote(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class _SelectorSyntax(ValueError):
    pass


def _string(text: str, pos: int) -> tuple[str, int]:
    """A PromQL string at ``pos``: "double" or 'single' quoted with Go's escapes, or a
    `raw` one without escapes. Returns the value and the position after it."""
    quote = text[pos]
    end = len(text)
    i = pos + 1
    if quote == "`":
        close = text.find("`", i)
        if close < 0:
            raise _SelectorSyntax(f"unterminated `raw` string starting at column {pos + 1}")
        return text[i:close], close + 1
    out: list[str] = []
    while i < end:
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\n":
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= end:
            break
        esc = text[i + 1]
        if esc in _SIMPLE_ESCAPES or esc == quote:
            out.append(_SIMPLE_ESCAPES.get(esc, esc))
            i += 2
        elif esc in _HEX_ESCAPES or esc in "01234567":
            digits, base = (_HEX_ESCAPES[esc], 16) if esc in _HEX_ESCAPES else (3, 8)
            start = i + 2 if esc in _HEX_ESCAPES else i + 1
            code = text[start:start + digits]
            try:
                if len(code) != digits:
                    raise ValueError
                n = int(code, base)
                if n > 0x10FFFF or 0xD800 <= n <= 0xDFFF or (base == 8 and n > 0xFF):
                    raise ValueError
            except ValueError:
                raise _SelectorSyntax(f"bad escape {text[i:start + digits]!r} at column {i + 1}") from None
            out.append(chr(n))
            i = start + digits
        else:
            raise _SelectorSyntax(
                f"unknown escape '\\{esc}' at column {i + 1} (in a regex write '\\\\{esc}', "
                "or quote the value with backticks)")
    raise _SelectorSyntax(f"unterminated string starting at column {pos + 1}")


def parse_selector(text: str, histogram: bool = False) -> Selector:
    """Parse ``name`` or ``name{label="v", label!="v", label=~"re", label!~"re"}`` (PromQL's
    syntax: whitespace between tokens, a trailing comma, '...' and `...` strings). Raises
    ValueError with one line saying what is wrong and where. ``histogram``: the name of a
    histogram whose ``_bucket`` series are selected; a matcher on ``le`` is refused."""
    pos, end = 0, len(text)

    def skip() -> None:
        nonlocal pos
        while pos < end and text[pos] in " \t\r\n":
            pos += 1

    def fail(what: str) -> _SelectorSyntax:
        found = repr(text[pos]) if pos < end else "the end"
        return _SelectorSyntax(f"expected {what} at column {pos + 1}, found {found}")

    try:
        skip()
        m = _NAME.match(text, pos)
        if not m:
            raise fail("a metric name")
        name, pos = m.group(0), m.end()
        matchers: list[Matcher] = []
        skip()
        braces = pos < end and text[pos] == "{"
        if braces:
            pos += 1
            while True:
                skip()
                if pos < end and text[pos] == "}":
                    pos += 1
                    break
                lm = _LABEL_NAME.match(text, pos)
                if not lm:
                    raise fail("a label name or '}'")
                label, pos = lm.group(0), lm.end()
                skip()
                op = next((o for o in _OPS if text.startswith(o, pos)), None)
                if op is None:
                    raise fail("one of = != =~ !~")
                pos += len(op)
                skip()
                if pos >= end or text[pos] not in "\"'`":
                    raise fail("a quoted value")
                value, pos = _string(text, pos)
                matchers.append(_matcher(label, op, value, histogram))
                skip()
                if pos < end and text[pos] == ",":
                    pos += 1
                elif pos < end and text[pos] == "}":
                    pos += 1
                    break
                else:
                    raise fail("',' or '}'")
            skip()
        if pos < end:
            raise fail("the end" if braces else "'{' or the end")
    except _SelectorSyntax as e:
        shown = text if len(text) <= 80 else text[:77] + "..."
        shown = f"'{shown}'" if shown.isprintable() and "'" not in shown else repr(shown)
        raise ValueError(f"bad selector {shown}: {e}") from None
    return Selector(name, tuple(matchers))


def _matcher(label: str, op: str, value: str, histogram: bool) -> Matcher:
    if label == "__name__":
        raise _SelectorSyntax("write the metric name before the braces, not as __name__")
    if histogram and label == "le":
        raise _SelectorSyntax("a matcher on 'le' would drop histogram buckets; select by the other labels")
    if op in ("=", "!="):
        return Matcher(label, op, value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "possible nested set": [[:alpha:]] means something else here
        try:
            regex = re.compile(value, re.DOTALL)
        except (re.error, Warning) as e:
            raise _SelectorSyntax(f"bad regex for {label}: {_regex_error(e)}") from None
    return Matcher(label, op, value, regex)


def _regex_error(e: Exception) -> str:
    if isinstance(e, re.error):
        return f"{e.msg} at position {e.pos}" if e.pos is not None else e.msg
    return f"{e} (POSIX classes like [[:alpha:]] are not supported; write [a-zA-Z])"


_SELECTOR_HELP = ' A PromQL selector: name, or name{label="v", label!="v", label=~"re", label!~"re"}.'

#: the metric fields, each a selector (duration_metric names a histogram; cost_metric may be unset)
METRIC_FIELDS = ("requests_metric", "errors_metric", "duration_metric", "cost_metric")


class PromScrapeSource(SourceBase):
    """A Prometheus text-format `/metrics` endpoint, scraped directly. Rates and
    quantiles come from counter and histogram deltas between scrapes at least
    `min_rate_window` seconds apart; each metric is a PromQL selector
    (`http_requests_total{code=~"5.."}`) whose series are summed."""

    kind: Literal["prom_scrape"]
    url: str = Field(description="The /metrics URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    requests_metric: str = Field("http_requests_total", description="Counter of all requests." + _SELECTOR_HELP)
    errors_metric: str = Field("http_errors_total", description="Counter of failed requests, e.g. "
                               "'http_requests_total{code=~\"5..\"}'." + _SELECTOR_HELP)
    duration_metric: str = Field(
        "http_request_duration_seconds", description="Histogram of request durations (seconds), named without "
        "_bucket; matchers select its _bucket series (not by le)." + _SELECTOR_HELP
    )
    cost_metric: str | None = Field(
        None, description="Counter of money spent (USD), e.g. \"ai_token_cost_usd_total\"; unset: no "
        "cost_per_day series." + _SELECTOR_HELP
    )
    min_rate_window: float = Field(
        2.0, ge=0.05, le=3600, description="Seconds two scrapes must be apart for a rate between them; until "
        "then the rate series have no data (warming up). Shorter windows turn timing jitter into wrong rates."
    )
    quantiles: list[float] = Field([0.5, 0.95, 0.99], description="Latency quantiles to compute (0-1).")
    build_info: bool = Field(True, description="A `*_build_info` series whose version (or revision) label "
                             "changes is a change on the timeline (a deploy).")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))

    @field_validator(*METRIC_FIELDS)
    @classmethod
    def _selector(cls, v: str | None, info) -> str | None:
        if v is None or (info.field_name == "cost_metric" and not v.strip()):
            return None  # an empty cost metric is none, as before
        parse_selector(v, histogram=info.field_name == "duration_metric")
        return v

    @field_validator("quantiles")
    @classmethod
    def _q_range(cls, v: list[float]) -> list[float]:
        bad = [q for q in v if not 0 < q < 1]
        if bad:
            raise ValueError(f"quantiles must be between 0 and 1 exclusive, got {bad}")
        if len(set(v)) != len(v):
            raise ValueError("each quantile may be listed once")
        return v

    def selectors(self) -> dict[str, Selector]:
        """The metric fields that are set, parsed (checked when the config was loaded)."""
        return {f: parse_selector(getattr(self, f), histogram=f == "duration_metric")
                for f in METRIC_FIELDS if getattr(self, f)}

    def series_names(self) -> list[str]:
        out = ["request_rate", "error_rate", *(quantile_series(q) for q in self.quantiles)]
        return out + (["cost_per_day"] if self.cost_metric else [])

    def series_hint(self, series: str) -> str:
        if series == "cost_per_day" and not self.cost_metric:
            return "; set cost_metric to the counter of money spent (e.g. 'ai_token_cost_usd_total')"
        return ""


#: what one scrape leaves for later: the selected samples of each metric field
Picked = dict[str, dict[Labels, float]]


class PromScrape(Source):
    """Scrape a /metrics endpoint; rates come from scrapes at least ``min_rate_window`` apart.

    Earlier scrapes (only the selected samples) wait in ``_history``, oldest first, each
    with the monotonic time its request was started. A scrape is rated against the newest
    one that is old enough; older ones are then dropped. Until one is old enough the
    source is warming up: the scrape answered and was checked, but gives no readings."""

    kind = "prom_scrape"
    uses_http = True
    #: at most this many earlier scrapes are kept per window (a scrape closer than
    #: window/KEEP to the last kept one is not kept: a rate's window grows by that at most)
    KEEP = 32

    def __init__(self, cfg, ctx) -> None:
        super().__init__(cfg, ctx)
        self._selectors = cfg.selectors()
        self._history: deque[tuple[float, Picked]] = deque()
        self._warming = False
        self._checking = False

    @property
    def window(self) -> float:
        return self.cfg.min_rate_window

    def _ready_in(self) -> float:
        """Seconds until a scrape started now could be rated."""
        if not self._history:
            return 0.0
        return max(0.0, self._history[0][0] + self.window - self.ctx.clock.monotonic())

    def next_delay(self) -> float:
        if not self._warming:
            return self.interval
        # the next scrape as soon as it can give a rate (no need to wait a long interval for
        # it; `cockpit check` waits for it whatever the interval)
        wait = max(self._ready_in(), 0.01)
        return wait if self._checking else min(wait, self.interval)

    def warming_up(self) -> str:
        if not self._warming:
            return ""
        return f"warming up: rates need two scrapes at least {self.window:g}s apart (min_rate_window)"

    def checking(self) -> None:
        self._checking = True

    def reset(self) -> None:
        # After a failure the old baseline would average the rate over the outage.
        self._history.clear()
        self._warming = False

    async def fetch(self) -> list[Reading]:
        answer = await self.ctx.get(*self.poll_gets()[0])
        # timed from the request's start, as Prometheus stamps a scrape: a slow answer or a
        # slow parse must not shorten or stretch the window the counters moved in
        started = answer.started
        if not answer.ok:
            raise SourceError(f"HTTP {answer.status} {answer.reason}".strip())
        try:
            text = answer.body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMetrics("malformed metrics: body is not UTF-8 text") from None
        # a large scrape takes a while to parse: not on the event loop
        cur = parse(text) if len(text) < 64 * 1024 else await asyncio.to_thread(parse, text)
        picked = self._pick(cur)
        base = self._baseline(started)
        if not self._history or started - self._history[-1][0] >= self.window / self.KEEP:
            self._history.append((started, picked))
        self._warming = base is None
        changes = self._versions(cur, answer.answered) if self.cfg.build_info else []
        if base is None:
            return changes
        base_t, prev = base
        return self._rates(prev, picked, started - base_t) + changes

    def _versions(self, cur: Scrape, as_of: float) -> list[Reading]:
        """The version each ``*_build_info`` series of the scrape says (a change when it changes)."""
        infos = [(name, dict(labels)) for name, samples in cur.samples.items() if name.endswith(BUILD_INFO)
                 for labels in samples]
        return [self.change(where, now, as_of=as_of) for where, now in build_versions(infos)]

    def poll_gets(self) -> list[Request]:
        cfg = self.cfg
        return [(cfg.url, resolve_headers(cfg.headers, f"sources.{cfg.name}"), cfg.timeout, MAX_BYTES, False)]

    def _pick(self, cur: Scrape) -> Picked:
        """The samples each selector selects, checked; a missing metric names its selector."""
        out: Picked = {}
        for f, sel in self._selectors.items():
            name = sel.name + "_bucket" if f == "duration_metric" else sel.name
            if not cur.has(name):
                raise SourceError(f"metric {name} not found in scrape")
            out[f] = sel.select(cur.samples.get(name, {}))
            _check_counter(name, out[f])
        _bucket_deltas(out["duration_metric"], {})  # a broken histogram is said on every scrape, warming up too
        return out

    def _baseline(self, started: float) -> tuple[float, Picked] | None:
        """The newest earlier scrape at least the window before ``started``; the ones before
        it are dropped (a later scrape would find this one or a newer one)."""
        found = None
        while self._history and started - self._history[0][0] >= self.window:
            found = self._history.popleft()
        if found is not None:
            self._history.appendleft(found)
        return found

    def _rates(self, prev: Picked, cur: Picked, dt: float) -> list[Reading]:
        cfg = self.cfg
        d_req = _delta(cur["requests_metric"], prev["requests_metric"])
        d_err = _delta(cur["errors_metric"], prev["errors_metric"])
        out = [
            self.reading("request_rate", d_req / dt),
            # counters are scraped one after another, so errors can briefly run ahead of requests
            self.reading("error_rate", min(1.0, d_err / d_req) if d_req > 0 else None,
                         detail="" if d_req > 0 else "no requests in window"),
        ]
        buckets = _bucket_deltas(cur["duration_metric"], prev["duration_metric"])
        for q in cfg.quantiles:
            out.append(self.reading(quantile_series(q), quantile(q, buckets)))
        if "cost_metric" in cur:
            d_cost = _delta(cur["cost_metric"], prev["cost_metric"])
            out.append(self.reading("cost_per_day", d_cost / dt * 86400.0))
        return out


CONFIG = PromScrapeSource
SOURCE = PromScrape


def summarize(readings: list[Reading]) -> tuple[bool, str]:
    """`cockpit check`: the request rate, error rate, p95 and cost burn the scrape gave (over
    at least min_rate_window: `check` waits for that second scrape)."""
    from cockpit.units import fmt_ratio, fmt_seconds, fmt_usd_per_day

    by = {r.series: r.value for r in readings}
    parts = []
    if by.get("request_rate") is not None:
        parts.append(f"{by['request_rate']:.3g} req/s")
    if "error_rate" in by:
        parts.append(f"errors {fmt_ratio(by['error_rate'])}")
    if "latency_p95" in by:
        parts.append(f"p95 {fmt_seconds(by['latency_p95'])}")
    if by.get("cost_per_day") is not None:
        parts.append(f"cost {fmt_usd_per_day(by['cost_per_day'])}")
    parts += [f"{r.series.removeprefix(CHANGE_PREFIX)} {r.state}" for r in readings
              if r.series.startswith(CHANGE_PREFIX)]
    return not any(r.status.value == "error" for r in readings), ", ".join(parts) or "scraped"
