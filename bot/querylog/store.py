"""The query log: every question a visitor asks, masked, with the reply it got and feedback.

A :class:`QueryLog` wraps one SQLAlchemy engine (SQLite under ``instance/`` by
default, PostgreSQL in production, shared by every worker and node). Every text
is masked with :func:`bot.masking.mask` and capped inside the store, so no caller
can forget to.

Writes never make a visitor wait on the database: :meth:`QueryLog.log_query`
allocates the row's id itself, hands the row to a queue and returns the id; one
writer thread per process inserts whatever has queued up (lingering up to
``linger_s`` for more) as one transaction.
No row is dropped: when the queue is full the caller writes its row itself,
and when the database is unreachable the writer keeps retrying the same batch.
:meth:`QueryLog.flush` waits for the queue to drain and :meth:`QueryLog.close`
drains it and disposes of the engine; ``close`` also runs at process exit.
A forked child (a gunicorn worker) starts every inherited store afresh, with
its own queue, writer and connections, leaving the parent's connections alone.

Ids are 63-bit integers counted up from a random start drawn once per process.
Rows from one process can never collide; two processes collide only if their
ranges overlap: for any two processes writing a million rows each, a chance of
about 1 in 10^12.
No round trip is needed for an id, and feedback can name a query that is still
in the queue.

The schema is versioned in ``schema_version``: :meth:`QueryLog.migrate` applies
the steps in ``_MIGRATIONS`` that the database lacks, in order, in one
transaction, under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on
PostgreSQL) so that workers starting together do not race.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import math
import os
import queue
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.schema import CreateSchema

from bot.errors import QueryLogError, UnknownQuery
from bot.querylog.masking import mask

__all__ = [
    "FEEDBACK_REASONS",
    "REPLY_TYPES",
    "SCHEMA_VERSION",
    "QueryLog",
    "QueryLogError",
    "UnknownQuery",
]

REPLY_TYPES = ("answer", "clarify", "fallback")
# Why a reply did not help, where the widget knows: 都不是 under a clarify.
FEEDBACK_REASONS = ("none_of_these",)
_MAX_CANDIDATES = 5
_SESSION_CHARS = 32
_PG_MIGRATION_LOCK = 0x786961_6F6368  # any constant shared by every process
_STOP = object()

log = logging.getLogger(__name__)


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Store naive UTC on every backend; read back aware UTC datetimes."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Tables:
    metadata: sa.MetaData
    queries: sa.Table
    feedback: sa.Table
    versions: sa.Table


def _tables(schema: str | None, max_chars: int) -> _Tables:
    metadata = sa.MetaData(schema=schema)
    queries = sa.Table(
        "queries", metadata,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("created_at", _UTCDateTime, nullable=False, index=True),
        sa.Column("question", sa.String(max_chars), nullable=False),
        sa.Column("normalized", sa.String(max_chars), nullable=False),
        sa.Column("reply_type", sa.String(16), nullable=False),
        sa.Column("faq_id", sa.String(128), index=True),
        sa.Column("score", sa.Float),
        sa.Column("candidates", sa.Text, nullable=False),
        sa.Column("session", sa.String(64)),
        sa.Column("latency_ms", sa.Float),
        # The reply whose chip the visitor clicked (no foreign key: it may still be
        # queued in another worker, or never have been logged).
        sa.Column("from_query_id", sa.BigInteger, index=True),
    )  # fmt: skip
    feedback = sa.Table(
        "feedback", metadata,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("query_id", sa.BigInteger, sa.ForeignKey(queries.c.id), nullable=False,
                  index=True),
        sa.Column("created_at", _UTCDateTime, nullable=False),
        sa.Column("helpful", sa.Boolean, nullable=False),
        sa.Column("comment", sa.String(max_chars)),
        sa.Column("reason", sa.String(32)),
    )  # fmt: skip
    versions = sa.Table(
        "schema_version", metadata,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("applied_at", _UTCDateTime, nullable=False),
    )  # fmt: skip
    return _Tables(metadata, queries, feedback, versions)


def _create_log_tables(conn: Connection, t: _Tables) -> None:
    t.metadata.create_all(conn, tables=[t.queries, t.feedback])


def _add_choice_links(conn: Connection, t: _Tables) -> None:
    # A database created at version 1 lacks the columns; one created by step 1 of
    # this code already has them (step 1 creates the tables as defined above).
    inspector = sa.inspect(conn)
    for table, column in (
        (t.queries, t.queries.c.from_query_id),
        (t.feedback, t.feedback.c.reason),
    ):
        present = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
        if column.name in present:
            continue
        name = conn.dialect.identifier_preparer.format_table(table)
        ddl = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN {column.name} {ddl}"))
        for index in table.indexes:
            if column.name in index.columns:
                index.create(conn)


# Append only; a step never changes once released. A later step that alters a
# table issues its own DDL here, and the table definitions above follow it.
_MIGRATIONS: tuple[tuple[int, str, Callable[[Connection, _Tables], None]], ...] = (
    (1, "queries and feedback tables", _create_log_tables),
    (2, "queries.from_query_id and feedback.reason", _add_choice_links),
)
SCHEMA_VERSION = _MIGRATIONS[-1][0]


class _Ids:
    """Hand out ids counting up from a random start, drawn again in a forked child."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reseed()

    def reseed(self) -> None:
        # Below 2**62, so counting up stays within a signed 64-bit column.
        self._next = secrets.randbits(62) + 1

    def next(self) -> int:
        with self.lock:
            self._next += 1
            return self._next


