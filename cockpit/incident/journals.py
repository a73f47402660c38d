"""Opening the journal a setting names: the embedded SQLite file (:mod:`cockpit.incident.journal`)
or the shared PostgreSQL one (:mod:`cockpit.incident.pgjournal`)."""

from __future__ import annotations

from pathlib import Path

from cockpit.clock import Clock
from cockpit.incident.journal import Journal, JournalError, SQLiteJournal, default_path


def is_shared(spec: str | None) -> bool:
    """Whether a journal setting names a PostgreSQL server rather than a file."""
    return bool(spec) and spec.split("://", 1)[0] in ("postgresql", "postgres")


def open_journal(spec: str | Path | None, *, clock: Clock | None = None, actor: str = "responder",
                 default: Path | None = None, readonly: bool = False) -> Journal:
    """The journal a setting names: a postgresql:// URL (shared; ``env:NAME`` holding one
    is resolved here) or a SQLite file (``default`` when None). ``readonly``: to verify
    or export, creating and changing nothing. Raises JournalError."""
    from cockpit.safetext import SecretError, is_secret_ref, resolve_secret

    text = str(spec) if spec is not None else None
    if text is not None and is_secret_ref(text):
        try:
            text = resolve_secret(text, "incident.journal")
        except SecretError as e:
            raise JournalError(str(e)) from None
    if is_shared(text):
        from cockpit.incident.pgjournal import PostgresJournal

        return PostgresJournal(text, clock=clock, actor=actor, readonly=readonly)
    path = Path(text).expanduser() if text is not None else (default or default_path())
    return SQLiteJournal(path, clock=clock, actor=actor, readonly=readonly)
