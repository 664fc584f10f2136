"""The unanswered questions of a period as clusters with their nearest FAQ
(:func:`unanswered_clusters`, shared by the console and ``python -m bot report``),
and the ``--since`` syntax (:func:`parse_since`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bot.analysis.clusters import Cluster, cluster, with_nearest
from bot.config import CHINA_TIME, DEFAULTS
from bot.match.engine import Bot
from bot.querylog import QueryLog

__all__ = ["parse_since", "unanswered_clusters"]

_SINCE = re.compile(r"(\d{1,4})\s*([dhw])")
_UNITS = {"d": "days", "h": "hours", "w": "weeks"}


def unanswered_clusters(
    log: QueryLog,
    bot: Bot,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    nearest_for: int | None = 50,
) -> list[Cluster]:
    """Cluster the unanswered and low-confidence questions of [since, until), largest first.

    The nearest FAQ (by the engine's own ranking) is looked up for the first
    ``nearest_for`` clusters only (None: all), since each lookup asks the
    engine once; the others keep ``nearest=None`` and propose a new entry.
    """
    # The CLUSTER_* settings; DEFAULTS for any not given (callers may pass a partial mapping).
    settings = {**DEFAULTS, **{k: v for k, v in (settings or {}).items() if v is not None}}
    rows = log.unanswered(
        since,
        until,
        threshold=float(settings["CLUSTER_LOW_SCORE"]),
        limit=int(settings["CLUSTER_MAX_ROWS"]),
    )
    clusters = cluster(rows, threshold=float(settings["CLUSTER_THRESHOLD"]))
    return with_nearest(
        clusters,
        lambda question: next(iter(bot.ask(question).candidates), None),
        alternate_min_score=float(settings["CLUSTER_ALTERNATE_MIN_SCORE"]),
        limit=nearest_for,
    )


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``2w`` before ``now``, or a date ``2024-03-01`` (from 00:00
    China time); returned in UTC. Raises ValueError for anything else."""
    now = now or datetime.now(UTC)
    text = text.strip()
    m = _SINCE.fullmatch(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use a number of days, hours or weeks (7d, 24h, 2w) "
            "or a date (2024-03-01)"
        ) from None
    return datetime.combine(day, time(), CHINA_TIME).astimezone(UTC)
