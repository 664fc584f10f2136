"""Banks published through the database the nodes share: :class:`SharedBanks`, :class:`Follower`.

With ``BANK_SHARED`` on, a reload on any node (:func:`bot.reload.rebuild`
with ``shared=``) stores its verified snapshot in two tables of the query
log's database: ``bank_versions`` (one row per publication: an increasing
``seq``, the bank version, its ``MANIFEST.json``) and ``bank_files`` (the
bytes of each file of the snapshot). The newest :data:`KEEP_PUBLISHED` stay.

A :class:`Follower` in each worker polls the newest ``seq`` (at most once per
check interval, in a background thread: a request never waits for the
database). When it names a bank version other than the one this node's marker
names, it fetches the files, checks each against the manifest (size and
sha256), writes them as a local snapshot under ``reloads/``, updates the
service's index and writes the marker, all under the node's reload lock; the
:class:`bot.reload.Watcher` of every worker then swaps the bank in as for a
local reload. A publication whose bytes fail the check is refused (logged,
named by its table and file) and the node keeps its bank; the next
publication is taken again. Nothing else about the nodes is shared here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import IndexArtifactError, SharedBankError
from ..files import atomic_write
from ..match.engine import Bot
from ..querylog.schema import open_engine
from .marker import SNAPSHOTS, locked, read_marker, write_marker
from .snapshot import MANIFEST, prune, sha256, verify_snapshot

__all__ = [
    "KEEP_PUBLISHED",
    "Follower",
    "Published",
    "SharedBanks",
    "install",
    "published_bot",
    "shared_banks",
]

log = logging.getLogger("bot.reload")  # one logger for all of hot reload

#: Publications kept in the database; older ones are deleted by the next publication.
KEEP_PUBLISHED = 3
VERSIONS, FILES = "bank_versions", "bank_files"
_BUSY_TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class Published:
    """One publication of a bank in the shared database (its files not included)."""

    seq: int
    version: str
    snapshot: str  # the snapshot folder's name, the same on every node
    digest: str
    faqs: int


def shared_banks(settings: Mapping[str, Any]) -> SharedBanks | None:
    """The shared publications of the service ``settings`` describe; None unless BANK_SHARED."""
    if not settings.get("BANK_SHARED"):
        return None
    return SharedBanks(str(settings["DATABASE_URL"]))


class SharedBanks:
    """The bank publications in the database at ``url``; database errors become SharedBankError."""

    def __init__(self, url: str) -> None:
        self.url = url
        meta = sa.MetaData()
        self._versions = sa.Table(
            VERSIONS,
            meta,
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("version", sa.String(64), nullable=False),
            sa.Column("snapshot", sa.String(64), nullable=False),
            sa.Column("digest", sa.String(64), nullable=False),
            sa.Column("faqs", sa.Integer, nullable=False),
            sa.Column("manifest", sa.Text, nullable=False),
            sa.Column("published_at", sa.Float, nullable=False),  # seconds since the epoch
        )
        self._files = sa.Table(
            FILES,
            meta,
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(255), primary_key=True),
            sa.Column("data", sa.LargeBinary, nullable=False),
        )
        self._meta = meta
        self._engine: sa.Engine | None = None
        self._pid = 0
        self._ready = False

    def _connected(self) -> sa.Engine:
        if self._engine is None or self._pid != os.getpid():
            # An engine inherited through fork is the parent's: open one of our own.
            # No connection stays open between polls: nothing to close at exit.
            self._engine = open_engine(self.url, _BUSY_TIMEOUT_MS, pooled=False)
            self._pid, self._ready = os.getpid(), False
        if not self._ready:
            try:
                self._meta.create_all(self._engine, checkfirst=True)
            except sa.exc.IntegrityError:
                pass  # another node or process created them meanwhile
            except sa.exc.ProgrammingError:
                if not sa.inspect(self._engine).has_table(FILES):
                    raise
            self._ready = True
        return self._engine

    def _fail(self, what: str, exc: sa.exc.SQLAlchemyError) -> SharedBankError:
        why = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = sa.make_url(self.url).render_as_string(hide_password=True)
        return SharedBankError(f"{where}: 共享数据库{what}失败（{why}）")

    def publish(self, snapshot: Path, version: str, *, digest: str, faqs: int) -> int:
        """Store the verified ``snapshot`` of bank ``version`` as the newest; return its seq.

        Raises IndexArtifactError when the snapshot fails its manifest,
        SharedBankError when the database refuses it (nothing is published then).
        """
        contents = verify_snapshot(snapshot)
        manifest = (snapshot / MANIFEST).read_bytes()  # the caller holds the reload lock
        row = {
            "version": version,
            "snapshot": snapshot.name,
            "digest": digest,
            "faqs": faqs,
            "manifest": manifest.decode("utf-8"),
            "published_at": time.time(),
        }
        try:
            with self._connected().begin() as conn:
                inserted = conn.execute(self._versions.insert().values(**row))
                seq = int(inserted.inserted_primary_key[0])  # type: ignore[index]
                conn.execute(
                    self._files.insert(),
                    [{"seq": seq, "name": n, "data": data} for n, data in contents.items()],
                )
                old = sa.select(self._versions.c.seq).where(
                    self._versions.c.seq <= seq - KEEP_PUBLISHED
                )
                conn.execute(self._files.delete().where(self._files.c.seq.in_(old)))
                conn.execute(self._versions.delete().where(self._versions.c.seq.in_(old)))
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("发布题库", exc) from None
        return seq

    def latest(self) -> Published | None:
        """The newest publication; None when no node has published a bank yet."""
        v = self._versions
        stmt = sa.select(v.c.seq, v.c.version, v.c.snapshot, v.c.digest, v.c.faqs)
        try:
            with self._connected().connect() as conn:
                row = conn.execute(stmt.order_by(v.c.seq.desc()).limit(1)).first()
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("读取已发布题库", exc) from None
        return None if row is None else Published(*row)

    def fetch(self, seq: int) -> tuple[bytes, dict[str, bytes]]:
        """The manifest and files of publication ``seq``, as stored (not yet checked)."""
        try:
            with self._connected().connect() as conn:
                manifest = conn.execute(
                    sa.select(self._versions.c.manifest).where(self._versions.c.seq == seq)
                ).scalar_one()
                rows = conn.execute(
                    sa.select(self._files.c.name, self._files.c.data).where(
                        self._files.c.seq == seq
                    )
                ).all()
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail(f"读取第 {seq} 版题库", exc) from None
        return manifest.encode("utf-8"), {str(name): bytes(data) for name, data in rows}

    def close(self) -> None:
        """Close this process's connections."""
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine = None


