"""The query log on real SQLite and real PostgreSQL: every row kept, masked, readable.

Every test runs on both backends. The PostgreSQL tests use the server at
127.0.0.1:5432 (database ``test``), each in a schema of its own that is dropped
afterwards; if that server is not reachable they fail, they do not skip.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.errors import QueryLogError, UnknownQuery, XiaochengError
from bot.querylog import SCHEMA_VERSION, QueryLog

PG_URL = os.environ.get("XIAOCHENG_TEST_PG_URL", "postgresql+psycopg://@127.0.0.1:5432/test")


@dataclass
class Backend:
    """One database for one test: open stores on it and read what they wrote."""

    name: str
    url: str
    schema: str | None
    opened: list[QueryLog] = field(default_factory=list)

    def open(self, **options: Any) -> QueryLog:
        store = QueryLog(self.url, schema=self.schema, **options)
        self.opened.append(store)
        return store

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else name

    def raw(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql`` on a connection of our own, bypassing the store's read side."""
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.exec_driver_sql(sql)]
        finally:
            engine.dispose()


def _require_postgres() -> None:
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return
    except sa.exc.OperationalError as e:
        reason = str(e.orig).strip()
    finally:
        engine.dispose()
    pytest.fail(
        f"PostgreSQL is not reachable at {PG_URL} ({reason}). The query-log tests need "
        "it: start the server (.ci/run does) or point XIAOCHENG_TEST_PG_URL at one.",
        pytrace=False,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        b = Backend("sqlite", f"sqlite:///{tmp_path / 'instance' / 'querylog.db'}", None)
    else:
        _require_postgres()
        b = Backend("postgresql", PG_URL, f"test_querylog_{uuid.uuid4().hex[:12]}")
    yield b
    for store in b.opened:
        store.close()
    if b.schema:
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {b.schema} CASCADE")
        engine.dispose()


@pytest.fixture
def store(backend: Backend) -> QueryLog:
    return backend.open()


def _log(store: QueryLog, question: str = "占道经营怎么处理", **fields: Any) -> int:
    fields.setdefault("reply_type", "answer")
    return store.log_query(question, **fields)


# -- writing ------------------------------------------------------------------


def test_logged_query_is_stored_with_every_field(store: QueryLog, backend: Backend) -> None:
    before = datetime.now(UTC)
    candidates = [{"id": f"faq-{i}", "question": "q", "score": 0.9 - i / 10} for i in range(7)]
    query_id = store.log_query(
        "违章搭建怎么举报",
        normalized="违章搭建怎么举报",
        reply_type="answer",
        faq_id="faq-0",
        score=0.91,
        candidates=candidates,
        session="visitor-cookie-1",
        latency_ms=12.5,
    )
    assert isinstance(query_id, int) and 0 < query_id < 2**63
    assert store.flush(timeout=10)
    [row] = store.queries()
    assert row["id"] == query_id
    assert before <= row["created_at"] <= datetime.now(UTC)
    assert row["created_at"].tzinfo is UTC
    assert (row["question"], row["normalized"]) == ("违章搭建怎么举报", "违章搭建怎么举报")
    assert (row["reply_type"], row["faq_id"], row["score"]) == ("answer", "faq-0", 0.91)
    assert row["candidates"] == [
        {"id": "faq-0", "score": 0.9},
        {"id": "faq-1", "score": 0.8},
        {"id": "faq-2", "score": 0.7},
        {"id": "faq-3", "score": 0.6},
        {"id": "faq-4", "score": 0.5},
    ]
    assert len(row["session"]) == 32 and "visitor" not in row["session"]
    assert row["latency_ms"] == 12.5
    assert row["internal"] is False


def test_same_session_hashes_alike(store: QueryLog) -> None:
    for session in ("a", "a", "b", None):
        _log(store, session=session)
    store.flush()
    sessions = [row["session"] for row in reversed(store.queries())]
    assert sessions[0] == sessions[1] != sessions[2]
    assert sessions[3] is None


def test_text_is_masked_before_it_reaches_the_database(store: QueryLog, backend: Backend) -> None:
    query_id = _log(
        store,
        "我的车浙A12345被拖了，电话13812345678",
        normalized="我的车浙a12345被拖了电话13812345678",
    )
    store.log_feedback(query_id, False, "请打 0571-87654321 或发 li@example.com")
    store.flush()
    queries = backend.raw(f"SELECT question, normalized FROM {backend.table('queries')}")
    assert queries == [("我的车[车牌号]被拖了，电话[手机号]", "我的车[车牌号]被拖了电话[手机号]")]
    comments = backend.raw(f"SELECT comment FROM {backend.table('feedback')}")
    assert comments == [("请打 [电话] 或发 [邮箱]",)]


def test_texts_are_capped_after_masking(store: QueryLog, backend: Backend) -> None:
    # The phone number straddles the cap: it must be masked, not cut and kept.
    query_id = _log(store, "问" * 495 + "13812345678" + "尾" * 100)
    store.log_feedback(query_id, True, "评" * 600)
    store.flush()
    [(question,)] = backend.raw(f"SELECT question FROM {backend.table('queries')}")
    assert question == "问" * 495 + "[手机号]"
    [(comment,)] = backend.raw(f"SELECT comment FROM {backend.table('feedback')}")
    assert comment == "评" * 500


def test_unknown_reply_type_is_refused(store: QueryLog) -> None:
    with pytest.raises(QueryLogError) as excinfo:
        _log(store, reply_type="maybe")
    assert str(excinfo.value) == "reply_type must be one of answer, clarify, fallback, not 'maybe'"


def test_log_query_does_not_wait_for_a_locked_database(backend: Backend) -> None:
    store = backend.open(busy_timeout_ms=50)
    release = threading.Event()
    locked = threading.Event()

    def hold_lock() -> None:
        if backend.name == "sqlite":
            conn = sqlite3.connect(sa.make_url(backend.url).database, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(30)
            conn.execute("ROLLBACK")
            conn.close()
        else:
            engine = sa.create_engine(backend.url)
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    f"LOCK TABLE {backend.table('queries')} IN ACCESS EXCLUSIVE MODE"
                )
                locked.set()
                release.wait(30)
            engine.dispose()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        ids = [_log(store, f"问题{i}") for i in range(20)]
        assert time.monotonic() - started < 2.0
        assert len(set(ids)) == 20
        assert not store.flush(timeout=0.3)  # still waiting for the lock
    finally:
        release.set()
        holder.join()
    assert store.flush(timeout=30)
    assert store.count() == 20


def test_without_background_the_row_is_written_before_returning(backend: Backend) -> None:
    store = backend.open(background=False)
    _log(store)
    other = backend.open()
    assert other.count() == 1


def test_close_writes_every_queued_row(backend: Backend) -> None:
    store = backend.open()
    for i in range(300):
        _log(store, f"问题{i}")
    store.close()
    with pytest.raises(QueryLogError) as excinfo:
        _log(store)
    assert str(excinfo.value) == "the query log is closed"
    assert backend.open().count() == 300


# -- feedback -----------------------------------------------------------------


def test_feedback_for_a_query_still_in_the_queue(store: QueryLog) -> None:
    query_id = _log(store, faq_id="faq-a")
    store.log_feedback(query_id, True)
    store.flush()
    [row] = store.feedback()
    assert (row["query_id"], row["helpful"], row["comment"]) == (query_id, True, None)
    assert (row["question"], row["faq_id"]) == ("占道经营怎么处理", "faq-a")


def test_feedback_for_a_query_logged_by_another_process(backend: Backend) -> None:
    worker_a, worker_b = backend.open(), backend.open()
    query_id = _log(worker_a, faq_id="faq-a")
    worker_b.log_feedback(query_id, False, "没用")
    worker_b.flush()
    assert worker_a.helpful_rates() == [
        {"faq_id": "faq-a", "helpful": 0, "not_helpful": 1, "total": 1, "rate": 0.0}
    ]


def test_feedback_for_an_unknown_query(backend: Backend) -> None:
    store = backend.open(feedback_grace_s=0.2)
    with pytest.raises(UnknownQuery) as excinfo:
        store.log_feedback(12345, True)
    assert str(excinfo.value) == "no query with id 12345 in the log"
    assert isinstance(excinfo.value, QueryLogError)
    assert isinstance(excinfo.value, XiaochengError)


# -- concurrency --------------------------------------------------------------


@pytest.mark.parametrize("queue_size", [10_000, 4])
def test_concurrent_writers_lose_no_row(backend: Backend, queue_size: int) -> None:
    """N threads x M writes, over two stores (two workers) -> exactly N x M rows.

    With a queue of 4 most writes find it full and are written by the caller.
    """
    threads_per_store, writes = 4, 150
    stores = [backend.open(queue_size=queue_size), backend.open(queue_size=queue_size)]
    ids: list[int] = []
    errors: list[BaseException] = []

    def work(store: QueryLog, n: int) -> None:
        try:
            mine = [_log(store, f"线程{n}问题{i}", session=str(n)) for i in range(writes)]
            store.log_feedback(mine[-1], True)
            ids.extend(mine)
        except BaseException as e:  # reported below; a thread cannot fail the test itself
            errors.append(e)

    threads = [
        threading.Thread(target=work, args=(store, n))
        for n, store in enumerate(stores * threads_per_store)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for store in stores:
        assert store.flush(timeout=60)
    total = len(threads) * writes
    assert len(set(ids)) == total
    assert stores[0].count() == total
    assert len(stores[1].feedback(limit=None)) == len(threads)
    [(distinct,)] = backend.raw(f"SELECT COUNT(DISTINCT id) FROM {backend.table('queries')}")
    assert distinct == total


def _write_from_child(store: QueryLog, n: int, writes: int) -> None:
    for i in range(writes):
        _log(store, f"进程{n}问题{i}")
    store.close()


def test_forked_workers_each_write_their_own_rows(backend: Backend) -> None:
    """Like gunicorn: a store opened (and used) in the parent, then used in forked children."""
    store = backend.open()
    _log(store, "父进程的问题")
    # The parent keeps writing while it forks: no child may inherit a half-done write.
    parent_writes = threading.Thread(target=lambda: [_log(store, f"父{i}") for i in range(200)])
    parent_writes.start()
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_write_from_child, args=(store, n, 100)) for n in range(3)]
    for child in children:
        child.start()
    parent_writes.join()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0, 0]
    assert store.flush(timeout=10)
    assert store.count() == 501


