"""One object per process, made on first use after a fork: :class:`PerProcess`.

gunicorn builds the app once in its master and forks the workers from it. What
owns threads, locks or connections (the query log, the reload watcher) must
belong to the process that uses it, so it is made lazily in each process; one
inherited through fork is the parent's and is left alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerProcess"]

T = TypeVar("T")


class PerProcess(Generic[T]):
    """The ``make()`` of the current process, keyed by ``os.getpid()``."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """This process's object, made on first use (after a fork, made anew)."""
        value, pid = self._value, self._pid
        if value is not None and pid == os.getpid():
            return value
        with self._lock:
            if self._value is None or self._pid != os.getpid():
                # One inherited through fork is the parent's: leave it alone.
                self._value = self._make()
                self._pid = os.getpid()
            return self._value

    def discard(self, close: Callable[[T], object]) -> None:
        """Forget the object; ``close`` it first if this process made it."""
        with self._lock:
            value, self._value = self._value, None
            if value is not None and self._pid == os.getpid():
                close(value)
