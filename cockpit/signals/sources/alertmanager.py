"""`alertmanager`: the alerts already firing, from Alertmanager's v2 API, as rows of the
components table.

Each poll GETs ``/api/v2/alerts?active=true&silenced=false&inhibited=false`` (and the
configured ``filter`` matchers). Every firing alert is a row whose series is
``component/<row>``: the row is the alert's name and labels (``HighErrorRate{service="checkout"}``),
its state the alert's severity label mapped to ``critical``, ``warning`` or ``info``
(levels CRIT, WARN, OK: see cockpit.model.STATE_LEVELS), its detail the summary
annotation and since when it fires. A new firing alert is a state change like a
component's, so it is a timeline event, and a critical one declares the incident when
``incident.declare_on_critical`` is on.

Alerts come and go, so the rows are not listed in the config (``dynamic_rows``): the
dashboard takes them from the readings. An alert that stops firing is told as
``resolved`` (or ``silenced`` / ``inhibited`` when Alertmanager still has it, suppressed)
for ``keep_resolved`` seconds, then no more; its row then leaves the table. The series
``alerts`` counts the firing alerts (a signal panel may draw it) and is the source's own
row: its errors are said there.

What Alertmanager answers is outside input: :func:`parse_alerts` takes any JSON and
keeps what has the shape of an alert; label text is cleaned before it names a row.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, ClassVar, Literal, NamedTuple
from urllib.parse import urlencode

from pydantic import Field, field_validator

from cockpit.clock import hms
from cockpit.configmodel import SourceBase, _check_headers, _check_url
from cockpit.model import Reading, Status
from cockpit.signals.sources._base import Request, Source, SourceError
from cockpit.signals.sources._changes import rfc3339
from cockpit.signals.sources._http import parse_json, resolve_headers, score

MAX_BYTES = 4 * 1024 * 1024
#: the longest row name; a longer one is cut and given a digest of its labels (still one row each)
ROW_MAX = 160
LEVEL_WORDS = ("critical", "warning", "info")
#: the worst first: the order rows are kept in when there are more than max_alerts
_RANK = {"critical": 0, "warning": 1, "info": 2}

#: a Prometheus label name
LABEL_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: one Alertmanager matcher: name, operator, value (quoted, or bare without spaces/commas/braces)
MATCHER = re.compile(r'\s*(' + LABEL_NAME + r')\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^"\s,{}]*)\s*')


def check_matcher(text: str) -> str:
    if not MATCHER.fullmatch(text):
        raise ValueError(f'{text!r} is not a matcher: write label="value" (or !=, =~ "regex", !~)')
    return text


class AlertmanagerSource(SourceBase):
    """Firing alerts from Alertmanager's v2 API, one row each in the components table (alert
    name and labels, severity as the state, summary and since when as the detail)."""

    kind: Literal["alertmanager"]
    url: str = Field(description="Alertmanager's base URL, e.g. http://alertmanager:9093 (the API is under "
                     "/api/v2).")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    filter: list[str] = Field(default_factory=list, max_length=20, description="Matchers an alert must meet to be "
                              "shown, e.g. ['service=\"checkout\"', 'severity=~\"critical|warning\"'].")
    severity_label: str = Field("severity", description="The label that holds an alert's severity.")
    severities: dict[str, Literal["critical", "warning", "info"]] = Field(
        default_factory=lambda: {"critical": "critical", "warning": "warning", "info": "info"},
        description="Severity label value -> critical (CRIT: declares the incident when declare_on_critical is on), "
        "warning (WARN) or info (OK: listed, not alerted on), e.g. {page = \"critical\", ticket = \"warning\"}. "
        "Values are compared without case.")
    unknown_severity: Literal["critical", "warning", "info"] = Field(
        "warning", description="The level of an alert whose severity is missing or not in `severities`.")
    keep_resolved: float = Field(120.0, ge=0, le=86400, description="Seconds an alert that stopped firing is still "
                                 "told as resolved (or silenced), before its row leaves the table; at least the "
                                 "settings' state_clear_hold, so the recovery is told on the timeline.")
    max_alerts: int = Field(200, ge=1, le=2000, description="Most alert rows shown (the worst first); the series "
                            "`alerts` counts them all.")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))

    @field_validator("filter")
    @classmethod
    def _matchers(cls, v: list[str]) -> list[str]:
        for text in v:
            check_matcher(text)
        return v

    @field_validator("severity_label")
    @classmethod
    def _label(cls, v: str) -> str:
        if not re.fullmatch(LABEL_NAME, v):
            raise ValueError("a label name: letters, digits and '_', not starting with a digit")
        return v

    feeds: ClassVar[str] = "components"
    #: its rows are the alerts firing now, taken from the readings, not listed here
    dynamic_rows: ClassVar[bool] = True
    #: what its rows are called on the timeline ("alert HighErrorRate{…} warning → critical")
    row_word: ClassVar[str] = "alert"
    components: ClassVar[tuple[str, ...]] = ()

    def series_names(self) -> list[str]:
        return ["alerts"]

    def level_word(self, labels: dict[str, str]) -> str:
        """critical, warning or info for an alert's labels."""
        said = labels.get(self.severity_label)
        table = {k.lower(): w for k, w in self.severities.items()}
        return table.get(said.lower(), self.unknown_severity) if said else self.unknown_severity