# -- schema and retention -------------------------------------------------------


def test_migrate_is_idempotent(backend: Backend) -> None:
    store = backend.open()
    assert store.migrate() == SCHEMA_VERSION
    assert store.create() == SCHEMA_VERSION
    backend.open()
    versions = backend.raw(f"SELECT version FROM {backend.table('schema_version')}")
    assert versions == [(1,), (2,), (3,), (4,), (5,)]


def test_refuses_a_schema_newer_than_the_code(backend: Backend) -> None:
    store = backend.open()
    engine = sa.create_engine(backend.url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO {backend.table('schema_version')} (version, description, applied_at) "
            "VALUES (99, 'from the future', '2030-01-01 00:00:00')"
        )
    engine.dispose()
    with pytest.raises(QueryLogError) as excinfo:
        store.migrate()
    assert str(excinfo.value) == (
        "the query log's schema is at version 99, newer than this code knows (5); upgrade the code"
    )


YEAR_INDEXES = ("ix_queries_traffic", "ix_queries_created_id", "ix_queries_session")


def _indexes(backend: Backend) -> set[str]:
    engine = sa.create_engine(backend.url)
    try:
        return {i["name"] for i in sa.inspect(engine).get_indexes("queries", schema=backend.schema)}
    finally:
        engine.dispose()


