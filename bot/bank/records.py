"""The bank's frozen records: :class:`Faq` and its links, :class:`OutsideTopic`, :class:`Bank`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SMALLTALK", "Bank", "Faq", "Link", "OutsideTopic"]

#: The category of small talk (greetings, thanks): answered, but never suggested,
#: listed among the categories or asked for keywords and related questions.
SMALLTALK = "闲聊"


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class Faq:
    """One curated question and its answer, as written in the bank."""

    id: str
    question: str
    answer: str
    category: str
    alternates: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    basis: tuple[str, ...] = ()
    reviewed: dt.date | None = None
    reviewer: str = ""  # who did the review that set `reviewed`, if recorded
    links: tuple[Link, ...] = ()
    path: str = ""
    line: int = 0

    @property
    def texts(self) -> tuple[str, ...]:
        """The standard question followed by its alternates."""
        return (self.question, *self.alternates)


@dataclass(frozen=True)
class OutsideTopic:
    """A topic outside the bureau's remit and where to send the visitor."""

    name: str
    keywords: tuple[str, ...]
    route: str


@dataclass(frozen=True)
class Bank:
    """The validated bank plus its optional extras."""

    faqs: tuple[Faq, ...]
    site: dict[str, str]
    synonyms: dict[str, str]  # variant → canonical
    outside: tuple[OutsideTopic, ...]
    thresholds: dict[str, Any]
    dict_path: Path | None
    digest: str
    by_id: dict[str, Faq] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {f.id: f for f in self.faqs})

    @property
    def categories(self) -> list[str]:
        seen: dict[str, None] = {}
        for f in self.faqs:
            seen.setdefault(f.category, None)
        return list(seen)