def _check(published: Published, manifest: bytes, files: Mapping[str, bytes]) -> None:
    """Raise IndexArtifactError naming the first stored file that does not match the manifest."""

    def damaged(name: str, why: str) -> IndexArtifactError:
        return IndexArtifactError(
            f"{FILES}（第 {published.seq} 版）/{name}: 共享数据库中的题库已损坏（{why}），不能使用"
        )

    try:
        listed = json.loads(manifest)["files"]
        expected = {str(k): (int(v["bytes"]), str(v["sha256"])) for k, v in listed.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise damaged(MANIFEST, "校验清单无法识别") from None
    if "index.pkl" not in expected or set(expected) != set(files):
        raise damaged(MANIFEST, "文件与校验清单不一致")
    for name, (size, digest) in expected.items():
        if Path(name).name != name or name == MANIFEST:
            raise damaged(MANIFEST, "校验清单无法识别")
        if len(files[name]) != size:
            raise damaged(name, f"应为 {size} 字节，实为 {len(files[name])} 字节")
        if sha256(files[name]) != digest:
            raise damaged(name, "sha256 校验和不符")


def install(
    published: Published, manifest: bytes, files: Mapping[str, bytes], index_path: Path
) -> Path:
    """Write a checked publication as this node's snapshot, index and marker; return the snapshot.

    Call it holding :func:`bot.reload.marker.locked` for ``index_path``.
    Raises IndexArtifactError (nothing written) when a file fails the manifest.
    """
    _check(published, manifest, files)
    snapshots = index_path.parent / SNAPSHOTS
    snapshots.mkdir(parents=True, exist_ok=True)
    target = snapshots / Path(published.snapshot).name
    tmp = Path(tempfile.mkdtemp(dir=snapshots, prefix=".new-"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / MANIFEST).write_bytes(manifest)
        verify_snapshot(tmp)  # what reached the disk is what was checked
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write(index_path, files["index.pkl"])
    write_marker(
        index_path, published.version, target, digest=published.digest, faqs=published.faqs
    )
    prune(snapshots, target)
    return target


class Follower:
    """Keeps this node's marker at the newest bank published in the shared database.

    :meth:`maybe_follow` is cheap enough to call before every request: at
    most once per ``check_interval`` it starts a background check, never more
    than one at a time, and calls ``on_new`` (say, to let the watcher look at
    the marker at once) when it met a publication it had not seen.
    :meth:`follow` checks now, in the calling thread.
    """

    def __init__(
        self,
        banks: SharedBanks,
        index_path: str | os.PathLike[str],
        *,
        check_interval: float,
        on_new: Callable[[], object] | None = None,
    ) -> None:
        self.banks = banks
        self.on_new = on_new
        self.index_path = Path(index_path)
        self.check_interval = check_interval
        self._seen = 0  # the newest seq this process has taken or refused
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._problem: str | None = None

    def maybe_follow(self) -> bool:
        """Start a background check if one is due and none is running; return whether it was."""
        if time.monotonic() < self._next_check or not self._lock.acquire(blocking=False):
            return False
        try:
            now = time.monotonic()
            if now < self._next_check or (self._thread is not None and self._thread.is_alive()):
                return False
            self._next_check = now + self.check_interval
            self._thread = threading.Thread(
                target=self._follow_logged, name="xiaocheng-shared-bank", daemon=True
            )
            self._thread.start()
            return True
        finally:
            self._lock.release()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a running background check to finish (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def follow(self) -> Published | None:
        """Bring this node to the newest publication; return it (None: nothing published).

        Raises SharedBankError when the database cannot be read (retried at the
        next check) and IndexArtifactError when the publication is damaged (it
        is not tried again; a later one is).
        """
        latest = self.banks.latest()
        if latest is None or latest.seq <= self._seen:
            return latest
        with locked(self.index_path):
            try:
                marker = read_marker(self.index_path)
            except IndexArtifactError:
                marker = None  # a damaged marker is simply replaced
            if marker is None or marker.version != latest.version or not marker.snapshot.is_dir():
                manifest, files = self.banks.fetch(latest.seq)
                try:
                    install(latest, manifest, files, self.index_path)
                except IndexArtifactError:
                    self._seen = latest.seq
                    raise
                log.info(
                    "shared bank: node took version %s (publication %d, %d FAQs)",
                    latest.version[:12],
                    latest.seq,
                    latest.faqs,
                )
            self._seen = latest.seq
        return latest

    def _follow_logged(self) -> None:
        seen = self._seen
        try:
            self.follow()
        except (SharedBankError, IndexArtifactError, OSError) as exc:
            if str(exc) != self._problem:  # say it once, not once a second
                log.error("shared bank: this node keeps its current bank: %s", exc)
                self._problem = str(exc)
            return
        except Exception:  # noqa: BLE001 - whatever goes wrong, the node keeps serving its bank
            log.exception("shared bank: following the published bank failed")
            return
        self._problem = None
        if self._seen != seen and self.on_new is not None:
            self.on_new()


def published_bot(
    banks: SharedBanks,
    index_path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Bot | None:
    """At start-up: the engine of the newest published bank, taken into this node first.

    None when no bank was published yet (serve the FAQ folder). While the
    database is unreachable, or its newest publication is damaged, the bank
    this node took last (its marker's snapshot) is served, if it has one.
    """
    index_path = Path(index_path)
    try:
        latest = Follower(banks, index_path, check_interval=0).follow()
        if latest is None:
            return None
    except (SharedBankError, IndexArtifactError, OSError) as exc:
        log.error("shared bank: at start-up, serving the bank this node took last: %s", exc)
    try:
        marker = read_marker(index_path)
        if marker is None:
            return None
        verify_snapshot(marker.snapshot)
        return Bot.load(
            marker.snapshot, index_path=marker.index_path, cache_dir=cache_dir, rebuild=False
        )
    except (IndexArtifactError, OSError) as exc:
        log.error("shared bank: at start-up, serving the FAQ folder: %s", exc)
        return None
