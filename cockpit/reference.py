"""The Markdown config reference, generated from the models so it cannot drift from the
code: the root model's sections, then every source kind and every action kind of the
kind registry, each with the tables nested in it. A test checks that every kind, every
field and every section is in examples/CONFIG.md, and that the file is this output."""

from __future__ import annotations

import json
import types
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from cockpit import config as c
from cockpit import kinds


def _models_in(ann) -> list[tuple[type[BaseModel], str]]:
    """The models a field's type holds, with how they nest: "" (a table), "[]" (a list of
    tables), "<name>" (a table of tables)."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [(ann, "")]
    if origin is list and args:
        return [(m, "[]") for m, _ in _models_in(args[0])]
    if origin is dict and args:
        return [(m, ".<name>") for m, _ in _models_in(args[1])]
    out = []
    for a in args:
        out += _models_in(a)
    return out


def _walk(model: type[BaseModel], path: str, found: dict[type[BaseModel], list[str]], skip: set[str]) -> None:
    found.setdefault(model, []).append(path)
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        for inner, how in _models_in(field.annotation):
            _walk(inner, f"{path}.{name}{how}" if path else f"{name}{how}", found, set())


def _title(path: str) -> str:
    if path.endswith("[]"):
        return f"[[{path[:-2]}]]"
    return f"[{path}]"


def sections() -> list[tuple[str, type[BaseModel]]]:
    """(title, model) of every table of the config, the kinds' included, in reading order."""
    root: dict[type[BaseModel], list[str]] = {}
    _walk(c.CockpitConfig, "", root, {"sources", "actions"})
    out = [(", ".join(_title(p) for p in paths), model) for model, paths in root.items() if paths != [""]]
    documented = set(root)  # a table used in several places (aws) is documented once
    for section, names, model_of in (("sources", kinds.source_kinds(), kinds.source_config),
                                     ("actions", kinds.action_kinds(), kinds.action_config)):
        for kind in names:
            nested: dict[type[BaseModel], list[str]] = {}
            _walk(model_of(kind), "", nested, set())
            for model, paths in nested.items():
                if paths == [""]:
                    out.append((f'[[{section}]] kind = "{kind}"', model))
                elif model not in documented:
                    out.append((", ".join(f"{_title(section + '.' + p)} (in {kind})" for p in paths), model))
                documented.add(model)
    return out


def _type(ann) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args if a is not type(None)) + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"table of {_type(args[1])}s" if args else "table"
    if typing.get_origin(ann) is typing.Annotated:
        return _type(args[0])
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "table"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(ann, getattr(ann, "__name__", str(ann)))


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
        "Generated from the config models (`cockpit/config.py`, and one module per source kind in",
        "`cockpit/signals/sources/` and per action kind in `actions/kinds/`) by `cockpit schema --markdown`;",
        "do not edit by hand. Unknown keys are errors. Secrets are written as `env:NAME` and read from the",
        "environment when used. Any key can be overridden from the environment as",
        "`COCKPIT_<SECTION>__<KEY>`; sources are addressed by name, actions by key:",
        "`COCKPIT_SOURCES__METRICS__URL=http://127.0.0.1:9000/metrics`.",
        "",
        f"Source kinds: {', '.join(f'`{k}`' for k in kinds.source_kinds())}.",
        f"Action kinds: {', '.join(f'`{k}`' for k in kinds.action_kinds())}.",
        "",
    ]
    for title, model in sections():
        out += [f"## `{title}`", "", " ".join((model.__doc__ or "").split()), "", "| key | type | default | meaning |",
                "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            desc = " ".join((field.description or "").split()).replace("|", "\\|")
            out.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {desc} |")
        out.append("")
    return "\n".join(out)
