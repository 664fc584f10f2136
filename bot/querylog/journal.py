"""The outbox's journal: each row appended to a plain file with one ``write``, in the request.

A :class:`Journal` is the file ``<stem>.jsonl`` beside an outbox file
``<stem>.db`` (:mod:`bot.querylog.outbox`). Each row is one line,
``<table>\\t<data>\\n``, ``data`` being the row's JSON as the outbox file keeps
it (JSON escapes every tab and newline inside it). A line is written with one
``write`` to a file opened for appending: once that returns the line is in the
kernel's page cache and outlives the process (``kill -9``, an out-of-memory
kill), as a WAL commit with ``synchronous=NORMAL`` does, for the price of one
system call instead of a SQLite transaction. A short write (a full disk) is cut
off again and raised as :class:`OSError`; a last line without its newline is
not a row.

``<stem>.pos`` holds, as 8 bytes, how much of the journal is done with: shipped
to the database or moved into the outbox file. Once all of it is, the journal is
cut back to empty and the mark set to 0; a journal shorter than its mark was cut
and its process died before setting the mark, so none of it is pending.
:func:`pending` reads the rows not yet done, from any process.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["Journal", "pending"]

_MARK_BYTES = 8


def _paths(stem: Path) -> tuple[Path, Path]:
    return stem.with_suffix(".jsonl"), stem.with_suffix(".pos")


class Journal:
    """The journal of the outbox ``<stem>.db``, opened for appending by its owner."""

    def __init__(self, stem: Path) -> None:
        self.path, self._mark_path = _paths(stem)
        flags = os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.path, flags | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            self._mark_fd = os.open(self._mark_path, flags | os.O_RDWR, 0o600)
        except OSError:
            os.close(self._fd)
            raise
        self.size = os.fstat(self._fd).st_size

    def append(self, line: bytes) -> int:
        """Write ``line`` (ending in a newline); return where it ends in the journal."""
        written = os.write(self._fd, line)
        if written != len(line):
            os.ftruncate(self._fd, self.size)
            raise OSError(errno.ENOSPC, f"{self.path}: only {written} of {len(line)} bytes written")
        self.size += written
        return self.size

    def done(self, end: int) -> None:
        """Mark the journal done up to ``end``; cut it back to empty if that is all of it."""
        if end >= self.size:
            os.ftruncate(self._fd, 0)
            self.size = 0
            end = 0
        os.pwrite(self._mark_fd, end.to_bytes(_MARK_BYTES, "little"), 0)

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._mark_fd)

    def unlink(self) -> None:
        """Close and delete the journal and its mark."""
        self.close()
        self.path.unlink(missing_ok=True)
        self._mark_path.unlink(missing_ok=True)


def pending(stem: Path) -> list[tuple[str, str]]:
    """The rows ``(table, data)`` of the journal of ``<stem>.db`` not yet done with."""
    path, mark_path = _paths(stem)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        mark = int.from_bytes(mark_path.read_bytes()[:_MARK_BYTES], "little")
    except FileNotFoundError:
        mark = 0
    if len(text) < mark:
        return []
    rows = []
    for line in text[mark:].split(b"\n")[:-1]:  # the last: empty, or a line cut short
        table, _, data = line.decode("utf-8", "replace").partition("\t")
        rows.append((table, data))
    return rows


def unlink(stem: Path) -> None:
    """Delete the journal of ``<stem>.db`` and its mark, if there are any."""
    for path in _paths(stem):
        path.unlink(missing_ok=True)
