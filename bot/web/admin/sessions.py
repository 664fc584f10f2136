"""Console logins kept server-side, in the query log's database: :class:`SessionStore`.

The signed cookie carries only a random session id; the table
``console_sessions`` holds its SHA-256 (a copy of the table opens no
console), the mark of the password it was opened with and when. A login
counts only while its row exists: logging out deletes the row, so a cookie
replayed afterwards is refused on every node; a row whose password mark is not
the current password's is deleted when met, and at start-up and at each login
all such rows (and lapsed ones) go.

Why the query log's database and not the limiter's Redis: every deployment
has it (SQLite on one machine, PostgreSQL shared by several nodes), while the
limiter's storage may be ``memory://``, which each worker keeps apart. The
table is not part of the query log's schema: it is created here if missing,
and a purge of the log never touches it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from contextlib import AbstractContextManager

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.querylog.schema import open_engine
from bot.web.per_process import PerProcess

__all__ = ["TABLE", "SessionStore"]

TABLE = "console_sessions"
_BUSY_TIMEOUT_MS = 5_000


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


class SessionStore:
    """The console's session rows in the database at ``url``.

    Each process opens its own engine on first use (connections cannot cross
    a fork); errors of the database are SQLAlchemy's, for the caller to answer.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._table = sa.Table(
            TABLE,
            sa.MetaData(),
            sa.Column("id_hash", sa.String(64), primary_key=True),
            sa.Column("password_mark", sa.String(64), nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),  # seconds since the epoch
        )
        self._engine = PerProcess(lambda: open_engine(url, _BUSY_TIMEOUT_MS))
        self._create_first = False

    def create_later(self) -> None:
        """Create the table (if missing) before the next use, not now."""
        self._create_first = True

    def _ready(self) -> sa.Engine:
        engine = self._engine.get()
        if self._create_first:
            self._table.create(engine, checkfirst=True)
            self._create_first = False
        return engine

    def create_table(self) -> None:
        """Create the table if it is missing (at start-up, before workers fork)."""
        engine = open_engine(self._url, _BUSY_TIMEOUT_MS)
        try:
            try:
                self._table.create(engine, checkfirst=True)
            except sa.exc.DBAPIError:
                # Another node or process created it meanwhile.
                if not sa.inspect(engine).has_table(TABLE):
                    raise
        finally:
            engine.dispose()

    def open(self, password_mark: str) -> str:
        """Record a new login; return its session id (for the signed cookie only)."""
        sid = secrets.token_urlsafe(32)
        row = {"id_hash": _hash(sid), "password_mark": password_mark, "created_at": time.time()}
        with self._writing() as conn:
            conn.execute(self._table.insert().values(**row))
        return sid

    def find(self, sid: str) -> tuple[str, float] | None:
        """The password mark and start time of the login ``sid``; None if it has none."""
        t = self._table
        stmt = sa.select(t.c.password_mark, t.c.created_at).where(t.c.id_hash == _hash(sid))
        with self._ready().connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else (row[0], row[1])

    def revoke(self, sid: str) -> None:
        """End the login ``sid`` (logging out, a lapsed login, a changed password)."""
        with self._writing() as conn:
            conn.execute(self._table.delete().where(self._table.c.id_hash == _hash(sid)))

    def purge(self, password_mark: str, started_before: float) -> int:
        """End every login of another password or started before ``started_before``."""
        t = self._table
        stmt = t.delete().where(
            (t.c.password_mark != password_mark) | (t.c.created_at < started_before)
        )
        with self._writing() as conn:
            return conn.execute(stmt).rowcount

    def _writing(self) -> AbstractContextManager[Connection]:
        engine = self._ready().execution_options(sqlite_immediate=True)
        return engine.begin()

    def close(self) -> None:
        """Close this process's connections."""
        self._engine.discard(lambda engine: engine.dispose())