def test_a_version_3_log_is_upgraded_with_its_rows(backend: Backend) -> None:
    """Migration 4 adds queries.internal (old rows: visitors') and the console's indexes."""
    store = backend.open()
    old = _log(store, "违章搭建怎么举报", faq_id="faq-a", created_at=_day(1, 9))
    store.close()
    # Back to what version 3 made: no internal column, none of its indexes.
    table = backend.table("queries")
    prefix = f"{backend.schema}." if backend.schema else ""
    engine = sa.create_engine(backend.url)
    with engine.begin() as conn:
        for index in YEAR_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX {prefix}{index}")
        conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN internal")
        for summary in ("summary_counts", "summary_days"):
            conn.exec_driver_sql(f"DROP TABLE {backend.table(summary)}")
        conn.exec_driver_sql(f"DELETE FROM {backend.table('schema_version')} WHERE version >= 4")
    engine.dispose()
    assert set(YEAR_INDEXES).isdisjoint(_indexes(backend))

    upgraded = backend.open()
    versions = backend.raw(f"SELECT version FROM {backend.table('schema_version')}")
    assert versions == [(1,), (2,), (3,), (4,), (5,)]
    assert set(YEAR_INDEXES) <= _indexes(backend)
    [row] = upgraded.queries()
    assert (row["id"], row["question"], row["internal"]) == (old, "违章搭建怎么举报", False)
    assert upgraded.top_faqs() == [{"faq_id": "faq-a", "count": 1}]
    _log(upgraded, "健康检查", internal=True)
    upgraded.flush()
    assert [r["question"] for r in upgraded.queries(internal=True)] == ["健康检查"]


def test_a_row_kept_from_before_migration_4_is_a_visitors(store: QueryLog) -> None:
    """An outbox row written by older code has no "internal": stored as a visitor's."""
    row = {
        "id": 42, "created_at": _day(1, 9), "question": "老问题", "normalized": "老问题",
        "reply_type": "fallback", "faq_id": None, "score": 0.1, "candidates": "[]",
        "session": None, "latency_ms": None, "from_query_id": None,
    }  # fmt: skip
    store._insert([("queries", row)])
    assert [(r["id"], r["internal"]) for r in store.queries()] == [(42, False)]


