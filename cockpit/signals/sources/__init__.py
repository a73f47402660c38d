"""Sources turn an external system into Readings: one module per kind, named after it,
with the kind's config model and its implementation (see :mod:`cockpit.kinds`).

A source's ``fetch()`` returns readings or raises; the poller turns any exception into
error readings for every series the source declares, so a failure is data on a panel,
never an exception in the UI. Blocking clients run their calls in a thread inside
``fetch()``.
"""

from __future__ import annotations

from cockpit.signals.sources._base import (
    Source,
    SourceContext,
    SourceError,
    describe_error,
)

__all__ = ["Source", "SourceContext", "SourceError", "build_source", "describe_error"]


def build_source(cfg, ctx: SourceContext) -> Source:
    """The Source object for one validated source config (its kind's module)."""
    from cockpit import kinds

    return kinds.source_module(cfg.kind).SOURCE(cfg, ctx)
