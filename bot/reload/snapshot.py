"""The snapshots: a copy of a validated bank with its index, closed by ``MANIFEST.json``.

:func:`make_snapshot` copies the bank and builds its index, then writes the
manifest (the size and sha256 of every file) last; :func:`verify_snapshot`
checks every file against it before anything uses the snapshot. A damaged
snapshot is moved aside (``.damaged-*``) so the next reload builds it again;
:func:`prune` keeps the newest :data:`KEEP_SNAPSHOTS`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..bank import DICT_FILE, Bank, load_bank, shown_path
from ..errors import BankError, BankIssue, IndexArtifactError
from ..files import atomic_write
from ..match.engine import Bot, build_index, pipeline_for
from ..match.index import Index, stale_reason
from .marker import bank_version

__all__ = ["KEEP_SNAPSHOTS", "MANIFEST", "make_snapshot", "prune", "sha256", "verify_snapshot"]

log = logging.getLogger("bot.reload")  # one logger for all of hot reload

#: Snapshots kept beside the index; older ones are deleted by the next rebuild.
KEEP_SNAPSHOTS = 3
#: The file of a snapshot that lists the size and sha256 of every other file.
MANIFEST = "MANIFEST.json"
_MANIFEST_FORMAT = 1
_CHANGED_MEANWHILE = "the bank changed while it was being reloaded; run the reload again"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_manifest(snapshot: Path) -> None:
    """List every file of ``snapshot`` with its size and sha256; the snapshot's last write."""
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": sha256(p.read_bytes())}
        for p in sorted(snapshot.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    data = json.dumps({"format": _MANIFEST_FORMAT, "files": files}, indent=1).encode()
    atomic_write(snapshot / MANIFEST, data)


def _damaged(path: Path, why: str) -> IndexArtifactError:
    return IndexArtifactError(f"{shown_path(path)}: 快照文件已损坏（{why}），不能使用")


def verify_snapshot(snapshot: str | os.PathLike[str]) -> dict[str, bytes]:
    """Check every file of ``snapshot`` against its manifest; return the files' bytes.

    Raises IndexArtifactError naming the first file that is missing, of
    another size or another sha256 than the manifest says, or the manifest
    itself when it is missing or unreadable.
    """
    snapshot = Path(snapshot)
    manifest = snapshot / MANIFEST
    if not snapshot.is_dir():
        raise IndexArtifactError(f"{shown_path(snapshot)}: 快照文件夹不存在，不能使用")
    try:
        data = json.loads(manifest.read_bytes())
        files = data["files"]
        if data.get("format") != _MANIFEST_FORMAT or not isinstance(files, dict) or not files:
            raise ValueError
        expected = {str(k): (int(v["bytes"]), str(v["sha256"])) for k, v in files.items()}
    except FileNotFoundError:
        raise _damaged(manifest, "缺少校验清单") from None
    except OSError as exc:
        raise _damaged(manifest, f"无法读取：{exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _damaged(manifest, "校验清单无法识别") from None
    contents: dict[str, bytes] = {}
    for name, (size, digest) in expected.items():
        path = snapshot / name
        if Path(name).name != name:
            raise _damaged(manifest, "校验清单无法识别")
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise _damaged(path, "文件缺失") from None
        except OSError as exc:
            raise _damaged(path, f"无法读取：{exc.strerror}") from None
        if len(body) != size:
            raise _damaged(path, f"应为 {size} 字节，实为 {len(body)} 字节")
        if sha256(body) != digest:
            raise _damaged(path, "sha256 校验和不符")
        contents[name] = body
    return contents


def _set_aside(snapshot: Path) -> Path:
    """Move a damaged snapshot out of the way (kept for inspection); return where it went."""
    aside = snapshot.with_name(f".damaged-{snapshot.name}-{time.strftime('%Y%m%d%H%M%S')}")
    try:
        snapshot.rename(aside)
    except OSError:
        shutil.rmtree(snapshot, ignore_errors=True)
        return snapshot
    return aside


def _is_current(index_path: Path, digest: str) -> bool:
    try:
        return stale_reason(Index.read_meta(index_path), digest) is None
    except IndexArtifactError:
        return False


def make_snapshot(
    faq_dir: Path, snapshots: Path, bank: Bank, cache_dir: Path
) -> tuple[Path, Bot | None]:
    """The snapshot of bank ``version`` with its index; made now unless it exists already.

    Raises BankError when the copy is not the bank that was validated
    (someone saved a file in between).
    """
    version = bank_version(bank)
    target = snapshots / version[:16]
    if (target / MANIFEST).is_file() and _is_current(target / "index.pkl", bank.digest):
        try:
            verify_snapshot(target)
        except IndexArtifactError as exc:
            aside = _set_aside(target)
            log.error("hot reload: %s; moved to %s", exc, shown_path(aside))
            raise IndexArtifactError(
                f"{exc}；本次重新加载未发布，服务继续使用原题库。"
                f"已把该快照移到 {shown_path(aside)} 备查，再次重新加载会重新生成"
            ) from None
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
        index.save(target / "index.pkl")
        _write_manifest(target)  # complete from here on
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target, Bot(copy, pipeline, index)


def prune(snapshots: Path, keep: Path) -> None:
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