def test_purge_deletes_old_queries_and_their_feedback(store: QueryLog) -> None:
    now = datetime.now(UTC)
    old = [_log(store, f"旧{i}", created_at=now - timedelta(days=40 + i)) for i in range(3)]
    new = [_log(store, f"新{i}", created_at=now - timedelta(days=29)) for i in range(2)]
    store.log_feedback(old[0], True)
    store.log_feedback(new[0], False)
    store.flush()
    assert store.purge(30) == 3
    assert sorted(row["id"] for row in store.queries()) == sorted(new)
    assert [row["query_id"] for row in store.feedback()] == [new[0]]
    assert store.purge(30) == 0


def test_purge_refuses_negative_days(store: QueryLog) -> None:
    with pytest.raises(QueryLogError) as excinfo:
        store.purge(-1)
    assert str(excinfo.value) == "older_than_days must be 0 or more, not -1"


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "q.db"
    with QueryLog(f"sqlite:///{path}") as store:
        _log(store)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(url: str) -> None:
    with pytest.raises(QueryLogError) as excinfo:
        QueryLog(url)
    assert "needs an SQLite file" in str(excinfo.value)


# -- reading --------------------------------------------------------------------

_CST = timezone(timedelta(hours=8))


def _day(d: int, hour: int) -> datetime:
    """A moment in March 2024, China Standard Time."""
    return datetime(2024, 3, d, hour, tzinfo=_CST)


@pytest.fixture
def filled(store: QueryLog) -> QueryLog:
    """Two local days of questions, with feedback."""
    a1 = _log(store, "垃圾分类", faq_id="faq-a", score=0.9, created_at=_day(1, 7))
    a2 = _log(store, "垃圾怎么分", faq_id="faq-a", score=0.8, created_at=_day(1, 23))
    _log(store, "占道经营", faq_id="faq-b", score=0.45, created_at=_day(2, 1))
    _log(store, "罚款", reply_type="clarify", score=0.6, created_at=_day(2, 9))
    _log(store, "天气", reply_type="fallback", score=0.1, created_at=_day(2, 10))
    _log(store, "新闻", reply_type="fallback", score=0.05, created_at=_day(4, 10))
    store.log_feedback(a1, True)
    store.log_feedback(a2, True)
    store.log_feedback(a2, False)
    store.flush()
    return store


def test_daily_counts_by_local_day_with_empty_days(filled: QueryLog) -> None:
    rows = filled.daily_counts(_day(1, 0), _day(5, 0))
    assert rows == [
        {"day": date(2024, 3, 1), "answer": 2, "clarify": 0, "fallback": 0, "total": 2},
        {"day": date(2024, 3, 2), "answer": 1, "clarify": 1, "fallback": 1, "total": 3},
        {"day": date(2024, 3, 3), "answer": 0, "clarify": 0, "fallback": 0, "total": 0},
        {"day": date(2024, 3, 4), "answer": 0, "clarify": 0, "fallback": 1, "total": 1},
    ]
    assert [row["day"] for row in filled.daily_counts()] == [date(2024, 3, d) for d in (1, 2, 3, 4)]


def test_type_shares(filled: QueryLog) -> None:
    assert filled.type_shares(_day(2, 0), _day(3, 0)) == [
        {"type": "answer", "count": 1, "share": pytest.approx(1 / 3)},
        {"type": "clarify", "count": 1, "share": pytest.approx(1 / 3)},
        {"type": "fallback", "count": 1, "share": pytest.approx(1 / 3)},
    ]
    assert filled.type_shares(_day(9, 0), _day(10, 0))[0] == {
        "type": "answer",
        "count": 0,
        "share": 0.0,
    }


def test_top_faqs(filled: QueryLog) -> None:
    assert filled.top_faqs() == [{"faq_id": "faq-a", "count": 2}, {"faq_id": "faq-b", "count": 1}]
    assert filled.top_faqs(limit=1) == [{"faq_id": "faq-a", "count": 2}]
    assert filled.top_faqs(_day(2, 0)) == [{"faq_id": "faq-b", "count": 1}]


def test_helpful_rates(filled: QueryLog) -> None:
    assert filled.helpful_rates() == [
        {
            "faq_id": "faq-a",
            "helpful": 2,
            "not_helpful": 1,
            "total": 3,
            "rate": pytest.approx(2 / 3),
        }
    ]
    assert filled.helpful_rates(_day(2, 0)) == []


