"""The query log's database: how it is opened, its tables and the migrations that build them.

:func:`open_engine` opens the engine (SQLite set up for one writer thread and
many readers). :func:`make_tables` defines the ``queries``, ``feedback``,
``curation``, ``summary_days``, ``summary_counts`` and ``schema_version`` tables
(in one PostgreSQL schema, or none). The schema is versioned in
``schema_version``: :func:`upgrade` applies the steps in ``MIGRATIONS`` that
the database lacks, in order, on the caller's connection, inside its
transaction; on PostgreSQL it first takes an advisory lock, so that workers starting together
do not race (on SQLite the caller's ``BEGIN IMMEDIATE`` does the same). A
database newer than this code is refused.

Times are stored as naive UTC on every backend and read back as aware UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.schema import CreateColumn, CreateSchema

from bot.errors import QueryLogError

__all__ = [
    "FEEDBACK_REASONS",
    "MIGRATIONS",
    "REPLY_TYPES",
    "SCHEMA_VERSION",
    "Tables",
    "as_utc",
    "make_tables",
    "now",
    "open_engine",
    "upgrade",
]

REPLY_TYPES = ("answer", "clarify", "fallback")
# Why a reply did not help, where the widget knows: 都不是 under a clarify.
FEEDBACK_REASONS = ("none_of_these",)
_PG_MIGRATION_LOCK = 0x786961_6F6368  # any constant shared by every process
_PG_CONNECT_TIMEOUT_S = 5


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken as UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Store naive UTC on every backend; read back aware UTC datetimes."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Tables:
    metadata: sa.MetaData
    queries: sa.Table
    feedback: sa.Table
    versions: sa.Table
    curation: sa.Table
    summary_days: sa.Table
    summary_counts: sa.Table


def make_tables(schema: str | None, max_chars: int) -> Tables:
    """The log's tables, in PostgreSQL schema ``schema``; texts hold ``max_chars``."""
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
        # Test or monitoring traffic (the INTERNAL_* settings), left out of every figure.
        sa.Column("internal", sa.Boolean, nullable=False, server_default=sa.false()),
        # The console's reads at a year of traffic: visitors' rows of a period, counted
        # from the index alone (charts, top FAQs, spikes), and listed in (time, id)
        # order, the keyset of the question list and the CSV export; one session's.
        sa.Index("ix_queries_traffic", "internal", "created_at", "id", "reply_type", "faq_id"),
        sa.Index("ix_queries_created_id", "created_at", "id"),
        sa.Index("ix_queries_session", "session", "created_at", "id"),
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
    # What staff decided about the bank in the console: accepted or rejected
    # suggestions and edits, with the entry before and after (JSON).
    curation = sa.Table(
        "curation", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", _UTCDateTime, nullable=False, index=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("faq_id", sa.String(128), nullable=False, index=True),
        sa.Column("wording", sa.String(max_chars)),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("file", sa.String(255)),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
    )  # fmt: skip
    # The dashboard's figures of closed local days (bot.querylog.summary): a day in
    # summary_days has its visitors' questions and feedback counted in summary_counts
    # by reply type and FAQ; a row written later for that day deletes both.
    summary_days = sa.Table(
        "summary_days", metadata,
        sa.Column("day", sa.Date, primary_key=True, autoincrement=False),
        sa.Column("filled_at", _UTCDateTime, nullable=False),
    )  # fmt: skip
    summary_counts = sa.Table(
        "summary_counts", metadata,
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("reply_type", sa.String(16), nullable=False),
        sa.Column("faq_id", sa.String(128)),
        sa.Column("questions", sa.Integer, nullable=False),
        sa.Column("rated", sa.Integer, nullable=False),  # feedback rows on those questions
        sa.Column("helpful", sa.Integer, nullable=False),
    )  # fmt: skip
    return Tables(metadata, queries, feedback, versions, curation, summary_days, summary_counts)


def _create_log_tables(conn: Connection, t: Tables) -> None:
    t.metadata.create_all(conn, tables=[t.queries, t.feedback])


def _add_choice_links(conn: Connection, t: Tables) -> None:
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


def _create_curation(conn: Connection, t: Tables) -> None:
    t.metadata.create_all(conn, tables=[t.curation])


_YEAR_INDEXES = ("ix_queries_traffic", "ix_queries_created_id", "ix_queries_session")


