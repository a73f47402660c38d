"""Two Textual leaks, worked around (Textual 8.2; both open upstream).

A widget that is gone (a dialog closed, a toast expired, a footer key rebuilt) should take
its memory with it. Two caches of Textual's kept it:

- The footer rebuilds its keys whenever the screen's bindings change (an incident declared,
  acknowledged, resolved; a dialog opened or closed), and each key it builds watches the
  footer's ``compact`` setting (``data_bind``). Textual drops such a watcher only when the
  watched value changes, which ``compact`` never does, so every key ever shown stayed alive
  with all its state (Textual issue #6666): :class:`Footer` drops the watchers of keys that
  are gone after each rebuild.
- ``StylesCache.get_inner_outer`` is an ``lru_cache`` (1024 entries) on a method, so it keeps
  the styles cache (every rendered line) of the last 1024 widgets that drew, alive or not
  (Textual issue #6665): :func:`forget_styles` empties it when a screen comes or goes and
  after the footer's rebuild, the moments widgets are let go; the live ones fill it again
  at their next draw.

Measured by bench/soak.py (the demo for a simulated day): RSS grew 93 -> 256 MB over 24 h
before, mostly these two.
"""

from __future__ import annotations

from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    """Textual's footer, letting go of the keys it rebuilt."""

    async def recompose(self) -> None:
        await super().recompose()
        forget_detached_watchers(self)
        forget_styles()


def forget_detached_watchers(node) -> int:
    """Drop the watchers that widgets no longer in the DOM left on ``node``; how many.
    (Textual keeps them in the node's ``__watchers`` attribute; nothing to do without one.)"""
    watchers = getattr(node, "__watchers", None)
    if not isinstance(watchers, dict):
        return 0
    dropped = 0
    for entries in watchers.values():
        kept = [(owner, callback) for owner, callback in entries
                if not hasattr(owner, "is_attached") or owner.is_attached]
        dropped += len(entries) - len(kept)
        entries[:] = kept
    return dropped


def forget_styles(*_args) -> None:
    """Empty Textual's style cache that keeps widgets' rendered lines alive (a pure cache:
    what a live widget needs is worked out again at its next draw, a few microseconds)."""
    from textual._styles_cache import StylesCache

    cached = getattr(StylesCache, "get_inner_outer", None)
    if hasattr(cached, "cache_clear"):
        cached.cache_clear()