def _figures(store: QueryLog, *period: datetime | None) -> list[Any]:
    return [read(*period) for read in _dashboard_reads(store)]


def _summarised_days(store: QueryLog, backend: Backend) -> list[date]:
    rows = backend.raw(f"SELECT day FROM {backend.table('summary_days')} ORDER BY day")
    return [d if isinstance(d, date) else date.fromisoformat(d) for (d,) in rows]


def test_closed_days_are_counted_once_into_the_summary(filled: QueryLog, backend: Backend) -> None:
    """A read of closed days counts them into summary_days / summary_counts (an empty day
    too) and reads them from there; a range cut inside a day counts that part live."""
    assert _summarised_days(filled, backend) == []
    whole = _figures(filled, _day(1, 0), _day(5, 0))
    assert _summarised_days(filled, backend) == [date(2024, 3, d) for d in (1, 2, 3, 4)]
    counted = backend.raw(
        f"SELECT reply_type, faq_id, questions, rated, helpful FROM "
        f"{backend.table('summary_counts')} WHERE day = '2024-03-01'"
    )
    assert counted == [("answer", "faq-a", 2, 3, 2)]
    assert _figures(filled, _day(1, 0), _day(5, 0)) == whole
    assert _figures(filled) == whole
    # From 08:00 on the 1st: the 07:00 answer and its feedback are left out.
    assert filled.type_shares(_day(1, 8), _day(2, 0))[0]["count"] == 1
    assert filled.helpful_rates(_day(1, 8), _day(3, 0))[0]["total"] == 2
    assert filled.top_faqs(_day(1, 0), _day(2, 1)) == [{"faq_id": "faq-a", "count": 2}]
    assert filled.top_faqs(_day(1, 0), _day(2, 2))[1] == {"faq_id": "faq-b", "count": 1}
    assert filled.daily_counts(_day(2, 9), _day(2, 10))[0]["clarify"] == 1
    # Naive times are UTC: 2024-03-01 00:00 UTC is 08:00 in China.
    naive = datetime(2024, 3, 1, 0, 0)
    assert filled.type_shares(naive, datetime(2024, 3, 1, 16, 0))[0]["count"] == 1


def test_a_late_row_for_a_counted_day_is_counted(filled: QueryLog, backend: Backend) -> None:
    """Rows shipped after an outage carry their own time: a row or feedback written for a
    day already in the summary makes the next read count that day again."""
    before = _figures(filled, _day(1, 0), _day(5, 0))
    assert before[0][2]["total"] == 0
    late = _log(filled, "夜间施工", faq_id="faq-b", score=0.9, created_at=_day(3, 12))
    filled.flush()
    assert _summarised_days(filled, backend) == [date(2024, 3, d) for d in (1, 2, 4)]
    days, shares, top, rates = _figures(filled, _day(1, 0), _day(5, 0))
    assert days[2] == {"day": date(2024, 3, 3), "answer": 1, "clarify": 0, "fallback": 0,
                       "total": 1}  # fmt: skip
    assert shares[0]["count"] == before[1][0]["count"] + 1
    assert top == [{"faq_id": "faq-a", "count": 2}, {"faq_id": "faq-b", "count": 2}]
    # Feedback today on the question of the 3rd counts on the 3rd.
    filled.log_feedback(late, False)
    filled.flush()
    assert _summarised_days(filled, backend) == [date(2024, 3, d) for d in (1, 2, 4)]
    assert [(r["faq_id"], r["total"]) for r in filled.helpful_rates(_day(3, 0), _day(4, 0))] == [
        ("faq-b", 1)
    ]
    # An internal row for a counted day changes no figure.
    _log(filled, "探测", faq_id="faq-p", created_at=_day(4, 12), internal=True)
    filled.flush()
    assert filled.top_faqs(_day(4, 0), _day(5, 0)) == []
    # A row in the outbox's form (its time parsed back from text) is counted too.
    filled._insert([("queries", {
        "id": 77, "created_at": datetime.fromisoformat("2024-03-04T03:00:00+00:00"),
        "question": "老问题", "normalized": "老问题", "reply_type": "fallback", "faq_id": None,
        "score": 0.1, "candidates": "[]", "session": None, "latency_ms": None,
        "from_query_id": None,
    })])  # fmt: skip
    assert filled.daily_counts(_day(4, 0), _day(5, 0))[0]["fallback"] == 2


