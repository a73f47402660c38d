"""The journal thread: every journal read and write of one cockpit, one at a time, in order.

A shared journal is a network round trip away and the UI must never wait on it. The
UI hands work here with :meth:`JournalWorker.do` and gets the result back on its own
event loop; the action runner's thread writes through :class:`RunnerRecorder` and waits
(an action's record is written before its next step). Nothing here knows Textual: the
UI gives three callbacks, all called on its loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from cockpit.incident.journal import JournalError


class JournalWorker:
    """The one thread that talks to the journal, for one cockpit.

    ``say(line)``: a refused or failed change, shown as one line. ``failed(exc)``: an
    unexpected error (a bug), reported once. ``changed()``: the incident changed, redraw.
    """

    def __init__(self, desk, journal, *, say: Callable[[str], None], failed: Callable[[Exception], None],
                 changed: Callable[[], None]) -> None:
        self.desk = desk
        self.journal = journal
        self._say, self._failed, self._changed = say, failed, changed
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_listening: Callable[[], None] | None = None
        self._follow_queued = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Results go to ``loop`` from now on (until then, :meth:`do` runs to the end inline)."""
        self._loop = loop

    # ------------------------------------------------------------ work

    def do(self, fn: Callable[..., Any], *args: Any, then: Callable[[Any], None] | None = None) -> None:
        """Run ``fn(*args)`` after the work already queued. On the UI loop afterwards:
        ``then(result)`` if given, else a returned problem line is said and the incident
        redrawn. Failures are reported, never raised. Before a loop is attached (a test
        filling the cockpit) there is no UI to keep responsive: it runs to the end here."""
        if self._loop is None:
            fut: asyncio.Future | Future = self._pool.submit(fn, *args)
            wait([fut])
            self._done(then, fut)
            return
        fut = asyncio.wrap_future(self._pool.submit(fn, *args))
        fut.add_done_callback(partial(self._done, then))

    def _done(self, then: Callable[[Any], None] | None, fut: asyncio.Future | Future) -> None:
        try:
            if fut.cancelled():
                return
            result = fut.result()
            if then is not None:
                then(result)
            elif isinstance(result, str):
                self._say(result)
        except JournalError as e:
            self._say(str(e))
        except Exception as e:  # noqa: BLE001 - a failed journal operation is shown, not a crash
            self._failed(e)
        if then is None:
            self._changed()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in turn and wait for its result (from a thread that is not the UI's)."""
        return self._pool.submit(partial(fn, *args, **kwargs)).result()

    async def idle(self) -> None:
        """Wait until everything asked for so far is done and its result delivered."""
        await asyncio.wrap_future(self._pool.submit(lambda: None))
        for _ in range(3):
            await asyncio.sleep(0)

    # ------------------------------------------------------------ other cockpits

    def start(self, live: bool, announced: Callable[[str | None], None]) -> None:
        """First work: listen for other cockpits' writes where the journal can announce
        them (``announced`` is called on the listener's thread), take in what an earlier
        run kept in the spool, and (live) pick up an open incident."""

        def open_() -> str | None:
            self._stop_listening = self.journal.listen(announced)
            self.desk.merge_spool()
            if not live:
                return None
            try:
                self.desk.resume_open()
            except JournalError as e:
                self.desk.journal_error = str(e)
                return f"{e}. Notes and changes are kept and written when it answers."
            return None

        self.do(open_)

    def follow(self, announced: bool, adopt: bool) -> None:
        """Take in what other cockpits wrote: at once when the journal announced it, else
        when a look shows foreign writes (retrying what is unsaved meanwhile). Skipped while
        a look is still queued (it will see the write). ``adopt``: a live cockpit joins an
        incident another declared; a drill only syncs its own."""
        if self._follow_queued:
            return
        self._follow_queued = True

        def look() -> int:
            self._follow_queued = False
            if not announced and not self.journal.foreign_writes():
                return self.desk.retry_unsaved()
            return self.desk.follow() if adopt else self.desk.sync()

        self.do(look, then=lambda n: n and self._changed())

    def refresh_leases(self) -> None:
        self.do(self.desk.refresh_leases, then=lambda _: self._changed())

    def stop_listening(self) -> None:
        """Blocking (the listener's connection closes): call from a thread."""
        if self._stop_listening is not None:
            self._stop_listening()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)


class RunnerRecorder:
    """The action runner's journal: each write runs on the journal thread in order with
    everything else, stamped with the moment it was asked for (the moment it happened),
    and the runner's thread waits for it. ``say`` and ``changed`` must be safe to call
    from any thread."""

    def __init__(self, worker: JournalWorker, clock, *, say: Callable[[str | None], None],
                 changed: Callable[[], None]) -> None:
        self.worker, self.desk, self.clock = worker, worker.desk, clock
        self._say, self._changed = say, changed

    def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return self.worker.call(fn, *args, at=self.clock.now())
        finally:
            self._changed()

    def intent(self, plan) -> Any:
        return self._write(self.desk.action_intent, plan.to_dict())

    def outcome(self, intent, plan, outcome) -> None:
        extra = {"duration": round(outcome.duration, 3), "changed": outcome.changed, "undo": plan.undo,
                 "target": plan.target, "key": plan.key, "sandbox": plan.sandbox}
        self._say(self._write(self.desk.action_outcome, intent, outcome.result, outcome.details, extra))

    def verified(self, intent, plan, verification) -> None:
        self._say(self._write(self.desk.action_verified, intent, verification.ok, verification.details))

    def effect(self, intent, plan, before, after, after_s) -> None:
        self._write(self.desk.action_effect, intent, before, after, round(after_s, 1))

    def done(self, plan) -> None:
        try:
            self.worker.call(self.desk.action_done, plan.to_dict())
        except RuntimeError:
            pass  # the cockpit is closing: the lease expires by itself
