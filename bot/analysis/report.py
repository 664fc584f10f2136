"""What the query log of a period teaches the bank, shared by the console and
``python -m bot report``: the unanswered questions as clusters with their
nearest FAQ (:func:`unanswered_clusters`), the visitor wordings that ended in
an FAQ by the visitor's own choice (:func:`learned_by_faq`), and the
``--since`` syntax (:func:`parse_since`).
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bot.analysis.clusters import Cluster, cluster, with_nearest, yaml_scalar
from bot.config import CHINA_TIME, DEFAULTS
from bot.match.engine import Bot, Reply
from bot.match.text import normalize
from bot.querylog import QueryLog
from bot.querylog.masking import TOKENS

__all__ = [
    "Learned",
    "asked",
    "known_wordings",
    "learned_by_faq",
    "parse_since",
    "unanswered_clusters",
]

# What each bank served answers to the questions the analysis asks it (the nearest FAQ
# of a cluster, a suggestion's reply today): a reload serves a new Bot, and the old
# one's replies go with it. At most _ASKED_MAX per bank, then it starts afresh.
_ASKED: weakref.WeakKeyDictionary[Bot, dict[str, Reply]] = weakref.WeakKeyDictionary()
_ASKED_LOCK = threading.Lock()
_ASKED_MAX = 4096
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
    """Cluster the unanswered and low-confidence questions of [since, until), largest first:
    the ``CLUSTER_MAX_ROWS`` distinct questions asked most often, each with its count.

    The nearest FAQ (by the engine's own ranking) is looked up for the first
    ``nearest_for`` clusters only (None: all), since each lookup asks the
    engine once; the others keep ``nearest=None`` and propose a new entry.
    """
    # The CLUSTER_* settings; DEFAULTS for any not given (callers may pass a partial mapping).
    settings = {**DEFAULTS, **{k: v for k, v in (settings or {}).items() if v is not None}}
    # Grouped by text in the database: a year of questions is a few thousand texts.
    rows = log.unanswered_texts(
        since,
        until,
        threshold=float(settings["CLUSTER_LOW_SCORE"]),
        limit=int(settings["CLUSTER_MAX_ROWS"]),
    )
    clusters = cluster(rows, threshold=float(settings["CLUSTER_THRESHOLD"]))
    return with_nearest(
        clusters,
        lambda question: next(iter(asked(bot, question).candidates), None),
        alternate_min_score=float(settings["CLUSTER_ALTERNATE_MIN_SCORE"]),
        limit=nearest_for,
    )


def asked(bot: Bot, question: str) -> Reply:
    """``bot.ask(question)``, remembered for as long as ``bot`` is served: the pages of
    the analysis ask the same wordings again on every view."""
    with _ASKED_LOCK:
        memo = _ASKED.setdefault(bot, {})
        reply = memo.get(question)
    if reply is None:
        reply = bot.ask(question)
        with _ASKED_LOCK:
            if len(memo) >= _ASKED_MAX:
                memo.clear()
            memo[question] = reply
    return reply


@dataclass(frozen=True)
class Learned:
    """An FAQ and the visitor wordings that ended in it by choice or helpful feedback.

    ``wordings``: rows ``{"question", "chosen", "helpful", "count"}`` of
    :meth:`QueryLog.learned_wordings`, most ``count`` first; wordings the FAQ
    already has (its question or an alternate, after normalising) are left out.
    """

    faq_id: str
    question: str
    wordings: tuple[dict[str, object], ...]

    @property
    def count(self) -> int:
        return sum(int(str(w["count"])) for w in self.wordings)

    def yaml_snippet(self) -> str:
        """The wordings as alternates to paste under the FAQ's entry."""
        lines = [
            f"# 访客自己选到条目 {self.faq_id}「{self.question}」的问法，{self.count} 次。",
            f"# 把下面几行加到条目 {self.faq_id} 的 alternates: 下：",
        ]
        lines += [f"      - {yaml_scalar(str(w['question']))}" for w in self.wordings]
        return "\n".join(lines) + "\n"


def learned_by_faq(
    log: QueryLog,
    bot: Bot,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    limit: int | None = 500,
) -> list[Learned]:
    """The visitor wordings of [since, until) that ended in an FAQ by the visitor's own
    choice (a clicked chip) or by helpful feedback after an answer scored below the
    ``CLUSTER_LOW_SCORE`` setting (of ``settings``, else the default), grouped by
    FAQ, most often first: candidates for the FAQ's alternates (issue 11, item 3).

    FAQs no longer in the bank, wordings the FAQ already has and wordings with
    masked personal data (no use as an alternate) are left out.
    """
    low_score = float({**DEFAULTS, **(settings or {})}["CLUSTER_LOW_SCORE"])
    faqs = {f.id: f for f in bot.bank.faqs}
    grouped: dict[str, list[dict[str, object]]] = {}
    for row in log.learned_wordings(since, until, low_score=low_score, limit=limit):
        faq = faqs.get(str(row["faq_id"]))
        if faq is None:
            continue
        question = str(row["question"])
        if any(token in question for token in TOKENS.values()):
            continue
        if normalize(question) in known_wordings(faq.texts):
            continue
        grouped.setdefault(faq.id, []).append(
            {k: row[k] for k in ("question", "chosen", "helpful", "count")}
        )
    found = [Learned(i, faqs[i].question, tuple(rows)) for i, rows in grouped.items()]
    found.sort(key=lambda x: (-x.count, x.faq_id))
    return found


@functools.lru_cache(maxsize=4096)
def known_wordings(texts: tuple[str, ...]) -> frozenset[str]:
    """An FAQ's question and alternates (``Faq.texts``), normalised: wordings it has."""
    return frozenset(normalize(t) for t in texts)


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
