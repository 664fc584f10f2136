"""Hot reload in the web app: every worker follows the bank version the last reload published.

:func:`init_app` adds a ``before_request`` hook that lets this process's
:class:`bot.reload.Watcher` look at the version marker (at most once per
``RELOAD_CHECK_INTERVAL_S`` seconds) and load a newer bank in the background.
The watcher is created in each worker on its first request: gunicorn builds the
app once in its master and forks the workers from it, and a watcher's lock and
thread must belong to the process that uses them.

:func:`reload_bank` is what ``POST /admin/reload`` calls: it rebuilds from the
app's bank and serves the result in the calling process at once; the other
workers switch on their next request.
"""

from __future__ import annotations

from flask import Flask, current_app

from bot.reload import ReloadResult, Watcher, rebuild
from bot.web.per_process import PerProcess
from bot.web.service import get_service

__all__ = ["init_app", "reload_bank", "watcher"]

_EXTENSION = "xiaocheng_reload"


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
    result = rebuild(cfg["FAQ_DIR"], cfg["INDEX_PATH"], cache_dir=cfg.get("CACHE_DIR"))
    if result.bot is not None:
        watcher(app).adopt(result.bot)
    elif result.ok:
        watcher(app).follow()  # a bank published before, say after an undo: load its snapshot
    return result


def _check_for_reload() -> None:
    watcher(current_app).maybe_reload()
