"""The suggestions inbox: alternates to add, proposed from what visitors did.

Two paths propose a wording for an FAQ: the visitors' own choices and helpful
feedback (:func:`bot.analysis.report.learned_by_faq`), and clusters of
unanswered questions whose nearest FAQ is close
(:func:`bot.analysis.report.unanswered_clusters`, ``suggest_alternates``).
:func:`suggestions` merges them per (FAQ, wording), with the evidence of each
path, and leaves out what needs no decision any more or is outweighed:
wordings staff rejected, a cluster's proposal of a wording that visitors
themselves led to another FAQ, wordings the FAQ already has, wordings with
masked personal data, FAQs no longer in the bank, and wordings the bank
answers with that FAQ today (they disappear by themselves once an alternate or
another change reaches them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.analysis.report import asked, known_wordings, learned_by_faq, unanswered_clusters
from bot.match.engine import Bot
from bot.match.text import normalize
from bot.querylog import QueryLog
from bot.querylog.masking import TOKENS

__all__ = ["Suggestion", "suggestions"]


@dataclass(frozen=True)
class Suggestion:
    """One wording proposed as an alternate of one FAQ, with its evidence."""

    faq_id: str
    question: str  # the FAQ's standard question
    wording: str
    chosen: int  # visitors who reached the FAQ by clicking it after this wording
    helpful: int  # helpful feedback after a low-score answer with the FAQ
    clustered: int  # questions in clusters whose nearest FAQ is this one
    today: str  # what the bot replies to the wording now: answer / clarify / fallback
    today_faq: str | None  # the FAQ it answers with now, if any

    @property
    def count(self) -> int:
        return self.chosen + self.helpful + self.clustered


def suggestions(
    log: QueryLog,
    bot: Bot,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    nearest_for: int | None = 50,
) -> list[Suggestion]:
    """The open suggestions of [since, until), most evidence first."""
    found: dict[tuple[str, str], dict[str, Any]] = {}

    def add(faq_id: str, wording: str, kind: str, n: int) -> None:
        key = (faq_id, normalize(wording))
        row = found.setdefault(key, {"wording": wording, "chosen": 0, "helpful": 0, "clustered": 0})
        row[kind] += n

    for item in learned_by_faq(log, bot, since, until, settings=settings):
        for w in item.wordings:
            add(item.faq_id, str(w["question"]), "chosen", int(str(w["chosen"])))
            add(item.faq_id, str(w["question"]), "helpful", int(str(w["helpful"])))
    for c in unanswered_clusters(
        log, bot, since, until, settings=settings, nearest_for=nearest_for
    ):
        if c.suggest_alternates and c.nearest is not None:
            for example in c.examples:
                add(c.nearest.id, example, "clustered", c.count)

    rejected = {(f, normalize(w)) for f, w in log.rejected()}
    # A wording visitors themselves led to an FAQ is not also proposed, on the
    # cluster's weaker evidence alone, for another one.
    by_visitors = {norm for (_, norm), row in found.items() if row["chosen"] or row["helpful"]}
    out = []
    for (faq_id, norm), row in found.items():
        faq = bot.bank.by_id.get(faq_id)
        wording = row["wording"]
        if faq is None or (faq_id, norm) in rejected:
            continue
        if norm in by_visitors and not (row["chosen"] or row["helpful"]):
            continue
        if any(token in wording for token in TOKENS.values()):
            continue
        if norm in known_wordings(faq.texts):
            continue
        reply = asked(bot, wording)
        if reply.type == "answer" and reply.faq_id == faq_id:
            continue
        out.append(
            Suggestion(
                faq_id,
                faq.question,
                wording,
                row["chosen"],
                row["helpful"],
                row["clustered"],
                reply.type,
                reply.faq_id,
            )  # fmt: skip
        )
    out.sort(key=lambda s: (-s.count, s.faq_id, s.wording))
    return out