def _add_internal_and_indexes(conn: Connection, t: Tables) -> None:
    # As in step 2: a database created by step 1 of this code has all of it already.
    q = t.queries
    present = {c["name"] for c in sa.inspect(conn).get_columns(q.name, schema=q.schema)}
    if "internal" not in present:
        name = conn.dialect.identifier_preparer.format_table(q)
        column = CreateColumn(q.c.internal).compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN {column}"))
    for index in q.indexes:
        if index.name in _YEAR_INDEXES:
            index.create(conn, checkfirst=True)


def _create_summary(conn: Connection, t: Tables) -> None:
    t.metadata.create_all(conn, tables=[t.summary_days, t.summary_counts])


# Append only; a step never changes once released. A later step that alters a
# table issues its own DDL here, and the table definitions above follow it.
MIGRATIONS: tuple[tuple[int, str, Callable[[Connection, Tables], None]], ...] = (
    (1, "queries and feedback tables", _create_log_tables),
    (2, "queries.from_query_id and feedback.reason", _add_choice_links),
    (3, "curation: staff decisions about the bank", _create_curation),
    (4, "queries.internal and the indexes of a year of traffic", _add_internal_and_indexes),
    (5, "summary_days and summary_counts: the dashboard's closed days", _create_summary),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def upgrade(conn: Connection, t: Tables) -> int:
    """Bring the schema up to date on ``conn``, in its transaction; return its version."""
    if conn.dialect.name != "sqlite":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        if t.metadata.schema:
            conn.execute(CreateSchema(t.metadata.schema, if_not_exists=True))
    t.versions.create(conn, checkfirst=True)
    current = conn.scalar(sa.select(sa.func.max(t.versions.c.version))) or 0
    if current > SCHEMA_VERSION:
        raise QueryLogError(
            f"the query log's schema is at version {current}, newer than this "
            f"code knows ({SCHEMA_VERSION}); upgrade the code"
        )
    for version, description, step in MIGRATIONS:
        if version > current:
            step(conn, t)
            conn.execute(
                t.versions.insert().values(
                    version=version, description=description, applied_at=now()
                )
            )
    return SCHEMA_VERSION


def open_engine(url: str, busy_timeout_ms: int, *, pooled: bool = True) -> sa.Engine:
    """An engine for the log at ``url``; on SQLite, a file shared with the writer thread.

    ``pooled=False`` keeps no connection open between uses (a poll once a second).

    PostgreSQL connections give up connecting after 5 s (unless the URL says
    ``connect_timeout``). SQLite connections use WAL, wait up to ``busy_timeout_ms``
    for a lock and enforce foreign keys; a connection with the execution option
    ``sqlite_immediate=True`` begins its transactions with ``BEGIN IMMEDIATE``.
    """
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() == "postgresql" and "connect_timeout" not in sa_url.query:
        # A server that does not answer (not one that refuses) fails a read in
        # seconds, not the system's TCP timeout of minutes.
        sa_url = sa_url.update_query_dict({"connect_timeout": str(_PG_CONNECT_TIMEOUT_S)})
    pool: dict[str, Any] = {} if pooled else {"poolclass": sa.pool.NullPool}
    if sa_url.get_backend_name() != "sqlite":
        engine = sa.create_engine(sa_url, pool_pre_ping=True, **pool)
        _one_line_reset_errors(engine.pool.logger)
        return engine
    database = sa_url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise QueryLogError(
            "the query log needs an SQLite file that its writer thread can share, "
            f"not {sa_url.render_as_string()!r}"
        )
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(sa_url, connect_args={"timeout": busy_timeout_ms / 1000}, **pool)

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


class _ResetErrorLine(logging.Filter):
    """SQLAlchemy's pool logs a traceback when it cannot reset a connection the
    server has closed (an outage, a terminated backend); it then drops that
    connection, as it should. The log gets one line saying so instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Exception during reset"):
            exc = record.exc_info[1]
            first = str(exc).splitlines()[0] if exc is not None and str(exc) else repr(exc)
            record.msg = "query log: dropped a database connection that could not be reset (%s)"
            record.args = (first,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _one_line_reset_errors(logger: Any) -> None:
    if isinstance(logger, logging.Logger) and not any(
        isinstance(f, _ResetErrorLine) for f in logger.filters
    ):
        logger.addFilter(_ResetErrorLine())