_ids = _Ids()
# Every open store, for the fork hooks at the end of this module.
_live: weakref.WeakSet[QueryLog] = weakref.WeakSet()
_held_over_fork: list[QueryLog] = []
# A forked child keeps its parent's pooled connections referenced and never touches
# them: closing them there would end the parent's PostgreSQL sessions.
_parents_pools: list[object] = []


class QueryLog:
    """The query and feedback store behind one SQLAlchemy URL.

    ``url`` is any SQLAlchemy URL, e.g. ``sqlite:////srv/xiaocheng/instance/querylog.db``
    or ``postgresql+psycopg://@127.0.0.1:5432/test``. ``schema`` puts the tables in
    that PostgreSQL schema (created if missing). With ``background=False`` every
    write happens in the caller's thread (command-line tools). ``migrate=False``
    leaves the schema alone until :meth:`migrate` is called.
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
        utc_offset_minutes: int = 480,
        feedback_grace_s: float = 2.0,
        close_timeout_s: float = 30.0,
    ) -> None:
        self._url = sa.make_url(url)
        self._sqlite = self._url.get_backend_name() == "sqlite"
        if self._sqlite and schema is not None:
            raise QueryLogError("schema is for PostgreSQL; SQLite keeps one database per file")
        self._schema = schema
        self._background = background
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._max_chars = max_chars
        self._offset = timedelta(minutes=utc_offset_minutes)
        self._feedback_grace_s = feedback_grace_s
        self._close_timeout_s = close_timeout_s
        self._t = _tables(schema, max_chars)
        self._engine = self._create_engine(busy_timeout_ms)
        self._closed = False
        self._reset_writer_state()
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self._engine.dispose()
                raise
        _live.add(self)
        atexit.register(self.close)

    # -- life cycle ---------------------------------------------------------

    def _create_engine(self, busy_timeout_ms: int) -> sa.Engine:
        if not self._sqlite:
            return sa.create_engine(self._url, pool_pre_ping=True)
        database = self._url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise QueryLogError(
                "the query log needs an SQLite file that its writer thread can share, "
                f"not {self._url.render_as_string()!r}"
            )
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(self._url, connect_args={"timeout": busy_timeout_ms / 1000})

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below choose how each transaction starts.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A writer takes the write lock up front, so it waits for the busy timeout
            # instead of failing when a read transaction cannot be upgraded.
            immediate = conn.get_execution_options().get("sqlite_immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def _reset_writer_state(self) -> None:
        self._io_lock = threading.Lock()  # held while writing; a fork waits for it
        self._queue: queue.Queue[Any] = queue.Queue(self._queue_size)
        self._state = threading.Condition()
        self._outstanding = 0  # rows handed to the queue and not yet written
        self._pending: set[int] = set()  # ids of queries among them
        self._writer: threading.Thread | None = None
        self._closing = threading.Event()

    def __enter__(self) -> QueryLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def migrate(self) -> int:
        """Bring the schema up to date; return its version. Safe to call at any time."""
        t = self._t
        with self._writing() as conn:
            if not self._sqlite:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
                if self._schema:
                    conn.execute(CreateSchema(self._schema, if_not_exists=True))
            t.versions.create(conn, checkfirst=True)
            current = conn.scalar(sa.select(sa.func.max(t.versions.c.version))) or 0
            if current > SCHEMA_VERSION:
                raise QueryLogError(
                    f"the query log's schema is at version {current}, newer than this "
                    f"code knows ({SCHEMA_VERSION}); upgrade the code"
                )
            for version, description, step in _MIGRATIONS:
                if version > current:
                    step(conn, t)
                    conn.execute(
                        t.versions.insert().values(
                            version=version, description=description, applied_at=_now()
                        )
                    )
        return SCHEMA_VERSION

    create = migrate

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued row is written; return False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state:
            while self._outstanding:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._state.wait(remaining)
        return True

    def close(self) -> None:
        """Write every queued row, stop the writer and close all connections."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        _live.discard(self)
        writer = self._writer
        if writer is not None:
            self._closing.set()
            self._queue.put(_STOP)
            writer.join()
            # Rows queued by a call that raced with close, behind the stop mark.
            leftovers = []
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not _STOP:
                    leftovers.append(item)
            if leftovers:
                self._write_batch(leftovers)
                self._done(len(leftovers), leftovers)
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
    ) -> int:
        """Record one question and its reply; return the new query's id at once.

        ``candidates`` are the engine's top candidates (``{"id", "score", ...}``);
        the first five ids and scores are kept. ``session`` is stored hashed.
        ``from_query_id`` is the reply whose chip led to this question, as sent.
        """
        if reply_type not in REPLY_TYPES:
            raise QueryLogError(
                f"reply_type must be one of {', '.join(REPLY_TYPES)}, not {reply_type!r}"
            )
        query_id = _ids.next()
        row = {
            "id": query_id,
            "created_at": created_at or _now(),
            "question": self._clean(question),
            "normalized": self._clean(normalized),
            "reply_type": reply_type,
            "faq_id": faq_id,
            "score": _finite(score),
            "candidates": _candidates_json(candidates),
            "session": _session_hash(session),
            "latency_ms": _finite(latency_ms),
            "from_query_id": from_query_id,
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
        looked up again for up to ``feedback_grace_s`` seconds before giving up.
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
            "created_at": created_at or _now(),
            "helpful": bool(helpful),
            "comment": self._clean(comment) if comment else None,
            "reason": reason,
        }
        self._submit("feedback", row)

    def purge(self, older_than_days: int) -> int:
        """Delete queries older than ``older_than_days`` and their feedback; return how many."""
        if older_than_days < 0:
            raise QueryLogError(f"older_than_days must be 0 or more, not {older_than_days}")
        cutoff = _now() - timedelta(days=older_than_days)
        q, fb = self._t.queries, self._t.feedback
        old = sa.select(q.c.id).where(q.c.created_at < cutoff)
        with self._writing() as conn:
            conn.execute(fb.delete().where(fb.c.query_id.in_(old)))
            return conn.execute(q.delete().where(q.c.created_at < cutoff)).rowcount

    def _clean(self, text: str) -> str:
        # Mask before capping, so the cap cannot cut a number in two and hide it;
        # a first coarse cut bounds the work on absurdly long input.
        return mask(text[: self._max_chars * 4])[: self._max_chars]

    def _known(self, query_id: int) -> bool:
        deadline = time.monotonic() + self._feedback_grace_s
        delay = 0.05
        while True:
            with self._state:
                if query_id in self._pending:
                    return True
            q = self._t.queries
            with self._engine.connect() as conn:
                if conn.scalar(sa.select(q.c.id).where(q.c.id == query_id)) is not None:
                    return True
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay *= 2

    def _submit(self, table: str, row: dict[str, Any]) -> None:
        if self._closed:
            raise QueryLogError("the query log is closed")
        if not self._background:
            self._insert([(table, row)])
            return
        self._ensure_writer()
        with self._state:
            self._outstanding += 1
            if table == "queries":
                self._pending.add(row["id"])
                after_queued_query = False
            else:
                after_queued_query = row["query_id"] in self._pending
        try:
            self._queue.put_nowait((table, row))
            return
        except queue.Full:
            pass
        if after_queued_query:
            # Its query is still queued: keep the order, wait for room (feedback is rare).
            self._queue.put((table, row))
            return
        # The writer is behind: write this row ourselves rather than drop it.
        try:
            self._insert([(table, row)])
        except sa.exc.IntegrityError as e:
            self._done(1, [(table, row)])
            raise QueryLogError(f"could not write {table} row {row['id']}: {e.orig}") from e
        except sa.exc.SQLAlchemyError:
            self._queue.put((table, row))  # the database is struggling: wait for room
            return
        self._done(1, [(table, row)])

    def _forked(self) -> None:
        """Start afresh in a forked child: the parent's thread, queue and connections
        stay the parent's."""
        _parents_pools.append(self._engine.pool)
        self._engine.dispose(close=False)
        self._reset_writer_state()

    def _ensure_writer(self) -> None:
        if self._writer is None:
            with self._state:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._run, name="querylog-writer", daemon=True
                    )
                    self._writer.start()

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            # Linger a moment for more rows: one transaction for a busy burst costs
            # a fraction of one per row, and no visitor waits on it. Sleeping, then
            # taking what has queued, wakes this thread once per batch, not per row;
            # a backlog of a whole batch is written at once.
            if items[0] is not _STOP and self._queue.qsize() < self._batch_size - 1:
                self._closing.wait(self._linger_s)
            while len(items) < self._batch_size and items[-1] is not _STOP:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = [item for item in items if item is not _STOP]
            if rows:
                self._write_batch(rows)
                self._done(len(rows), rows)
            if len(rows) < len(items):
                return

    def _write_batch(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        """Insert ``rows``, retrying while the database is unavailable."""
        delay = 0.05
        give_up_at: float | None = None
        while rows:
            try:
                self._insert(rows)
                return
            except sa.exc.IntegrityError:
                rows = self._insert_each(rows)
            except sa.exc.SQLAlchemyError as e:
                log.warning("query log: %d rows wait, the database failed: %s", len(rows), e)
            if not rows:
                return
            if self._closing.is_set():
                give_up_at = give_up_at or time.monotonic() + self._close_timeout_s
                if time.monotonic() > give_up_at:
                    log.error("query log: closing, %d rows could not be written", len(rows))
                    return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _insert_each(
        self, rows: list[tuple[str, dict[str, Any]]]
    ) -> list[tuple[str, dict[str, Any]]]:
        """Insert row by row, setting aside rows the database refuses; return the unwritten."""
        for i, row in enumerate(rows):
            try:
                self._insert([row])
            except sa.exc.IntegrityError as e:
                # A duplicate id or feedback for a query purged meanwhile: it can never
                # be written, and retrying would hold up every row behind it.
                log.error("query log: %s row %d refused: %s", row[0], row[1]["id"], e.orig)
            except sa.exc.SQLAlchemyError:
                return rows[i:]
        return []

    def _insert(self, rows: Sequence[tuple[str, dict[str, Any]]]) -> None:
        queries = [row for table, row in rows if table == "queries"]
        feedback = [row for table, row in rows if table == "feedback"]
        with self._writing() as conn:
            if queries:
                conn.execute(self._t.queries.insert(), queries)
            if feedback:
                conn.execute(self._t.feedback.insert(), feedback)

    def _done(self, n: int, rows: Sequence[tuple[str, dict[str, Any]]]) -> None:
        with self._state:
            self._outstanding -= n
            self._pending.difference_update(row["id"] for table, row in rows if table == "queries")
            self._state.notify_all()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._io_lock, self._engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    # -- reading, for the analyst console and reports ---------------------------
    # ``since`` and ``until`` bound ``created_at`` as [since, until); either may be
    # None. Naive datetimes are taken as UTC. Days are local days, shifted from UTC
    # by ``utc_offset_minutes`` (480: China Standard Time).

    def daily_counts(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Questions per local day and reply type, one row per day, days without any as 0.

        Each row: ``{"day": date, "answer": n, "clarify": n, "fallback": n, "total": n}``.
        """
        q = self._t.queries
        day = self._day(q.c.created_at).label("day")
        stmt = (
            sa.select(day, q.c.reply_type, sa.func.count().label("n"))
            .where(*self._between(q.c.created_at, since, until))
            .group_by(day, q.c.reply_type)
        )
        counts: dict[date, dict[str, int]] = {}
        with self._engine.connect() as conn:
            for d, reply_type, n in conn.execute(stmt):
                d = d if isinstance(d, date) else date.fromisoformat(d)
                counts.setdefault(d, {})[reply_type] = n
        first = self._local_day(since) if since else min(counts, default=None)
        last = self._local_day(until - timedelta(microseconds=1)) if until else None
        last = last or max(counts, default=None)
        rows = []
        d = first
        while d is not None and last is not None and d <= last:
            by_type = counts.get(d, {})
            row: dict[str, Any] = {"day": d}
            row.update({t: by_type.get(t, 0) for t in REPLY_TYPES})
            row["total"] = sum(by_type.values())
            rows.append(row)
            d += timedelta(days=1)
        return rows

    def type_shares(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Count and share of each reply type: ``[{"type", "count", "share"}]``, all three."""
        q = self._t.queries
        stmt = (
            sa.select(q.c.reply_type, sa.func.count())
            .where(*self._between(q.c.created_at, since, until))
            .group_by(q.c.reply_type)
        )
        with self._engine.connect() as conn:
            counts = {reply_type: n for reply_type, n in conn.execute(stmt)}
        total = sum(counts.values())
        return [
            {
                "type": t,
                "count": counts.get(t, 0),
                "share": counts.get(t, 0) / total if total else 0.0,
            }
            for t in REPLY_TYPES
        ]

    def top_faqs(
        self, since: datetime | None = None, until: datetime | None = None, *, limit: int = 10
    ) -> list[dict[str, Any]]:
        """The FAQs answered most often: ``[{"faq_id", "count"}]``, most first."""
        q = self._t.queries
        n = sa.func.count().label("n")
        stmt = (
            sa.select(q.c.faq_id, n)
            .where(q.c.reply_type == "answer", q.c.faq_id.is_not(None))
            .where(*self._between(q.c.created_at, since, until))
            .group_by(q.c.faq_id)
            .order_by(n.desc(), q.c.faq_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [{"faq_id": f, "count": c} for f, c in conn.execute(stmt)]

    def helpful_rates(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Feedback per FAQ for queries in the range, most feedback first.

        Each row: ``{"faq_id", "helpful", "not_helpful", "total", "rate"}`` where
        ``rate`` is helpful / total.
        """
        q, fb = self._t.queries, self._t.feedback
        helpful = sa.func.sum(sa.case((fb.c.helpful, 1), else_=0)).label("helpful")
        total = sa.func.count().label("total")
        stmt = (
            sa.select(q.c.faq_id, helpful, total)
            .select_from(fb.join(q, fb.c.query_id == q.c.id))
            .where(q.c.faq_id.is_not(None))
            .where(*self._between(q.c.created_at, since, until))
            .group_by(q.c.faq_id)
            .order_by(total.desc(), q.c.faq_id)
        )
        with self._engine.connect() as conn:
            return [
                {"faq_id": f, "helpful": h, "not_helpful": n - h, "total": n, "rate": h / n}
                for f, h, n in conn.execute(stmt)
            ]

    def queries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        types: Iterable[str] | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Logged questions, newest first, for listing and CSV export (``limit=None``: all).

        Each row: ``id, created_at, question, normalized, reply_type, faq_id, score,
        candidates`` (list of ``{"id", "score"}``), ``session, latency_ms``.
        """
        q = self._t.queries
        stmt = sa.select(q).where(*self._between(q.c.created_at, since, until))
        if types is not None:
            stmt = stmt.where(q.c.reply_type.in_(list(types)))
        stmt = stmt.order_by(q.c.created_at.desc(), q.c.id.desc()).offset(offset).limit(limit)
        return self._rows(stmt)

    def count(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        types: Iterable[str] | None = None,
    ) -> int:
        """How many questions :meth:`queries` would list without a limit."""
        q = self._t.queries
        stmt = (
            sa.select(sa.func.count())
            .select_from(q)
            .where(*self._between(q.c.created_at, since, until))
        )
        if types is not None:
            stmt = stmt.where(q.c.reply_type.in_(list(types)))
        with self._engine.connect() as conn:
            return int(conn.scalar(stmt) or 0)

    def unanswered(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        threshold: float = 0.5,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Questions the bot could not answer well: fallback, clarify, score below
        ``threshold``, or a reply the visitor found unhelpful (都不是 included); rows
        as in :meth:`queries`, newest first."""
        q, fb = self._t.queries, self._t.feedback
        unhelpful = sa.select(fb.c.query_id).where(fb.c.helpful.is_(False))
        stmt = (
            sa.select(q)
            .where(*self._between(q.c.created_at, since, until))
            .where(
                sa.or_(
                    q.c.reply_type.in_(["fallback", "clarify"]),
                    q.c.score.is_(None),
                    q.c.score < threshold,
                    q.c.id.in_(unhelpful),
                )
            )
            .order_by(q.c.created_at.desc(), q.c.id.desc())
            .limit(limit)
        )
        return self._rows(stmt)

    def learned_wordings(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        low_score: float = 0.5,
        limit: int | None = 500,
    ) -> list[dict[str, Any]]:
        """Visitor questions that ended in an FAQ, candidates for its alternates.

        ``chosen``: how often a question's reply led, by a clicked chip (a later
        query with ``from_query_id`` pointing to it, answered with an FAQ the
        question was not already answered with), to that FAQ, where the reply was
        a clarify, a fallback or an answer below ``low_score``: a related question
        clicked after a sure answer asks for more, it does not re-word the question.
        ``helpful``: how often the question was answered with the FAQ at a calibrated score below
        ``low_score`` and the visitor said it helped. Rows ``{"faq_id",
        "question", "chosen", "helpful", "count"}``, questions masked, grouped by
        FAQ and question; most ``count`` first. ``since``/``until`` bound the
        time of the choice or of the answered question.
        """
        q, fb = self._t.queries, self._t.feedback
        parent = q.alias("parent")
        chosen_n = sa.func.count().label("n")
        chosen = (
            sa.select(q.c.faq_id, parent.c.question, chosen_n)
            .select_from(q.join(parent, q.c.from_query_id == parent.c.id))
            .where(q.c.reply_type == "answer", q.c.faq_id.is_not(None))
            .where(sa.or_(parent.c.faq_id.is_(None), parent.c.faq_id != q.c.faq_id))
            .where(sa.or_(parent.c.reply_type != "answer", parent.c.score < low_score))
            .where(*self._between(q.c.created_at, since, until))
            .group_by(q.c.faq_id, parent.c.question)
        )
        helpful_n = sa.func.count(sa.distinct(fb.c.query_id)).label("n")
        helpful = (
            sa.select(q.c.faq_id, q.c.question, helpful_n)
            .select_from(fb.join(q, fb.c.query_id == q.c.id))
            .where(fb.c.helpful.is_(True), q.c.reply_type == "answer")
            .where(q.c.faq_id.is_not(None), q.c.score < low_score)
            .where(*self._between(q.c.created_at, since, until))
            .group_by(q.c.faq_id, q.c.question)
        )
        counts: dict[tuple[str, str], dict[str, Any]] = {}
        with self._engine.connect() as conn:
            for kind, stmt in (("chosen", chosen), ("helpful", helpful)):
                for faq_id, question, n in conn.execute(stmt):
                    # Masked again: rules added since the row was written apply too.
                    key = (faq_id, mask(question))
                    row = counts.setdefault(
                        key, {"faq_id": key[0], "question": key[1], "chosen": 0, "helpful": 0}
                    )
                    row[kind] += int(n)
        rows = [{**row, "count": row["chosen"] + row["helpful"]} for row in counts.values()]
        rows.sort(key=lambda r: (-r["count"], r["faq_id"], r["question"]))
        return rows if limit is None else rows[:limit]

    def feedback(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Feedback rows, newest first, each with its question:
        ``id, query_id, created_at, helpful, comment, reason, question, faq_id``."""
        q, fb = self._t.queries, self._t.feedback
        stmt = (
            sa.select(fb, q.c.question, q.c.faq_id)
            .select_from(fb.join(q, fb.c.query_id == q.c.id))
            .where(*self._between(fb.c.created_at, since, until))
            .order_by(fb.c.created_at.desc(), fb.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        for row in rows:
            row["question"] = mask(row["question"])
            row["comment"] = mask(row["comment"]) if row["comment"] else row["comment"]
        return rows

    def _rows(self, stmt: sa.Select[Any]) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        for row in rows:
            # Stored masked already; masking again applies rules added since it was written.
            row["question"] = mask(row["question"])
            row["normalized"] = mask(row["normalized"])
            row["candidates"] = json.loads(row["candidates"])
        return rows

    @staticmethod
    def _between(
        column: sa.ColumnElement[Any], since: datetime | None, until: datetime | None
    ) -> list[sa.ColumnElement[bool]]:
        conditions = []
        if since is not None:
            conditions.append(column >= since)
        if until is not None:
            conditions.append(column < until)
        return conditions

    def _day(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        minutes = int(self._offset.total_seconds() // 60)
        if self._sqlite:
            return sa.func.date(column, f"{minutes:+d} minutes")
        return sa.cast(column + sa.literal(self._offset, sa.Interval), sa.Date)

    def _local_day(self, moment: datetime) -> date:
        return (_as_utc(moment) + self._offset).date()


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _session_hash(session: str | None) -> str | None:
    if not session:
        return None
    digest = hashlib.blake2b(session.encode("utf-8"), digest_size=_SESSION_CHARS // 2)
    return digest.hexdigest()


def _candidates_json(candidates: Iterable[Mapping[str, Any]]) -> str:
    top: list[dict[str, Any]] = []
    for candidate in candidates:
        if len(top) == _MAX_CANDIDATES:
            break
        score = _finite(candidate.get("score"))
        top.append(
            {"id": str(candidate["id"]), "score": None if score is None else round(score, 4)}
        )
    return json.dumps(top, ensure_ascii=False, separators=(",", ":"))


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
