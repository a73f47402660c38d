"""The kind registry. Every source kind is a module of ``cockpit.signals.sources`` and every
action kind a module of ``actions.kinds``, named after the kind, holding its config model
(``CONFIG``) and its implementation (``SOURCE`` or ``EXECUTOR``); a module whose name
starts with "_" holds what several kinds share. Nothing lists kinds by hand: adding a kind
is adding a file. The root config, `cockpit schema`, the Markdown reference, "did you
mean" and `cockpit check` all read the kinds from here.

A kind's module is imported only when a config uses that kind (or when every kind is
asked for: the schema, the reference), so start-up builds only the models it needs.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

SOURCES = "cockpit.signals.sources"
ACTIONS = "actions.kinds"


@cache
def _names(package: str) -> tuple[str, ...]:
    pkg = importlib.import_module(package)
    return tuple(sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")))


def source_kinds() -> tuple[str, ...]:
    return _names(SOURCES)


def action_kinds() -> tuple[str, ...]:
    return _names(ACTIONS)


def _module(package: str, kind: str) -> ModuleType:
    if kind not in _names(package):
        raise KeyError(kind)
    return importlib.import_module(f"{package}.{kind}")


def source_module(kind: str) -> ModuleType:
    return _module(SOURCES, kind)


def action_module(kind: str) -> ModuleType:
    return _module(ACTIONS, kind)


def source_config(kind: str) -> type:
    return source_module(kind).CONFIG


def action_config(kind: str) -> type:
    return action_module(kind).CONFIG
