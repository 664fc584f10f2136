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

import os
import threading

from flask import Flask, current_app

from bot.reload import ReloadResult, Watcher, rebuild
from bot.web.service import get_service

__all__ = ["init_app", "reload_bank", "watcher"]

_EXTENSION = "xiaocheng_reload"


class _ProcessWatcher:
    """The watcher of the current process, created on first use after a fork."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        # The marker now is older than the bank the app has just loaded.
        self._baseline = Watcher.baseline_of(app.config["INDEX_PATH"])
        self._watcher: Watcher | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def get(self) -> Watcher:
        watcher, pid = self._watcher, self._pid
        if watcher is not None and pid == os.getpid():
            return watcher
        with self._lock:
            if self._watcher is None or self._pid != os.getpid():
                cfg = self._app.config
                self._watcher = Watcher(
                    get_service(self._app),
                    cfg["INDEX_PATH"],
                    cache_dir=cfg.get("CACHE_DIR"),
                    check_interval=float(cfg["RELOAD_CHECK_INTERVAL_S"]),
                    baseline=self._baseline,
                )
                self._pid = os.getpid()
            return self._watcher


def init_app(app: Flask) -> None:
    """Let every worker of ``app`` follow reloads; calling it again changes nothing.

    Call it once the app has loaded its bank (in :func:`bot.web.create_app`).
    """
    if _EXTENSION in app.extensions:
        return
    app.extensions[_EXTENSION] = _ProcessWatcher(app)
    app.before_request(_check_for_reload)


def watcher(app: Flask) -> Watcher:
    """The watcher of ``app`` in this process."""
    holder: _ProcessWatcher = app.extensions[_EXTENSION]
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
