"""Rerank retrieved FAQs, calibrate a score in 0..1 and decide how to reply.

The index gives each FAQ its best TF-IDF similarity. The reranker mixes in
two edit-distance similarities (rapidfuzz) computed against every question
of the FAQ: on the normalised text and on its pinyin, so a homophone typo
costs little. The raw mix is mapped to a calibrated score by a logistic
curve fitted on labelled development questions (``python -m bot fit``),
whose inputs are the best raw score and its margin over the next FAQ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from rapidfuzz import fuzz

from .index import Index
from .text import Prepared

__all__ = ["Candidate", "Decision", "MatcherConfig", "Matcher"]


@dataclass(frozen=True)
class MatcherConfig:
    """Tuning values of the reranker and the decision, overridable from thresholds.yaml."""

    retrieval_weight: float = 0.55
    fuzz_weight: float = 0.30
    pinyin_weight: float = 0.15
    k: int = 10
    # calibrated score = sigmoid(bias + raw_coef * raw + margin_coef * margin)
    bias: float = -6.0
    raw_coef: float = 10.0
    margin_coef: float = 6.0
    answer: float = 0.5  # calibrated score from which the best FAQ is answered
    clarify: float = 0.15  # calibrated score from which close FAQs are offered
    clarify_window: float = 0.12  # raw distance from the best within which FAQs are offered
    max_choices: int = 3
    outside_override: float = 0.9  # raw score that wins over an out-of-remit keyword

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> MatcherConfig:
        """Take known keys from ``values`` (e.g. faq/thresholds.yaml); ignore the rest."""
        names = {f.name: f.type for f in fields(cls)}
        picked = {}
        for key, value in values.items():
            if key in names and isinstance(value, int | float) and not isinstance(value, bool):
                picked[key] = int(value) if key in ("k", "max_choices") else float(value)
        return cls(**picked)


@dataclass(frozen=True)
class Candidate:
    """One FAQ (by position in the bank) and how well it matches."""

    pos: int
    raw: float
    retrieval: float
    fuzz: float
    pinyin: float


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

    def rank(self, p: Prepared) -> list[Candidate]:
        c = self.config
        found = self.index.top_faqs(p, k=c.k)
        if not found:
            return []
        text, py = p.text, p.pinyin_text
        row_text, row_py = self.index.row_text, self.index.row_pinyin
        out = []
        for pos, retrieval, rows in found:
            fz = max(fuzz.ratio(text, row_text[r], processor=None) for r in rows) / 100.0
            pz = max(fuzz.ratio(py, row_py[r], processor=None) for r in rows) / 100.0
            raw = c.retrieval_weight * retrieval + c.fuzz_weight * fz + c.pinyin_weight * pz
            out.append(Candidate(pos, raw, retrieval, fz, pz))
        out.sort(key=lambda x: -x.raw)
        return out

    def calibrate(self, raw: float, margin: float) -> float:
        c = self.config
        return _sigmoid(c.bias + c.raw_coef * raw + c.margin_coef * margin)

    def decide(self, cands: list[Candidate], *, outside: bool = False) -> Decision:
        """Answer when the best is good and clearly ahead; clarify when close; else fall back."""
        c = self.config
        if not cands:
            return Decision("fallback", 0.0)
        best = cands[0]
        margin = best.raw - (cands[1].raw if len(cands) > 1 else 0.0)
        score = self.calibrate(best.raw, margin)
        if outside and best.raw < c.outside_override:
            return Decision("fallback", score, cands)
        if score >= c.answer:
            return Decision("answer", score, cands)
        if score >= c.clarify:
            close = [x for x in cands if best.raw - x.raw <= c.clarify_window]
            return Decision("clarify", score, cands, close[: c.max_choices])
        return Decision("fallback", score, cands)
