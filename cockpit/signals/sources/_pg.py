"""What the PostgreSQL sources share (psycopg 3, a connection per source kept between
polls, every call in a thread with a statement timeout).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from typing import Any

from cockpit.signals.sources._base import Source, SourceError

_PG_NOISE = re.compile(r'^(connection failed: )?(connection to server (at|on) "[^"]*"(, port \d+)? failed: )?'
                       r'((FATAL|ERROR):\s+)?')


def _one_line(e: BaseException) -> str:
    """The cause in one short line: 'connection refused', 'role "x" does not exist'."""
    text = str(e).strip().splitlines()
    short = _PG_NOISE.sub("", text[0]).strip() if text else ""
    return short[:1].lower() + short[1:] if short else type(e).__name__


class _PgSource(Source):
    def __init__(self, cfg, ctx) -> None:
        super().__init__(cfg, ctx)
        self._conn = None
        self._lock = threading.Lock()

    def _url(self) -> str:
        from cockpit.safetext import SecretError, resolve_secret

        try:
            return resolve_secret(self.cfg.database, f"sources.{self.name}.database")
        except SecretError as e:
            raise SourceError(str(e)) from None

    def _connection(self):
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = psycopg.connect(self._url(), autocommit=True, connect_timeout=max(1, int(self.cfg.timeout)),
                                   application_name="cockpit")
            conn.execute(f"SET statement_timeout = {int(self.cfg.statement_timeout * 1000)}")
        except psycopg.Error as e:
            raise SourceError(f"cannot connect: {_one_line(e)}") from None
        try:
            self._apply_settings(conn)
        except BaseException:
            conn.close()  # never poll on a session whose settings are not what the config says
            raise
        self._conn = conn
        return conn

    def session_settings(self) -> dict[str, str]:
        """Settings (name -> value) given to every new session, before its first query."""
        return {}

    def _apply_settings(self, conn) -> None:
        """Each setting by ``set_config(name, value, false)``: name and value are bound
        parameters, never written into the SQL. A refused one is a poll error naming it."""
        import psycopg

        for name, value in self.session_settings().items():
            try:
                conn.execute("SELECT set_config(%s, %s, false)", (name, value))
            except psycopg.OperationalError as e:
                raise SourceError(f"cannot connect: {_one_line(e)}") from None
            except psycopg.Error as e:
                raise SourceError(f"sources.{self.name}.settings.{name}: {_one_line(e)}") from None

    def _names_database(self) -> bool:
        """Whether the connection string itself names a database (not libpq's default)."""
        import psycopg  # noqa: F401 - the package before its submodule: two threads importing them in
        # different orders get a partially initialised module
        from psycopg.conninfo import conninfo_to_dict

        try:
            return bool(conninfo_to_dict(self._url()).get("dbname"))
        except Exception:  # noqa: BLE001 - psycopg.ProgrammingError quotes the string: not shown
            return False

    def _run(self, fn) -> Any:
        """``fn(connection)`` in this thread; a broken connection is dropped for the next poll."""
        import psycopg

        with self._lock:
            conn = self._connection()
            try:
                return fn(conn)
            except psycopg.errors.QueryCanceled:
                raise SourceError(f"cancelled after {self.cfg.statement_timeout:g}s (statement_timeout)") from None
            except psycopg.OperationalError as e:
                self._drop()
                raise SourceError(_one_line(e)) from None

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self._conn = None

    def reset(self) -> None:
        """Forget the connection after a failed poll. Called on the event loop, so it never
        waits: when a poll is still stuck on the connection (a frozen server), its socket
        is shut down, which makes that poll fail at once and drop the connection itself."""
        if self._lock.acquire(blocking=False):
            try:
                self._drop()
            finally:
                self._lock.release()
            return
        conn = self._conn
        if conn is None:  # still connecting: connect_timeout ends it
            return
        try:
            with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001 - it closed meanwhile
            pass

    async def aclose(self) -> None:
        await asyncio.to_thread(self.reset)
