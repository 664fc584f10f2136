"""A learned topic model: which FAQ a message is about, from all its wordings at once.

Nearest-neighbour retrieval compares a message with one wording at a time,
so a citizen's complaint (某某小区门口乱搭乱建，严重影响通行，望尽快处理)
is judged by whichever wording it happens to share most words with. A
linear classifier trained on every wording of every FAQ learns instead
which features decide an FAQ (乱搭乱建, 违建 → building-report) and which
are common to many (小区, 门口), and so reads a long message better. On the
real-message development set its best FAQ is right more often than the
index's, and the two together beat either (bench figures in
bench/RESULTS.md).

It is a one-vs-rest linear SVM (scikit-learn's ``LinearSVC``) over the
index's own feature space (words, character n-grams, pinyin), so a query
vector the index has already computed is all it needs. Weights below
:data:`PRUNE` are dropped: they change no ranking measured here and keep
the model to a few megabytes. Scoring gathers the weight rows of the
query's features, the same walk the index does over its posting lists.

The model is trained only for banks it can learn from: at most
:data:`MAX_FAQS` FAQs (one binary problem each, trained at index build) with
at least :data:`MIN_ROWS_PER_FAQ` wordings per FAQ on average. Other banks
(a public paraphrase benchmark has one or two wordings per FAQ) get none,
and the matcher ranks by the index alone.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

__all__ = ["TopicModel", "MAX_FAQS", "MIN_ROWS_PER_FAQ", "PRUNE"]

MAX_FAQS = 2000
MIN_ROWS_PER_FAQ = 3.0
PRUNE = 0.01
# LinearSVC's regularisation: chosen on the fit halves of both development sets.
_C = 0.3


class TopicModel:
    """Per-FAQ linear scores of a query vector (features × FAQs weights, sparse)."""

    def __init__(self, weights: sp.csr_matrix, bias: np.ndarray) -> None:
        self.weights = weights  # (features × FAQs), CSR: one weight row per feature
        self.bias = bias

    @classmethod
    def train(cls, rows: sp.csr_matrix, row_faq: np.ndarray) -> TopicModel | None:
        """Fit on the rows' vectors (rows × features); None for a bank it cannot learn."""
        n_faqs = int(row_faq.max()) + 1 if len(row_faq) else 0
        if not 2 <= n_faqs <= MAX_FAQS or len(row_faq) / n_faqs < MIN_ROWS_PER_FAQ:
            return None
        from sklearn.svm import LinearSVC

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notes on tiny test banks
            svm = LinearSVC(C=_C, random_state=0).fit(rows, row_faq)
        coef = svm.coef_.astype(np.float32)
        bias = svm.intercept_.astype(np.float32)
        if len(svm.classes_) == 2:  # binary: one row of weights for the second class
            coef, bias = np.vstack([-coef, coef]), np.concatenate([-bias, bias])
        full = np.zeros((n_faqs, rows.shape[1]), dtype=np.float32)
        full_bias = np.full(n_faqs, -1.0, dtype=np.float32)
        full[svm.classes_], full_bias[svm.classes_] = coef, bias
        full[np.abs(full) < PRUNE] = 0.0
        return cls(sp.csr_matrix(full.T), full_bias)

    def scores(self, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """Each FAQ's score for the query vector (``cols``, ``vals``)."""
        w = self.weights
        if not len(cols):
            return self.bias.astype(np.float64)
        starts = w.indptr[cols]
        lengths = w.indptr[cols + 1] - starts
        total = int(lengths.sum())
        if not total:
            return self.bias.astype(np.float64)
        take = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        weights = np.repeat(vals, lengths) * w.data[take]
        return np.bincount(w.indices[take], weights=weights, minlength=len(self.bias)) + self.bias
