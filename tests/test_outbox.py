"""The query log's outbox, in one process: durable rows, orphans, duplicates, health.

Real SQLite files in tmp_path; the gunicorn-level faults are in test_log_faults.py.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.querylog import QueryLog
from bot.querylog import outbox as outboxes


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'log' / 'querylog.db'}"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def opened(url: str, folder: Path) -> Iterator[list[QueryLog]]:
    stores: list[QueryLog] = []
    yield stores
    for store in stores:
        store.close()


def open_store(opened: list[QueryLog], url: str, folder: Path, **options: object) -> QueryLog:
    store = QueryLog(url, outbox=folder, **options)  # type: ignore[arg-type]
    opened.append(store)
    return store


def lock(url: str) -> sqlite3.Connection:
    """Create the log's database and hold it by an exclusive lock (ROLLBACK releases it)."""
    QueryLog(url).close()
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


@pytest.fixture
def locked(url: str) -> Iterator[None]:
    conn = lock(url)
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _log_and_die(url: str, folder: Path, n: int, ready: object) -> None:
    store = QueryLog(url, outbox=folder, busy_timeout_ms=50, migrate=False)
    for i in range(n):
        store.log_query(f"问题{i}", reply_type="answer")
    ready.set()  # type: ignore[attr-defined]
    os.kill(os.getpid(), signal.SIGKILL)


def test_rows_of_a_killed_process_are_shipped_by_the_next(
    url: str, folder: Path, opened: list[QueryLog]
) -> None:
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    conn = lock(url)  # nothing reaches the database before the kill
    child = context.Process(target=_log_and_die, args=(url, folder, 200, ready))
    child.start()
    child.join(60)
    conn.execute("ROLLBACK")
    conn.close()
    assert child.exitcode == -signal.SIGKILL
    assert ready.is_set()
    assert outboxes.folder_status(folder).backlog == 200
    store = open_store(opened, url, folder)
    store.close()  # closing claims and ships what the dead process left
    assert QueryLog(url).count() == 200
    assert list(folder.glob("outbox-*")) == []


ODD_TEXTS = ['制表\t换行\n引号"反斜杠\\', "孤立代理\ud800字", "🙂" * 50, "\x00\x1b[31m"]


def _log_odd_and_die(url: str, folder: Path, ready: object) -> None:
    store = QueryLog(url, outbox=folder, busy_timeout_ms=50, migrate=False)
    for text in ODD_TEXTS:
        store.log_query(text, reply_type="fallback", candidates=[{"id": "甲\ud800", "score": 0.5}])
    ready.set()  # type: ignore[attr-defined]
    os.kill(os.getpid(), signal.SIGKILL)


def test_odd_text_survives_the_journal_of_a_killed_process(
    url: str, folder: Path, opened: list[QueryLog]
) -> None:
    """The journal keeps every character a database can hold: a lone surrogate
    becomes ?, NUL goes (PostgreSQL refuses it); nothing holds the rows up."""
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    conn = lock(url)
    child = context.Process(target=_log_odd_and_die, args=(url, folder, ready))
    child.start()
    child.join(60)
    conn.execute("ROLLBACK")
    conn.close()
    assert child.exitcode == -signal.SIGKILL and ready.is_set()
    open_store(opened, url, folder).close()
    stored = QueryLog(url)
    try:
        rows = stored.queries(limit=10)
    finally:
        stored.close()
    stored_texts = ['制表\t换行\n引号"反斜杠\\', "孤立代理?字", "🙂" * 50, "\x1b[31m"]
    assert sorted(r["question"] for r in rows) == sorted(stored_texts)
    assert all(r["candidates"] == [{"id": "甲?", "score": 0.5}] for r in rows)


def test_a_row_shipped_twice_is_stored_once(url: str, folder: Path, opened: list[QueryLog]) -> None:
    store = open_store(opened, url, folder)
    query_id = store.log_query("占道经营怎么处理", reply_type="answer")
    assert store.flush(timeout=10)
    # As after a crash between the database's commit and the outbox's delete:
    row = {
        "id": query_id, "created_at": datetime.now(UTC), "question": "占道经营怎么处理",
        "normalized": "", "reply_type": "answer", "faq_id": None, "score": None,
        "candidates": "[]", "session": None, "latency_ms": None, "from_query_id": None,
    }  # fmt: skip
    again = outboxes.create(folder)
    again.add("queries", row)
    again.close()
    store.close()
    assert QueryLog(url).count() == 1
    assert list(folder.glob("outbox-*")) == []


def test_feedback_for_a_query_in_another_process_outbox(
    url: str, folder: Path, opened: list[QueryLog], locked: None
) -> None:
    options = {"migrate": False, "busy_timeout_ms": 50}
    worker_a = open_store(opened, url, folder, **options)
    worker_b = open_store(opened, url, folder, feedback_grace_s=0.2, **options)
    query_id = worker_a.log_query("占道经营怎么处理", reply_type="answer")
    assert not worker_a.flush(timeout=0.2)  # the database is locked: it waits in the outbox
    worker_b.log_feedback(query_id, True)
    health = worker_b.health()
    assert health["backlog"] == 2
    assert health["problem"] and "locked" in health["problem"]


def test_health_is_ok_once_the_database_takes_the_backlog(
    url: str, folder: Path, opened: list[QueryLog]
) -> None:
    conn = lock(url)
    store = open_store(opened, url, folder, migrate=False, busy_timeout_ms=50)
    ids = [store.log_query(f"问题{i}", reply_type="answer") for i in range(30)]
    assert len(set(ids)) == 30
    threading.Event().wait(0.5)
    assert store.health()["problem"] is not None
    conn.execute("ROLLBACK")
    conn.close()
    assert store.flush(timeout=10)
    assert store.health() == {"problem": None, "backlog": 0}
    assert store.count() == 30


def test_a_journal_moved_before_its_owner_died_is_taken_over_once(folder: Path) -> None:
    own = outboxes.create(folder)
    row = {"id": 7, "query_id": 1, "created_at": datetime.now(UTC), "helpful": True}
    for i in range(3):
        own.add("feedback", {**row, "id": 7 + i})
    journal = own.path.with_suffix(".jsonl")
    text, mark = journal.read_bytes(), own.path.with_suffix(".pos").read_bytes()
    own.spill()  # moved into the file; the owner dies before its journal is marked:
    journal.write_bytes(text + b"feedback\t{")  # and with a last line cut short
    own.path.with_suffix(".pos").write_bytes(mark)
    own.close()
    (orphan,) = outboxes.claim_orphans(folder)
    assert [data["id"] for _, (_, data) in orphan.batch(10)] == [7, 8, 9]
    assert orphan.count() == 3
    assert outboxes.folder_status(folder).backlog == 3
    orphan.close()
