"""The fallback: keyword hints, out-of-remit routing and the human channels.

When no FAQ matches well enough, the question's keywords point to the FAQs
that list them and to those FAQs' categories, giving up to five suggestions.
A question about a topic outside the bureau's remit (traffic police, social
security, …) is told where to go instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bank import Bank, OutsideTopic
from .text import Prepared, TextPipeline

__all__ = ["Hints", "Hint"]

SMALLTALK = "闲聊"


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
        self._outside = [
            (pipeline.prepare(kw).text, topic) for topic in bank.outside for kw in topic.keywords
        ]
        self._outside = [(k, t) for k, t in self._outside if k]
        self._outside.sort(key=lambda kt: -len(kt[0]))

    def outside_topic(self, p: Prepared) -> OutsideTopic | None:
        """The out-of-remit topic whose longest keyword the question contains."""
        for key, topic in self._outside:
            if key in p.text:
                return topic
        return None

    def for_question(self, p: Prepared, ranked: list[int], *, limit: int = 5) -> Hint:
        """Suggest FAQs for ``p``: keyword matches first, then their categories' FAQs.

        ``ranked`` is the retrieval order of FAQ positions, used to order ties.
        """
        outside = self.outside_topic(p)
        if outside is not None:
            return Hint((), (), outside)
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
