"""Sources turn an external system into Readings.

A source's ``fetch()`` returns readings or raises; the poller turns any
exception into error readings for every series the source declares, so a
failure is data on a panel, never an exception in the UI. Later source kinds
(Prometheus API, CloudWatch, PostgreSQL, AWS service APIs) implement the same
interface; blocking clients run their calls in a thread inside ``fetch()``.
"""

from __future__ import annotations

from cockpit.signals.sources.base import Source, SourceContext, SourceError, build_source, describe_error

__all__ = ["Source", "SourceContext", "SourceError", "build_source", "describe_error"]
