"""The Markdown config reference, generated from the pydantic models so it
cannot drift from the code (a test compares it with examples/CONFIG.md)."""

from __future__ import annotations

import json
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from cockpit import config as c

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("[service]", c.ServiceConfig),
    ("[settings]", c.Settings),
    ("[incident]", c.IncidentSettings),
    ('[[sources]] kind = "http_health"', c.HttpHealthSource),
    ('[[sources]] kind = "http_components"', c.HttpComponentsSource),
    ('[[sources]] kind = "prom_scrape"', c.PromScrapeSource),
    ("[panels]", c.Panels),
    ("[panels.error_rate], [panels.latency], [panels.cost]", c.SignalPanel),
    ("[panels.health], [panels.components]", c.StatusPanel),
    ("[panels.<signal>.threshold]", c.Threshold),
]


def _type(ann) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type(a) for a in args if a is not type(None)) + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"table of {_type(args[1])}s" if args else "table"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "table"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(ann, str(ann))


def _default(field) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
        return "defaults" if isinstance(value, BaseModel) else f"`{json.dumps(value)}`"
    if field.default is PydanticUndefined or field.default is None:
        return "none"
    return f"`{json.dumps(field.default)}`"


def markdown_reference() -> str:
    out = [
        "# Config reference",
        "",
        "Generated from `cockpit/config.py` by `cockpit schema --markdown`; do not edit by hand.",
        "Unknown keys are errors. Secrets are written as `env:NAME` and read from the environment",
        "when used. Any key can be overridden from the environment as `COCKPIT_<SECTION>__<KEY>`;",
        "sources are addressed by name: `COCKPIT_SOURCES__METRICS__URL=http://127.0.0.1:9000/metrics`.",
        "",
    ]
    for title, model in SECTIONS:
        out += [f"## `{title}`", "", (model.__doc__ or "").strip(), "", "| key | type | default | meaning |",
                "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            desc = (field.description or "").replace("|", "\\|")
            out.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {desc} |")
        out.append("")
    return "\n".join(out)
