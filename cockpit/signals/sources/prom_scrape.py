"""`prom_scrape`: a Prometheus text `/metrics` endpoint: a strict parser and the scrape source.

The scrape source keeps the previous scrape and turns counter and histogram
deltas into rates: request rate, error ratio, latency quantiles (linear
interpolation inside the bucket, as PromQL's histogram_quantile does) and a
cost burn projected to a day.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator

from cockpit.configmodel import SourceBase, _check_headers, _check_url
from cockpit.model import Reading, quantile_series
from cockpit.signals.sources._base import Source, SourceError
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
            raise MalformedMetrics("histogram bucket without an 'le' label")
        try:
            bound = _value(le)
        except ValueError:
            raise MalformedMetrics(f"histogram bucket le={le!r} is not a number") from None
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


class PromScrapeSource(SourceBase):
    """A Prometheus text-format `/metrics` endpoint, scraped directly. Rates and
    quantiles come from counter and histogram deltas between two scrapes."""

    kind: Literal["prom_scrape"]
    url: str = Field(description="The /metrics URL.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    requests_metric: str = Field("http_requests_total", description="Counter of all requests.")
    errors_metric: str = Field("http_errors_total", description="Counter of failed requests.")
    duration_metric: str = Field(
        "http_request_duration_seconds", description="Histogram of request durations (seconds)."
    )
    cost_metric: str | None = Field(
        "ai_token_cost_usd_total", description="Counter of money spent (USD); empty for none."
    )
    quantiles: list[float] = Field([0.5, 0.95, 0.99], description="Latency quantiles to compute (0-1).")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))

    @field_validator("quantiles")
    @classmethod
    def _q_range(cls, v: list[float]) -> list[float]:
        bad = [q for q in v if not 0 < q < 1]
        if bad:
            raise ValueError(f"quantiles must be between 0 and 1 exclusive, got {bad}")
        if len(set(v)) != len(v):
            raise ValueError("each quantile may be listed once")
        return v

    def series_names(self) -> list[str]:
        out = ["request_rate", "error_rate", *(quantile_series(q) for q in self.quantiles)]
        return out + (["cost_per_day"] if self.cost_metric else [])


class PromScrape(Source):
    """Scrape a /metrics endpoint and derive rates from consecutive scrapes."""

    kind = "prom_scrape"
    uses_http = True
    PRIME_DELAY = 0.25

    def __init__(self, cfg, ctx) -> None:
        super().__init__(cfg, ctx)
        self._prev: Scrape | None = None
        self._prev_t: float | None = None
        self._baseline_only = False

    def next_delay(self) -> float:
        # A scrape that only set the baseline gives no rates: take the next one soon.
        return min(self.PRIME_DELAY, self.interval) if self._baseline_only else self.interval

    def reset(self) -> None:
        # After a failure the old baseline would average the rate over the outage.
        self._prev = self._prev_t = None
        self._baseline_only = False

    async def fetch(self) -> list[Reading]:
        cfg = self.cfg
        headers = resolve_headers(cfg.headers, f"sources.{cfg.name}")
        answer = await self.ctx.get(cfg.url, headers, cfg.timeout, MAX_BYTES, truncate=False)
        if not answer.ok:
            raise SourceError(f"HTTP {answer.status} {answer.reason}".strip())
        try:
            text = answer.body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMetrics("malformed metrics: body is not UTF-8 text") from None
        # a large scrape takes a while to parse: not on the event loop
        cur = parse(text) if len(text) < 64 * 1024 else await asyncio.to_thread(parse, text)
        now = self.ctx.clock.monotonic()
        for name in (cfg.requests_metric, cfg.errors_metric, cfg.duration_metric + "_bucket"):
            if not cur.has(name):
                raise SourceError(f"metric {name} not found in scrape")
        if cfg.cost_metric and not cur.has(cfg.cost_metric):
            raise SourceError(f"metric {cfg.cost_metric} not found in scrape")
        for name in (cfg.requests_metric, cfg.errors_metric, cfg.duration_metric + "_bucket", cfg.cost_metric):
            if name:
                _check_counter(name, cur.samples.get(name, {}))
        prev, prev_t = self._prev, self._prev_t
        self._prev, self._prev_t = cur, now
        self._baseline_only = prev is None or prev_t is None or now <= prev_t
        if self._baseline_only:
            return []
        return self._rates(prev, cur, now - prev_t)

    def _rates(self, prev: Scrape, cur: Scrape, dt: float) -> list[Reading]:
        cfg = self.cfg
        s = lambda name: cur.samples.get(name, {})  # noqa: E731
        p = lambda name: prev.samples.get(name, {})  # noqa: E731
        d_req = _delta(s(cfg.requests_metric), p(cfg.requests_metric))
        d_err = _delta(s(cfg.errors_metric), p(cfg.errors_metric))
        out = [
            self.reading("request_rate", d_req / dt),
            # counters are scraped one after another, so errors can briefly run ahead of requests
            self.reading("error_rate", min(1.0, d_err / d_req) if d_req > 0 else None,
                         detail="" if d_req > 0 else "no requests in window"),
        ]
        buckets = _bucket_deltas(s(cfg.duration_metric + "_bucket"), p(cfg.duration_metric + "_bucket"))
        for q in cfg.quantiles:
            out.append(self.reading(quantile_series(q), quantile(q, buckets)))
        if cfg.cost_metric:
            d_cost = _delta(s(cfg.cost_metric), p(cfg.cost_metric))
            out.append(self.reading("cost_per_day", d_cost / dt * 86400.0))
        return out


CONFIG = PromScrapeSource
SOURCE = PromScrape


def summarize(readings: list[Reading]) -> tuple[bool, str]:
    """`cockpit check`: the error rate, p95 and cost burn the scrape gave."""
    from cockpit.units import fmt_ratio, fmt_seconds, fmt_usd_per_day

    by = {r.series: r.value for r in readings}
    parts = []
    if "error_rate" in by:
        parts.append(f"errors {fmt_ratio(by['error_rate'])}")
    if "latency_p95" in by:
        parts.append(f"p95 {fmt_seconds(by['latency_p95'])}")
    if by.get("cost_per_day") is not None:
        parts.append(f"cost {fmt_usd_per_day(by['cost_per_day'])}")
    return not any(r.status.value == "error" for r in readings), ", ".join(parts) or "scraped"
