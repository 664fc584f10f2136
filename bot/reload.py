"""Hot reload: rebuild the index after a bank change and switch every worker to it.

Two halves, joined only by files in the instance folder:

- :func:`rebuild` (called by ``POST /admin/reload`` and ``python -m bot reload``)
  validates the bank, builds the index if it is not current, saves it
  atomically and then writes the *version marker* beside it
  (``index.pkl.version``, also replaced atomically). A bank with errors is
  refused with every error listed, and nothing is written.
- A :class:`Watcher` in each worker process reads the marker at most once per
  check interval. When it names a bank version other than the one the worker
  serves, a background thread loads that bank and index while the requests
  keep being answered by the old engine, then swaps the new one in with a
  single assignment. A load that fails is logged and the old engine keeps
  serving.

A bank version is the bank's digest (every file that shapes the index) plus
its thresholds, which the index digest leaves out; it is computed from the
loaded bank, so it never depends on file times. The marker also records the
index digest, so a marker older than the index (the service restarted on a
changed bank and rebuilt the index itself) is recognised and ignored, and a
fresh generation id per rebuild: a worker that failed to load one generation
(say a curator saved a broken file in between) tries again when an operator
reloads again. A worker only ever swaps in the version the marker names at
that moment, so workers never go back to an older bank.

This module never imports Flask; :mod:`bot.web_reload` wires the watcher into
the web app.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .bank import Bank, load_bank, shown_path
from .config import ConfigError, instance_path, load_settings
from .engine import Bot, build_index, pipeline_for
from .errors import BankError, IndexArtifactError, XiaochengError
from .index import Index, stale_reason

__all__ = [
    "DEFAULT_CHECK_INTERVAL_S",
    "Marker",
    "ReloadResult",
    "Watcher",
    "bank_version",
    "marker_path",
    "read_marker",
    "rebuild",
    "reload_main",
]

log = logging.getLogger(__name__)

#: How often, at most, a worker looks at the version marker (seconds).
DEFAULT_CHECK_INTERVAL_S = 1.0


class SwapsBots(Protocol):
    """What a watcher needs from the web service: the engine it serves, and a swap."""

    @property
    def bot(self) -> Bot: ...

    def swap_bot(self, bot: Bot) -> Bot: ...


@dataclass(frozen=True)
class Marker:
    """The bank version the last reload built, its index digest and the reload's id."""

    version: str
    digest: str
    generation: str


@dataclass(frozen=True)
class ReloadResult:
    """What a rebuild did: the bank's errors, or the version it now serves."""

    errors: tuple[str, ...] = ()
    version: str = ""
    previous: str | None = None  # the version the marker named before (None: no marker)
    faqs: int = 0
    rows: int = 0
    built: bool = False  # False: the index on disk was already current for this bank
    seconds: float = 0.0
    # The engine built on the way, for the calling process to serve at once.
    bot: Bot | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.errors


def bank_version(bank: Bank) -> str:
    """The version of everything a worker serves from ``bank``: its files and thresholds."""
    h = hashlib.sha256(bank.digest.encode())
    h.update(b"\0")
    h.update(json.dumps(bank.thresholds, sort_keys=True, default=str).encode())
    return h.hexdigest()


def marker_path(index_path: str | os.PathLike[str]) -> Path:
    """The version marker that belongs to the index at ``index_path``."""
    path = Path(index_path)
    return path.with_name(path.name + ".version")


