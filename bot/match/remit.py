"""Is a message about the bureau's remit at all? A linear model learned from data.

Keyword lists routed a message away whenever it named a school, a hospital
or a bank, whatever it was about. This model instead weighs every character
1–3-gram of the normalised message and each of its content words (hashed
into a fixed number of buckets) in a logistic regression: ``outside(text,
words)`` is the probability that the message belongs to another agency.
``faq/outside.yaml`` keeps its job of naming *where* to send the visitor;
this model decides *whether* to.

It reads the text as the text pipeline leaves it (``Prepared.text``: the
clerk has taken out places, names and request frames), so that a street
name does not make a message look like one for another agency: the bank's
wordings have none and the board's messages all do. It is fitted
(``python -m bot.quality.remit_fit``) on the bank's own wordings and the
in-remit real messages of the development set's fit half (in the remit,
the messages weighted up so that a few hundred count against thousands of
wordings), and its other-agency messages (outside); the weight and the
probability from which a message is routed away (``threshold``) are chosen
by cross-validation on that half. The messages live
beside the project and must not be shipped, so the fitted model is saved
as ``faq/remit.json``: an intercept and the non-zero weights of hashed
buckets (weights under :data:`PRUNE` dropped). A bucket is a number, never
text, so the file holds no wording of any message; it is generated and
reviewed like ``thresholds.yaml``. Without the file no message is routed
away by the model.

The penalty is L2. Cross-validated
on the fit half, with the bank's wordings that were written from its messages
taken out, this model routed 82% of other agencies' messages at 10% of ours
routed, where character n-grams alone under an L1 penalty (the model before)
routed 69% (bench/RESULTS.md, 2026-12-02, fifth session).
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from .text import MAX_CHARS

__all__ = ["Remit", "Reading", "split_reading", "N_BUCKETS", "PRUNE", "buckets", "REMIT_FILE"]

N_BUCKETS = 1 << 18
REMIT_FILE = "remit.json"
PRUNE = 0.1
_NGRAMS = (1, 2, 3)
_WORD = "\x00w"  # prefix of a word's feature: 违章 the word is not 违章 the bigram

# What the model reads: a text, or a text and its content words (Prepared.text, .words).
Reading = str | tuple[str, Sequence[str]]


def split_reading(item: Reading) -> tuple[str, Sequence[str]]:
    """The text and the words of a reading (a bare text has no words)."""
    return (item, ()) if isinstance(item, str) else item


def buckets(text: str, words: Iterable[str] = ()) -> dict[int, float]:
    """Hashed character 1–3-grams of ``text`` and its words, L2-normalised counts.

    ``text`` is read as the text pipeline leaves it (``Prepared.text``: already
    normalised, so it is not normalised again, which cost 40 µs of every ask);
    it is cut at :data:`~bot.match.text.MAX_CHARS`, as a prepared text is.
    """
    chars = text[: MAX_CHARS * 2].replace(" ", "")[:MAX_CHARS]
    grams = [chars[i : i + n] for n in _NGRAMS for i in range(len(chars) - n + 1)]
    grams += [_WORD + w for w in words]
    counts = Counter(map(_bucket, grams))
    norm = math.sqrt(sum(v * v for v in counts.values()))
    return {b: v / norm for b, v in counts.items()} if norm else {}


@lru_cache(maxsize=1 << 16)
def _bucket(gram: str) -> int:
    """A gram's bucket (cached: the same characters recur in every question)."""
    return zlib.crc32(gram.encode("utf-8")) % N_BUCKETS


class Remit:
    """The fitted out-of-remit model: intercept plus sparse bucket weights."""

    def __init__(
        self,
        intercept: float = -50.0,
        weights: dict[int, float] | None = None,
        threshold: float = 0.9,
    ) -> None:
        self.intercept = intercept
        self.weights = dict(weights or {})
        self.threshold = threshold  # route away from this probability on

    @property
    def fitted(self) -> bool:
        return bool(self.weights)

    def outside(self, text: str, words: Iterable[str] = ()) -> float:
        """Probability in 0..1 that ``text`` (with its content ``words``) is for another
        agency (0 when unfitted)."""
        if not self.weights:
            return 0.0
        found = buckets(text, words)
        z = self.intercept + sum(v * self.weights.get(b, 0.0) for b, v in found.items())
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    @classmethod
    def fit(
        cls,
        inside: Iterable[Reading],
        outside: Iterable[Reading],
        *,
        c: float = 4.0,
        weights: Iterable[float] | None = None,
        threshold: float = 0.9,
    ) -> Remit:
        """Fit on texts in the remit and texts for other agencies (each a text, or a
        text and its words).

        ``weights`` (one per text, inside then outside; default 1) weigh the
        texts within their class; the two classes weigh the same in all.
        """
        import numpy as np
        import scipy.sparse as sp
        from sklearn.linear_model import LogisticRegression

        texts = [*inside]
        n_in = len(texts)
        texts += [*outside]
        y = np.array([0] * n_in + [1] * (len(texts) - n_in))
        w = np.ones(len(texts)) if weights is None else np.array([*weights], dtype=float)
        if len(w) != len(texts):
            raise ValueError(f"{len(w)} weights for {len(texts)} texts")
        for label in (0, 1):
            mine = y == label
            if w[mine].sum() > 0:
                w[mine] *= len(y) / (2 * w[mine].sum())
        rows, cols, vals = [], [], []
        for r, t in enumerate(texts):
            for b, v in buckets(*split_reading(t)).items():
                rows.append(r)
                cols.append(b)
                vals.append(v)
        x = sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), N_BUCKETS))
        model = LogisticRegression(C=c, max_iter=5000)
        model.fit(x, y, sample_weight=w)
        coef = model.coef_[0]
        kept = {int(b): round(float(coef[b]), 4) for b in np.flatnonzero(np.abs(coef) >= PRUNE)}
        return cls(
            round(float(model.intercept_[0]), 4), {b: v for b, v in kept.items() if v}, threshold
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        data = {
            "about": "out-of-remit model, generated by python -m bot.quality.remit_fit; "
            "hashed character 1-3-gram and word buckets, no text",
            "n_buckets": N_BUCKETS,
            "intercept": self.intercept,
            "threshold": self.threshold,
            "weights": {str(b): w for b, w in sorted(self.weights.items())},
        }
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n", "utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Remit:
        """The model saved at ``path``; an unfitted model when there is none or it is foreign."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("n_buckets") != N_BUCKETS:
                return cls()
            weights = {int(b): float(w) for b, w in data["weights"].items()}
            return cls(float(data["intercept"]), weights, float(data.get("threshold", 0.9)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls()
