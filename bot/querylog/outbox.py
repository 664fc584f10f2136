"""The query log's outbox: rows kept on this node, in a local SQLite file, until shipped.

Each process that logs questions owns one outbox file in the outbox folder
(``outbox-<pid>-<token>.db``, SQLite in WAL mode with ``synchronous=NORMAL``):
:meth:`OutboxFile.add` writes a row there in the caller's thread, one short
transaction, before the reply is sent. A committed row survives the process
(``kill -9``, an out-of-memory kill, a restart); only a crash of the machine
itself may take the last transactions with it (WAL without a sync per commit).
The shipper (:mod:`bot.querylog.shipper`) copies the rows to the configured
database in batches and deletes them from the outbox only after that commit.

The request pays for one insert and nothing more. The file is written back to
its database (a checkpoint, with its syncs) only by the shipper
(:meth:`OutboxFile.checkpoint`, on a connection of its own), never by the
request's commit. While everything the file holds was added by this process and
nothing handed out failed, :meth:`OutboxFile.batch` hands out the rows as they
were added, from memory; after a failed shipment, a deferred row or in an
orphan it reads the file, until the file is empty again.

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
# A WAL file reset after a checkpoint is cut back to this size.
_WAL_LIMIT_BYTES = 4 * 1024 * 1024
# Built once: json.dumps with options builds an encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

log = logging.getLogger(__name__)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # No checkpoint inside a commit (it syncs twice): the shipper runs them.
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
    return conn


def _encode(row: dict[str, Any]) -> str:
    data = dict(row)
    data["created_at"] = row["created_at"].isoformat()
    return _ENCODER.encode(data)


def _decode(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    return data


class OutboxFile:
    """One outbox file, its lock held by this process (file descriptor ``lock_fd``)."""

    def __init__(self, path: Path, lock_fd: int, *, new: bool = False) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self._lock = threading.Lock()
        self._conn = _connect(path)
        self._conn.executescript(_SCHEMA)
        self._checkpointer: sqlite3.Connection | None = None
        # The rows added here and not yet handed out, while they are all the file
        # holds (None: read the file); and those handed out, not yet removed.
        self._fresh: list[tuple[int, Row]] | None = [] if new else None
        self._handed: set[int] = set()

    def add(self, table: str, row: dict[str, Any]) -> None:
        """Keep ``row`` for ``table``, durably, before returning."""
        query_id = row["id"] if table == "queries" else row["query_id"]
        data = _encode(row)
        with self._lock:
            seq = self._conn.execute(
                "INSERT INTO outbox (tbl, query_id, data) VALUES (?, ?, ?)",
                (table, query_id, data),
            ).lastrowid
            if self._fresh is not None and seq is not None:
                self._fresh.append((seq, (table, row)))

    def batch(self, n: int) -> list[tuple[int, Row]]:
        """Up to ``n`` rows due for shipping, oldest first, with their sequence numbers."""
        with self._lock:
            if self._fresh is not None and not self._handed:
                taken = self._fresh[:n]
                del self._fresh[:n]
                self._handed.update(seq for seq, _ in taken)
                return taken
            # Rows handed out came back unshipped: the file is the truth from now on.
            self._fresh = None
            self._handed.clear()
            found = self._conn.execute(
                "SELECT seq, tbl, data FROM outbox WHERE not_before <= ? ORDER BY seq LIMIT ?",
                (time.time(), n),
            ).fetchall()
            if not found and not self._conn.execute("SELECT 1 FROM outbox LIMIT 1").fetchone():
                self._fresh = []  # empty: what is added next is all it holds
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
            self._handed.difference_update(seqs)

    def checkpoint(self) -> None:
        """Write what the WAL holds back to the file, beside the writers (the shipper's job)."""
        if self._checkpointer is None:
            self._checkpointer = _connect(self.path)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

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
            self._fresh = None  # it waits in the file, not in memory
            self._handed.discard(seq)
        return refusals

    def count(self) -> int:
        """How many rows the file holds."""
        with self._lock:
            n: int = self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return n

    def note(self, error: str | None) -> None:
        """Record the shipper's last failure (None: it shipped)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO shipper (one, error, since) VALUES (1, ?, ?)",
                (error, time.time()),
            )

    def close(self) -> None:
        """Close the file and give up its lock; its rows wait for the next owner."""
        self._close_connections()
        os.close(self._lock_fd)

    def discard(self) -> None:
        """Close and delete the (empty) outbox and its lock."""
        self._close_connections()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.path.with_suffix(".lock").unlink(missing_ok=True)
        os.close(self._lock_fd)

    def _close_connections(self) -> None:
        with self._lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
            self._conn.close()

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
        return OutboxFile(path, fd, new=True)
    except sqlite3.Error:  # a full disk: leave nothing behind
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), lock_path):
            leftover.unlink(missing_ok=True)
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
        except sqlite3.Error as e:
            log.error("query log: the outbox %s left behind cannot be opened: %s", path, e)
            os.close(fd)
            continue
        yield orphan


@dataclass(frozen=True)
class OutboxStatus:
    """What the outboxes of one folder hold: rows waiting and their shippers' failures."""

    backlog: int
    errors: list[str]


def _each(folder: Path) -> Iterator[sqlite3.Connection]:
    for path in sorted(folder.glob(f"{_PREFIX}*.db")):
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        except sqlite3.Error:
            continue
        try:
            yield conn
        finally:
            conn.close()


def folder_status(folder: Path) -> OutboxStatus:
    """The backlog and the current shipping failures of every outbox in ``folder``."""
    backlog, errors = 0, []
    for conn in _each(folder):
        try:
            backlog += conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            errors += [e for (e,) in conn.execute("SELECT error FROM shipper") if e]
        except sqlite3.Error:
            continue  # created a moment ago, its tables not yet there
    return OutboxStatus(backlog, errors)


def find_query(folder: Path, query_id: int) -> bool:
    """Whether the query ``query_id`` waits in one of the outboxes in ``folder``."""
    for conn in _each(folder):
        try:
            found = conn.execute(
                "SELECT 1 FROM outbox WHERE tbl = 'queries' AND query_id = ?", (query_id,)
            ).fetchone()
        except sqlite3.Error:
            continue
        if found:
            return True
    return False
