"""The query log's outbox: rows kept on this node, in local files, until shipped.

Each process that logs questions owns one outbox in the outbox folder: a SQLite
file ``outbox-<pid>-<token>.db`` (WAL mode, ``synchronous=NORMAL``) and its
journal ``outbox-<pid>-<token>.jsonl`` (:mod:`bot.querylog.journal`).
:meth:`OutboxFile.add` appends a row to the journal in the caller's thread,
one ``write`` before the reply is sent (a SQLite transaction there cost each ask
several times as much). A written row survives the process (``kill -9``, an
out-of-memory kill, a restart); only a crash of the machine itself may take the
last rows with it, as it may a WAL commit without a sync.

The shipper (:mod:`bot.querylog.shipper`) takes the journal's rows from memory
(:meth:`OutboxFile.take`), copies them to the configured database in batches
and marks them done only after that commit (:meth:`OutboxFile.shipped`). When the
database fails or refuses a row, it moves the journal's rows into the SQLite
file (:meth:`OutboxFile.spill`), which keeps them as long as need be, to be
shipped a batch at a time (:meth:`OutboxFile.batch`, :meth:`OutboxFile.remove`)
before the journal's newer rows. Whoever opens an outbox left behind first moves
its journal's rows into its SQLite file, each once.

Ownership is an exclusive ``flock`` on ``outbox-<pid>-<token>.lock``, taken
before the outbox file exists and held while the process lives: the kernel
releases it when the process dies however it dies. :func:`claim_orphans` takes
over every outbox whose lock is free (its owner is gone), so a new worker, or
any live one, ships what a dead one left behind; the token keeps a reused pid
from ever meeting an old file. An emptied orphan is deleted
(:meth:`OutboxFile.discard`).

Each outbox also records its shipper's last failure (:meth:`OutboxFile.note`),
so :func:`folder_status` can tell any worker's health check the backlog and the
failures of every process sharing the folder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bot.querylog import journal
from bot.querylog.journal import Journal
from bot.querylog.writer import Row

__all__ = ["OutboxFile", "OutboxStatus", "claim_orphans", "create", "find_query", "folder_status"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    tbl TEXT NOT NULL,
    query_id INTEGER NOT NULL,
    data TEXT NOT NULL,
    not_before REAL NOT NULL DEFAULT 0,
    refusals INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS shipper (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    error TEXT,
    since REAL
);
"""
# No index on query_id: it would cost each row a third of its insert, and it is
# looked up only for feedback whose query the database lacks.
_PREFIX = "outbox-"
_BUSY_TIMEOUT_S = 5.0

log = logging.getLogger(__name__)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _encode(row: dict[str, Any]) -> bytes:
    """The row as compact UTF-8 JSON, its time in ISO 8601 (its texts are storable).

    orjson (PyPI) writes the same text as the standard library's encoder for
    these rows, about ten times faster: the encoding was most of what the
    journal cost a visitor's request.
    """
    return orjson.dumps(row)


def _decode(text: str | bytes) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(text)
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    return data


def _query_id(table: str, row: dict[str, Any]) -> int:
    query_id: int = row["id"] if table == "queries" else row["query_id"]
    return query_id


