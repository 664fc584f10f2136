"""Hot reload: publish a validated bank and switch every worker to it, no restart.

Two halves, joined only by files in the instance folder:

- :func:`rebuild` (behind ``POST /admin/reload`` and ``python -m bot reload``)
  validates the bank in the FAQ folder, copies it into a *snapshot*
  (``reloads/<version>/`` beside the index, with its own index), updates the
  service's index file, and then writes the *marker* (``index.pkl.version``,
  replaced atomically) naming that snapshot. A bank with errors is refused
  with every error listed, and nothing is written.
- Every snapshot ends with a *manifest* (``MANIFEST.json``: the size and
  sha256 of each of its files), written last. A snapshot is used only after
  :func:`verify_snapshot` has checked every file against it: a truncated or
  damaged file makes the reload fail with an error naming it (the snapshot is
  moved aside, so the next reload builds it again), and the service's index
  is written only from bytes that matched the manifest.
- A :class:`Watcher` in each worker process reads the marker at most once per
  check interval. When it names a bank version other than the one the worker
  serves, a background thread loads the snapshot while requests keep being
  answered by the old engine, then swaps the new one in with one assignment.
  A load that fails (a damaged snapshot included) is logged once and the old
  engine keeps serving.

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

Several nodes (``BANK_SHARED``): :func:`rebuild` also stores the verified
snapshot in the query log's database (:class:`SharedBanks`), and a
:class:`Follower` in each worker takes a newer publication into its own
node's instance folder as a snapshot and marker, checked file by file against
the manifest, for the watchers to swap in as above (:mod:`.shared`).

One job per module: :mod:`.marker` (the version marker, its lock, atomic
writes), :mod:`.snapshot` (build, verify, set aside and prune snapshots),
:mod:`.publish` (:func:`rebuild`), :mod:`.shared` (publications in the shared
database) and :mod:`.watch` (:class:`Watcher`).
This package never imports Flask; `bot.web.reload` wires the watcher into
the web app.
"""

from .marker import Marker, bank_version, marker_path, read_marker
from .publish import ReloadResult, rebuild
from .shared import Follower, SharedBanks, published_bot, shared_banks
from .snapshot import KEEP_SNAPSHOTS, verify_snapshot
from .snapshot import MANIFEST as MANIFEST
from .watch import SwapsBots as SwapsBots
from .watch import Watcher

__all__ = [
    "KEEP_SNAPSHOTS",
    "Follower",
    "Marker",
    "ReloadResult",
    "SharedBanks",
    "Watcher",
    "bank_version",
    "marker_path",
    "published_bot",
    "read_marker",
    "rebuild",
    "shared_banks",
    "verify_snapshot",
]
