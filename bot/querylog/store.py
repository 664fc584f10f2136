"""The query log: every question a visitor asks, masked, with the reply it got and feedback.

A :class:`QueryLog` wraps one SQLAlchemy engine (SQLite under ``instance/`` by
default, PostgreSQL in production, shared by every worker and node). Every text
is masked with :func:`bot.querylog.masking.mask` and capped inside the store, so
no caller can forget to. This module writes; the tables and migrations are in
:mod:`bot.querylog.schema`, the reads (which :class:`QueryLog` inherits) in
:mod:`bot.querylog.stats`.

Writes never make a visitor wait on the database: :meth:`QueryLog.log_query`
allocates the row's id itself, hands the row to the process's writer and
returns the id. With an ``outbox`` folder (the web service's) that writer is a
:class:`bot.querylog.shipper.Shipper`: the row is durable in this process's
outbox file (:mod:`bot.querylog.outbox`) before ``log_query`` returns, and is
shipped to the database whenever it answers; :meth:`QueryLog.health` reports
the backlog and what keeps it from shrinking. Without one, rows wait in the
in-memory queue of :mod:`bot.querylog.writer` (tools and tests).
:meth:`QueryLog.flush` waits for the queue to drain and :meth:`QueryLog.close`
drains it and disposes of the engine; ``close`` also runs at process exit.
A forked child (a gunicorn worker) starts every inherited store afresh, with
its own queue, writer and connections, leaving the parent's connections alone.

Ids come from :class:`bot.querylog.rows.Ids`: no round trip is needed for one,
and feedback can name a query that is still in the queue or an outbox.

:meth:`QueryLog.migrate` brings the schema up to date in one transaction, under
a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL) so that
workers starting together do not race.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.config import CHINA_UTC_OFFSET_MINUTES
from bot.errors import QueryLogError, QueryLogUnavailable, UnknownQuery
from bot.querylog import outbox as outboxes
from bot.querylog.curation import CurationRecords
from bot.querylog.masking import mask
from bot.querylog.rows import Ids, candidates_json, finite, session_hash, storable
from bot.querylog.schema import (
    FEEDBACK_REASONS,
    REPLY_TYPES,
    make_tables,
    now,
    open_engine,
    upgrade,
)
from bot.querylog.shipper import Shipper
from bot.querylog.stats import LogReader
from bot.querylog.summary import days_of, forget_days
from bot.querylog.writer import Row, Writer

__all__ = ["QueryLog", "QueryLogError", "UnknownQuery"]

_ids = Ids()
# Every open store, for the fork hooks at the end of this module.
_live: weakref.WeakSet[QueryLog] = weakref.WeakSet()
_held_over_fork: list[QueryLog] = []
# A forked child keeps its parent's pooled connections referenced and never touches
# them: closing them there would end the parent's PostgreSQL sessions.
_parents_pools: list[object] = []


class QueryLog(LogReader, CurationRecords):
    """The query and feedback store behind one SQLAlchemy URL.

    ``url`` is any SQLAlchemy URL, e.g. ``sqlite:////srv/xiaocheng/instance/querylog.db``
    or ``postgresql+psycopg://@127.0.0.1:5432/test``. ``schema`` puts the tables in
    that PostgreSQL schema (created if missing). With ``background=False`` every
    write happens in the caller's thread (command-line tools). ``migrate=False``
    leaves the schema alone until :meth:`migrate` is called (with an outbox, a
    database unreachable now is migrated before the first rows shipped). ``outbox`` is the
    folder of the outbox files (see the module's docstring; ``queue_size`` is then
    unused: an outbox has no limit but its disk).
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        background: bool = True,
        migrate: bool = True,
        queue_size: int = 10_000,
        batch_size: int = 500,
        linger_s: float = 0.05,
        max_chars: int = 500,
        busy_timeout_ms: int = 10_000,
        utc_offset_minutes: int = CHINA_UTC_OFFSET_MINUTES,
        feedback_grace_s: float = 2.0,
        close_timeout_s: float = 30.0,
        outbox: str | os.PathLike[str] | None = None,
    ) -> None:
        if sa.make_url(url).get_backend_name() == "sqlite" and schema is not None:
            raise QueryLogError("schema is for PostgreSQL; SQLite keeps one database per file")
        self._background = background
        self._max_chars = max_chars
        self._feedback_grace_s = feedback_grace_s
        self._outbox = None if outbox is None else Path(outbox)
        self._new_writer: Callable[[], Writer | Shipper]
        if self._outbox is None or not background:
            self._new_writer = functools.partial(
                Writer,
                self._insert,
                queue_size=queue_size,
                batch_size=batch_size,
                linger_s=linger_s,
                close_timeout_s=close_timeout_s,
            )
        else:
            self._new_writer = functools.partial(
                Shipper,
                self._insert,
                self._outbox,
                reconnect=self._reconnect,
                batch_size=batch_size,
                linger_s=linger_s,
            )
        super().__init__(
            open_engine(url, busy_timeout_ms),
            make_tables(schema, max_chars),
            utc_offset_minutes=utc_offset_minutes,
        )
        self._closed = False
        self._migrate_first = False
        self._reset_writer_state()
        if migrate:
            try:
                self.migrate()
            except sa.exc.OperationalError:
                if self._outbox is None or not background:
                    self._engine.dispose()
                    raise
                self._migrate_first = True  # unreachable: before the first shipment
            except BaseException:
                self._engine.dispose()
                raise
        _live.add(self)
        atexit.register(self.close)
        if isinstance(self._writer, Shipper):
            self._writer.start()  # ship what processes gone before left behind

    # -- life cycle ---------------------------------------------------------

    def _reset_writer_state(self) -> None:
        self._io_lock = threading.Lock()  # held while writing; a fork waits for it
        self._writer = self._new_writer()

    def __enter__(self) -> QueryLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def migrate(self) -> int:
        """Bring the schema up to date; return its version. Safe to call at any time."""
        with self._writing() as conn:
            return upgrade(conn, self._t)

    create = migrate

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued row is written; return False if ``timeout`` ran out."""
        return self._writer.flush(timeout)

    def health(self) -> dict[str, Any]:
        """``{"problem": why rows cannot be stored now or None, "backlog": rows waiting}``.

        With an outbox, the backlog and problems are those of every process sharing
        its folder; without one, of this process's queue.
        """
        writer = self._writer
        if not isinstance(writer, Shipper):
            return {"problem": None, "backlog": writer.backlog()}
        writer.start()
        status = outboxes.folder_status(writer.folder)
        problems = [p for p in [writer.problem(), *status.errors] if p]
        return {"problem": problems[0] if problems else None, "backlog": status.backlog}

    def close(self) -> None:
        """Write every queued row, stop the writer and close all connections."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        _live.discard(self)
        self._writer.close()
        self._engine.dispose()

    # -- writing --------------------------------------------------------------

    def log_query(
        self,
        question: str,
        *,
        reply_type: str,
        normalized: str = "",
        faq_id: str | None = None,
        score: float | None = None,
        candidates: Iterable[Mapping[str, Any]] = (),
        session: str | None = None,
        latency_ms: float | None = None,
        created_at: datetime | None = None,
        from_query_id: int | None = None,
        internal: bool = False,
    ) -> int:
        """Record one question and its reply; return the new query's id at once.

        ``candidates`` are the engine's top candidates (``{"id", "score", ...}``);
        the first five ids and scores are kept. ``session`` is stored hashed.
        ``from_query_id`` is the reply whose chip led to this question, as sent.
        ``internal`` marks test or monitoring traffic, which the reads leave out.
        """
        if reply_type not in REPLY_TYPES:
            raise QueryLogError(
                f"reply_type must be one of {', '.join(REPLY_TYPES)}, not {reply_type!r}"
            )
        query_id = _ids.next()
        row = {
            "id": query_id,
            "created_at": created_at or now(),
            "question": self._clean(question),
            "normalized": self._clean(normalized),
            "reply_type": reply_type,
            "faq_id": None if faq_id is None else storable(faq_id),
            "score": finite(score),
            "candidates": candidates_json(candidates),
            "session": session_hash(session),
            "latency_ms": finite(latency_ms),
            "from_query_id": from_query_id,
            "internal": bool(internal),
        }
        self._submit("queries", row)
        return query_id

    def log_feedback(
        self,
        query_id: int,
        helpful: bool,
        comment: str | None = None,
        *,
        reason: str | None = None,
        created_at: datetime | None = None,
    ) -> None:
        """Record a visitor's verdict on the reply to ``query_id``.

        Raises :class:`UnknownQuery` if no such query was logged. A query logged by
        another process may still be in that process's queue, so a missing id is
        looked up again for up to ``feedback_grace_s`` seconds before giving up (in
        the outboxes of the folder too, if there is one). Raises
        :class:`QueryLogUnavailable` if only the unreachable database could tell.
        """
        if reason is not None and reason not in FEEDBACK_REASONS:
            raise QueryLogError(
                f"reason must be one of {', '.join(FEEDBACK_REASONS)}, not {reason!r}"
            )
        if not self._known(query_id):
            raise UnknownQuery(f"no query with id {query_id} in the log")
        row = {
            "id": _ids.next(),
            "query_id": query_id,
            "created_at": created_at or now(),
            "helpful": bool(helpful),
            "comment": self._clean(comment) if comment else None,
            "reason": reason,
        }
        self._submit("feedback", row)

    def purge(self, older_than_days: int) -> int:
        """Delete queries older than ``older_than_days`` and their feedback; return how many."""
        if older_than_days < 0:
            raise QueryLogError(f"older_than_days must be 0 or more, not {older_than_days}")
        cutoff = now() - timedelta(days=older_than_days)
        q, fb = self._t.queries, self._t.feedback
        old = sa.select(q.c.id).where(q.c.created_at < cutoff)
        with self._writing() as conn:
            conn.execute(fb.delete().where(fb.c.query_id.in_(old)))
            forget_days(conn, self._t, [self.local_day(cutoff)], up_to=True)
            return conn.execute(q.delete().where(q.c.created_at < cutoff)).rowcount

    def _clean(self, text: str) -> str:
        # Mask before capping, so the cap cannot cut a number in two and hide it;
        # a first coarse cut bounds the work on absurdly long input.
        return storable(mask(text[: self._max_chars * 4])[: self._max_chars])

    def _known(self, query_id: int) -> bool:
        """Whether ``query_id`` is queued here, in an outbox of the folder or in the
        database; raise :class:`QueryLogUnavailable` if only the database could tell."""
        deadline = time.monotonic() + self._feedback_grace_s
        delay = 0.05
        while True:
            if self._writer.pending(query_id):
                return True
            q = self._t.queries
            failure: sa.exc.SQLAlchemyError | None = None
            try:
                with self._engine.connect() as conn:
                    if conn.scalar(sa.select(q.c.id).where(q.c.id == query_id)) is not None:
                        return True
            except sa.exc.SQLAlchemyError as e:
                failure = e
            if self._outbox is not None and outboxes.find_query(self._outbox, query_id):
                return True
            if time.monotonic() + delay > deadline:
                if failure is not None:
                    raise QueryLogUnavailable(f"the query log cannot be read: {failure}")
                return False
            time.sleep(delay)
            delay *= 2

    def _submit(self, table: str, row: dict[str, Any]) -> None:
        if self._closed:
            raise QueryLogError("the query log is closed")
        if not self._background:
            self._insert([(table, row)])
            return
        self._writer.submit(table, row)

    def _forked(self) -> None:
        """Start afresh in a forked child: the parent's thread, queue and connections
        stay the parent's."""
        _parents_pools.append(self._engine.pool)
        self._engine.dispose(close=False)
        if isinstance(self._writer, Shipper):
            self._writer.abandon()
        self._reset_writer_state()

    def _reconnect(self) -> None:
        """Drop the pooled connections: the next write opens fresh ones (a file made
        writable again, a restarted server)."""
        self._engine.dispose()

    def _insert(self, rows: Sequence[Row]) -> None:
        # A row an outbox kept from before migration 4 has no "internal": a visitor's.
        queries = [{"internal": False, **row} for table, row in rows if table == "queries"]
        feedback = [row for table, row in rows if table == "feedback"]
        with self._writing() as conn:
            if self._migrate_first:
                upgrade(conn, self._t)
                self._migrate_first = False
            if queries:
                conn.execute(self._t.queries.insert(), queries)
            if feedback:
                conn.execute(self._t.feedback.insert(), feedback)
            forget_days(conn, self._t, self._days_written(conn, queries, feedback))

    def _days_written(
        self, conn: Connection, queries: list[dict[str, Any]], feedback: list[dict[str, Any]]
    ) -> set[date]:
        """The local days whose figures rows written now change: the questions' days, and
        the days of the questions the feedback is about (the summary counts it there)."""
        moments = [row["created_at"] for row in queries]
        if feedback:
            q = self._t.queries
            ids = list({row["query_id"] for row in feedback})
            moments += conn.scalars(sa.select(q.c.created_at).where(q.c.id.in_(ids)))
        return days_of(moments, self._offset)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._io_lock, self._engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn


# A fork waits until no store is in the middle of a write, so that no lock inside
# SQLite or a driver is copied into the child held; the child then starts each
# store afresh. (gunicorn forks its workers; the web layer opens the log in each.)


def _before_fork() -> None:
    _held_over_fork[:] = list(_live)
    for store in _held_over_fork:
        store._io_lock.acquire()
    _ids.lock.acquire()


def _after_fork_in_parent() -> None:
    _ids.lock.release()
    for store in _held_over_fork:
        store._io_lock.release()
    _held_over_fork.clear()


def _after_fork_in_child() -> None:
    _ids.lock.release()
    _ids.reseed()
    for store in _held_over_fork:
        store._io_lock.release()
        store._forked()
    _held_over_fork.clear()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