@pytest.mark.postgres
def test_a_write_waits_for_a_count_in_progress_then_forgets_it(tmp_path: Path) -> None:
    """PostgreSQL: a count holds summary_days in SHARE ROW EXCLUSIVE mode; a writer's rows
    for a counted day wait for it, then delete what it wrote, so no stale day remains."""
    _require_postgres()
    schema = f"test_querylog_{uuid.uuid4().hex[:12]}"
    store = QueryLog(PG_URL, schema=schema, background=False)
    engine = sa.create_engine(PG_URL)
    try:
        _log(store, "天气", reply_type="fallback", created_at=_day(1, 9))
        assert store.type_shares(_day(1, 0), _day(2, 0))[2]["count"] == 1  # day 1 counted
        with engine.connect() as count:  # a count of day 1 in progress elsewhere
            count.exec_driver_sql(f"LOCK TABLE {schema}.summary_days IN SHARE ROW EXCLUSIVE MODE")
            writer = threading.Thread(
                target=_log, args=(store, "新闻"), kwargs={"reply_type": "fallback",
                                                          "created_at": _day(1, 10)},
            )  # fmt: skip
            writer.start()
            writer.join(1.0)
            assert writer.is_alive()  # the late row waits for the count
            count.commit()
        writer.join(10)
        assert not writer.is_alive()
        with engine.connect() as conn:
            assert list(conn.exec_driver_sql(f"SELECT day FROM {schema}.summary_days")) == []
        assert store.type_shares(_day(1, 0), _day(2, 0))[2]["count"] == 2
    finally:
        store.close()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        engine.dispose()


def test_purge_forgets_the_summary_of_the_purged_days(store: QueryLog, backend: Backend) -> None:
    now = datetime.now(UTC)
    for age in (45, 40, 20):
        _log(store, f"{age} 天前", reply_type="fallback", created_at=now - timedelta(days=age))
    store.flush()
    assert sum(s["count"] for s in store.type_shares(now - timedelta(days=50))) == 3
    assert store.purge(30) == 2
    assert sum(s["count"] for s in store.type_shares(now - timedelta(days=50))) == 1
    assert sum(r["total"] for r in store.daily_counts(now - timedelta(days=50))) == 1


def test_today_is_counted_live(store: QueryLog, backend: Backend) -> None:
    now = datetime.now(UTC)
    _log(store, "昨天", reply_type="fallback", created_at=now - timedelta(days=1))
    _log(store, "今天", reply_type="clarify", created_at=now - timedelta(seconds=1))
    store.flush()
    assert [s["count"] for s in store.type_shares()] == [0, 1, 1]
    today = store.local_day(now)
    assert today not in _summarised_days(store, backend)
    _log(store, "今天又问", reply_type="clarify", created_at=now)
    store.flush()
    assert [s["count"] for s in store.type_shares()] == [0, 2, 1]
    assert store.daily_counts()[-1]["clarify"] == 2


def test_queries_filter_and_page(filled: QueryLog) -> None:
    newest_first = [row["question"] for row in filled.queries()]
    assert newest_first == ["新闻", "天气", "罚款", "占道经营", "垃圾怎么分", "垃圾分类"]
    assert [r["question"] for r in filled.queries(types=["fallback"])] == ["新闻", "天气"]
    assert [r["question"] for r in filled.queries(limit=2, offset=1)] == ["天气", "罚款"]
    assert [r["question"] for r in filled.queries(_day(2, 0), _day(2, 9))] == ["占道经营"]
    assert filled.count(types=["answer", "clarify"]) == 4
    assert filled.count(_day(2, 0), _day(3, 0)) == 3


