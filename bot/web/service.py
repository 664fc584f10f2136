"""The engine and query log one app serves: :class:`Service`, stored once per app.

:func:`init_app` puts it on the app, :func:`get_service` reads it in a request
(or for an app passed in); nothing else knows where it is kept.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app

from bot.match.engine import Bot
from bot.querylog import QueryLog
from bot.web.per_process import PerProcess

__all__ = ["Service", "get_service", "init_app"]

# The key tests and tools read on app.extensions; only this module writes it.
EXTENSION = "xiaocheng"


class Service:
    """The engine and the query log of one app, shared by all its requests.

    ``bot`` is read once per request; :meth:`swap_bot` replaces it with a single
    attribute assignment, so a request sees either the old or the new engine and
    none waits for the swap.

    The query log is opened lazily in each process: gunicorn loads the app once
    in its master and forks the workers from it, and a query log's writer thread
    and database connections must belong to the process that uses them.
    """

    def __init__(self, bot: Bot, open_querylog: Callable[[], QueryLog]) -> None:
        self._bot = bot
        self._querylog = PerProcess(open_querylog)

    @property
    def bot(self) -> Bot:
        return self._bot

    def swap_bot(self, bot: Bot) -> Bot:
        """Serve ``bot`` from now on; return the engine it replaces."""
        old, self._bot = self._bot, bot
        return old

    @property
    def querylog(self) -> QueryLog:
        """The query log of this process, opened on first use."""
        return self._querylog.get()

    def close(self) -> None:
        """Write this process's queued query-log rows and close the log."""
        self._querylog.discard(lambda log: log.close())


def init_app(app: Flask, service: Service) -> Service:
    """Serve ``service`` from ``app``."""
    app.extensions[EXTENSION] = service
    return service


def get_service(app: Flask | None = None) -> Service:
    """The :class:`Service` of ``app``, by default of the current request's app."""
    service: Service = (app or current_app).extensions[EXTENSION]
    return service
