"""Hot reload in the web app: every worker follows the bank version the last reload published.

:func:`init_app` adds a ``before_request`` hook that lets this process's
:class:`bot.reload.Watcher` look at the version marker (at most once per
``RELOAD_CHECK_INTERVAL_S`` seconds) and load a newer bank in the background.
The watcher is created in each worker on its first request: gunicorn builds the
app once in its master and forks the workers from it, and a watcher's lock and
thread must belong to the process that uses them.

With ``BANK_SHARED`` on, the same hook lets this process's
:class:`bot.reload.Follower` look for a bank another node published (in a
background thread, at most once per ``RELOAD_CHECK_INTERVAL_S``): it becomes
this node's snapshot and marker, and the watchers follow it.

:func:`reload_bank` is what ``POST /admin/reload`` calls: it rebuilds from the
app's bank (publishing it to the other nodes when shared) and serves the
result in the calling process at once; the other workers switch on their
next request.
"""

from __future__ import annotations

from flask import Flask, current_app

from bot.reload import Follower, ReloadResult, SharedBanks, Watcher, rebuild, shared_banks
from bot.web.per_process import PerProcess
from bot.web.service import get_service

__all__ = ["follower", "init_app", "reload_bank", "watcher"]

_EXTENSION = "xiaocheng_reload"
_SHARED = "xiaocheng_shared_bank"


def _process_watcher(app: Flask) -> PerProcess[Watcher]:
    """The watcher of each process of ``app``, created on its first use there."""
    cfg = app.config
    # The marker now is older than the bank the app has just loaded.
    baseline = Watcher.baseline_of(cfg["INDEX_PATH"])
    return PerProcess(
        lambda: Watcher(
            get_service(app),
            cfg["INDEX_PATH"],
            cache_dir=cfg.get("CACHE_DIR"),
            check_interval=float(cfg["RELOAD_CHECK_INTERVAL_S"]),
            baseline=baseline,
        )
    )


def init_app(app: Flask) -> None:
    """Let every worker of ``app`` follow reloads; calling it again changes nothing.

    Call it once the app has loaded its bank (in :func:`bot.web.create_app`).
    """
    if _EXTENSION in app.extensions:
        return
    app.extensions[_EXTENSION] = _process_watcher(app)
    banks = shared_banks(app.config)
    if banks is not None:
        interval = float(app.config["RELOAD_CHECK_INTERVAL_S"])
        app.extensions[_SHARED] = (
            banks,
            PerProcess(
                lambda: Follower(
                    banks,
                    app.config["INDEX_PATH"],
                    check_interval=interval,
                    on_new=lambda: watcher(app).maybe_reload(at_once=True),
                )
            ),
        )
    app.before_request(_check_for_reload)


def watcher(app: Flask) -> Watcher:
    """The watcher of ``app`` in this process."""
    holder: PerProcess[Watcher] = app.extensions[_EXTENSION]
    return holder.get()


def reload_bank(app: Flask) -> ReloadResult:
    """Rebuild from ``app``'s bank and publish it; a bank with errors changes nothing.

    The calling process serves the new engine before this returns; the other
    workers load it on their next request.
    """
    cfg = app.config
    banks: SharedBanks | None = app.extensions.get(_SHARED, (None,))[0]
    result = rebuild(
        cfg["FAQ_DIR"], cfg["INDEX_PATH"], cache_dir=cfg.get("CACHE_DIR"), shared=banks
    )
    if result.bot is not None:
        watcher(app).adopt(result.bot)
    elif result.ok:
        watcher(app).follow()  # a bank published before, say after an undo: load its snapshot
    return result


def follower(app: Flask) -> Follower | None:
    """The follower of ``app`` in this process; None unless BANK_SHARED."""
    shared = app.extensions.get(_SHARED)
    if shared is None:
        return None
    holder: PerProcess[Follower] = shared[1]
    return holder.get()


def _check_for_reload() -> None:
    taker = follower(current_app)
    if taker is not None:
        taker.maybe_follow()
    watcher(current_app).maybe_reload()