def test_keyset_pages_are_the_offset_pages(store: QueryLog) -> None:
    """Paging by (time, id) after the last row gives the rows OFFSET gives, ties included."""
    for i in range(7):
        _log(store, f"问题{i}", created_at=_day(1, 9 + i // 3))  # three rows share each hour
    store.flush()
    for oldest_first in (False, True):
        expected = [r["id"] for r in store.queries(oldest_first=oldest_first)]
        pages, after = [], None
        while True:
            page = store.queries(limit=2, after=after, oldest_first=oldest_first, brief=True)
            pages += [r["id"] for r in page]
            if len(page) < 2:
                break
            after = (page[-1]["created_at"], page[-1]["id"])
        assert pages == expected
    [brief] = store.queries(limit=1, brief=True)
    assert sorted(brief) == [
        "created_at", "faq_id", "id", "internal", "question", "reply_type", "score", "session",
    ]  # fmt: skip


def test_export_rows_are_the_listing_in_batches_with_local_time_text(store: QueryLog) -> None:
    """The export's stream: the rows queries() lists, newest first, the local time cut to
    the second by the database as isoformat's first 19 characters are."""
    late = datetime(2024, 3, 1, 15, 59, 59, 999_999, tzinfo=UTC)  # 23:59:59 in China
    _log(store, "垃圾分类", faq_id="faq-a", score=0.91234, created_at=late)
    _log(store, "电话 13812345678", reply_type="fallback", created_at=_day(2, 9))
    for i in range(3):
        _log(store, f"占道{i}", reply_type="clarify", score=0.4, created_at=_day(3, 9))
    _log(store, "探测", created_at=_day(3, 10), internal=True)
    store.flush()
    batches = list(store.export_rows(batch=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    rows = [row for b in batches for row in b]
    listed = store.queries(limit=None, brief=True)
    assert [r[1] for r in rows] == [r["question"] for r in listed]
    assert rows[-2:] == [
        ("2024-03-02 09:00:00", "电话 [手机号]", "fallback", None, None),
        ("2024-03-01 23:59:59", "垃圾分类", "answer", "faq-a", pytest.approx(0.91234)),
    ]
    assert [r[0] for r in rows] == [
        r["created_at"].astimezone(_CST).isoformat(" ")[:19] for r in listed
    ]
    assert [r[1] for b in store.export_rows(_day(3, 0), types=["clarify"]) for r in b] == [
        "占道2", "占道1", "占道0",
    ]  # fmt: skip
    assert [r[1] for b in store.export_rows(internal=True) for r in b] == ["探测"]
    assert list(store.export_rows(_day(9, 0))) == []


def test_internal_traffic_is_left_out_of_every_read(store: QueryLog) -> None:
    """A monitoring probe is in no figure, cluster or listing unless asked for."""
    visitor = _log(store, "垃圾分类", faq_id="faq-a", score=0.9, created_at=_day(1, 9))
    chip = _log(store, "罚款", reply_type="clarify", score=0.4, created_at=_day(1, 9))
    _log(store, "罚款多少", faq_id="faq-b", score=0.9, created_at=_day(1, 9), from_query_id=chip)
    probes = [
        _log(store, "探测", faq_id="faq-p", score=0.3, created_at=_day(1, 10), internal=True),
        _log(store, "探测", reply_type="fallback", created_at=_day(1, 10), internal=True),
    ]
    probe_chip = _log(store, "探测2", reply_type="clarify", created_at=_day(1, 10), internal=True)
    _log(store, "探测3", faq_id="faq-p", created_at=_day(1, 10), internal=True,
         from_query_id=probe_chip)  # fmt: skip
    store.log_feedback(visitor, True)
    store.log_feedback(probes[0], True)
    store.flush()
    assert [r["total"] for r in store.daily_counts()] == [3]
    assert [s["count"] for s in store.type_shares()] == [2, 1, 0]
    assert store.top_faqs() == [{"faq_id": "faq-a", "count": 1}, {"faq_id": "faq-b", "count": 1}]
    assert [r["faq_id"] for r in store.helpful_rates()] == ["faq-a"]
    assert [r["question"] for r in store.unanswered()] == ["罚款"]
    assert [(r["faq_id"], r["question"]) for r in store.learned_wordings()] == [("faq-b", "罚款")]
    assert [r["query_id"] for r in store.feedback()] == [visitor]
    assert store.count() == 3 and store.count(internal=True) == 4
    assert store.count(internal=None) == 7
    assert {r["question"] for r in store.queries(internal=True)} == {"探测", "探测2", "探测3"}
    assert [r["internal"] for r in store.queries(internal=None)] == [True] * 4 + [False] * 3
    # One session's conversation, read by its own index, leaves the probe out too.
    _log(store, "会话里的访客", session="s-1", created_at=_day(2, 9))
    _log(store, "会话里的探测", session="s-1", created_at=_day(2, 9), internal=True)
    store.flush()
    [session] = {r["session"] for r in store.queries() if r["session"]}
    assert [r["question"] for r in store.queries(session=session)] == ["会话里的访客"]
    assert store.count(session=session, internal=True) == 1
    assert store.count(session=session, internal=None) == 2


def test_unanswered_takes_fallback_clarify_low_scores_and_unhelpful(filled: QueryLog) -> None:
    # 垃圾怎么分 was answered with a good score, but a visitor said it did not help.
    assert [r["question"] for r in filled.unanswered(threshold=0.5)] == [
        "新闻",
        "天气",
        "罚款",
        "占道经营",
        "垃圾怎么分",
    ]
    assert [r["question"] for r in filled.unanswered(threshold=0.3)] == [
        "新闻",
        "天气",
        "罚款",
        "垃圾怎么分",
    ]
    assert [r["question"] for r in filled.unanswered(_day(4, 0))] == ["新闻"]


def test_unanswered_texts_are_grouped_most_asked_first(store: QueryLog) -> None:
    """The clusters' input: the unanswered questions counted per stored text in the
    database, most asked first, a tie by the latest asking, at most ``limit`` texts."""
    for hour in (9, 10, 11):
        _log(store, "天气", reply_type="fallback", score=0.1, created_at=_day(1, hour))
    for hour in (8, 12):
        _log(store, "罚款", reply_type="clarify", score=0.6, created_at=_day(2, hour))
    _log(store, "电话13812345678", reply_type="fallback", created_at=_day(1, 8))
    _log(store, "新闻", reply_type="fallback", created_at=_day(1, 7))
    _log(store, "垃圾分类", faq_id="faq-a", score=0.9, created_at=_day(1, 9))  # answered well
    _log(store, "探测", reply_type="fallback", created_at=_day(1, 9), internal=True)
    store.flush()
    rows = store.unanswered_texts(threshold=0.5)
    assert [(r["question"], r["count"]) for r in rows] == [
        ("天气", 3), ("罚款", 2), ("电话[手机号]", 1), ("新闻", 1),
    ]  # fmt: skip
    assert rows[0]["first_seen"] == _day(1, 9) and rows[0]["last_seen"] == _day(1, 11)
    assert rows[0]["first_seen"].tzinfo is not None
    assert [r["question"] for r in store.unanswered_texts(threshold=0.5, limit=2)] == [
        "天气", "罚款",
    ]  # fmt: skip
    assert [r["count"] for r in store.unanswered_texts(_day(1, 10), _day(2, 0))] == [2]
    assert sum(r["count"] for r in rows) == len(store.unanswered(threshold=0.5))


def test_reading_masks_again(store: QueryLog, backend: Backend) -> None:
    """A row written before a masking rule existed is masked when it is read."""
    query_id = _log(store)
    store.flush()
    engine = sa.create_engine(backend.url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE {backend.table('queries')} SET question = '电话13812345678' "
            f"WHERE id = {query_id}"
        )
    engine.dispose()
    assert store.queries()[0]["question"] == "电话[手机号]"
    assert store.unanswered(threshold=1.1)[0]["question"] == "电话[手机号]"


def _dashboard_reads(store: QueryLog) -> list[Callable[..., Any]]:
    return [store.daily_counts, store.type_shares, store.top_faqs, store.helpful_rates]


def test_reads_on_an_empty_log(store: QueryLog) -> None:
    assert [f() for f in _dashboard_reads(store)] == [
        [],
        [
            {"type": "answer", "count": 0, "share": 0.0},
            {"type": "clarify", "count": 0, "share": 0.0},
            {"type": "fallback", "count": 0, "share": 0.0},
        ],
        [],
        [],
    ]
    assert store.queries() == store.unanswered() == store.feedback() == []


def test_curation_decisions_are_kept_newest_first(store: QueryLog) -> None:
    before = {"alternates": ["违章搭建怎么举报"]}
    after = {"alternates": ["违章搭建怎么举报", "违建找谁"]}
    first = store.record_curation(
        "accept", "building-report", who="console 127.0.0.1", wording="违建找谁",
        file="building.yaml", before=before, after=after,
    )  # fmt: skip
    second = store.record_curation("reject", "vendor-report", who="console", wording="摊贩")
    rows = store.curation()
    assert [r["id"] for r in rows] == [second, first]
    assert (rows[1]["action"], rows[1]["faq_id"], rows[1]["wording"]) == (
        "accept",
        "building-report",
        "违建找谁",
    )
    assert (rows[1]["before"], rows[1]["after"], rows[1]["file"]) == (
        before,
        after,
        "building.yaml",
    )
    assert rows[0]["before"] is None and rows[0]["who"] == "console"
    assert store.rejected() == {("vendor-report", "摊贩")}
    assert [r["id"] for r in store.curation(actions=("accept",))] == [first]
    with pytest.raises(ValueError, match="unknown curation action 'delete'"):
        store.record_curation("delete", "x", who="console")


def test_a_connection_that_cannot_be_reset_is_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.querylog.schema import open_engine

    engine = open_engine("postgresql+psycopg://127.0.0.1:5432/test", 1000)
    try:
        logger = engine.pool.logger
        with caplog.at_level(logging.WARNING, logger=logger.name):
            try:
                raise RuntimeError("terminating connection due to administrator command\nmore")
            except RuntimeError:
                logger.error("Exception during reset or similar", exc_info=True)
        (record,) = caplog.records
        assert record.levelname == "WARNING" and record.exc_info is None
        assert record.getMessage() == (
            "query log: dropped a database connection that could not be reset "
            "(terminating connection due to administrator command)"
        )
        assert "Traceback" not in caplog.text
    finally:
        engine.dispose()
