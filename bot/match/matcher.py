"""Rerank retrieved FAQs, calibrate a score in 0..1 and decide how to reply.

The index gives each FAQ its best TF-IDF similarity. The reranker mixes in
two edit-distance similarities (rapidfuzz) computed against every question
of the FAQ: on the normalised text and on its pinyin, so a homophone typo
costs little. The raw mix is mapped to a calibrated score by a logistic
curve fitted on labelled development questions (``python -m bot fit``).
Its inputs (:class:`Evidence`) are the best raw score, its margin over the
next FAQ, how much of the question the best FAQ's wording covers (and by
how much more than the next FAQ's), the share of the question's words the
bank has never seen (a longer word built on a bank word, 非常感谢 on 感谢,
counts as seen), how many of the best-matching wordings belong to
the best FAQ, and the topic model's score of the best FAQ and its margin over
any other FAQ (bot/match/topics.py; that score, weighted, is also part of the
raw mix). Coverage and unknown words tell a question about another
subject (社保, 驾照) from a loosely worded one; votes tell a question close
to one FAQ's many wordings from one that grazes a single alternate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.process import cdist

from .index import Index
from .text import Prepared

__all__ = ["Candidate", "Decision", "Evidence", "MatcherConfig", "Matcher"]


@dataclass(frozen=True)
class MatcherConfig:
    """Tuning values of the reranker and the decision, overridable from thresholds.yaml."""

    retrieval_weight: float = 0.40
    fuzz_weight: float = 0.40
    pinyin_weight: float = 0.20
    # The topic model's score (bot/match/topics.py) added to the raw mix, when the index has one.
    topic_weight: float = 0.0
    k: int = 10
    # Query features in more rows than this are skipped (large banks only; see Index.scores).
    max_postings: int = 1000
    # calibrated score = sigmoid(bias + Σ coef * evidence), one coef per Evidence field
    bias: float = -6.0
    raw_coef: float = 10.0
    margin_coef: float = 6.0
    coverage_coef: float = 0.0
    unknown_coef: float = 0.0
    votes_coef: float = 0.0
    coverage_margin_coef: float = 0.0
    topic_coef: float = 0.0
    topic_margin_coef: float = 0.0
    answer: float = 0.5  # calibrated score from which the best FAQ is answered
    clarify: float = 0.15  # calibrated score from which close FAQs are offered
    # The same for a message (Prepared.message: a complaint the clerk read, not a short
    # question), whose evidence is weaker; below 0: as ``clarify``.
    clarify_message: float = -1.0
    clarify_window: float = 0.12  # raw distance from the best within which FAQs are offered
    max_choices: int = 3
    # Raw distance under which the best two FAQs are a tie: offered, not answered, however
    # short the question (罚款: 罚款怎么交 against 逾期滞纳金). Fitted (bot/quality/fit.py).
    tie_window: float = 0.01
    outside_override: float = 0.9  # raw score that wins over an out-of-remit keyword

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> MatcherConfig:
        """Take known keys from ``values`` (e.g. faq/thresholds.yaml); ignore the rest."""
        names = {f.name: f.type for f in fields(cls)}
        picked: dict[str, Any] = {}
        for key, value in values.items():
            if key in names and isinstance(value, int | float) and not isinstance(value, bool):
                picked[key] = int(value) if names[key] == "int" else float(value)
        return cls(**picked)


@dataclass(frozen=True)
class Candidate:
    """One FAQ (by position in the bank) and how well it matches."""

    pos: int
    raw: float
    retrieval: float
    fuzz: float
    pinyin: float
    votes: float = 0.0  # share of the best-matching rows that are this FAQ's wordings
    topic: float = 0.0  # the topic model's score of this FAQ (0 without a model)
    topic_margin: float = 0.0  # that score minus the best score of any other FAQ


@dataclass(frozen=True)
class Evidence:
    """What the calibration curve looks at for the best candidate."""

    raw: float
    margin: float
    coverage: float  # IDF-weighted share of the question's character bigrams in the FAQ's wording
    unknown: float  # share of the question's content words no bank question uses (nor a part)
    votes: float  # the best FAQ's share of the best-matching rows
    coverage_margin: float  # coverage of the best FAQ minus that of the second
    topic: float = 0.0  # the topic model's score of the best FAQ
    topic_margin: float = 0.0  # ... minus the best topic score of any other FAQ

    def vector(self) -> list[float]:
        return [
            self.raw,
            self.margin,
            self.coverage,
            self.unknown,
            self.votes,
            self.coverage_margin,
            self.topic,
            self.topic_margin,
        ]


@dataclass(frozen=True)
class Decision:
    type: str  # "answer" | "clarify" | "fallback"
    score: float
    candidates: list[Candidate] = field(default_factory=list)
    choices: list[Candidate] = field(default_factory=list)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


class Matcher:
    """Rank candidates for a prepared question and decide answer / clarify / fallback."""

    def __init__(self, index: Index, config: MatcherConfig) -> None:
        self.index = index
        self.config = config
        self._bigram_cache: dict[int, frozenset[str]] = {}

    def rank(self, p: Prepared) -> list[Candidate]:
        c = self.config
        vector = self.index.vector(p)
        found = self.index.top_faqs(p, k=c.k, max_postings=c.max_postings, vector=vector)
        if not found:
            return []
        topic = self._topic_scores(vector)
        row_text, row_py = self.index.row_text, self.index.row_pinyin
        rows = [r for _, _, found_rows, _ in found for r in found_rows]
        # Two C calls for every row of every candidate rather than two per row.
        fuzzes = cdist([p.text], [row_text[r] for r in rows], scorer=fuzz.ratio)[0].tolist()
        pinyins = cdist([p.pinyin_text], [row_py[r] for r in rows], scorer=fuzz.ratio)[0].tolist()
        out, start = [], 0
        for pos, retrieval, found_rows, votes in found:
            end = start + len(found_rows)
            fz, pz = max(fuzzes[start:end]) / 100.0, max(pinyins[start:end]) / 100.0
            start = end
            raw = c.retrieval_weight * retrieval + c.fuzz_weight * fz + c.pinyin_weight * pz
            ts, tm = topic(pos)
            raw += c.topic_weight * ts
            out.append(Candidate(pos, raw, retrieval, fz, pz, votes, ts, tm))
        out.sort(key=lambda x: -x.raw)
        return out

    def _topic_scores(self, vector: tuple[Any, Any]) -> Callable[[int], tuple[float, float]]:
        """An FAQ's topic score and its margin over the best other FAQ (zeros without a model)."""
        model = self.index.topics
        if model is None:
            return lambda pos: (0.0, 0.0)
        s = model.scores(*vector)
        first = int(s.argmax())
        top = float(s[first])
        runner_up = float(np.partition(s, -2)[-2]) if len(s) > 1 else top

        def of(pos: int) -> tuple[float, float]:
            own = float(s[pos])
            return own, own - (runner_up if pos == first else top)

        return of

    def evidence(self, p: Prepared, cands: list[Candidate]) -> Evidence:
        if not cands:
            return Evidence(0.0, 0.0, 0.0, 1.0 if p.words else 0.0, 0.0, 0.0)
        best = cands[0]
        second = cands[1] if len(cands) > 1 else None
        coverage = self._coverage(p, best.pos)
        return Evidence(
            raw=best.raw,
            margin=best.raw - (second.raw if second else 0.0),
            coverage=coverage,
            unknown=self._unknown(p),
            votes=best.votes,
            coverage_margin=coverage - (self._coverage(p, second.pos) if second else 0.0),
            topic=best.topic,
            topic_margin=best.topic_margin,
        )

    def _coverage(self, p: Prepared, pos: int) -> float:
        block = self.index.blocks[1]  # character n-grams carry the IDF of bigrams
        top = float(block.idf.max())
        theirs = self._faq_bigrams(pos)
        mine = _bigrams(p.text)
        weights = {g: float(block.idf[block.vocab[g]]) if g in block.vocab else top for g in mine}
        total = sum(weights.values())
        return sum(w for g, w in weights.items() if g in theirs) / total if total else 0.0

    def _faq_bigrams(self, pos: int) -> frozenset[str]:
        """Character bigrams of all wordings of an FAQ, kept for the FAQs asked about most."""
        found = self._bigram_cache.get(pos)
        if found is None:
            rows = self.index.rows_of(pos)
            found = frozenset().union(*(_bigrams(self.index.row_text[r]) for r in rows))
            if len(self._bigram_cache) >= _BIGRAM_CACHE:
                self._bigram_cache.clear()
            self._bigram_cache[pos] = found
        return found

    def _unknown(self, p: Prepared) -> float:
        if not p.words:
            return 0.0
        vocab = self.index.blocks[0].vocab
        return sum(not _known(w, vocab) for w in p.words) / len(p.words)

    def calibrate(self, ev: Evidence) -> float:
        c = self.config
        coefs = (
            c.raw_coef,
            c.margin_coef,
            c.coverage_coef,
            c.unknown_coef,
            c.votes_coef,
            c.coverage_margin_coef,
            c.topic_coef,
            c.topic_margin_coef,
        )
        return _sigmoid(c.bias + sum(k * v for k, v in zip(coefs, ev.vector(), strict=True)))

    def decide(self, p: Prepared, cands: list[Candidate], *, outside: bool = False) -> Decision:
        """Answer when the best is good and not tied; clarify when close; else fall back."""
        c = self.config
        if not cands:
            return Decision("fallback", 0.0)
        best = cands[0]
        score = self.calibrate(self.evidence(p, cands))
        if outside and best.raw < c.outside_override:
            return Decision("fallback", score, cands)
        tied = len(cands) > 1 and best.raw - cands[1].raw < c.tie_window
        if score >= c.answer and not tied:
            return Decision("answer", score, cands)
        clarify = c.clarify_message if p.message and c.clarify_message >= 0 else c.clarify
        if score >= min(clarify, c.answer):
            close = [x for x in cands if best.raw - x.raw <= c.clarify_window]
            return Decision("clarify", score, cands, close[: c.max_choices])
        return Decision("fallback", score, cands)


_BIGRAM_CACHE = 20_000


def _bigrams(text: str) -> set[str]:
    text = text.replace(" ", "")
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def _known(word: str, vocab: dict[str, int]) -> bool:
    """A bank word, or a longer word built on one (非常感谢 on 感谢)."""
    if word in vocab:
        return True
    return len(word) > 2 and any(word[i : i + 2] in vocab for i in range(len(word) - 1))
