"""Spike alerts: an FAQ asked clearly more often today than it usually is.

The rule (:func:`spikes`): compare the answers an FAQ got today, from 00:00
China time until now, with the same hours of the same weekday in each of the
``weeks`` weeks before (so the usual weekday rhythm and the time of day cancel
out). The FAQ is a spike when today's count is at least ``min_count`` and at
least ``ratio`` times its usual level, the mean of those weeks (a usual level
below 1 counts as 1, so a topic never asked before needs ``min_count``
askings today). Defaults: 4 weeks, 10 askings, 3 times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from bot.config import CHINA_TIME
from bot.querylog import QueryLog

__all__ = ["Spike", "spikes"]

_ALL = 100_000  # more FAQs than any bank has


@dataclass(frozen=True)
class Spike:
    faq_id: str
    today: int  # answers with the FAQ today until now
    usual: float  # mean over the same hours of the same weekday in the weeks before

    @property
    def ratio(self) -> float:
        return self.today / max(self.usual, 1.0)


def spikes(
    log: QueryLog,
    now: datetime | None = None,
    *,
    weeks: int = 4,
    min_count: int = 10,
    ratio: float = 3.0,
) -> list[Spike]:
    """The FAQs asked clearly more often today than usual, strongest first."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = datetime.combine(now.astimezone(CHINA_TIME).date(), time(), CHINA_TIME)
    start = midnight.astimezone(UTC)

    def counts(shift: timedelta) -> dict[str, int]:
        rows = log.top_faqs(start - shift, now - shift, limit=_ALL)
        return {r["faq_id"]: int(r["count"]) for r in rows}

    today = counts(timedelta(0))
    before = [counts(timedelta(weeks=k)) for k in range(1, weeks + 1)]
    found = []
    for faq_id, n in today.items():
        usual = sum(week.get(faq_id, 0) for week in before) / max(weeks, 1)
        if n >= min_count and n >= ratio * max(usual, 1.0):
            found.append(Spike(faq_id, n, usual))
    found.sort(key=lambda s: (-s.ratio, -s.today, s.faq_id))
    return found
