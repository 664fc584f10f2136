"""Rerank retrieved FAQs, calibrate a score in 0..1 and decide how to reply.

The index gives each FAQ its best TF-IDF similarity over the best
``MatcherConfig.rows`` rows. The reranker scores those rows again and mixes,
for each FAQ, the best of its rows on each of: a character-unigram BM25
(saturated counts, length-normalised, as a share of what the question scores
against itself, so an exact wording scores 1), the pinyin edit-distance ratio
(rapidfuzz: a homophone typo costs little), and optionally the text's
edit-distance and longest-common-subsequence ratios (weight 0 by default: on
BQ and LCQMC they added nothing once BM25 was in); adds the FAQ's share of
the best rows ("votes": a question close to several wordings of one FAQ) and
the topic model's score; and subtracts small penalties when the question asks
another kind of thing than every one of the FAQ's rows (什么 / 哪里 / 多少 /
怎么 / 能不能 …) or is negated where none of them is (不 / 没 / 未 …), or the
other way round. The raw mix is mapped to a calibrated score by a logistic
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
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import LCSseq
from rapidfuzz.process import cdist

from .index import Index
from .text import Prepared

__all__ = ["COEFS", "Candidate", "Decision", "Evidence", "MatcherConfig", "Matcher"]


@dataclass(frozen=True)
class MatcherConfig:
    """Tuning values of the reranker and the decision, overridable from thresholds.yaml."""

    # The raw mix: weights of the rerank's similarities (0 turns one off and skips its cost).
    # Chosen on the tuning halves of BQ and LCQMC (bench/bench_quality.py --tune): the
    # weights whose neighbourhood has the best mean recall@1; LCS and fuzz.ratio got 0 there.
    retrieval_weight: float = 0.30
    bm25_weight: float = 0.50
    lcs_weight: float = 0.0
    fuzz_weight: float = 0.0
    pinyin_weight: float = 0.20
    votes_weight: float = 0.20
    # Subtracted when the question's kind (什么, 哪里 …) or negation differs from every row's.
    kind_penalty: float = 0.04
    negation_penalty: float = 0.01
    # The topic model's score (bot/match/topics.py) added to the raw mix, when the index has one.
    topic_weight: float = 0.0
    k: int = 10
    rows: int = 30  # best-scoring rows the rerank reads (their FAQs are the candidates)
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    # Query features in more rows than this are skipped (large banks only; see Index.scores).
    max_postings: int = 1000
    # calibrated score = sigmoid(bias + Σ coef * evidence), one coef per Evidence field
    bias: float = -6.0
    raw_coef: float = 10.0
    margin_coef: float = 6.0
    coverage_coef: float = 0.0
    unknown_coef: float = -3.0
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
    bm25: float = 0.0  # character-unigram BM25 of the best row, over the question's maximum
    lcs: float = 0.0  # longest-common-subsequence ratio of the best row
    kind: float = 0.0  # 1 when the question asks another kind of thing than all its rows
    negation: float = 0.0  # 1 when the question's negation differs from all its rows'


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
        """The fields in their order (the calibration's inputs)."""
        return [getattr(self, name) for name in _EVIDENCE]


_EVIDENCE = tuple(f.name for f in fields(Evidence))
COEFS = tuple(f"{name}_coef" for name in _EVIDENCE)  # MatcherConfig's, for each field


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
        self._marks_cache: dict[int, tuple[frozenset[str], bool]] = {}
        block = index.blocks[1]  # character n-grams: the IDF of each character
        self._max_idf = float(block.idf.max())
        self._avg_len = max(1.0, sum(map(len, index.row_text)) / max(1, index.n_rows))

    def rank(self, p: Prepared) -> list[Candidate]:
        c = self.config
        vector = self.index.vector(p)
        found = self.index.top_faqs(
            p, k=c.k, rows=c.rows, max_postings=c.max_postings, vector=vector
        )
        if not found:
            return []
        topic = self._topic_scores(vector)
        row_text, row_py = self.index.row_text, self.index.row_pinyin
        rows = [r for _, _, found_rows, _ in found for r in found_rows]
        texts = [row_text[r] for r in rows]
        # One C call for every row of every candidate rather than one per row.
        zeros = [0.0] * len(rows)
        fuzzes = _ratios(p.text, texts, fuzz.ratio) if c.fuzz_weight else zeros
        pinyins = (
            _ratios(p.pinyin_text, [row_py[r] for r in rows], fuzz.ratio)
            if c.pinyin_weight
            else zeros
        )
        lcs = _ratios(p.text, texts, LCSseq.normalized_similarity) if c.lcs_weight else zeros
        bm25 = self._bm25(p.text, rows) if c.bm25_weight else zeros
        if c.kind_penalty or c.negation_penalty:
            kinds, negated = _marks(p.text)
            marks = [self._marks(r) for r in rows]
            kind = [float(_other_kind(kinds, k)) for k, _ in marks]
            neg = [float(negated != n) for _, n in marks]
        else:
            kind = neg = zeros
        out, start = [], 0
        for pos, retrieval, found_rows, votes in found:
            end = start + len(found_rows)
            fz, pz = max(fuzzes[start:end]), max(pinyins[start:end])
            lc, bm = max(lcs[start:end]), max(bm25[start:end])
            kd, ng = min(kind[start:end]), min(neg[start:end])
            start = end
            raw = (
                c.retrieval_weight * retrieval
                + c.bm25_weight * bm
                + c.lcs_weight * lc
                + c.fuzz_weight * fz
                + c.pinyin_weight * pz
                + c.votes_weight * votes
                - c.kind_penalty * kd
                - c.negation_penalty * ng
            )
            ts, tm = topic(pos)
            raw += c.topic_weight * ts
            out.append(Candidate(pos, raw, retrieval, fz, pz, votes, ts, tm, bm, lc, kd, ng))
        out.sort(key=lambda x: -x.raw)
        return out

    def _bm25(self, text: str, rows: list[int]) -> list[float]:
        """Character-unigram BM25 of ``text`` against ``rows``, as a share of its own score.

        The IDF is the character block's. Dividing by what the question scores
        against itself puts an exact match at 1 (capped there), so the raw mix
        keeps its scale; a character no row has lowers every row's share alike.
        """
        c = self.config
        block = self.index.blocks[1]
        chars = Counter(text.replace(" ", ""))
        if not chars:
            return [0.0] * len(rows)
        k1, b, avg = c.bm25_k1, c.bm25_b, self._avg_len
        top = self._max_idf
        idf = {ch: float(block.idf[block.vocab[ch]]) if ch in block.vocab else top for ch in chars}
        norm = k1 * (1.0 - b + b * len(text) / avg)
        own = sum(idf[ch] * n * (k1 + 1.0) / (n + norm) for ch, n in chars.items())
        known = [ch for ch in chars if ch in block.vocab]
        out = []
        for r in rows:
            doc = self.index.row_text[r]
            norm = k1 * (1.0 - b + b * len(doc) / avg)
            score = 0.0
            for ch in known:
                tf = doc.count(ch)
                if tf:
                    score += idf[ch] * tf * (k1 + 1.0) / (tf + norm)
            out.append(min(1.0, score / own))
        return out

    def _marks(self, row: int) -> tuple[frozenset[str], bool]:
        """A row's question kinds and negation (cached: they are read on every question)."""
        found = self._marks_cache.get(row)
        if found is None:
            if len(self._marks_cache) >= _MARKS_CACHE:
                self._marks_cache.clear()
            found = self._marks_cache[row] = _marks(self.index.row_text[row])
        return found

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
        coefs = [getattr(c, name) for name in COEFS]
        return _sigmoid(c.bias + sum(k * v for k, v in zip(coefs, ev.vector(), strict=True)))

    def decide(
        self, p: Prepared, cands: list[Candidate], *, outside: bool = False, offer: bool = False
    ) -> Decision:
        """Answer when the best is good and not tied; clarify when close; else fall back.

        An ``outside`` question falls back unless it matches almost word for word; with
        ``offer`` (a keyword alone sent it away) what would be answered is offered."""
        c = self.config
        if not cands:
            return Decision("fallback", 0.0)
        best = cands[0]
        score = self.calibrate(self.evidence(p, cands))
        # A bare topic word (渣土, 垃圾, 投诉) names a subject, not a question: with another
        # FAQ within the clarify window it is offered, however sure the calibration is.
        window = c.clarify_window if len(p.words) <= 1 else c.tie_window
        tied = len(cands) > 1 and best.raw - cands[1].raw < window
        answered = score >= c.answer and not tied
        if outside and best.raw < c.outside_override:
            if offer and answered:
                return Decision("clarify", score, cands, self.choices(cands))
            return Decision("fallback", score, cands)
        if answered:
            return Decision("answer", score, cands)
        clarify = c.clarify_message if p.message and c.clarify_message >= 0 else c.clarify
        if score >= min(clarify, c.answer):
            return Decision("clarify", score, cands, self.choices(cands))
        return Decision("fallback", score, cands)

    def choices(self, cands: list[Candidate]) -> list[Candidate]:
        """What a clarify offers: the FAQs within the clarify window of the best (a few)."""
        c, best = self.config, cands[0].raw if cands else 0.0
        return [x for x in cands if best - x.raw <= c.clarify_window][: c.max_choices]


_BIGRAM_CACHE = 20_000
_MARKS_CACHE = 50_000


def _ratios(text: str, others: list[str], scorer: Callable[..., float]) -> list[float]:
    """``scorer(text, other)`` for every other text, as 0..1 (rapidfuzz's ratios are 0..100)."""
    scale = 100.0 if scorer is fuzz.ratio else 1.0
    out = cdist([text], others, scorer=scorer, processor=None, dtype=np.float64)[0]
    return (out / scale).tolist()


# What a question asks for, by its interrogative words (longest first: 什么时候 is "when").
_KIND_WORDS = {
    "when": ("什么时候", "什么时间", "何时", "多久", "多长时间", "几点", "几号", "哪天"),
    "why": ("为什么", "为何", "为啥", "凭什么", "怎么会"),
    "where": ("哪里", "哪儿", "在哪", "去哪", "何处", "什么地方", "哪个地方"),
    "who": ("谁", "哪个部门", "什么部门", "哪位"),
    "amount": ("多少", "几个", "几次", "几天", "多大", "多高", "多重", "多远", "多长"),
    "how": ("怎么", "怎样", "如何", "咋"),
    "yesno": ("能不能", "可不可以", "是不是", "会不会", "要不要", "有没有", "能否", "是否", "吗"),
    "what": ("什么", "啥", "哪些"),
}
_KIND_OF = {w: kind for kind, words in _KIND_WORDS.items() for w in words}
_KINDS = re.compile("|".join(sorted(map(re.escape, _KIND_OF), key=len, reverse=True)))
# Negation: 不 / 没 / 未 / 别 (as 不要), except in A-not-A questions (能不能, 有没有) and in
# words where it negates nothing (不错, 未来, 差不多).
_NEGATION = re.compile("[不没未]|别[让再]|无法|无需|禁止")
_NOT_NEGATION = re.compile(
    "不错|不少|不过|不断|不久|不管|不仅|不然|不如|不好意思|差不多|对不起|了不起|要不|未来|未成年"
)


def _marks(text: str) -> tuple[frozenset[str], bool]:
    """The question kinds ``text`` asks (what, where …) and whether it is negated."""
    kinds = frozenset(_KIND_OF[m] for m in _KINDS.findall(text))
    plain = _NOT_NEGATION.sub("·", text)
    negated = False
    for m in _NEGATION.finditer(plain):
        i = m.start()
        if m.end() - i == 1 and 0 < i < len(plain) - 1 and plain[i - 1] == plain[i + 1]:
            continue  # 能不能, 是不是, 有没有: a question, not a negation
        negated = True
        break
    return kinds, negated


def _other_kind(mine: frozenset[str], theirs: frozenset[str]) -> bool:
    """Both ask something, and nothing the same (哪里 against 多少; 怎么 against 怎么 is fine)."""
    return bool(mine) and bool(theirs) and not (mine & theirs)


def _bigrams(text: str) -> set[str]:
    text = text.replace(" ", "")
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def _known(word: str, vocab: dict[str, int]) -> bool:
    """A bank word, or a longer word built on one (非常感谢 on 感谢)."""
    if word in vocab:
        return True
    return len(word) > 2 and any(word[i : i + 2] in vocab for i in range(len(word) - 1))