# ---------------------------------------------------------------- the v2 API's answer


class Alert(NamedTuple):
    labels: dict[str, str]
    annotations: dict[str, str]
    starts: float | None  # epoch seconds
    ends: float | None
    state: str  # active | suppressed | unprocessed (as Alertmanager says; "" when it does not)
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()

    @property
    def row(self) -> str:
        return row_name(self.labels)


def _strings(doc: Any) -> dict[str, str] | None:
    """A JSON object of strings (labels, annotations); None when it is something else.
    A value that is not a string is left out."""
    if not isinstance(doc, dict):
        return None
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)}


def _ids(doc: Any) -> tuple[str, ...]:
    return tuple(x for x in doc if isinstance(x, str)) if isinstance(doc, list) else ()


def parse_alerts(doc: Any) -> tuple[list[Alert], int]:
    """The alerts in a parsed v2 ``/api/v2/alerts`` answer, and how many items were not
    alerts (no labels object). Raises SourceError when the answer is not a list."""
    if not isinstance(doc, list):
        raise SourceError("not an Alertmanager v2 answer (expected a list of alerts): is the URL its base URL?")
    alerts, skipped = [], 0
    for item in doc:
        labels = _strings(item.get("labels")) if isinstance(item, dict) else None
        if not labels:
            skipped += 1
            continue
        status = item.get("status") if isinstance(item.get("status"), dict) else {}
        state = status.get("state") if isinstance(status.get("state"), str) else ""
        alerts.append(Alert(labels, _strings(item.get("annotations")) or {}, rfc3339(item.get("startsAt")),
                            rfc3339(item.get("endsAt")), state, _ids(status.get("silencedBy")),
                            _ids(status.get("inhibitedBy"))))
    return alerts, skipped


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def row_name(labels: dict[str, str]) -> str:
    """An alert's row: its name and its other labels, sorted, as PromQL writes them
    (``HighErrorRate{service="checkout",severity="critical"}``), cleaned. The same labels
    always give the same row; a name longer than ROW_MAX is cut and ends with a digest of
    every label, so two long label sets are still two rows."""
    from cockpit.safetext import clean

    name = labels.get("alertname") or "alert"
    rest = ",".join(f"{k}={_quote(v)}" for k, v in sorted(labels.items()) if k != "alertname")
    full = name + ("{" + rest + "}" if rest else "")
    if len(full) > ROW_MAX:
        digest = hashlib.sha256(repr(sorted(labels.items())).encode("utf-8", "replace")).hexdigest()[:12]
        full = f"{full[:ROW_MAX - 15]}…#{digest}"
    return clean(full, limit=ROW_MAX * 2)


def detail_of(alert: Alert) -> str:
    """The summary annotation (or the description) and since when it fires."""
    text = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    text = " ".join(text.split())[:300]
    try:
        since = f"firing since {hms(alert.starts)} UTC" if alert.starts is not None else ""
    except (ValueError, OverflowError, OSError):  # a time no clock can show (year 1 or 9999)
        since = ""
    return " · ".join(p for p in (text, since) if p)


def describe_answer(status: int, reason: str, body: bytes) -> str:
    """One line for an answer that is not 2xx: Alertmanager's own message when it gave one
    (a JSON string, or an object's message: "bad matcher format: ...")."""
    doc = parse_json(body)
    said = doc if isinstance(doc, str) else doc.get("message") if isinstance(doc, dict) else None
    head = f"HTTP {status} {reason}".strip()
    return f"Alertmanager: {head}: {said[:200]}" if isinstance(said, str) and said.strip() else f"Alertmanager: {head}"


def alerts_url(base: str, filters: list[str], **flags: bool) -> str:
    params = [(k, "true" if v else "false") for k, v in flags.items()] + [("filter", f) for f in filters]
    return f"{base.rstrip('/')}/api/v2/alerts?{urlencode(params)}"


# ---------------------------------------------------------------- the source


