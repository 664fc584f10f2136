"""Hot reload: publish a validated bank and switch every worker to it, no restart.

Two halves, joined only by files in the instance folder:

- :func:`rebuild` (behind ``POST /admin/reload`` and ``python -m bot reload``)
  validates the bank in the FAQ folder, copies it into a *snapshot*
  (``reloads/<version>/`` beside the index, with its own index), updates the
  service's index file, and then writes the *marker* (``index.pkl.version``,
  replaced atomically) naming that snapshot. A bank with errors is refused
  with every error listed, and nothing is written.
- A :class:`Watcher` in each worker process reads the marker at most once per
  check interval. When it names a bank version other than the one the worker
  serves, a background thread loads the snapshot while requests keep being
  answered by the old engine, then swaps the new one in with one assignment.
  A load that fails is logged and the old engine keeps serving.

Workers load the snapshot, not the FAQ folder: curators may go on editing
the folder (even leave a broken file there) while the workers load, and every
worker still ends up serving exactly the bank that was validated.

A bank version is the bank's digest (every file that shapes the index) plus
its thresholds, which the index digest leaves out. It is computed from the
loaded bank, so it never depends on file times. Each rebuild also writes a
fresh generation id: a worker that failed to load one generation tries again
when an operator reloads again, and the generation present when the app was
created is ignored (that marker predates the bank the app loaded at start).
A worker only swaps in the version the marker names at that moment, so no
worker goes back to an older bank.

This module never imports Flask; `bot.web.reload` wires the watcher into
the web app.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from .bank import DICT_FILE, Bank, load_bank, shown_path
from .config import DEFAULTS
from .errors import BankError, BankIssue, IndexArtifactError, XiaochengError
from .match.engine import Bot, build_index, pipeline_for
from .match.index import Index, stale_reason

__all__ = [
    "KEEP_SNAPSHOTS",
    "Marker",
    "ReloadResult",
    "Watcher",
    "bank_version",
    "marker_path",
    "read_marker",
    "rebuild",
]

log = logging.getLogger(__name__)

#: Snapshots kept beside the index; older ones are deleted by the next rebuild.
KEEP_SNAPSHOTS = 3
_SNAPSHOTS = "reloads"
_CHANGED_MEANWHILE = "the bank changed while it was being reloaded; run the reload again"


class SwapsBots(Protocol):
    """What a watcher needs from the web service: the engine it serves, and a swap."""

    @property
    def bot(self) -> Bot: ...

    def swap_bot(self, bot: Bot) -> Bot: ...


@dataclass(frozen=True)
class Marker:
    """What the last reload published: the bank version, its snapshot and a generation id."""

    version: str
    snapshot: Path
    generation: str

    @property
    def index_path(self) -> Path:
        return self.snapshot / "index.pkl"


@dataclass(frozen=True)
class ReloadResult:
    """What a rebuild did: the bank's errors, or the version it published."""

    errors: tuple[str, ...] = ()
    version: str = ""
    previous: str | None = None  # the version published before (None: nothing was)
    faqs: int = 0
    rows: int = 0
    built: bool = False  # False: a snapshot of this very bank existed already
    snapshot: Path | None = None  # the folder the workers load the bank from
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
    """The marker that belongs to the service's index at ``index_path``."""
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
            snapshot=path.parent / _SNAPSHOTS / str(data["snapshot"]),
            generation=str(data["generation"]),
        )
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexArtifactError(f"{path} cannot be read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise IndexArtifactError(f"{path} is not a reload marker") from None


def _replace_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temporary file in its folder, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_marker(index_path: Path, bank: Bank, version: str, snapshot: Path) -> None:
    data = {
        "version": version,
        "snapshot": snapshot.name,
        "generation": uuid.uuid4().hex,
        "digest": bank.digest,
        "faqs": len(bank.faqs),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _replace_atomically(marker_path(index_path), lambda fh: fh.write(json.dumps(data).encode()))


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


def _is_current(index_path: Path, digest: str) -> bool:
    try:
        return stale_reason(Index.read_meta(index_path), digest) is None
    except IndexArtifactError:
        return False


def _snapshot(
    faq_dir: Path, snapshots: Path, bank: Bank, cache_dir: Path
) -> tuple[Path, Bot | None]:
    """The snapshot of bank ``version`` with its index; made now unless it exists already.

    Raises BankError when the copy is not the bank that was validated
    (someone saved a file in between).
    """
    version = bank_version(bank)
    target = snapshots / version[:16]
    if _is_current(target / "index.pkl", bank.digest):
        os.utime(target)  # the most recently published is the last to be pruned
        return target, None
    snapshots.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=snapshots, prefix=".new-"))
    try:
        for path in [*sorted(faq_dir.glob("*.yaml")), faq_dir / DICT_FILE]:
            if path.is_file():
                shutil.copyfile(path, tmp / path.name)
        shutil.rmtree(target, ignore_errors=True)  # one left incomplete, without its index
        tmp.rename(target)
        try:
            copy: Bank | None = load_bank(target)
        except BankError:
            copy = None
        if copy is None or bank_version(copy) != version:
            raise BankError([BankIssue(shown_path(faq_dir), None, _CHANGED_MEANWHILE)])
        pipeline = pipeline_for(copy, cache_dir=cache_dir)
        index = build_index(copy, pipeline)
        index.save(target / "index.pkl")  # complete from here on
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target, Bot(copy, pipeline, index)


def _prune(snapshots: Path, keep: Path) -> None:
    """Delete all but the newest KEEP_SNAPSHOTS snapshots (never ``keep``).

    Runs under the rebuild lock, so a half-made ``.new-*`` folder is what a
    killed rebuild left behind: it goes too.
    """
    found = sorted(
        (p for p in snapshots.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    leftovers = [p for p in snapshots.glob(".new-*") if p.is_dir()]
    for old in found[KEEP_SNAPSHOTS:] + leftovers:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def rebuild(
    faq_dir: str | os.PathLike[str],
    index_path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ReloadResult:
    """Validate the bank in ``faq_dir``, snapshot and index it, and publish its version.

    A bank with errors gives a result listing them (``file:line: entry 'id':
    message``) and writes nothing, so every worker keeps serving its bank.
    ``index_path`` is the service's index (INDEX_PATH): it is updated too, so
    a restart finds it current. ``cache_dir`` is jieba's (default: beside it).
    """
    start = time.perf_counter()
    faq_dir, index_path = Path(faq_dir), Path(index_path)
    try:
        bank = load_bank(faq_dir)
    except BankError as exc:
        return ReloadResult(errors=tuple(str(issue) for issue in exc.issues))
    version = bank_version(bank)
    snapshots = index_path.parent / _SNAPSHOTS
    try:
        with _exclusive(index_path):
            try:
                previous = read_marker(index_path)
            except IndexArtifactError:
                previous = None  # a damaged marker is simply replaced
            snapshot, bot = _snapshot(
                faq_dir, snapshots, bank, Path(cache_dir or index_path.parent)
            )
            if not _is_current(index_path, bank.digest):
                data = (snapshot / "index.pkl").read_bytes()
                _replace_atomically(index_path, lambda fh: fh.write(data))
            rows = int(Index.read_meta(snapshot / "index.pkl").get("rows", 0))
            _write_marker(index_path, bank, version, snapshot)
            _prune(snapshots, snapshot)
    except BankError as exc:
        return ReloadResult(errors=tuple(str(issue) for issue in exc.issues))
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
        snapshot=snapshot,
        seconds=time.perf_counter() - start,
        bot=bot,
    )


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
