"""The watcher: keeps one worker process serving the bank version the marker names.

:class:`Watcher` reads the marker at most once per check interval and loads a
newer snapshot in a background thread while the old engine keeps answering,
then swaps the new one in with one assignment; a load that fails is logged
once and the old engine keeps serving.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Protocol

from ..config import DEFAULTS
from ..errors import IndexArtifactError, XiaochengError
from ..match.engine import Bot
from .marker import Marker, bank_version, read_marker
from .snapshot import verify_snapshot

__all__ = ["SwapsBots", "Watcher"]

log = logging.getLogger("bot.reload")  # one logger for all of hot reload


class SwapsBots(Protocol):
    """What a watcher needs from the web service: the engine it serves, and a swap."""

    @property
    def bot(self) -> Bot: ...

    def swap_bot(self, bot: Bot) -> Bot: ...


class Watcher:
    """Keeps one process serving the bank version the last reload published.

    :meth:`maybe_reload` is cheap enough to call before every request: it
    reads the marker at most once per ``check_interval`` seconds and never
    waits for a lock or a load. ``baseline`` is the generation of the marker
    found when the served bank was loaded: that marker is older than the bank
    and is ignored.
    """

    def __init__(
        self,
        service: SwapsBots,
        index_path: str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        check_interval: float = DEFAULTS["RELOAD_CHECK_INTERVAL_S"],
        baseline: str | None = None,
    ) -> None:
        self.service = service
        self.index_path = Path(index_path)
        self.cache_dir = Path(cache_dir or self.index_path.parent)
        self.check_interval = check_interval
        self._next_check = 0.0
        self._check_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Generations this process will not load (again).
        self._skip: set[str] = {baseline} if baseline else set()
        self._problem: str | None = None

    @staticmethod
    def baseline_of(index_path: str | os.PathLike[str]) -> str | None:
        """The generation of the marker now, to pass as ``baseline`` after loading a bank."""
        try:
            marker = read_marker(index_path)
        except IndexArtifactError:
            return None
        return marker.generation if marker else None

    @property
    def loading(self) -> bool:
        """True while a background load is running."""
        return self._thread is not None and self._thread.is_alive()

    def maybe_reload(self, *, at_once: bool = False) -> bool:
        """Start loading the published bank in the background if this process serves another.

        Returns True when a load was started. ``at_once`` looks at the marker even if
        the check interval has not passed (a new bank was just taken into this node).
        """
        if at_once:
            self._next_check = 0.0
        if time.monotonic() < self._next_check:
            return False
        if not self._check_lock.acquire(blocking=False):
            return False  # another thread of this process is checking right now
        try:
            now = time.monotonic()
            if now < self._next_check or self.loading:
                return False
            self._next_check = now + self.check_interval
            marker = self._marker()
            if marker is None or marker.generation in self._skip:
                return False
            if marker.version == bank_version(self.service.bot.bank):
                return False
            self._thread = threading.Thread(
                target=self._load, args=(marker,), name="xiaocheng-reload", daemon=True
            )
            self._thread.start()
            return True
        finally:
            self._check_lock.release()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a running background load to finish (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def follow(self) -> bool:
        """Load the published bank now, in this thread, unless this process serves it.

        Returns whether this process serves the published bank afterwards.
        """
        marker = self._marker()
        if marker is None:
            return False
        if marker.version == bank_version(self.service.bot.bank):
            return True
        return self._load(marker)

    def adopt(self, bot: Bot) -> bool:
        """Serve ``bot`` if it is the version the marker names now; return whether it was."""
        with self._swap_lock:
            try:
                marker = read_marker(self.index_path)
            except IndexArtifactError:
                return False
            if marker is None or marker.version != bank_version(bot.bank):
                return False
            self.service.swap_bot(bot)
            return True

    def _marker(self) -> Marker | None:
        try:
            marker = read_marker(self.index_path)
        except IndexArtifactError as exc:
            if str(exc) != self._problem:  # say it once, not once a second
                log.warning("hot reload: %s", exc)
                self._problem = str(exc)
            return None
        self._problem = None
        return marker

    def _load(self, marker: Marker) -> bool:
        start = time.perf_counter()
        try:
            verify_snapshot(marker.snapshot)
            bot = Bot.load(
                marker.snapshot,
                index_path=marker.index_path,
                cache_dir=self.cache_dir,
                rebuild=False,
            )
        except (XiaochengError, OSError) as exc:
            self._give_up(marker, str(exc))
            return False
        except Exception:  # noqa: BLE001 - whatever a load raises, the old engine keeps serving
            log.exception("hot reload: loading bank version %s failed", marker.version[:12])
            self._skip.add(marker.generation)
            return False
        if not self.adopt(bot):
            # A newer reload was published meanwhile; the next check loads that one.
            return False
        log.info(
            "hot reload: process %d now serves bank version %s (%d FAQs, loaded in %.2f s)",
            os.getpid(),
            marker.version[:12],
            len(bot.bank.faqs),
            time.perf_counter() - start,
        )
        return True

    def _give_up(self, marker: Marker, reason: str) -> None:
        self._skip.add(marker.generation)
        log.error(
            "hot reload: process %d keeps its current bank, cannot switch to version %s: %s",
            os.getpid(),
            marker.version[:12],
            reason,
        )