class OutboxFile:
    """One outbox file and its journal, its lock held by this process (``lock_fd``)."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self._lock = threading.Lock()  # guards the journal and _pending
        self._conn = _connect(path)
        try:
            self._conn.executescript(_SCHEMA)
            self._journal = Journal(path)
        except (OSError, sqlite3.Error):
            self._conn.close()
            raise
        # The journal's rows not yet done with, each with where its line ends.
        self._pending: list[tuple[Row, int]] = []
        self._take_over()

    def add(self, table: str, row: dict[str, Any]) -> None:
        """Keep ``row`` for ``table``, durably, before returning: one line in the journal."""
        line = b"%s\t%s\n" % (table.encode(), _encode(row))
        with self._lock:
            end = self._journal.append(line)
            self._pending.append(((table, row), end))

    def take(self, n: int) -> tuple[list[Row], int]:
        """The journal's first ``n`` rows not yet done with, and where the last one ends."""
        with self._lock:
            taken = self._pending[:n]
        return [row for row, _ in taken], taken[-1][1] if taken else 0

    def shipped(self, n: int, end: int) -> None:
        """Mark the journal's first ``n`` rows (ending at ``end``) done: the database has them."""
        with self._lock:
            del self._pending[:n]
            self._journal.done(end)

    def spill(self) -> None:
        """Move the journal's rows into the outbox file (the database fails, or refused one)."""
        with self._lock:
            if not self._pending:
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO outbox (tbl, query_id, data) VALUES (?, ?, ?)",
                    [
                        (table, _query_id(table, row), _encode(row).decode())
                        for (table, row), _ in self._pending
                    ],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # not already undone by a failed COMMIT
                    self._conn.execute("ROLLBACK")
                raise
            self._pending.clear()
            self._journal.done(self._journal.size)

    def _take_over(self) -> None:
        """Move what a dead owner's journal holds into the outbox file, each row once."""
        rows = journal.pending(self.path)
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for line, (table, data) in enumerate(rows, 1):
                    # Moved already if the owner died between moving and marking.
                    if self._conn.execute(
                        "SELECT 1 FROM outbox WHERE tbl = ? AND data = ?", (table, data)
                    ).fetchone():
                        continue
                    try:
                        query_id = _query_id(table, _decode(data))
                    except (ValueError, KeyError, TypeError) as e:
                        log.error(
                            "query log: %s: row %d not readable: %s", self._journal.path, line, e
                        )
                        continue
                    self._conn.execute(
                        "INSERT INTO outbox (tbl, query_id, data) VALUES (?, ?, ?)",
                        (table, query_id, data),
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # not already undone by a failed COMMIT
                    self._conn.execute("ROLLBACK")
                raise
            self._journal.done(self._journal.size)

    def batch(self, n: int) -> list[tuple[int, Row]]:
        """Up to ``n`` of the outbox file's rows due for shipping, oldest first, with their
        sequence numbers."""
        with self._lock:
            found = self._conn.execute(
                "SELECT seq, tbl, data FROM outbox WHERE not_before <= ? ORDER BY seq LIMIT ?",
                (time.time(), n),
            ).fetchall()
        return [(seq, (table, _decode(data))) for seq, table, data in found]

    def remove(self, seqs: Sequence[int]) -> None:
        """Forget the rows ``seqs``: the database has them (or refused them for good)."""
        if not seqs:
            return
        with self._lock:
            low, high = min(seqs), max(seqs)
            if high - low + 1 == len(seqs):  # the usual case: one run of rows
                self._conn.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (low, high))
            else:  # one statement, one transaction (executemany would commit each row)
                self._conn.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))",
                    (json.dumps(list(seqs)),),
                )

    def defer(self, seq: int, delay_s: float) -> int:
        """Ship row ``seq`` again in ``delay_s`` at the earliest; return its refusals so far."""
        with self._lock:
            self._conn.execute(
                "UPDATE outbox SET not_before = ?, refusals = refusals + 1 WHERE seq = ?",
                (time.time() + delay_s, seq),
            )
            refusals: int = self._conn.execute(
                "SELECT refusals FROM outbox WHERE seq = ?", (seq,)
            ).fetchone()[0]
        return refusals

    def count(self) -> int:
        """How many rows the outbox file and the journal hold."""
        with self._lock:
            n: int = self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            return n + len(self._pending)

    def note(self, error: str | None) -> None:
        """Record the shipper's last failure (None: it shipped)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO shipper (one, error, since) VALUES (1, ?, ?)",
                (error, time.time()),
            )

    def close(self) -> None:
        """Close the file and give up its lock; its rows wait for the next owner."""
        with self._lock:
            self._conn.close()
            self._journal.close()
        os.close(self._lock_fd)

    def discard(self) -> None:
        """Close and delete the (empty) outbox, its journal and its lock."""
        with self._lock:
            self._conn.close()
            self._journal.unlink()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.path.with_suffix(".lock").unlink(missing_ok=True)
        os.close(self._lock_fd)

    def abandon(self) -> None:
        """Drop the file without touching it (a forked child's copy of its parent's)."""
        self._lock_fd = -1


def _lock(path: Path, *, create: bool) -> int | None:
    """An exclusive flock on ``path`` at once, or None if another process holds it."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else os.O_CREAT)
    fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def create(folder: Path) -> OutboxFile:
    """A new outbox of this process in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    lock_path, path = folder / f"{stem}.lock", folder / f"{stem}.db"
    fd = _lock(lock_path, create=True)
    assert fd is not None  # a file created just now
    try:
        return OutboxFile(path, fd)
    except (OSError, sqlite3.Error):  # a full disk: leave nothing behind
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), lock_path):
            leftover.unlink(missing_ok=True)
        journal.unlink(path)
        os.close(fd)
        raise


def claim_orphans(folder: Path, mine: Sequence[Path] = ()) -> Iterator[OutboxFile]:
    """The outboxes in ``folder`` whose owner is gone, each now locked by this process."""
    for path in sorted(folder.glob(f"{_PREFIX}*.db")):
        if path in mine:
            continue
        lock_path = path.with_suffix(".lock")
        try:
            fd = _lock(lock_path, create=False)
        except OSError:
            continue
        if fd is None:
            continue  # its owner lives, or another process ships it
        if not path.exists():  # emptied and deleted by another process meanwhile
            try:
                if os.fstat(fd).st_ino == lock_path.stat().st_ino:
                    lock_path.unlink()
            except OSError:
                pass
            os.close(fd)
            continue
        try:
            orphan = OutboxFile(path, fd)
        except (OSError, sqlite3.Error) as e:
            log.error("query log: the outbox %s left behind cannot be opened: %s", path, e)
            os.close(fd)
            continue
        yield orphan


@dataclass(frozen=True)
class OutboxStatus:
    """What the outboxes of one folder hold: rows waiting and their shippers' failures."""

    backlog: int
    errors: list[str]


def _each(folder: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    for path in sorted(folder.glob(f"{_PREFIX}*.db")):
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        except sqlite3.Error:
            continue
        try:
            yield path, conn
        finally:
            conn.close()


def folder_status(folder: Path) -> OutboxStatus:
    """The backlog and the current shipping failures of every outbox in ``folder``."""
    backlog, errors = 0, []
    for path, conn in _each(folder):
        try:
            backlog += conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            errors += [e for (e,) in conn.execute("SELECT error FROM shipper") if e]
        except sqlite3.Error:
            continue  # created a moment ago, its tables not yet there
        backlog += len(journal.pending(path))
    return OutboxStatus(backlog, errors)


def find_query(folder: Path, query_id: int) -> bool:
    """Whether the query ``query_id`` waits in one of the outboxes in ``folder``."""
    for path, conn in _each(folder):
        try:
            found = conn.execute(
                "SELECT 1 FROM outbox WHERE tbl = 'queries' AND query_id = ?", (query_id,)
            ).fetchone()
        except sqlite3.Error:
            continue
        if found or any(
            table == "queries" and json.loads(data)["id"] == query_id
            for table, data in journal.pending(path)
            if str(query_id) in data
        ):
            return True
    return False
