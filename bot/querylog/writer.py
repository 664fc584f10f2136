"""The query log's queued writer: one process's queue of rows and the thread that writes them.

A :class:`Writer` hands each row to a queue and returns; one thread, started at
the first row, inserts whatever has queued up (lingering up to ``linger_s`` for
more) as one transaction through the ``insert`` it was given.
No row is dropped: when the queue is full the caller writes its row itself,
and when the database is unreachable the thread keeps retrying the same batch.
:meth:`Writer.flush` waits for the queue to drain and :meth:`Writer.close` drains
it and stops the thread. A writer belongs to one process: a forked child makes
its own. :class:`Outstanding` counts the rows a writer (this one or the
outbox's shipper, :mod:`bot.querylog.shipper`) has not yet written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from bot.errors import QueryLogError

__all__ = ["Outstanding", "Row", "Writer"]

# A row for table "queries" or "feedback", with its id under "id".
Row = tuple[str, dict[str, Any]]
_STOP = object()

log = logging.getLogger(__name__)


class Outstanding:
    """The rows a writer was handed and has not yet written: how many, which queries."""

    def __init__(self) -> None:
        self._state = threading.Condition()
        self._count = 0
        self._queries: set[int] = set()

    def add(self, table: str, row: dict[str, Any]) -> bool:
        """Count ``row`` in; for feedback, return whether its query is outstanding too."""
        with self._state:
            self._count += 1
            if table == "queries":
                self._queries.add(row["id"])
                return False
            return row["query_id"] in self._queries

    def done(self, rows: Sequence[Row]) -> None:
        """Count ``rows`` out: written, or given up."""
        with self._state:
            self._count -= len(rows)
            self._queries.difference_update(r["id"] for table, r in rows if table == "queries")
            self._state.notify_all()

    def has_query(self, query_id: int) -> bool:
        with self._state:
            return query_id in self._queries

    def count(self) -> int:
        with self._state:
            return self._count

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until none is outstanding; return False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state:
            while self._count:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._state.wait(remaining)
        return True


class Writer:
    """Queue rows for ``insert``, which writes a batch of rows in one transaction."""

    def __init__(
        self,
        insert: Callable[[Sequence[Row]], None],
        *,
        queue_size: int,
        batch_size: int,
        linger_s: float,
        close_timeout_s: float,
    ) -> None:
        self._insert = insert
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._close_timeout_s = close_timeout_s
        self._queue: queue.Queue[Any] = queue.Queue(queue_size)
        self._lock = threading.Lock()
        self._outstanding = Outstanding()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def submit(self, table: str, row: dict[str, Any]) -> None:
        """Queue ``row`` for ``table``; write it in this thread if the queue is full."""
        self._ensure_thread()
        after_queued_query = self._outstanding.add(table, row)
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
            self._outstanding.done([(table, row)])
            raise QueryLogError(f"could not write {table} row {row['id']}: {e.orig}") from e
        except sa.exc.SQLAlchemyError:
            self._queue.put((table, row))  # the database is struggling: wait for room
            return
        self._outstanding.done([(table, row)])

    def pending(self, query_id: int) -> bool:
        """Whether the query ``query_id`` is queued and not yet written."""
        return self._outstanding.has_query(query_id)

    def backlog(self) -> int:
        """How many rows are queued and not yet written."""
        return self._outstanding.count()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued row is written; return False if ``timeout`` ran out."""
        return self._outstanding.wait(timeout)

    def close(self) -> None:
        """Write every queued row and stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self._closing.set()
        self._queue.put(_STOP)
        thread.join()
        # Rows queued by a call that raced with close, behind the stop mark.
        leftovers = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _STOP:
                leftovers.append(item)
        if leftovers:
            self._write_batch(leftovers)
            self._outstanding.done(leftovers)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="querylog-writer", daemon=True
                    )
                    self._thread.start()

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
                self._outstanding.done(rows)
            if len(rows) < len(items):
                return

    def _write_batch(self, rows: list[Row]) -> None:
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

    def _insert_each(self, rows: list[Row]) -> list[Row]:
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
