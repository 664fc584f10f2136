"""The marker a rebuild publishes and the workers read: ``index.pkl.version``.

It names the bank version (:func:`bank_version`), the snapshot folder under
``reloads/`` and a fresh generation id, and is replaced atomically
(:func:`bot.files.atomic_write`, as every other file a reload writes). Whoever
writes a snapshot, the service's index or the marker holds :func:`locked` (a
lock file beside the index): a rebuild, or a node taking a bank published by
another node.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..bank import Bank
from ..errors import IndexArtifactError
from ..files import atomic_write

__all__ = [
    "SNAPSHOTS",
    "Marker",
    "bank_version",
    "locked",
    "marker_path",
    "read_marker",
    "write_marker",
]

#: The folder beside the index that holds the snapshots.
SNAPSHOTS = "reloads"


@dataclass(frozen=True)
class Marker:
    """What the last reload published: the bank version, its snapshot and a generation id."""

    version: str
    snapshot: Path
    generation: str

    @property
    def index_path(self) -> Path:
        return self.snapshot / "index.pkl"


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
            snapshot=path.parent / SNAPSHOTS / str(data["snapshot"]),
            generation=str(data["generation"]),
        )
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexArtifactError(f"{path} cannot be read ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise IndexArtifactError(f"{path} is not a reload marker") from None


@contextlib.contextmanager
def locked(index_path: Path) -> Iterator[None]:
    """Hold the reload lock of ``index_path``: two writers of its files run one after the other."""
    index_path.parent.mkdir(parents=True, exist_ok=True)
    with open(index_path.with_name(index_path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_marker(index_path: Path, version: str, snapshot: Path, *, digest: str, faqs: int) -> None:
    """Name ``snapshot`` (bank ``version``) as the bank to serve, with a fresh generation."""
    data = {
        "version": version,
        "snapshot": snapshot.name,
        "generation": uuid.uuid4().hex,
        "digest": digest,
        "faqs": faqs,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write(marker_path(index_path), json.dumps(data).encode())
