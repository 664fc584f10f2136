"""Warming the console: the slow part of the pages' first views, done in the background.

A worker's first console request (the login page, say) starts one daemon
thread that does what would otherwise make the staff's first views slow:

- it reads the dashboard's figures of the longest range a filter allows
  (``ADMIN_MAX_DAYS``), which counts the closed days not counted yet into the
  per-day summary (:mod:`bot.querylog.summary`; once per database: 2.3–2.5 s
  for a year of a million questions);
- it reads the suggestions of the default range, which asks the bank each
  proposed wording once (:func:`bot.analysis.report.asked` remembers the
  replies for as long as that bank is served; about a second per worker).

After a reload swaps the bank, the next console request warms again. A failure
(the database is down, say) is one warning line; the pages then do the work
themselves, as without warming. ``ADMIN_WARM`` false: never.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from bot.analysis.suggestions import suggestions
from bot.match.engine import Bot
from bot.web.admin.filters import parse_filters, today
from bot.web.service import Service, get_service

__all__ = ["Warmer", "init_app"]

log = logging.getLogger(__name__)


class Warmer:
    """One warming thread at a time per process, for the bank it was started for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._bot: weakref.ref[Bot] | None = None  # not kept alive by the warmer
        self.thread: threading.Thread | None = None

    def request(self, service: Service, settings: Mapping[str, Any]) -> threading.Thread | None:
        """Start warming for the bank ``service`` serves now, unless done or under way
        (``settings``, the app's config, is copied for the thread only when one starts)."""
        bot = service.bot
        with self._lock:
            warmed = self._bot is not None and self._bot() is bot
            busy = self.thread is not None and self.thread.is_alive()
            if self._pid == os.getpid() and (warmed or busy):
                return None  # warm for this bank, or warming (a swap is seen next time)
            self._pid, self._bot = os.getpid(), weakref.ref(bot)
            self.thread = threading.Thread(
                target=warm, args=(service, bot, dict(settings)), name="console-warm", daemon=True
            )
            self.thread.start()
            return self.thread


def warm(service: Service, bot: Bot, settings: dict[str, Any]) -> None:
    """Read the year's dashboard figures and the default range's suggestions once."""
    day, longest = today(), int(settings["ADMIN_MAX_DAYS"])
    year = parse_filters({}, today=day, max_days=longest, default_days=longest)
    month = parse_filters({}, today=day, max_days=longest)
    try:
        querylog = service.querylog
        querylog.daily_counts(year.since, year.until)
        suggestions(
            querylog,
            bot,
            month.since,
            month.until,
            settings=settings,
            nearest_for=int(settings["ADMIN_CLUSTERS_SHOWN"]),
        )
    except Exception as e:  # the pages do the work themselves; never a traceback here
        log.warning("the console's first views were not prepared: %s: %s", type(e).__name__, e)


def _on_request() -> None:
    app = current_app
    if app.config["ADMIN_WARM"]:
        warmer: Warmer = app.extensions["xiaocheng_admin_warm"]
        warmer.request(get_service(app), app.config)


def init_app(app: Flask, bp: Any) -> None:
    """Warm on the console's requests (``bp``: the console's blueprint)."""
    app.extensions["xiaocheng_admin_warm"] = Warmer()
    bp.before_request(_on_request)
