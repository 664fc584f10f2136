"""The query log's shipper: rows written to this process's outbox, copied to the database.

A :class:`Shipper` is the durable counterpart of :class:`bot.querylog.writer.Writer`,
with the same methods. :meth:`Shipper.submit` writes the row to the process's
outbox file (:mod:`bot.querylog.outbox`) and returns; one thread inserts what the
outboxes hold, a batch per transaction, and deletes a batch from its outbox only
once the database has committed it. Nothing waits on the database: while it is
unreachable, read-only or full, rows stay in the outbox, the thread retries with
a growing pause (at most ``2`` s), disposing of the engine's pooled connections
before each retry (``reconnect``) so that a file made writable again or a
restarted server is picked up without a restart, and it logs the backlog at
most every ``_LOG_EVERY_S`` seconds. Every ``claim_interval_s`` (and when closing)
it takes over the outboxes of dead processes sharing the folder and ships them
too.

A row the database refuses for good (an id it holds already: shipped once before
a crash; feedback for a query it lacks; a value it cannot store) is set aside
with a log line, so that it cannot hold up the rows behind it. Feedback
is first tried again for ``feedback_wait_s``: its query may still be on its way
from another process's outbox.

:meth:`Shipper.close` ships what it can while the database answers and stops at
the first failure: the rows are safe in the outbox, and the next process to start
ships them. Only when the outbox itself cannot be written (its disk full) does a
row wait in memory, and the health check says so.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.querylog import outbox
from bot.querylog.outbox import OutboxFile
from bot.querylog.writer import Outstanding, Row

__all__ = ["Shipper"]

_LOG_EVERY_S = 10.0
_MAX_DELAY_S = 2.0
_FEEDBACK_RETRY_S = 2.0
_RETRY_OUTBOX_S = 5.0
# What the database says of a row it will never take (a duplicate id, a missing
# query, a value it cannot hold); anything else is the database's own trouble.
_REFUSED = (sa.exc.IntegrityError, sa.exc.DataError)
# Outbox files inherited through fork: never closed, as they are the parent's.
_parents_outboxes: list[OutboxFile] = []

log = logging.getLogger(__name__)


class Shipper:
    """Keep rows in an outbox in ``folder`` and ship them with ``insert`` (one transaction)."""

    def __init__(
        self,
        insert: Callable[[Sequence[Row]], None],
        folder: Path,
        *,
        reconnect: Callable[[], None],
        batch_size: int,
        linger_s: float,
        claim_interval_s: float = 2.0,
        feedback_wait_s: float = 60.0,
    ) -> None:
        self.folder = folder
        self._insert = insert
        self._reconnect = reconnect
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._claim_interval_s = claim_interval_s
        self._feedback_tries = max(1, int(feedback_wait_s / _FEEDBACK_RETRY_S))
        self._lock = threading.Lock()  # guards the thread's start and _memory
        self._own: OutboxFile | None = None
        self._orphans: list[OutboxFile] = []
        self._memory: list[Row] = []  # rows the outbox could not keep
        self._outstanding = Outstanding()  # rows of this process not yet shipped
        self._error: str | None = None  # why the last shipment failed
        self._outbox_error: str | None = None  # why the last row missed the outbox
        self._noted: str | None = None
        self._retry_own_at = 0.0
        self._logged_at = 0.0
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the caller's side ----------------------------------------------------

    def start(self) -> None:
        """Open this process's outbox and start the thread (also done by the first row)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._open_own()
                self._thread = threading.Thread(
                    target=self._run, name="querylog-shipper", daemon=True
                )
                self._thread.start()

    def submit(self, table: str, row: dict[str, Any]) -> None:
        """Keep ``row`` for ``table`` in the outbox (in memory if the outbox fails)."""
        self.start()
        self._outstanding.add(table, row)
        own = self._own or self._open_own()
        try:
            if own is None:
                raise sqlite3.OperationalError("no outbox file")
            own.add(table, row)
            self._outbox_error = None
        except (OSError, sqlite3.Error) as e:
            if self._outbox_error is None:
                log.error("query log: the outbox in %s cannot keep rows: %s", self.folder, e)
            with self._lock:
                self._memory.append((table, row))
                self._outbox_error = f"the outbox cannot be written: {e}"
        self._wake.set()

    def pending(self, query_id: int) -> bool:
        """Whether the query ``query_id`` of this process is not yet in the database."""
        return self._outstanding.has_query(query_id)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row of this process is shipped; False if ``timeout`` ran out."""
        self._wake.set()
        return self._outstanding.wait(timeout)

    def problem(self) -> str | None:
        """Why this process cannot store rows right now, or None."""
        return self._outbox_error or self._error

    def close(self) -> None:
        """Ship while the database answers, then stop; unshipped rows stay in the outbox."""
        thread = self._thread
        if thread is None:
            return
        self._closing.set()
        self._wake.set()
        thread.join()
        for orphan in self._orphans:
            orphan.close()
        own = self._own
        if own is not None:
            left = _count(own)
            if left == 0:
                own.discard()
            else:
                log.warning("query log: %d rows wait in %s for the next start", left, own.path)
                own.close()
        if self._memory:
            log.error("query log: %d rows kept in memory are lost", len(self._memory))

    def abandon(self) -> None:
        """Forget the parent's outbox in a forked child (its lock stays the parent's)."""
        for f in [self._own, *self._orphans]:
            if f is not None:
                f.abandon()
                _parents_outboxes.append(f)

    def _open_own(self) -> OutboxFile | None:
        """This process's outbox, created now if need be (tried again every few seconds)."""
        if self._own is None and time.monotonic() >= self._retry_own_at:
            try:
                self._own = outbox.create(self.folder)
            except (OSError, sqlite3.Error) as e:
                self._outbox_error = f"the outbox cannot be created: {e}"
                self._retry_own_at = time.monotonic() + _RETRY_OUTBOX_S
        return self._own

    # -- the thread -----------------------------------------------------------

    def _run(self) -> None:
        delay = 0.05
        next_claim = 0.0
        while True:
            closing = self._closing.is_set()
            if closing or time.monotonic() >= next_claim:
                self._claim()
                next_claim = time.monotonic() + self._claim_interval_s
            try:
                self._ship_all()
            except Exception as e:  # the database's, or the outbox's: retry, never die
                self._failed(e)
                if closing:
                    return
                self._closing.wait(delay)
                delay = min(delay * 2, _MAX_DELAY_S)
                continue
            self._shipped()
            delay = 0.05
            if closing:
                return
            self._wake.wait(min(self._claim_interval_s, _FEEDBACK_RETRY_S))
            self._wake.clear()
            self._closing.wait(self._linger_s)

    def _claim(self) -> None:
        mine = [f.path for f in [self._own, *self._orphans] if f is not None]
        try:
            claimed = list(outbox.claim_orphans(self.folder, mine))
        except OSError as e:
            log.warning("query log: cannot look for outboxes left behind in %s: %s", self.folder, e)
            return
        for orphan in claimed:
            log.info("query log: shipping %d rows left behind in %s", _count(orphan), orphan.path)
            try:
                orphan.note(None)  # its failures were its dead owner's; ours are noted in ours
            except sqlite3.Error:
                pass
        self._orphans += claimed

    def _ship_all(self) -> None:
        if self._own is not None:
            self._ship_own(self._own)
        for orphan in list(self._orphans):
            self._drain(orphan)
            if _count(orphan) == 0:
                orphan.discard()
                self._orphans.remove(orphan)
        with self._lock:
            rows = self._memory[: self._batch_size]
        if rows:
            self._insert(rows)
            with self._lock:
                del self._memory[: len(rows)]
            self._shipped()
            self._outstanding.done(rows)

    def _ship_own(self, own: OutboxFile) -> None:
        """Ship the outbox file's backlog, then the journal's rows straight from memory."""
        try:
            self._drain(own)
            while True:
                rows, end = own.take(self._batch_size)
                if not rows:
                    return
                try:
                    self._insert(rows)
                except _REFUSED:  # find the refused rows the slow way, from the file
                    own.spill()
                    self._drain(own)
                    continue
                own.shipped(len(rows), end)
                self._shipped()
                self._outstanding.done(rows)
                if len(rows) < self._batch_size:
                    return  # the rest since: the next batch, after lingering
        except Exception:
            # The database fails: the journal's rows wait in the file, not in memory.
            try:
                own.spill()
            except (OSError, sqlite3.Error) as e:
                log.error(
                    "query log: the outbox %s cannot take the journal's rows: %s", own.path, e
                )
            raise

    def _drain(self, source: OutboxFile) -> None:
        while True:
            try:
                batch = source.batch(self._batch_size)
            except sqlite3.Error as e:
                log.error("query log: cannot read the outbox %s: %s", source.path, e)
                return
            if not batch:
                return
            self._ship(source, batch)
            if len(batch) < self._batch_size:
                return

    def _ship(self, source: OutboxFile, batch: list[tuple[int, Row]]) -> None:
        """Insert ``batch``, then forget the rows the database has or refused for good."""
        done: list[tuple[int, Row]] = []
        try:
            try:
                self._insert([row for _, row in batch])
                done = batch
                return
            except _REFUSED:
                pass
            for seq, row in batch:  # find the refused rows; the others go in
                try:
                    self._insert([row])
                except _REFUSED as e:
                    table, data = row
                    if table == "feedback" and source.defer(seq, _FEEDBACK_RETRY_S) < (
                        self._feedback_tries
                    ):
                        continue  # its query may still be in another process's outbox
                    log.warning("query log: %s row %d set aside: %s", table, data["id"], e.orig)
                done.append((seq, row))
        finally:
            if done:
                source.remove([seq for seq, _ in done])
                self._shipped()  # healthy again before a flush waiting for these returns
                if source is self._own:
                    self._outstanding.done([row for _, row in done])

    def _failed(self, e: Exception) -> None:
        if not isinstance(e, sa.exc.SQLAlchemyError):
            log.exception("query log: shipping failed")
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        self._error = f"the query log cannot be written: {text}"
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_S:
            self._logged_at = now
            backlog = outbox.folder_status(self.folder).backlog + len(self._memory)
            log.warning("query log: %d rows wait in the outbox; %s", backlog, self._error)
        self._note(self._error)
        try:
            self._reconnect()
        except Exception as e2:  # disposing of a broken pool: nothing more to do
            log.debug("query log: reconnect failed: %s", e2)

    def _shipped(self) -> None:
        if self._error is not None:
            log.warning("query log: the database is written again")
            self._logged_at = 0.0
        self._error = None
        self._note(None)

    def _note(self, error: str | None) -> None:
        if self._own is None or error == self._noted:
            return
        try:
            self._own.note(error)
            self._noted = error
        except sqlite3.Error:
            pass


def _count(f: OutboxFile) -> int:
    try:
        return f.count()
    except sqlite3.Error:
        return -1
