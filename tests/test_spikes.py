"""bot.analysis.spikes: today against the same hours of the same weekday, on a real log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.analysis.spikes import Spike, spikes
from bot.querylog import QueryLog

# A Wednesday, 15:00 China time (07:00 UTC).
NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


@pytest.fixture
def log(tmp_path: Path) -> QueryLog:
    store = QueryLog(f"sqlite:///{tmp_path / 'q.db'}", background=False)
    yield store
    store.close()


def asked(log: QueryLog, faq_id: str, n: int, at: datetime) -> None:
    for i in range(n):
        log.log_query(
            "问题", reply_type="answer", faq_id=faq_id, score=0.9,
            created_at=at + timedelta(seconds=i),
        )  # fmt: skip


def test_a_topic_asked_three_times_its_usual_level_today_is_a_spike(log: QueryLog) -> None:
    for k in range(1, 5):  # the four Wednesdays before, 09:00-15:00 China time
        asked(log, "muck-spill", 3, NOW - timedelta(weeks=k, hours=2))
        asked(log, "vendor-report", 10, NOW - timedelta(weeks=k, hours=2))
    asked(log, "muck-spill", 12, NOW - timedelta(hours=1))  # 4x its usual 3
    asked(log, "vendor-report", 20, NOW - timedelta(hours=1))  # 2x its usual 10: not a spike
    assert spikes(log, NOW) == [Spike("muck-spill", 12, 3.0)]


def test_the_rule_compares_the_same_hours_and_needs_a_minimum(log: QueryLog) -> None:
    # Usually asked in the evening, after the hours that have passed today: it counts 0.
    for k in range(1, 5):
        asked(log, "noise-square-dance", 30, NOW - timedelta(weeks=k) + timedelta(hours=5))
    asked(log, "noise-square-dance", 10, NOW - timedelta(hours=3))
    asked(log, "burn-paper", 9, NOW - timedelta(hours=3))  # new, but fewer than 10
    asked(log, "waterlogging", 15, NOW - timedelta(days=1))  # yesterday is not today
    assert spikes(log, NOW) == [Spike("noise-square-dance", 10, 0.0)]
    assert spikes(log, NOW, min_count=11) == []
    assert spikes(log, NOW, min_count=9) == [
        Spike("noise-square-dance", 10, 0.0),
        Spike("burn-paper", 9, 0.0),
    ]


def test_no_traffic_no_spikes(log: QueryLog) -> None:
    assert spikes(log, NOW) == []
