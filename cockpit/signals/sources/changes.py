"""`changes`: a deploy log over HTTP (a CI/CD system's recent deploys as JSON), each entry
a change on the timeline (◆): what changed, to what, when, by whom.

The answer is a JSON list of entries, or an object holding one (under ``list_key``, or
the first of "changes", "deployments", "deploys", "items", "data" that is a list). Each
entry is an object; its fields are found under the names in ``fields`` (defaults below).
The newest ``max_entries`` entries by time are read on each poll: the same entries said
again are not news (cockpit.signals.evaluator.ChangeTracker), so the log may be read
whole every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from cockpit.configmodel import SourceBase, _check_headers, _check_url
from cockpit.model import Reading
from cockpit.signals.sources._base import Request, Source, SourceError
from cockpit.signals.sources._changes import epoch_of
from cockpit.signals.sources._http import parse_json, resolve_headers

LIST_KEYS = ("changes", "deployments", "deploys", "items", "data")
#: each part of a change and the entry fields it is looked for in, first found wins
FIELDS: dict[str, tuple[str, ...]] = {
    "where": ("service", "where", "component", "app", "application", "environment"),
    "to": ("version", "to", "revision", "ref", "sha", "image"),
    "at": ("at", "time", "timestamp", "deployed_at", "created_at", "finished_at", "date"),
    "by": ("by", "author", "user", "actor", "deployer", "triggered_by"),
    "what": ("description", "what", "message", "title", "summary", "id"),
}
FEED_LIMIT = 1024 * 1024  # a deploy log's answer: at most 1 MiB read


class ChangesSource(SourceBase):
    """A deploy log over HTTP (seed runbooks: "what changed?"): a JSON list of recent changes, each with
    where (service), to (version), at (time), by (who) and what (description); each new one is a change
    (◆) on the timeline and a mark on the sparklines."""

    kind: Literal["changes"]
    url: str = Field(description="The deploy log's URL (answers JSON).")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secret values as env:NAME.")
    list_key: str | None = Field(None, description="The key of the list of entries when the answer is an object "
                                 f"(default: the first of {', '.join(LIST_KEYS)} that is a list).")
    fields: dict[str, str] = Field(default_factory=dict, description="Entry field names, for where/to/at/by/what, "
                                   "where they differ from the defaults (where: service, to: version, at: at or "
                                   "time, by: by or author, what: description), e.g. {to = \"sha\"}.")
    max_entries: int = Field(50, ge=1, le=1000, description="The newest entries read on each poll.")
    interval: float = Field(15.0, ge=0.05, le=86400, description="Seconds between polls.")

    _url = field_validator("url")(classmethod(lambda cls, v: _check_url(v)))
    _headers = field_validator("headers")(classmethod(lambda cls, v: _check_headers(v)))

    @field_validator("fields")
    @classmethod
    def _known_parts(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown part {', '.join(unknown)}: the parts are {', '.join(FIELDS)}")
        return v

    feeds: ClassVar[str] = "changes"

    def series_names(self) -> list[str]:
        return []


@dataclass(frozen=True)
class Entry:
    where: str
    to: str
    at: float | None
    by: str


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    if isinstance(value, dict):  # {"name": "alice", "email": ...}
        return _text(value.get("name") or value.get("login") or value.get("id"))
    return ""


def entries(doc: Any, list_key: str | None = None, fields: dict[str, str] | None = None,
            limit: int = 50) -> list[Entry]:
    """The changes a deploy log's JSON says, oldest first (the newest ``limit``; entries
    without a time keep their order, after the timed ones). Raises SourceError when the
    document holds no list of entries; an entry missing its where or to is skipped."""
    items = doc
    if isinstance(doc, dict):
        keys = (list_key,) if list_key else LIST_KEYS
        items = next((doc[k] for k in keys if isinstance(doc.get(k), list)), None)
    if not isinstance(items, list):
        where = f"under {list_key!r}" if list_key else "(a JSON list, or an object with one under " + \
            ", ".join(LIST_KEYS) + ")"
        raise SourceError(f"not a deploy log: no list of entries {where}")
    names = {part: (fields[part],) if fields and part in fields else found for part, found in FIELDS.items()}

    def part(entry: dict, name: str) -> Any:
        return next((entry[k] for k in names[name] if entry.get(k) not in (None, "")), None)

    out = []
    for entry in items:
        if not isinstance(entry, dict):
            continue
        where, to = _text(part(entry, "where")), _text(part(entry, "to"))
        if not where or not to:
            continue
        by, what = _text(part(entry, "by")), _text(part(entry, "what"))
        said = " · ".join(x for x in (f"by {by}" if by else "", what[:120]) if x)
        out.append(Entry(where[:80], to[:120], epoch_of(part(entry, "at")), said))
    timed = sorted((e for e in out if e.at is not None), key=lambda e: e.at)
    return (timed + [e for e in out if e.at is None])[-limit:]


class Changes(Source):
    kind = "changes"
    uses_http = True

    async def fetch(self) -> list[Reading]:
        cfg = self.cfg
        answer = await self.ctx.get(*self.poll_gets()[0])
        if not answer.ok:
            raise SourceError(f"HTTP {answer.status} {answer.reason}".strip())
        doc = parse_json(answer.body)
        if doc is None:
            raise SourceError("not a deploy log: the answer is not JSON")
        return [self.change(e.where, e.to, since=e.at, by=e.by, as_of=answer.answered)
                for e in entries(doc, cfg.list_key, cfg.fields, cfg.max_entries)]

    def poll_gets(self) -> list[Request]:
        cfg = self.cfg
        return [(cfg.url, resolve_headers(cfg.headers, f"sources.{cfg.name}"), cfg.timeout, FEED_LIMIT, False)]


def summarize(readings: list[Reading]) -> tuple[bool, str]:
    """`cockpit check`: how many changes the log holds, and the newest."""
    if not readings:
        return True, "no changes in the log"
    last = readings[-1]
    return True, f"{len(readings)} changes; newest: {last.series.split('/', 1)[1]} {last.state}"


CONFIG = ChangesSource
SOURCE = Changes