class Alertmanager(Source):
    kind = "alertmanager"
    uses_http = True

    def __init__(self, cfg, ctx) -> None:
        super().__init__(cfg, ctx)
        self._firing: set[str] = set()  # rows told firing by the last poll
        #: rows that stopped firing: (state, detail, told until: monotonic)
        self._gone: dict[str, tuple[str, str, float]] = {}

    @property
    def deadline(self) -> float:
        return self.timeout * 2 + 1.0  # a poll may ask a second time (which alerts are suppressed)

    def poll_gets(self) -> list[Request]:
        cfg = self.cfg
        url = alerts_url(cfg.url, cfg.filter, active=True, silenced=False, inhibited=False)
        return [(url, resolve_headers(cfg.headers, f"sources.{cfg.name}"), cfg.timeout, MAX_BYTES, False)]

    async def _alerts(self, url: str, headers: dict[str, str]) -> tuple[list[Alert], int, float]:
        answer = await self.ctx.get(url, headers, self.cfg.timeout, MAX_BYTES, False)
        if not answer.ok:
            raise SourceError(describe_answer(answer.status, answer.reason, answer.body))
        doc = parse_json(answer.body)
        if doc is None:
            raise SourceError("not an Alertmanager answer (not JSON): is the URL its base URL?")
        alerts, skipped = parse_alerts(doc)
        return alerts, skipped, answer.answered

    async def fetch(self) -> list[Reading]:
        cfg = self.cfg
        url, headers = self.poll_gets()[0][:2]
        alerts, skipped, answered = await self._alerts(url, headers)
        rows: dict[str, Alert] = {}
        for a in alerts:
            rows.setdefault(a.row, a)  # the same labels twice (two Alertmanagers' copies): one row
        words = {row: cfg.level_word(a.labels) for row, a in rows.items()}
        shown = sorted(rows, key=lambda r: (_RANK[words[r]], rows[r].starts or 0.0, r))[:cfg.max_alerts]
        out = [self.reading(f"component/{row}", score(words[row]), state=words[row], detail=detail_of(rows[row]),
                            as_of=answered) for row in shown]
        mono = self.ctx.clock.monotonic()
        for row in shown:
            self._gone.pop(row, None)
        stopped = self._firing - set(rows)
        if stopped:
            why = await self._why_stopped(headers)
            for row in stopped:
                state, detail = why.get(row, ("resolved", "no longer firing"))
                self._gone[row] = (state, detail, mono + cfg.keep_resolved)
        for row, (state, detail, until) in list(self._gone.items()):
            if until < mono:
                del self._gone[row]
            else:
                out.append(self.reading(f"component/{row}", score(state), state=state, detail=detail, as_of=answered))
        self._firing = set(shown)
        out.append(self.reading("alerts", float(len(rows)), state="up",
                                detail=_count_text(words, len(shown), skipped), as_of=answered))
        return out

    async def _why_stopped(self, headers: dict[str, str]) -> dict[str, tuple[str, str]]:
        """Rows of alerts Alertmanager still has but suppresses: silenced or inhibited (the
        rest resolved). Asked only when an alert stopped firing; not answered: {}."""
        url = alerts_url(self.cfg.url, self.cfg.filter, active=False, silenced=True, inhibited=True)
        try:
            alerts, _, _ = await self._alerts(url, headers)
        except Exception:  # noqa: BLE001 - the firing rows came; these are told as resolved
            return {}
        out = {}
        for a in alerts:
            if a.silenced_by:
                out[a.row] = ("silenced", f"silenced by {a.silenced_by[0][:40]}")
            elif a.inhibited_by:
                out[a.row] = ("inhibited", "inhibited by another alert")
        return out


def _count_text(words: dict[str, str], shown: int, skipped: int) -> str:
    if not words:
        text = "none firing"
    else:
        counts = [f"{sum(1 for w in words.values() if w == word)} {word}" for word in LEVEL_WORDS]
        text = f"{len(words)} firing: " + ", ".join(c for c in counts if not c.startswith("0 "))
    if shown < len(words):
        text += f" (the {shown} worst shown)"
    if skipped:
        text += f"; {skipped} item(s) of the answer were not alerts"
    return text


def summarize(readings: list[Reading]) -> tuple[bool, str]:
    """`cockpit check`: how many alerts fire, by severity, and the worst of them."""
    count = next((r for r in readings if r.series == "alerts"), None)
    if count is None or count.status is Status.ERROR:
        return False, count.error if count is not None else "no answer"
    firing = [r for r in readings if r.series.startswith("component/") and r.state in _RANK]
    worst = min(firing, key=lambda r: _RANK[r.state], default=None)
    return True, count.detail + (f"; e.g. {worst.series.removeprefix('component/')}" if worst is not None else "")


CONFIG = AlertmanagerSource
SOURCE = Alertmanager
