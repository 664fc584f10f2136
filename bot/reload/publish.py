"""Publishing a bank: :func:`rebuild` validates it, snapshots it and writes the marker.

Behind ``POST /admin/reload`` and ``python -m bot reload``. Two rebuilds at
once run one after the other (a lock file beside the index); a bank with
errors, or service files that are damaged or cannot be written, give a
:class:`ReloadResult` listing the errors, and nothing is published. With
``shared=`` (``BANK_SHARED``) the verified snapshot is stored in the shared
database before this node's marker is written: a database that refuses it
fails the reload, so no node serves a bank the others cannot get.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..bank import load_bank, shown_path
from ..errors import BankError, IndexArtifactError, SharedBankError
from ..files import atomic_write
from ..match.engine import Bot
from ..match.index import Index
from .marker import SNAPSHOTS, bank_version, locked, read_marker, write_marker
from .shared import SharedBanks
from .snapshot import make_snapshot, prune, sha256, verify_snapshot

__all__ = ["ReloadResult", "rebuild"]


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
    # True: refused because files of the service (a snapshot, the index) are damaged
    # or cannot be written, not because of the bank.
    damaged: bool = False
    seq: int | None = None  # its publication in the shared database (None: not shared)
    # The engine built on the way, for the calling process to serve at once.
    bot: Bot | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.errors


def _file_sha256(path: Path) -> str | None:
    try:
        return sha256(path.read_bytes())
    except OSError:
        return None


def rebuild(
    faq_dir: str | os.PathLike[str],
    index_path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    shared: SharedBanks | None = None,
) -> ReloadResult:
    """Validate the bank in ``faq_dir``, snapshot and index it, and publish its version.

    A bank with errors gives a result listing them (``file:line: entry 'id':
    message``) and writes nothing, so every worker keeps serving its bank.
    ``index_path`` is the service's index (INDEX_PATH): it is updated too, so
    a restart finds it current. ``cache_dir`` is jieba's (default: beside it).
    ``shared`` publishes the snapshot to the other nodes too.
    """
    start = time.perf_counter()
    faq_dir, index_path = Path(faq_dir), Path(index_path)
    try:
        bank = load_bank(faq_dir)
    except BankError as exc:
        return ReloadResult(errors=tuple(str(issue) for issue in exc.issues))
    version = bank_version(bank)
    snapshots = index_path.parent / SNAPSHOTS
    try:
        with locked(index_path):
            try:
                previous = read_marker(index_path)
            except IndexArtifactError:
                previous = None  # a damaged marker is simply replaced
            snapshot, bot = make_snapshot(
                faq_dir, snapshots, bank, Path(cache_dir or index_path.parent)
            )
            # Only bytes that match the manifest become the service's index.
            data = verify_snapshot(snapshot)["index.pkl"]
            seq = None
            if shared is not None:
                seq = shared.publish(snapshot, version, digest=bank.digest, faqs=len(bank.faqs))
            if _file_sha256(index_path) != sha256(data):
                atomic_write(index_path, data)
            rows = int(Index.read_meta(snapshot / "index.pkl").get("rows", 0))
            write_marker(index_path, version, snapshot, digest=bank.digest, faqs=len(bank.faqs))
            prune(snapshots, snapshot)
    except BankError as exc:
        return ReloadResult(errors=tuple(str(issue) for issue in exc.issues))
    except (IndexArtifactError, SharedBankError) as exc:
        return ReloadResult(errors=(str(exc),), damaged=True)
    except OSError as exc:
        where = shown_path(exc.filename) if exc.filename else shown_path(index_path)
        return ReloadResult(errors=(f"{where}: {exc.strerror}",), damaged=True)
    return ReloadResult(
        version=version,
        previous=previous.version if previous else None,
        faqs=len(bank.faqs),
        rows=rows,
        built=bot is not None,
        snapshot=snapshot,
        seq=seq,
        seconds=time.perf_counter() - start,
        bot=bot,
    )
