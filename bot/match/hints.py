"""The fallback: keyword hints, out-of-remit routing and the human channels.

When no FAQ matches well enough, the question's keywords point to the FAQs
that list them and to those FAQs' categories, giving up to five suggestions.
A question about a topic outside the bureau's remit (traffic police, social
security, …) is told where to go instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..bank import SMALLTALK, Bank, OutsideTopic
from .text import Prepared, TextPipeline

__all__ = ["Hints", "Hint"]


@dataclass(frozen=True)
class Hint:
    keywords: tuple[str, ...]  # the question's words that matched
    faq_positions: tuple[int, ...]  # suggested FAQs, best first
    outside: OutsideTopic | None  # a topic outside the remit, if the question is about one


class Hints:
    """Keyword → FAQ and keyword → outside-topic tables, built once per bank."""

    def __init__(self, bank: Bank, pipeline: TextPipeline) -> None:
        self._bank = bank
        self._keywords: dict[str, list[int]] = {}
        for pos, faq in enumerate(bank.faqs):
            if faq.category == SMALLTALK:
                continue
            for kw in faq.keywords:
                key = pipeline.prepare(kw).text
                if len(key) >= 2:
                    self._keywords.setdefault(key, []).append(pos)
        self._outside: dict[str, OutsideTopic] = {}
        for topic in bank.outside:
            for kw in topic.keywords:
                key = pipeline.prepare(kw).text
                if key:
                    self._outside.setdefault(key, topic)
        # One alternation, longest keywords first, scans a question in one pass.
        longest_first = sorted(self._outside, key=len, reverse=True)
        self._outside_re = (
            re.compile("|".join(map(re.escape, longest_first))) if longest_first else None
        )

    def outside_topic(self, p: Prepared) -> OutsideTopic | None:
        """The out-of-remit topic of the first keyword found in the question, if any."""
        found = self._outside_re.search(p.text) if self._outside_re else None
        return self._outside[found.group(0)] if found else None

    def for_question(
        self, p: Prepared, ranked: list[int], *, limit: int = 5, outside: bool | None = None
    ) -> Hint:
        """Suggest FAQs for ``p``: keyword matches first, then their categories' FAQs.

        ``ranked`` is the retrieval order of FAQ positions, used to order ties.
        ``outside`` is whether the question was judged out of the remit; when
        None (no learned model), an out-of-remit keyword decides. Either way
        the keyword names where to send the visitor.
        """
        if outside is not False:
            topic = self.outside_topic(p)
            if topic is not None:
                return Hint((), (), topic)
            if outside:
                return Hint((), (), None)
        order = {pos: i for i, pos in enumerate(ranked)}
        matched = [key for key in self._keywords if key in p.text]
        direct: dict[int, None] = {}
        for key in sorted(matched, key=len, reverse=True):
            for pos in self._keywords[key]:
                direct.setdefault(pos, None)
        first = sorted(direct, key=lambda pos: order.get(pos, len(order)))
        cats = {self._bank.faqs[pos].category for pos in first}
        rest = sorted(range(len(self._bank.faqs)), key=lambda pos: order.get(pos, len(order)))
        more = [pos for pos in rest if pos not in direct and self._bank.faqs[pos].category in cats]
        return Hint(tuple(matched), tuple((first + more)[:limit]), None)
