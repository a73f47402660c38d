"""The incident: its journals (SQLite, PostgreSQL), its state folded from events, the desk
between the keys and the journal, the spool, the postmortem and its charts, status
updates. No UI code."""
