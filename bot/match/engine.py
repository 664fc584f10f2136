"""The bot: a loaded bank, its index and matcher, answering one question at a time.

``Bot.ask`` never raises on odd input (empty, huge, emoji, control
characters): such questions get a normal fallback reply.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bank import SMALLTALK, Bank, Faq, load_bank
from ..config import DEFAULTS
from ..errors import IndexArtifactError
from ..site import render
from .followup import FollowUp
from .hints import Hints
from .index import Index, IndexSettings
from .matcher import Candidate, Decision, Matcher, MatcherConfig
from .remit import REMIT_FILE, Remit
from .text import MAX_CHARS, Prepared, TextPipeline

__all__ = ["Bot", "Reply", "DEFAULT_FAQ_DIR", "clean_text", "faq_card"]

_LINE_BREAKS = re.compile("[\t\n\r]+")

log = logging.getLogger(__name__)

DEFAULT_FAQ_DIR = Path(DEFAULTS["FAQ_DIR"])  # the shipped faq/ (bot.config owns the paths)

MSG_CLARIFY = "您是不是想问："
MSG_HINTS = "抱歉，我没有找到完全对应的答案。您可以看看下面这些相关问题，或通过人工渠道咨询："
MSG_NOTHING = (
    "抱歉，这个问题我暂时回答不了。您可以换个说法再问一次，或通过下面的人工渠道咨询。"
    "我能回答的问题包括：{topics}。"
)
# The human channels follow every fallback, so no message names one of them again.
MSG_OUTSIDE = (
    "您问的问题可能不属于城市管理执法的职责范围，建议咨询{route}。"
    "也可以通过下面的人工渠道咨询，由工作人员为您转办。"
)
ROUTE_OTHER = "负责这件事的主管部门"
# Why a question was judged to be for another agency (Bot.routing).
ROUTED_MODEL = "model"
ROUTED_KEYWORD = "keyword"
MSG_EMPTY = "请输入您想咨询的问题，例如“违章搭建怎么举报”。"


@dataclass(frozen=True)
class Reply:
    """What the bot says to one question (the JSON contract of DESIGN.md, plus extras)."""

    q: str
    type: str
    score: float
    faq: dict[str, Any] | None
    suggestions: list[dict[str, str]]
    candidates: list[dict[str, Any]]
    message: str = ""
    channels: list[dict[str, str]] = field(default_factory=list)
    normalized: str = ""

    @property
    def faq_id(self) -> str | None:
        return self.faq["id"] if self.faq else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "type": self.type,
            "score": round(self.score, 4),
            "faq": self.faq,
            "suggestions": self.suggestions,
            "candidates": self.candidates,
            "message": self.message,
            "channels": self.channels,
        }


class Bot:
    """Answers questions from one validated bank."""

    def __init__(
        self, bank: Bank, pipeline: TextPipeline, index: Index, remit: Remit | None = None
    ) -> None:
        self.bank = bank
        # Whether a message is for another agency: the learned model when there is
        # one (faq/remit.json), else the keywords of faq/outside.yaml.
        self.remit = remit if remit is not None and remit.fitted else None
        threshold = self.remit.threshold if self.remit is not None else 0.9
        self.remit_outside = float(bank.thresholds.get("remit_outside", threshold))
        self.remit_keyword = float(bank.thresholds.get("remit_keyword", 0.0))
        self.pipeline = pipeline
        self.index = index
        self.matcher = Matcher(index, MatcherConfig.from_mapping(bank.thresholds))
        self.hints = Hints(bank, pipeline)
        self.followup = FollowUp(bank, pipeline, index, self.matcher)
        self.site = bank.site
        self._faq_json = [self._render(f) for f in bank.faqs]
        self._pos = {f.id: i for i, f in enumerate(bank.faqs)}
        # Each FAQ's first row is its standard question, already prepared.
        self._typeahead = [
            index.row_text[index.rows_of(pos).start] for pos in range(len(bank.faqs))
        ]
        self.channels = [
            {
                "title": f"拨打{self.site['hotline']}政务服务便民热线",
                "url": f"tel:{self.site['hotline']}",
            },
            {"title": "网上留言", "url": self.site["message_board_url"]},
        ]

    # --- construction ----------------------------------------------------------

    @classmethod
    def load(
        cls,
        faq_dir: str | os.PathLike[str] = DEFAULT_FAQ_DIR,
        *,
        index_path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        rebuild: bool = True,
    ) -> Bot:
        """Load the bank, then the index at ``index_path`` if it is current.

        A missing, stale or foreign index is rebuilt (and saved) when
        ``rebuild`` is true, otherwise IndexArtifactError says why.
        """
        bank = load_bank(faq_dir)
        if cache_dir is None and index_path is not None:
            cache_dir = Path(index_path).parent
        pipeline = pipeline_for(bank, cache_dir=cache_dir)
        index = None
        if index_path is not None and Path(index_path).exists():
            try:
                index = Index.load(index_path, digest=bank.digest)
            except IndexArtifactError as exc:
                if not rebuild:
                    raise
                log.warning("rebuilding the index: %s", exc)
        elif index_path is not None and not rebuild:
            raise IndexArtifactError(f"{index_path} does not exist; run python train.py")
        if index is None:
            index = build_index(bank, pipeline)
            index.meta["faq_dir"] = str(Path(faq_dir).resolve())  # for ask --index alone
            if index_path is not None:
                index.save(index_path)
        return cls(bank, pipeline, index, Remit.load(Path(faq_dir) / REMIT_FILE))

    # --- asking ------------------------------------------------------------------

    def ask(self, q: str, *, context: str | None = None) -> Reply:
        """Answer, clarify or fall back for the visitor's question ``q``.

        ``context`` is the id of the FAQ answered just before; a turn that
        depends on it (那罚多少钱) is read with it (bot/match/followup.py). An unknown
        id is ignored.
        """
        q = _clean(q)
        p = self.pipeline.prepare(q)
        if not p.text:
            return self._fallback(q, p, Decision("fallback", 0.0), message=MSG_EMPTY)
        cands = self.matcher.rank(p)
        routed = self.routing(q, p)
        outside = routed is not None
        # Only a keyword sends it away (幼儿园, 医院): when its content would be answered,
        # that entry is offered rather than the visitor sent to another agency.
        decision = self.matcher.decide(p, cands, outside=outside, offer=routed == ROUTED_KEYWORD)
        prev = self._pos.get(context) if isinstance(context, str) else None
        if prev is not None:
            decision = self.followup.resolve(p, cands, decision, prev, outside=outside)
            cands = decision.candidates
        if decision.type == "answer":
            return self._answer(q, p, decision.score, cands[0].pos, cands)
        if decision.type == "clarify":
            return Reply(
                q=q,
                type="clarify",
                score=decision.score,
                faq=None,
                suggestions=[self._brief(c.pos) for c in decision.choices],
                candidates=self._candidates(cands),
                message=MSG_CLARIFY,
                channels=self.channels,
                normalized=p.text,
            )
        return self._fallback(q, p, decision, outside=outside)

    def is_outside(self, q: str, p: Prepared) -> bool:
        """Whether ``q`` looks like a message for another agency (see :meth:`routing`)."""
        return self.routing(q, p) is not None

    def routing(self, q: str, p: Prepared) -> str | None:
        """Why ``q`` looks like a message for another agency: ROUTED_MODEL, ROUTED_KEYWORD or None.

        With the learned model: when it is sure (ROUTED_MODEL), or when an
        out-of-remit keyword is found and the model does not find the message
        clearly in the remit (ROUTED_KEYWORD). Without a model, by keyword alone.
        """
        keyword = self.hints.outside_topic(p) is not None
        if self.remit is None:
            return ROUTED_KEYWORD if keyword else None
        # Read as it was fitted: without places and frames, with its content words.
        prob = self.remit.outside(p.text, p.words)
        if prob >= self.remit_outside:
            return ROUTED_MODEL
        return ROUTED_KEYWORD if keyword and prob >= self.remit_keyword else None

    def answer(self, faq_id: str, q: str = "") -> Reply | None:
        """The reply for a chosen FAQ (a clicked chip); None for an unknown id."""
        pos = self._pos.get(faq_id)
        if pos is None:
            return None
        q = _clean(q) or self.bank.faqs[pos].question
        return self._answer(q, self.pipeline.prepare(q), 1.0, pos, [])

    def _answer(self, q: str, p: Prepared, score: float, pos: int, cands: list[Candidate]) -> Reply:
        faq = self.bank.faqs[pos]
        related = [self._brief(self._pos[r]) for r in faq.related]
        return Reply(
            q=q,
            type="answer",
            score=score,
            faq=self._faq_json[pos],
            suggestions=related,
            candidates=self._candidates(cands),
            normalized=p.text,
        )

    def _fallback(
        self,
        q: str,
        p: Prepared,
        decision: Decision,
        *,
        message: str | None = None,
        outside: bool | None = None,
    ) -> Reply:
        ranked = [c.pos for c in decision.candidates]
        hint = self.hints.for_question(p, ranked, outside=outside)
        if message is None:
            if outside and hint.outside is None:
                message = MSG_OUTSIDE.format(route=ROUTE_OTHER)
            elif hint.outside is not None:
                message = MSG_OUTSIDE.format(route=hint.outside.route)
            elif hint.faq_positions:
                message = MSG_HINTS
            else:
                message = MSG_NOTHING.format(topics="、".join(self.topics()))
        return Reply(
            q=q,
            type="fallback",
            score=decision.score,
            faq=None,
            suggestions=[self._brief(pos) for pos in hint.faq_positions],
            candidates=self._candidates(decision.candidates),
            message=message,
            channels=self.channels,
            normalized=p.text,
        )

    # --- other views of the bank ---------------------------------------------

    def topics(self) -> list[str]:
        return [c for c in self.bank.categories if c != SMALLTALK]

    def suggest(self, prefix: str, *, limit: int = 8) -> list[dict[str, str]]:
        """Type-ahead: questions containing what was typed, then the closest by meaning."""
        text = self.pipeline.prepare(_clean(prefix)).text
        if not text:
            return []
        hits = [pos for pos, t in enumerate(self._typeahead) if text in t]
        hits.sort(key=lambda pos: (self._typeahead[pos].find(text), len(self._typeahead[pos])))
        if len(hits) < limit and len(text) >= 2:
            for pos, *_ in self.index.top_faqs(self.pipeline.prepare(prefix), k=limit):
                if pos not in hits:
                    hits.append(pos)
        hits = [pos for pos in hits if self.bank.faqs[pos].category != SMALLTALK]
        return [self._brief(pos) for pos in hits[:limit]]

    def faq_json(self, faq_id: str) -> dict[str, Any] | None:
        pos = self._pos.get(faq_id)
        if pos is None:
            return None
        related = [self._brief(self._pos[r]) for r in self.bank.faqs[pos].related]
        return {**self._faq_json[pos], "related": related}

    def hot(self, *, limit: int = 6) -> dict[str, Any]:
        """The greeting and a first question from each topic."""
        seen: dict[str, int] = {}
        for pos, faq in enumerate(self.bank.faqs):
            if faq.category != SMALLTALK:
                seen.setdefault(faq.category, pos)
        greeting = (
            f"您好！我是{self.site['bot_name']}，{self.site['bureau_name']}的智能问答助手。"
            "请问有什么可以帮您？您可以直接输入问题，也可以点击下面的常见问题。"
        )
        return {
            "greeting": greeting,
            "questions": [self._brief(pos) for pos in list(seen.values())[:limit]],
            "channels": self.channels,
        }

    # --- helpers -------------------------------------------------------------

    def _render(self, faq: Faq) -> dict[str, Any]:
        return faq_card(faq, self.site)

    def _brief(self, pos: int) -> dict[str, str]:
        faq = self.bank.faqs[pos]
        return {"id": faq.id, "question": faq.question}

    def _candidates(self, cands: list[Candidate], n: int = 5) -> list[dict[str, Any]]:
        return [{**self._brief(c.pos), "score": round(c.raw, 4)} for c in cands[:n]]


def faq_card(faq: Faq, site: dict[str, str]) -> dict[str, Any]:
    """The ``faq`` object of an answer: the entry with the placeholders of ``site`` filled in.

    The console's editor previews an edited entry with it, before it is saved.
    """
    return {
        "id": faq.id,
        "question": faq.question,
        "category": faq.category,
        "answer": render(faq.answer, site).strip(),
        "basis": list(faq.basis),
        "links": [{"title": ln.title, "url": render(ln.url, site)} for ln in faq.links],
    }


def _clean(q: str) -> str:
    """Drop control characters and cap the length; the text is otherwise kept as typed."""
    if not isinstance(q, str):
        q = str(q)
    return clean_text(q[: MAX_CHARS * 4])[:MAX_CHARS]


def clean_text(text: str) -> str:
    """Turn tabs and line breaks into spaces, drop other control characters, trim.

    "Control" is every Unicode category C: C0/C1 controls, format characters such
    as zero-width spaces and bidi overrides, lone surrogates (which JSON can carry
    but UTF-8 cannot store), private-use and unassigned code points. The one
    cleaner of visitor text: the web API applies it to every field it reads.
    """
    text = _LINE_BREAKS.sub(" ", text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()


def pipeline_for(bank: Bank, *, cache_dir: str | os.PathLike[str] | None = None) -> TextPipeline:
    """The text pipeline of a bank: its dictionary, synonyms and keywords."""
    extra = tuple(kw for f in bank.faqs for kw in f.keywords)
    extra += tuple(kw for t in bank.outside for kw in t.keywords)
    return TextPipeline(
        dict_path=bank.dict_path,
        synonyms=bank.synonyms,
        cache_dir=cache_dir,
        extra_words=extra,
        bank_texts=tuple(t for f in bank.faqs for t in f.texts),
    )


def build_index(
    bank: Bank, pipeline: TextPipeline, *, settings: IndexSettings | None = None
) -> Index:
    """Fit the index over every question and alternate of the bank."""
    rows = [
        (pos, pipeline.prepare(text))
        for pos, faq in enumerate(bank.faqs)
        for text in dict.fromkeys(faq.texts)
    ]
    return Index.build(rows, digest=bank.digest, settings=settings or IndexSettings())