def read_marker(index_path: str | os.PathLike[str]) -> Marker | None:
    """The marker beside ``index_path``; None if no reload has written one yet.

    Raises IndexArtifactError for a marker that cannot be read or parsed.
    """
    path = marker_path(index_path)
    try:
        data = json.loads(path.read_bytes())
        return Marker(
            version=str(data["version"]),
            digest=str(data["digest"]),
            generation=str(data["generation"]),
        )
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexArtifactError(f"{path} cannot be read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise IndexArtifactError(f"{path} is not a reload marker") from None


def _write_marker(index_path: Path, bank: Bank, version: str) -> None:
    path = marker_path(index_path)
    data = {
        "version": version,
        "generation": uuid.uuid4().hex,
        "digest": bank.digest,
        "faqs": len(bank.faqs),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _exclusive(index_path: Path) -> Iterator[None]:
    """Hold the rebuild lock of ``index_path``: two reloads at once run one after the other."""
    index_path.parent.mkdir(parents=True, exist_ok=True)
    with open(index_path.with_name(index_path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _current_rows(index_path: Path, digest: str) -> int | None:
    """Rows of the index at ``index_path`` if it can serve the bank with ``digest``."""
    try:
        meta = Index.read_meta(index_path)
    except IndexArtifactError:
        return None
    return None if stale_reason(meta, digest) else int(meta.get("rows", 0))


def rebuild(
    faq_dir: str | os.PathLike[str],
    index_path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ReloadResult:
    """Validate the bank in ``faq_dir``, build its index if needed and publish its version.

    A bank with errors gives a result listing them (``file:line: entry 'id':
    message``) and leaves the index and the marker untouched, so every worker
    keeps serving the previous bank.
    """
    start = time.perf_counter()
    index_path = Path(index_path)
    try:
        bank = load_bank(faq_dir)
    except BankError as exc:
        return ReloadResult(errors=tuple(str(issue) for issue in exc.issues))
    version = bank_version(bank)
    bot = None
    try:
        with _exclusive(index_path):
            try:
                previous = read_marker(index_path)
            except IndexArtifactError:
                previous = None  # a damaged marker is simply replaced
            rows = _current_rows(index_path, bank.digest)
            if rows is None:
                pipeline = pipeline_for(bank, cache_dir=cache_dir or index_path.parent)
                index = build_index(bank, pipeline)
                index.save(index_path)
                rows = index.n_rows
                bot = Bot(bank, pipeline, index)
            _write_marker(index_path, bank, version)
    except IndexArtifactError as exc:
        return ReloadResult(errors=(str(exc),))
    except OSError as exc:
        where = shown_path(exc.filename) if exc.filename else shown_path(index_path)
        return ReloadResult(errors=(f"{where}: {exc.strerror}",))
    return ReloadResult(
        version=version,
        previous=previous.version if previous else None,
        faqs=len(bank.faqs),
        rows=rows,
        built=bot is not None,
        seconds=time.perf_counter() - start,
        bot=bot,
    )


class Watcher:
    """Keeps one process serving the bank version the last reload published.

    :meth:`maybe_reload` is cheap enough to call before every request: it
    reads the marker at most once per ``check_interval`` seconds and never
    waits for a lock or a load.
    """

    def __init__(
        self,
        service: SwapsBots,
        faq_dir: str | os.PathLike[str],
        index_path: str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        check_interval: float = DEFAULT_CHECK_INTERVAL_S,
    ) -> None:
        self.service = service
        self.faq_dir = Path(faq_dir)
        self.index_path = Path(index_path)
        self.cache_dir = cache_dir
        self.check_interval = check_interval
        self._next_check = 0.0
        self._check_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._skip: set[str] = set()  # generations this process will not load (again)
        self._problem: str | None = None

    @property
    def loading(self) -> bool:
        """True while a background load is running."""
        return self._thread is not None and self._thread.is_alive()

    def maybe_reload(self) -> bool:
        """Start loading the published bank in the background if this process serves another.

        Returns True when a load was started.
        """
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
            if not self._index_matches(marker):
                self._skip.add(marker.generation)
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

    def _index_matches(self, marker: Marker) -> bool:
        """Whether the index on disk is the one ``marker``'s reload saved.

        It is not when something else rebuilt the index since (the service
        starting on a changed bank, ``train.py``): that marker is out of date,
        and loading for it would only fail.
        """
        try:
            digest = Index.read_meta(self.index_path).get("digest")
        except IndexArtifactError as exc:
            log.warning("hot reload: %s", exc)
            return False
        return digest == marker.digest

    def _load(self, marker: Marker) -> None:
        start = time.perf_counter()
        try:
            bot = Bot.load(
                self.faq_dir, index_path=self.index_path, cache_dir=self.cache_dir, rebuild=False
            )
        except (XiaochengError, OSError) as exc:
            self._give_up(marker, str(exc))
            return
        except Exception:  # noqa: BLE001 - whatever a load raises, the old engine keeps serving
            log.exception("hot reload: loading bank version %s failed", marker.version[:12])
            self._skip.add(marker.generation)
            return
        if not self.adopt(bot):
            self._give_up(
                marker,
                "the bank or the index changed again after that reload; "
                "run the reload again to publish the new bank",
            )
            return
        log.info(
            "hot reload: process %d now serves bank version %s (%d FAQs, loaded in %.2f s)",
            os.getpid(),
            marker.version[:12],
            len(bot.bank.faqs),
            time.perf_counter() - start,
        )

    def _give_up(self, marker: Marker, reason: str) -> None:
        self._skip.add(marker.generation)
        log.error(
            "hot reload: process %d keeps its current bank, cannot switch to version %s: %s",
            os.getpid(),
            marker.version[:12],
            reason,
        )


# --- command line --------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m bot reload``."""
    parser.add_argument(
        "--faq", default=None, metavar="DIR", help="FAQ bank folder (default: the FAQ_DIR setting)"
    )
    parser.add_argument(
        "--index",
        default=None,
        metavar="PATH",
        help="index file the service reads (default: the INDEX_PATH setting)",
    )


def run(args: argparse.Namespace) -> int:
    """Rebuild for the service's instance folder and print the outcome; 1 if refused."""
    try:
        settings = load_settings(instance_path())
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    faq_dir = args.faq or settings["FAQ_DIR"]
    index_path = Path(args.index or settings["INDEX_PATH"])
    result = rebuild(faq_dir, index_path, cache_dir=settings.get("CACHE_DIR"))
    if not result.ok:
        for line in result.errors:
            print(f"Error: {line}", file=sys.stderr)
        print("nothing was reloaded: the service keeps its previous bank", file=sys.stderr)
        return 1
    was = "unchanged" if result.previous == result.version else f"was {_short(result.previous)}"
    print(
        f"bank: {result.faqs} FAQs, {result.rows} questions and alternates "
        f"(version {_short(result.version)}, {was})"
    )
    if result.built:
        print(f"index: {shown_path(index_path)} rebuilt in {result.seconds:.2f} s")
    else:
        print(f"index: {shown_path(index_path)} was already current")
    interval = float(settings.get("RELOAD_CHECK_INTERVAL_S", DEFAULT_CHECK_INTERVAL_S))
    print(f"running workers switch to it on their next request (checked every {interval:g} s)")
    return 0


def _short(version: str | None) -> str:
    return version[:12] if version else "none"


def reload_main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot.reload [--faq DIR] [--index PATH]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bot reload",
        description="Validate the bank, rebuild the index and let the running service "
        "switch to it without a restart.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(reload_main())
