"""The values of a query-log row: its id, the hashed session, the kept candidates.

Ids are 63-bit integers counted up from a random start drawn once per process.
Rows from one process can never collide; two processes collide only if their
ranges overlap: for any two processes writing a million rows each, a chance of
about 1 in 10^12.
No round trip is needed for an id, and feedback can name a query that is still
in the queue.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

__all__ = ["Ids", "candidates_json", "finite", "session_hash"]

_MAX_CANDIDATES = 5
_SESSION_CHARS = 32


class Ids:
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


def storable(text: str) -> str:
    """``text`` as every database and the outbox's JSON can hold it: a lone surrogate
    (which a JSON body can carry) becomes ``?``, NUL (which PostgreSQL refuses) goes."""
    if text.isascii():
        return text.replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def finite(value: float | None) -> float | None:
    """``value`` as a float, or None for None, NaN and infinities."""
    return None if value is None or not math.isfinite(value) else float(value)


def session_hash(session: str | None) -> str | None:
    """The stored form of a session id: a 32-character hash (None for none)."""
    if not session:
        return None
    digest = hashlib.blake2b(session.encode("utf-8"), digest_size=_SESSION_CHARS // 2)
    return digest.hexdigest()


def candidates_json(candidates: Iterable[Mapping[str, Any]]) -> str:
    """The first five candidates' ids and scores (4 decimals), as compact JSON."""
    top: list[dict[str, Any]] = []
    for candidate in candidates:
        if len(top) == _MAX_CANDIDATES:
            break
        score = finite(candidate.get("score"))
        top.append(
            {
                "id": storable(str(candidate["id"])),
                "score": None if score is None else round(score, 4),
            }
        )
    return orjson.dumps(top).decode()  # compact, as json.dumps with (",", ":"), faster
