"""Follow-up turns: read a turn in the light of the previous answer when it depends on it.

A visitor who was just answered 路边流动摊贩占道经营怎么举报 and types 那罚多少钱
asks about the fines for street vending, not about fines in general. The
caller passes the previous answer's FAQ; :meth:`FollowUp.resolve` then

1. decides whether the turn is *elliptic*: it starts with 那/那么/如果/要是/
   还有/另外…, ends with 呢, or is too thin to stand alone (at most
   ``thin_words`` topic words, or the alone reply is not an answer). A turn
   that is none of these is a full question and keeps its alone reply, with
   no extra search; nor is a smalltalk answer (谢谢, 你好) ever replaced;
2. searches once more with the previous FAQ's topic words (its curated
   keywords first, then the words of its question) put before the turn,
   blends each FAQ's alone and contextual raw scores, raises the previous
   FAQ's curated ``related`` entries (and, less, the FAQ itself) a little,
   and decides with the Bot's own matcher, so the thresholds and the reply
   types are the ones every question gets. A turn that clearly refers back
   (marked, thin, or no answer alone) whose best match among the previous FAQ's
   curated ``related`` entries (its follow-up prompts) stands out is
   answered with that entry (``_prompt``);
3. otherwise keeps the contextual decision only if it improves on the alone reply (an
   answer where there was none, or a different answer) and the turn's own
   words back it: when the turn alone was already an answer, the new
   answer's alone raw score (for an FAQ the alone search did not return, the
   lowest it returned) may be at most ``support_window`` behind the alone
   best, and a turn with topic words of its own is never answered with the
   previous FAQ again. So a full question on another topic is answered as if
   alone, never pulled back to the previous topic. The related-entry rule of
   step 2 replaces an alone answer only if the related entry beats it in the
   contextual search, i.e. the previous topic changes the reading.

At most one extra search (``Matcher.rank``) is made per turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..bank import SMALLTALK, Bank
from .index import Index
from .matcher import Candidate, Decision, Matcher
from .text import Prepared, TextPipeline

__all__ = ["FollowUp", "FollowUpConfig", "is_marked"]

# Openings and endings that make a turn lean on what was said before.
_LEADING = re.compile(r"^(那如果|那要是|那么|那|如果|要是|假如|还有|另外|还是|再问)")
_TRAILING = re.compile(r"呢[\W_]*$")


@dataclass(frozen=True)
class FollowUpConfig:
    """Tuning values of the follow-up reading.

    Chosen on the fit half of tests/data/followups.yaml (bench/bench_followup.py);
    ``context_weight``, ``prompt_ratio`` and ``prompt_margin`` again for the rerank and
    thresholds of 2026-12-02 (fourth session): the best of a grid on the fit half,
    counting a switch pulled back as three misses (66 of 67 right, none pulled).
    """

    thin_words: int = 2  # a turn with at most this many topic words is too thin to stand alone
    topic_idf: float = 5.0  # a content word rarer than this (word-block IDF) is a topic word
    context_words: int = 3  # how many of the previous FAQ's topic words are put before the turn
    context_weight: float = 0.3  # share of the contextual search in an FAQ's blended raw score
    related_bonus: float = 0.08  # raw score added to the previous FAQ's related entries
    self_bonus: float = 0.03  # raw score added to the previous FAQ itself
    support_window: float = 0.30  # how far behind the alone best a replacing answer may be
    prompt_ratio: float = 0.45  # a related entry within this share of the best blended score…
    prompt_margin: float = 0.20  # …and this far ahead of the next related entry is the answer


def is_marked(text: str) -> bool:
    """Whether a turn opens or ends with a word that refers back (那…, 如果…, …呢)."""
    text = text.strip()
    return bool(_LEADING.match(text) or _TRAILING.search(text))


class FollowUp:
    """Reads elliptic turns with the previous FAQ's topic words, for one bank."""

    def __init__(
        self,
        bank: Bank,
        pipeline: TextPipeline,
        index: Index,
        matcher: Matcher,
        config: FollowUpConfig | None = None,
    ) -> None:
        self.bank = bank
        self.pipeline = pipeline
        self.index = index
        self.matcher = matcher
        self.config = config or FollowUpConfig()
        self._pos = {f.id: i for i, f in enumerate(bank.faqs)}
        self._context: dict[int, Prepared] = {}

    def resolve(
        self,
        p: Prepared,
        cands: list[Candidate],
        decision: Decision,
        prev: int,
        *,
        outside: bool = False,
    ) -> Decision:
        """The decision for the turn ``p`` after the FAQ at position ``prev`` was answered.

        ``p``, ``cands`` and ``decision`` are the turn read alone; the alone
        decision is returned unchanged when the turn does not depend on ``prev``.
        """
        alone_best = cands[0] if cands else None
        if decision.type == "answer" and alone_best is not None:
            if self.bank.faqs[alone_best.pos].category == SMALLTALK:
                return decision
        if not self.elliptic(p, decision):
            return decision
        ctx = self.contextual(p, prev)
        in_ctx = self.matcher.rank(ctx)
        blended = self._blend(cands, in_ctx)
        marked = is_marked(p.text)
        thin = len(self.topic_words(p.words)) <= self.config.thin_words
        if not outside and (marked or decision.type != "answer" or thin):
            prompt, margin = self._prompt(blended, prev), 0.0
            if prompt is None and marked:
                # A turn that refers back may match a general entry alone far better
                # than the related one it asks for (那罚多少钱: the fine standard alone);
                # read with the previous topic, the related entry must then win clearly.
                prompt, margin = self._prompt(in_ctx, prev), self.config.prompt_margin
            if prompt is not None and decision.type == "answer" and alone_best is not None:
                # The previous topic must change the reading: in the contextual search
                # the related entry beats the turn's own answer (那路上积水了 stays 积水).
                raw = {x.pos: x.raw for x in in_ctx}
                floor = in_ctx[-1].raw if in_ctx else 0.0
                if raw.get(prompt.pos, floor) - margin <= raw.get(alone_best.pos, floor):
                    prompt = None
            if prompt is not None:
                ranked = [prompt, *(x for x in blended if x.pos != prompt.pos)]
                score = self.matcher.calibrate(self.matcher.evidence(ctx, ranked))
                return Decision("answer", max(score, decision.score), ranked)
        ranked = self._favour(blended, prev)
        found = self.matcher.decide(ctx, ranked, outside=outside)
        return found if self._better(p, found, decision, cands, prev) else decision

    def elliptic(self, p: Prepared, decision: Decision) -> bool:
        """Marked (那…, …呢), thin (few topic words) or not answerable alone."""
        if is_marked(p.text):
            return True
        if decision.type != "answer":
            return True
        return len(self.topic_words(p.words)) <= self.config.thin_words

    def topic_words(self, words: tuple[str, ...]) -> list[str]:
        """The content words rare enough in the bank to name a topic (not 怎么, 管, 举报)."""
        block = self.index.blocks[0]
        out = []
        for w in dict.fromkeys(words):
            col = block.vocab.get(w)
            if col is None or float(block.idf[col]) >= self.config.topic_idf:
                out.append(w)
        return out

    def contextual(self, p: Prepared, prev: int) -> Prepared:
        """The turn with the previous FAQ's topic words put before it."""
        head = self._context_of(prev)
        if not head.text:
            return p
        sep = " " if p.text[:1].isascii() or head.text[-1:].isascii() else ""
        return Prepared(
            text=f"{head.text}{sep}{p.text}",
            words=head.words + p.words,
            pinyin=head.pinyin + p.pinyin,
            tokens=head.tokens + p.tokens,
            message=p.message,
        )

    # --- helpers -------------------------------------------------------------

    def _context_of(self, prev: int) -> Prepared:
        """The previous FAQ's topic words as one prepared text (cached).

        Its curated keywords come first, then the words of its question; only
        topic words are kept, the first ``context_words`` of them.
        """
        found = self._context.get(prev)
        if found is None:
            faq = self.bank.faqs[prev]
            words: list[str] = []
            for text in (*faq.keywords, faq.question):
                words.extend(self.pipeline.prepare(text).words)
            topic = self.topic_words(tuple(words))
            found = self.pipeline.prepare("".join(topic[: self.config.context_words]))
            self._context[prev] = found
        return found

    def _blend(self, alone: list[Candidate], ctx: list[Candidate]) -> list[Candidate]:
        """Each FAQ's raw score: (1 − w) × its alone score + w × its contextual score.

        An FAQ missing from one list is given that list's last (lowest) score:
        it is at most that good there.
        """
        w = self.config.context_weight
        if not alone:
            return ctx
        if not ctx:
            return alone
        a = {x.pos: x for x in alone}
        c = {x.pos: x for x in ctx}
        out = []
        for pos in dict.fromkeys([*a, *c]):
            x = a.get(pos) or _floor(pos, alone[-1])
            y = c.get(pos) or _floor(pos, ctx[-1])
            out.append(
                Candidate(
                    pos,
                    (1 - w) * x.raw + w * y.raw,
                    (1 - w) * x.retrieval + w * y.retrieval,
                    (1 - w) * x.fuzz + w * y.fuzz,
                    (1 - w) * x.pinyin + w * y.pinyin,
                    (1 - w) * x.votes + w * y.votes,
                )
            )
        out.sort(key=lambda x: -x.raw)
        return out

    def _prompt(self, blended: list[Candidate], prev: int) -> Candidate | None:
        """The previous FAQ's related entry a clearly referring turn asks for, if one stands out.

        The curated ``related`` entries are the follow-up prompts of an answer
        (Azure's context-only prompts): after 路边摆摊 the turn 那罚多少钱 asks for
        the vending consequences, not for fines in general. The best related
        entry is taken when its blended score is at least ``prompt_ratio`` of the
        best blended score and ``prompt_margin`` ahead of the next related entry.
        """
        related = {self._pos[r] for r in self.bank.faqs[prev].related if r in self._pos}
        ranked = [x for x in blended if x.pos in related]
        if not ranked or not blended or blended[0].raw <= 0:
            return None
        best, runner = ranked[0], (ranked[1].raw if len(ranked) > 1 else 0.0)
        c = self.config
        if best.raw >= c.prompt_ratio * blended[0].raw and best.raw - runner >= c.prompt_margin:
            return best
        return None

    def _favour(self, ranked: list[Candidate], prev: int) -> list[Candidate]:
        """Raise the previous FAQ's related entries and the FAQ itself a little."""
        c = self.config
        related = {self._pos[r] for r in self.bank.faqs[prev].related if r in self._pos}
        out = []
        for cand in ranked:
            bonus = c.related_bonus if cand.pos in related else 0.0
            if cand.pos == prev:
                bonus = c.self_bonus
            out.append(_raised(cand, bonus) if bonus else cand)
        out.sort(key=lambda x: -x.raw)
        return out

    def _better(
        self, p: Prepared, found: Decision, alone: Decision, cands: list[Candidate], prev: int
    ) -> bool:
        """Whether the contextual decision replaces the alone one (the rule of the docstring)."""
        rank = {"answer": 2, "clarify": 1, "fallback": 0}
        if rank[found.type] < rank[alone.type]:
            return False
        if found.type != "answer":
            return rank[found.type] > rank[alone.type]
        best = found.candidates[0].pos
        if alone.type != "answer":
            return True
        if best == prev and self.topic_words(p.words):
            # A turn with topic words and an answer of its own (那路上积水了找谁 after
            # the street-light answer) is not sent back to what the visitor just read.
            return False
        if best == cands[0].pos:
            return False  # the same answer: keep the alone score and candidates
        raw = {x.pos: x.raw for x in cands}
        return cands[0].raw - raw.get(best, cands[-1].raw) <= self.config.support_window


def _floor(pos: int, last: Candidate) -> Candidate:
    return Candidate(pos, last.raw, last.retrieval, last.fuzz, last.pinyin, 0.0)


def _raised(cand: Candidate, bonus: float) -> Candidate:
    return replace(cand, raw=cand.raw + bonus)
