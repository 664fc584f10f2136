"""Retrieval quality on BQ and LCQMC: our matcher against common baselines, and tuning.

The splits are the ones shared/eval-data/README.md describes: BQ (978 FAQs,
1,311 indexed questions, 2,436 queries) and LCQMC dev (7,974 FAQs after merging
questions equal but for punctuation and case, 4,402 queries; 3,752 of them are
not themselves another FAQ's text, reported apart). Every method ranks FAQs (a
FAQ scores the best of its indexed questions); we report recall@1 on all
queries and on each seeded half (the tuning half chooses weights, the other is
held out), recall@3, MRR@10 (a gold FAQ outside the first ten counts 0) and
the median time per query, not counting the text preparation that all
methods share (reported once).

Rows: the engine now (its defaults), the engine as it was on main at c5f350a
(its feature function and weights, kept here as main_features / MAIN_SETTINGS
/ MAIN_CONFIG), each one's retrieval alone, and the baselines: TF-IDF, BM25
(rank_bm25) over jieba words without and with stop words, TF-IDF words +
character 1–2-grams, and rapidfuzz fuzz.ratio. Baselines use the engine's
tokenizer and normaliser, so the comparison is about scoring.

``--tune`` searches the rerank mix (MatcherConfig weights and penalties) on
the tuning halves of the sets run and reports the held-out halves;
``--explore`` runs the older BQ lab (block weights and prototypes over main's
mix).

    python bench/bench_quality.py [--sets bq,lcqmc] [--tune] [--explore] [--split-seed 1]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from common import ROOT, BqTask, bank_of, load_bq, load_lcqmc, machine, table
from rank_bm25 import BM25Okapi
from rapidfuzz import fuzz, process
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.bank import load_bank
from bot.errors import BankError
from bot.match.engine import build_index, pipeline_for
from bot.match.index import Features, Index, IndexSettings
from bot.match.matcher import Candidate, Matcher, MatcherConfig
from bot.match.text import Prepared, normalize
from bot.quality.evaluate import FALLBACK, load_labelled

TOP = 10  # ranks looked at: MRR@10, and the list every method returns


# --- metrics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Metrics:
    r1: float
    r3: float
    mrr: float
    ms: float | None = None

    def cells(self) -> list[str]:
        ms = "—" if self.ms is None else f"{self.ms:.3f}"
        return [f"{self.r1:.3f}", f"{self.r3:.3f}", f"{self.mrr:.3f}", ms]


def metrics(ranks: np.ndarray, ms: float | None = None) -> Metrics:
    """``ranks``: 1-based rank of each query's gold FAQ, 0 when not in the first TOP."""
    found = ranks > 0
    rr = np.where(found, 1.0 / np.maximum(ranks, 1), 0.0)
    return Metrics(
        float(np.mean(found & (ranks == 1))),
        float(np.mean(found & (ranks <= 3))),
        float(rr.mean()),
        ms,
    )


def rank_of(gold: int, ranked: Sequence[int]) -> int:
    for i, pos in enumerate(ranked[:TOP]):
        if pos == gold:
            return i + 1
    return 0


def run_timed(
    name: str, fn: Callable[[int], Sequence[int]], gold: Sequence[int]
) -> tuple[str, np.ndarray, float]:
    """Rank every query with ``fn(query number)``; return the ranks and median ms/query."""
    for i in range(min(50, len(gold))):  # warm-up
        fn(i)
    ranks = np.zeros(len(gold), dtype=np.int64)
    times = []
    for i, g in enumerate(gold):
        t0 = time.perf_counter_ns()
        ranked = fn(i)
        times.append(time.perf_counter_ns() - t0)
        ranks[i] = rank_of(g, ranked)
    return name, ranks, statistics.median(times) / 1e6


def top_faqs(faq_scores: np.ndarray, k: int = TOP) -> list[int]:
    """FAQ positions of the ``k`` best scores, best first (ties: lower position first)."""
    k = min(k, len(faq_scores))
    top = np.argpartition(-faq_scores, k - 1)[:k]
    return top[np.lexsort((top, -faq_scores[top]))].tolist()


# --- the data, prepared once ----------------------------------------------------------------


class Data:
    """A retrieval split, prepared by the engine's pipeline, with row → FAQ bookkeeping."""

    def __init__(self, task: BqTask, *, name: str, prefix: str, seed: int = 1) -> None:
        t0 = time.perf_counter()
        self.name = name
        self.task = task
        self.bank = bank_of(self.task.faqs, prefix=prefix)
        self.pipeline = pipeline_for(self.bank)
        # Rows exactly as engine.build_index lays them out: FAQ by FAQ, texts in order.
        self.row_faq = np.array(
            [pos for pos, f in enumerate(self.bank.faqs) for _ in dict.fromkeys(f.texts)]
        )
        self.row_texts = [t for f in self.bank.faqs for t in dict.fromkeys(f.texts)]
        self.rows = [self.pipeline.prepare(t) for t in self.row_texts]
        self.starts = np.flatnonzero(np.r_[True, self.row_faq[1:] != self.row_faq[:-1]])
        self.lasts = np.r_[self.starts[1:], len(self.row_faq)] - 1
        self.gold = np.array(self.task.gold)
        times = []
        self.queries: list[Prepared] = []
        for q in self.task.queries:
            t1 = time.perf_counter_ns()
            self.queries.append(self.pipeline.prepare(q))
            times.append(time.perf_counter_ns() - t1)
        self.prepare_ms = statistics.median(times) / 1e6
        # jieba tokens with the stop words kept (Prepared.words drops them).
        self.row_tokens = [self.pipeline.segment(p.text) for p in self.rows]
        self.q_tokens = [self.pipeline.segment(p.text) for p in self.queries]
        self.q_norm = [normalize(q) for q in self.task.queries]
        self.row_norm = [normalize(t) for t in self.row_texts]
        # The seeded tuning half (weights are chosen on it) and the held-out half.
        perm = list(range(len(self.queries)))
        random.Random(seed).shuffle(perm)
        self.tune = np.sort(np.array(perm[: len(perm) // 2]))
        self.held = np.sort(np.array(perm[len(perm) // 2 :]))
        distinct = task.distinct if task.distinct is not None else [True] * len(self.queries)
        self.distinct = np.flatnonzero(np.array(distinct))
        self.setup_s = time.perf_counter() - t0

    @property
    def n_faqs(self) -> int:
        return len(self.bank.faqs)

    def faq_max(self, row_scores: np.ndarray) -> np.ndarray:
        """Row-level scores (… × rows) → FAQ-level (… × FAQs), the best row of each FAQ."""
        out = row_scores[..., self.starts]
        for j in range(1, int((self.lasts - self.starts).max()) + 1):
            out = np.maximum(out, row_scores[..., np.minimum(self.starts + j, self.lasts)])
        return out


# --- the headline comparison -----------------------------------------------------------------


def _identity(doc: list[str]) -> list[str]:
    return doc


def _tfidf() -> TfidfVectorizer:
    return TfidfVectorizer(analyzer=_identity, token_pattern=None, lowercase=False)


def headline(
    d: Data,
    config: MatcherConfig,
    settings: IndexSettings,
    label: str,
    *,
    token_sort: float = 0.0,
    retrieval_only: bool = True,
    feats: Features | None = None,
) -> list[tuple[str, np.ndarray, float]]:
    """Our engine (Index.build + Matcher.rank), timed per query in this process.

    ``feats``: another feature function than the engine's (the engine before a change).
    """
    if feats is None:
        index = build_index(d.bank, d.pipeline, settings=settings)
    else:
        rows = list(zip(d.row_faq.tolist(), d.rows, strict=True))
        index = Index.build(rows, digest="bench", settings=settings, features=feats)
    matcher: Matcher
    if token_sort:
        words = [" ".join(p.words) for p in d.rows]
        matcher = TokenSortMatcher(index, config, row_words=words, weight=token_sort)
    else:
        matcher = Matcher(index, config)
    gold = d.task.gold

    def ours_full(i: int) -> list[int]:
        return [c.pos for c in matcher.rank(d.queries[i])]

    def ours_tfidf(i: int) -> list[int]:
        return [hit[0] for hit in index.top_faqs(d.queries[i], k=TOP)]

    out = [run_timed(f"ours{label}: Matcher.rank (TF-IDF + rerank)", ours_full, gold)]
    if retrieval_only:
        out.append(run_timed(f"ours{label}: TF-IDF retrieval only", ours_tfidf, gold))
    return out


def main_features(p: Prepared) -> tuple[list[str], list[str], list[str]]:
    """bot.match.index.features as it was on main at c5f350a (before the fourth session).

    Content words only (stop words dropped), character 1–3-grams, pinyin 1–2-grams.
    """
    chars = p.text.replace(" ", "")
    grams = [chars[i : i + n] for n in (1, 2, 3) for i in range(len(chars) - n + 1)]
    py = p.pinyin
    pys = list(py) + [f"{a}_{b}" for a, b in itertools.pairwise(py)]
    return list(p.words), grams, pys


#: The engine as it was on main at c5f350a: these block weights with main_features, and a
#: rerank of the best 64 rows by TF-IDF .4 + fuzz.ratio .4 + pinyin fuzz.ratio .2.
MAIN_SETTINGS = IndexSettings(word_weight=0.35, char_weight=0.45, pinyin_weight=0.20)
MAIN_CONFIG = MatcherConfig(
    retrieval_weight=0.40,
    bm25_weight=0.0,
    lcs_weight=0.0,
    fuzz_weight=0.40,
    pinyin_weight=0.20,
    votes_weight=0.0,
    kind_penalty=0.0,
    negation_penalty=0.0,
    rows=64,
)


def engines(d: Data) -> list[tuple[str, np.ndarray, float]]:
    """The engine now (its defaults) and as it was on main, in this process."""
    now = headline(d, MatcherConfig(), IndexSettings(), " now (defaults)")
    before = headline(d, MAIN_CONFIG, MAIN_SETTINGS, " before (main c5f350a)", feats=main_features)
    return [now[0], before[0], now[1], before[1]]


class TokenSortMatcher(Matcher):
    """Matcher.rank plus ``fuzz.token_sort_ratio`` on content words (a prototype, not in bot/).

    The engine could adopt it as a fourth rerank weight: the words of each
    row are known at build time, and the extra cost is one rapidfuzz call
    per candidate row.
    """

    def __init__(
        self, index: Index, config: MatcherConfig, *, row_words: list[str], weight: float
    ) -> None:
        super().__init__(index, config)
        self.row_words = row_words
        self.weight = weight

    def rank(self, p: Prepared) -> list[Candidate]:
        words = " ".join(p.words)
        out = []
        for c in super().rank(p):
            ts = max(
                fuzz.token_sort_ratio(words, self.row_words[r], processor=None)
                for r in self.index.rows_of(c.pos)
            )
            out.append(replace(c, raw=c.raw + self.weight * ts / 100.0))
        out.sort(key=lambda x: (-x.raw, -x.retrieval))
        return out


def baselines(d: Data, *, stop_words: bool):
    """TF-IDF, BM25 on jieba words (without or with stop words) and, once, rapidfuzz."""
    gold = d.task.gold
    out = []
    if stop_words:
        rows, queries, tag = d.row_tokens, d.q_tokens, "jieba tokens incl. stop words"
    else:
        rows = [list(p.words) for p in d.rows]
        queries = [list(p.words) for p in d.queries]
        tag = "jieba words"

    wv = _tfidf()
    w_rows = wv.fit_transform(rows).T.tocsr()

    def tfidf_words(i: int) -> list[int]:
        q = wv.transform([queries[i]])
        return top_faqs(d.faq_max((q @ w_rows).toarray()[0]))

    out.append(run_timed(f"TF-IDF, {tag}", tfidf_words, gold))

    def words_chars(words: list[str], text: str) -> list[str]:
        chars = text.replace(" ", "")
        grams = [chars[i : i + n] for n in (1, 2) for i in range(len(chars) - n + 1)]
        return [f"w:{w}" for w in words] + [f"c:{g}" for g in grams]

    cv = _tfidf()
    c_rows = cv.fit_transform(
        [words_chars(w, n) for w, n in zip(rows, d.row_norm, strict=True)]
    ).T.tocsr()

    def tfidf_words_chars(i: int) -> list[int]:
        q = cv.transform([words_chars(queries[i], d.q_norm[i])])
        return top_faqs(d.faq_max((q @ c_rows).toarray()[0]))

    out.append(run_timed(f"TF-IDF, {tag} + char 1–2-grams", tfidf_words_chars, gold))

    bm25 = BM25Okapi(rows)

    def bm25_words(i: int) -> list[int]:
        return top_faqs(d.faq_max(bm25.get_scores(queries[i])))

    out.append(run_timed(f"BM25Okapi, {tag}", bm25_words, gold))
    if stop_words:
        return out

    def ratio(i: int) -> list[int]:
        s = process.cdist(
            [d.q_norm[i]], d.row_norm, scorer=fuzz.ratio, processor=None, dtype=np.float64
        )[0]
        return top_faqs(d.faq_max(s))

    out.append(run_timed("rapidfuzz fuzz.ratio, normalised text", ratio, gold))
    return out


# --- the lab: score matrices for fast what-if searches -------------------------------------


def _block_scores(row_docs: list[list[str]], q_docs: list[list[str]]) -> np.ndarray:
    """Cosine of sublinear TF-IDF vectors, exactly as bot.index builds and queries a block."""
    vec = TfidfVectorizer(
        analyzer=_identity, token_pattern=None, lowercase=False, sublinear_tf=True
    )
    x = vec.fit_transform(row_docs)
    return (vec.transform(q_docs) @ x.T).toarray().astype(np.float32)


def _bm25_cosine(
    row_docs: list[list[str]], q_docs: list[list[str]], *, k1: float = 1.2, b: float = 0.75
) -> np.ndarray:
    """Cosine of BM25-weighted rows (saturated tf, length-normalised) and idf-weighted queries."""
    vocab: dict[str, int] = {}
    for doc in row_docs:
        for t in doc:
            vocab.setdefault(t, len(vocab))
    n = len(row_docs)

    def counts(docs: list[list[str]]) -> sp.csr_matrix:
        ind, ptr, val = [], [0], []
        for doc in docs:
            c: dict[int, int] = {}
            for t in doc:
                j = vocab.get(t)
                if j is not None:
                    c[j] = c.get(j, 0) + 1
            ind.extend(c)
            val.extend(c.values())
            ptr.append(len(ind))
        return sp.csr_matrix((val, ind, ptr), shape=(len(docs), len(vocab)), dtype=np.float64)

    tf = counts(row_docs)
    df = np.bincount(tf.indices, minlength=len(vocab))
    idf = np.log((n - df + 0.5) / (df + 0.5) + 1.0)
    dl = np.asarray(tf.sum(axis=1)).ravel()
    norm_len = 1 - b + b * dl / max(dl.mean(), 1e-9)
    rows = tf.copy()
    rows.data = rows.data * (k1 + 1) / (rows.data + k1 * np.repeat(norm_len, np.diff(tf.indptr)))
    rows = rows.multiply(idf).tocsr()
    q = counts(q_docs)
    q.data[:] = 1.0
    q = q.multiply(idf).tocsr()

    def l2(m: sp.csr_matrix) -> sp.csr_matrix:
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        return sp.diags(1.0 / np.maximum(norms, 1e-12)) @ m

    return (l2(q) @ l2(rows).T).toarray().astype(np.float32)


def _chars(p: Prepared, sizes: Sequence[int]) -> list[str]:
    chars = p.text.replace(" ", "")
    return [chars[i : i + n] for n in sizes for i in range(len(chars) - n + 1)]


def _bigrams(words: Sequence[str]) -> list[str]:
    return [f"{a}_{b}" for a, b in itertools.pairwise(words)]


class Lab:
    """Row-level retrieval blocks and FAQ-level rerank features for every query."""

    def __init__(self, d: Data) -> None:
        self.d = d
        rf = [main_features(p) for p in d.rows]
        qf = [main_features(p) for p in d.queries]
        self.blocks: dict[str, np.ndarray] = {
            "word": _block_scores([f[0] for f in rf], [f[0] for f in qf]),
            "char": _block_scores([f[1] for f in rf], [f[1] for f in qf]),
            "pinyin": _block_scores([f[2] for f in rf], [f[2] for f in qf]),
        }
        qt = [p.text for p in d.queries]
        rt = [p.text for p in d.rows]
        qp = [p.pinyin_text for p in d.queries]
        rp = [p.pinyin_text for p in d.rows]
        self.rerank: dict[str, np.ndarray] = {
            "fuzz": self._fuzz(qt, rt, fuzz.ratio),
            "pinyin": self._fuzz(qp, rp, fuzz.ratio),
        }
        self._rf, self._qf = rf, qf

    def _fuzz(self, a: list, b: list, scorer: Callable) -> np.ndarray:
        m = process.cdist(a, b, scorer=scorer, processor=None, dtype=np.float32, workers=1)
        return self.d.faq_max(m / 100.0)

    # --- candidate blocks and features the engine could adopt ---

    def add_char_range(self, sizes: tuple[int, ...]) -> str:
        name = "char" + "".join(map(str, sizes))
        self.blocks[name] = _block_scores(
            [_chars(p, sizes) for p in self.d.rows], [_chars(p, sizes) for p in self.d.queries]
        )
        return name

    def add_pinyin_bigrams(self) -> str:
        def bigrams(f: tuple[list[str], list[str], list[str]]) -> list[str]:
            return [s for s in f[2] if "_" in s]

        self.blocks["pinyin2"] = _block_scores(
            [bigrams(f) for f in self._rf], [bigrams(f) for f in self._qf]
        )
        return "pinyin2"

    def add_word_tokens(self) -> str:
        self.blocks["word+stop"] = _block_scores(self.d.row_tokens, self.d.q_tokens)
        return "word+stop"

    def add_bigrams(self) -> str:
        self.blocks["bigram"] = _block_scores(
            [_bigrams(p.words) for p in self.d.rows], [_bigrams(p.words) for p in self.d.queries]
        )
        return "bigram"

    def add_bm25(self) -> list[str]:
        names = []
        for b, name in enumerate(("word", "char", "pinyin")):
            self.blocks[f"bm25-{name}"] = _bm25_cosine(
                [f[b] for f in self._rf], [f[b] for f in self._qf]
            )
            names.append(f"bm25-{name}")
        return names

    def add_fuzz(self, name: str, scorer: Callable, *, words: bool = False) -> str:
        if words:
            a = [" ".join(p.words) for p in self.d.queries]
            b = [" ".join(p.words) for p in self.d.rows]
        else:
            a = [p.text for p in self.d.queries]
            b = [p.text for p in self.d.rows]
        self.rerank[name] = self._fuzz(a, b, scorer)
        return name

    # --- evaluation ---

    def retrieval(self, weights: dict[str, float], qidx: np.ndarray) -> np.ndarray:
        rows = sum(w * self.blocks[name][qidx] for name, w in weights.items() if w)
        return self.d.faq_max(rows)

    def gathered(
        self, faq_ret: np.ndarray, feats: Sequence[str], k: int, qidx: np.ndarray
    ) -> Gathered:
        """The top ``k`` candidates of each query, their scores and where the gold FAQ is."""
        cand = candidates(faq_ret, k)
        rows = np.arange(len(qidx))[:, None]
        hit = cand == self.d.gold[qidx][:, None]
        gpos = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
        return Gathered(
            cand=cand,
            ret=faq_ret[rows, cand],
            feats={name: self.rerank[name][qidx[:, None], cand] for name in feats},
            gpos=gpos,
        )

    def ranks(self, g: Gathered, rerank: dict[str, float], ret_weight: float) -> np.ndarray:
        """Gold ranks after reranking the candidates by the weighted mix, as Matcher.rank does.

        Matcher.rank sorts by the mix, stably, from retrieval order; so the gold's
        rank is 1 + the candidates scoring more + those tied with it placed before it.
        """
        raw = ret_weight * g.ret
        for name, w in rerank.items():
            if w:
                raw = raw + w * g.feats[name]
        found = g.gpos >= 0
        graw = raw[np.arange(len(raw)), np.maximum(g.gpos, 0)][:, None]
        before = np.arange(raw.shape[1])[None, :] < g.gpos[:, None]
        rank = (raw > graw).sum(axis=1) + ((raw == graw) & before).sum(axis=1) + 1
        return np.where(found & (rank <= TOP), rank, 0)


@dataclass(frozen=True)
class Gathered:
    cand: np.ndarray  # queries × k FAQ positions, in retrieval order
    ret: np.ndarray  # their retrieval scores
    feats: dict[str, np.ndarray]  # their rerank features
    gpos: np.ndarray  # column of the gold FAQ in ``cand``, -1 when it is not there


def candidates(faq_ret: np.ndarray, k: int) -> np.ndarray:
    """The top ``k`` FAQs of each query by retrieval score, best first (as Index.top_faqs)."""
    k = min(k, faq_ret.shape[1])
    part = np.argpartition(-faq_ret, k - 1, axis=1)[:, :k]
    rows = np.arange(len(faq_ret))[:, None]
    return np.take_along_axis(part, np.argsort(-faq_ret[rows, part], axis=1, kind="stable"), 1)


def simplex(n_names: int, units: int) -> list[tuple[int, ...]]:
    """Every split of ``units`` grid steps among ``n_names`` weights (they sum to 1)."""
    return [c for c in itertools.product(range(units + 1), repeat=n_names) if sum(c) == units]


def neighbours(point: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The point and the grid points one step away on the simplex (one unit moved)."""
    out = [point]
    for i, j in itertools.permutations(range(len(point)), 2):
        if point[j] > 0:
            q = list(point)
            q[i] += 1
            q[j] -= 1
            out.append(tuple(q))
    return out


@dataclass
class Choice:
    index: dict[str, float]
    rerank: dict[str, float]
    ret: float
    k: int
    score: tuple[float, float] = (0.0, 0.0)  # (R@1, MRR) on the tuning half
    plateau: float = 0.0  # mean R@1 on the tuning half around this grid point


def search(
    lab: Lab,
    tune: np.ndarray,
    blocks: Sequence[str],
    feats: Sequence[str],
    *,
    k: int = 10,
    step: float = 0.1,
) -> Choice:
    """Grid-search block weights and the rerank mix for the best R@1 plateau on ``tune``.

    Neighbouring grid points differ by a few queries out of a thousand, so the
    single best point is partly luck. The choice is the point whose
    neighbourhood (one step in the block weights and/or the mix) has the
    best mean R@1, then its own R@1, then its MRR.
    """
    units = round(1 / step)
    mixes = simplex(1 + len(feats), units)
    results: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[float, float]] = {}
    for w in simplex(len(blocks), units):
        weights = {name: x / units for name, x in zip(blocks, w, strict=True)}
        g = lab.gathered(lab.retrieval(weights, tune), feats, k, tune)
        for m in mixes:
            rerank = {f: x / units for f, x in zip(feats, m[1:], strict=True)}
            r = metrics(lab.ranks(g, rerank, m[0] / units))
            results[w, m] = (r.r1, r.mrr)

    def plateau(point: tuple[tuple[int, ...], tuple[int, ...]]) -> tuple[float, float, float]:
        w, m = point
        around = [results[v, n][0] for v in neighbours(w) for n in neighbours(m)]
        return (sum(around) / len(around), *results[point])

    w, m = max(results, key=plateau)
    best = plateau((w, m))
    return Choice(
        {name: x / units for name, x in zip(blocks, w, strict=True)},
        {f: x / units for f, x in zip(feats, m[1:], strict=True)},
        m[0] / units,
        k,
        (best[1], best[2]),
        best[0],
    )


def measure(lab: Lab, c: Choice, qidx: np.ndarray) -> Metrics:
    g = lab.gathered(lab.retrieval(c.index, qidx), list(c.rerank), c.k, qidx)
    return metrics(lab.ranks(g, c.rerank, c.ret))


def describe(c: Choice) -> str:
    idx = ", ".join(f"{n} {w:.2f}" for n, w in c.index.items())
    rr = ", ".join(f"{n} {w:.2f}" for n, w in c.rerank.items())
    return f"blocks [{idx}]; mix [retrieval {c.ret:.2f}, {rr}]; k {c.k}"


# --- main ----------------------------------------------------------------------------------


SETS = {
    "bq": ("BQ", "bq", load_bq),
    "lcqmc": ("LCQMC", "lc", load_lcqmc),
}
ENGINE_ROWS = 4  # engines(): now, before, and each one's retrieval alone; baselines follow


def report(d: Data, rows: list[tuple[str, np.ndarray, float]]) -> str:
    """The table of one set and whether the engine now is above every baseline and main."""
    lc = d.task.distinct is not None
    head = ["method", "R@1", "R@1 tune half", "R@1 held-out half"]
    head += ["R@1 not another FAQ's text"] if lc else []
    head += ["R@3", "MRR@10", "ms/query"]
    body = []
    for name, r, ms in rows:
        m = metrics(r, ms)
        cells = [name, f"{m.r1:.3f}", f"{metrics(r[d.tune]).r1:.3f}"]
        cells += [f"{metrics(r[d.held]).r1:.3f}"]
        cells += [f"{metrics(r[d.distinct]).r1:.3f}"] if lc else []
        body.append(cells + m.cells()[1:])
    out = [table(head, body), ""]
    views = [("all queries", slice(None)), ("held-out half", d.held)]
    views += [("queries not another FAQ's text", d.distinct)] if lc else []
    for view, sel in views:
        now = metrics(rows[0][1][sel]).r1
        before = metrics(rows[1][1][sel]).r1
        name, best = max(
            ((n, metrics(r[sel]).r1) for n, r, _ in rows[ENGINE_ROWS:]), key=lambda x: x[1]
        )
        out.append(
            f"{d.name}, {view}: ours now R@1 {now:.3f} vs best baseline {best:.3f} ({name}) "
            f"and the engine before {before:.3f}: "
            f"{'above' if now > best else 'NOT above'} every baseline, "
            f"{'above' if now > before else 'NOT above'} the engine before"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="bq,lcqmc", help="comma list of: bq, lcqmc")
    ap.add_argument(
        "--tune", action="store_true", help="search the rerank mix on the tuning halves"
    )
    ap.add_argument(
        "--explore",
        action="store_true",
        help="BQ: the block-weight search and prototypes of the older lab (minutes)",
    )
    ap.add_argument("--no-explore", action="store_true", help=argparse.SUPPRESS)  # the default
    ap.add_argument("--split-seed", type=int, default=1, help="seed of the tuning/held-out split")
    ap.add_argument("--step", type=float, default=0.1, help="grid step of the weight searches")
    args = ap.parse_args()

    print(machine())
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    t0 = time.perf_counter()
    data: dict[str, Data] = {}
    for key in args.sets.split(","):
        name, prefix, load = SETS[key]
        d = data[key] = Data(load(), name=name, prefix=prefix, seed=args.split_seed)
        print(
            f"\n## {name} FAQ retrieval: {d.n_faqs} FAQs, {len(d.rows)} indexed questions, "
            f"{len(d.queries)} queries ({len(d.tune)} in the tuning half, split seed "
            f"{args.split_seed}; {len(d.distinct)} not another FAQ's text); set-up "
            f"{d.setup_s:.1f} s, text preparation {d.prepare_ms:.3f} ms/query median, shared "
            "by all methods and not counted below\n"
        )
        rows = engines(d)
        rows += baselines(d, stop_words=False)
        rows += baselines(d, stop_words=True)
        print(report(d, rows))
        if key == "bq" and args.explore:
            explore(d, args.split_seed, args.step, rows)
    if args.tune:
        tune_mix(list(data.values()))
    print(f"\n(took {time.perf_counter() - t0:.0f} s)")


def explore(d: Data, seed: int, step: float, headline_rows: list) -> None:
    t0 = time.perf_counter()
    tune, held = d.tune, d.held
    alln = np.arange(len(d.queries))
    lab = Lab(d)
    base_blocks = ("word", "char", "pinyin")
    base_feats = ("fuzz", "pinyin")

    # Main's engine, as the lab reproduces it (its mix: retrieval, fuzz.ratio, pinyin).
    ds, dm = MAIN_SETTINGS, MAIN_CONFIG
    default = Choice(
        {"word": ds.word_weight, "char": ds.char_weight, "pinyin": ds.pinyin_weight},
        {"fuzz": dm.fuzz_weight, "pinyin": dm.pinyin_weight},
        dm.retrieval_weight,
        dm.k,
    )
    print(
        f"\n## Tuning the engine's weights: chosen on {len(tune)} queries (split seed {seed}), "
        f"reported on the other {len(held)}\n"
    )
    choices = [("defaults", default)]
    for k in (5, 10, 20, 40):
        choices.append(
            (f"best with k={k}", search(lab, tune, base_blocks, base_feats, k=k, step=step))
        )
    # The smallest k whose plateau is within 0.002 (under 3 queries) of the best: a larger
    # k costs a rapidfuzz call per extra candidate on every question.
    top = max(c.plateau for _, c in choices[1:])
    best = next(c for _, c in choices[1:] if c.plateau >= top - 0.002)
    rows = []
    for name, c in choices:
        t, h, a = measure(lab, c, tune), measure(lab, c, held), measure(lab, c, alln)
        rows.append(
            [
                name,
                f"{c.plateau:.3f}" if c.plateau else "",
                f"{t.r1:.3f}",
                f"{h.r1:.3f}",
                f"{h.mrr:.3f}",
                f"{a.r1:.3f}",
                f"{a.r3:.3f}",
                f"{a.mrr:.3f}",
                describe(c),
            ]
        )
    print(
        table(
            [
                "weights",
                "plateau R@1 tune",
                "R@1 tune",
                "R@1 held-out",
                "MRR held-out",
                "R@1 all",
                "R@3 all",
                "MRR all",
                "IndexSettings / MatcherConfig",
            ],
            rows,
        )
    )

    # Ideas the engine could adopt: each gets the same search as the reference.
    print(
        "\n## Ideas, prototyped with the engine's pieces (each re-tuned on the tuning half, "
        f"k={best.k})\n"
    )
    ideas: list[tuple[str, Sequence[str], Sequence[str]]] = []
    for sizes in ((1, 2), (2, 3), (1, 2, 3, 4)):
        name = lab.add_char_range(sizes)
        ideas.append(
            (
                f"char n-grams {'-'.join(map(str, sizes))} instead of 1-3",
                ("word", name, "pinyin"),
                base_feats,
            )
        )
    ideas.append(
        ("word block keeps stop words", (lab.add_word_tokens(), "char", "pinyin"), base_feats)
    )
    ideas.append(
        (
            "no unigrams: char 2-3, pinyin bigrams only (the faster index of bench_latency)",
            ("word", "char23", lab.add_pinyin_bigrams()),
            base_feats,
        )
    )
    ideas.append(("+ word bigram block", (*base_blocks, lab.add_bigrams()), base_feats))
    ideas.append(
        (
            "BM25 weighting (k1 1.2, b 0.75) instead of TF-IDF in all three blocks",
            lab.add_bm25(),
            base_feats,
        )
    )
    extra = (
        ("fuzz.partial_ratio on text", fuzz.partial_ratio, False),
        ("fuzz.token_set_ratio on words", fuzz.token_set_ratio, True),
        ("fuzz.token_sort_ratio on words", fuzz.token_sort_ratio, True),
    )
    for label, scorer, words in extra:
        ideas.append(
            (
                f"+ rerank feature {label}",
                base_blocks,
                (*base_feats, lab.add_fuzz(label, scorer, words=words)),
            )
        )
    ref_h = measure(lab, best, held)
    idea_rows = [
        [
            "reference: the best engine weights above",
            f"{best.score[0]:.3f}",
            f"{ref_h.r1:.3f}",
            "",
            f"{ref_h.mrr:.3f}",
            describe(best),
        ]
    ]
    found: dict[str, Choice] = {}
    for label, blocks, feats in ideas:
        c = search(lab, tune, blocks, feats, k=best.k, step=step)
        found[label] = c
        h = measure(lab, c, held)
        idea_rows.append(
            [
                label,
                f"{c.score[0]:.3f}",
                f"{h.r1:.3f}",
                f"{h.r1 - ref_h.r1:+.3f}",
                f"{h.mrr:.3f}",
                describe(c),
            ]
        )
    print(
        table(
            ["idea", "R@1 tune", "R@1 held-out", "Δ R@1 held-out", "MRR held-out", "weights found"],
            idea_rows,
        )
    )

    # The real engine with the recommended weights, and with the token-sort prototype.
    ts = found["+ rerank feature fuzz.token_sort_ratio on words"]
    configs = [
        ("main", MAIN_SETTINGS, MAIN_CONFIG, 0.0),
        ("recommended weights", *engine_settings(best), 0.0),
        ("token-sort prototype", *engine_settings(ts), ts.rerank[TOKEN_SORT]),
    ]
    print("\n## The real engine (Index.build + Matcher.rank) with these settings\n")
    real, first = [], None
    for name, settings, config, weight in configs:
        r = headline(
            d,
            settings=settings,
            config=config,
            label=f" ({name})",
            token_sort=weight,
            retrieval_only=False,
            feats=main_features,
        )[0]
        first = r[1] if first is None else first
        lo, hi = paired_ci(r[1][held] == 1, first[held] == 1)
        real.append(
            [
                r[0],
                f"{metrics(r[1]).r1:.3f}",
                f"{metrics(r[1][held]).r1:.3f}",
                "" if r[1] is first else f"{lo:+.3f} … {hi:+.3f}",
                *metrics(r[1], r[2]).cells()[1:],
            ]
        )
    print(
        table(
            [
                "method",
                "R@1 all",
                "R@1 held-out",
                "Δ held-out vs main, 95% CI",
                "R@3 all",
                "MRR@10 all",
                "ms/query",
            ],
            real,
        )
    )
    for name, settings, config, weight in configs:
        print(
            f"{name}: {settings}; {short(config)}"
            + (f"; token_sort_weight={weight:.2f}" if weight else "")
        )

    print("\n## The same settings on the shipped bank (faq/, tests/data/dev_questions.yaml)\n")
    print(dev_check(configs))
    print(f"\n(exploration took {time.perf_counter() - t0:.0f} s)")


TOKEN_SORT = "fuzz.token_sort_ratio on words"


def paired_ci(a: np.ndarray, b: np.ndarray, *, n: int = 2000) -> tuple[float, float]:
    """95% paired bootstrap interval of mean(a) - mean(b) over the same queries."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    rng = np.random.default_rng(12345)
    means = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def engine_settings(c: Choice) -> tuple[IndexSettings, MatcherConfig]:
    """The IndexSettings and MatcherConfig that a lab choice stands for."""
    blocks = [c.index.get(n, 0.0) for n in ("word", "char", "pinyin")]
    settings = IndexSettings(word_weight=blocks[0], char_weight=blocks[1], pinyin_weight=blocks[2])
    config = replace(
        MAIN_CONFIG,
        retrieval_weight=c.ret,
        fuzz_weight=c.rerank.get("fuzz", 0.0),
        pinyin_weight=c.rerank.get("pinyin", 0.0),
        k=c.k,
    )
    return settings, config


def short(c: MatcherConfig) -> str:
    return (
        f"MatcherConfig(retrieval_weight={c.retrieval_weight}, fuzz_weight={c.fuzz_weight}, "
        f"pinyin_weight={c.pinyin_weight}, k={c.k})"
    )


def dev_check(configs: list[tuple[str, IndexSettings, MatcherConfig, float]]) -> str:
    """Top-1 accuracy on the project's own labelled questions, as a guard against BQ overfit."""
    dev = ROOT / "tests" / "data" / "dev_questions.yaml"
    try:
        bank = load_bank(ROOT / "faq")
        items = load_labelled(dev, known_ids=set(bank.by_id))
    except (BankError, OSError) as exc:
        return f"skipped: {exc}"
    items = [it for it in items if it.id != FALLBACK]
    pipeline = pipeline_for(bank)
    prepared = [pipeline.prepare(it.q) for it in items]
    words = [" ".join(pipeline.prepare(t).words) for f in bank.faqs for t in dict.fromkeys(f.texts)]
    bank_rows = [
        (pos, pipeline.prepare(t))
        for pos, f in enumerate(bank.faqs)
        for t in dict.fromkeys(f.texts)
    ]
    mix = [f"{n}_weight" for n in MIX] + [f"{n}_penalty" for n in PENALTIES] + ["k", "rows"]
    rows = []
    for name, settings, config, weight in configs:
        index = Index.build(bank_rows, digest="bench", settings=settings, features=main_features)
        config = replace(
            MatcherConfig.from_mapping(bank.thresholds), **{f: getattr(config, f) for f in mix}
        )
        matcher = (
            TokenSortMatcher(index, config, row_words=words, weight=weight)
            if weight
            else Matcher(index, config)
        )
        hits = 0
        for p, it in zip(prepared, items, strict=True):
            cands = matcher.rank(p)
            hits += bool(cands) and bank.faqs[cands[0].pos].id == it.id
        rows.append([name, f"{hits}/{len(items)}", f"{hits / len(items):.3f}"])
    return f"{len(bank.faqs)} FAQs, {len(items)} in-remit labelled questions\n\n" + table(
        ["settings", "top-1 right", "top-1 accuracy"], rows
    )


# --- the rerank mix, searched on the tuning halves -------------------------------------------

MIX = ("retrieval", "bm25", "lcs", "fuzz", "pinyin", "votes")
PENALTIES = ("kind", "negation")


@dataclass(frozen=True)
class Gathered2:
    """Every query's candidates (retrieval order) and their rerank similarities."""

    feats: np.ndarray  # queries × k × (MIX + PENALTIES), 0 for a missing candidate
    valid: np.ndarray  # queries × k: a candidate is there
    gpos: np.ndarray  # column of the gold FAQ, -1 when it is not among the candidates

    def part(self, sel: np.ndarray) -> Gathered2:
        return Gathered2(self.feats[sel], self.valid[sel], self.gpos[sel])


def gather_mix(d: Data, settings: IndexSettings, config: MatcherConfig) -> Gathered2:
    """Rank every query once with every similarity on, keeping each candidate's pieces."""
    index = build_index(d.bank, d.pipeline, settings=settings)
    on = {f"{n}_weight": 1.0 for n in MIX} | {f"{n}_penalty": 1.0 for n in PENALTIES}
    matcher = Matcher(index, replace(config, **on))
    k = config.k
    n = len(MIX) + len(PENALTIES)
    feats = np.zeros((len(d.queries), k, n))
    valid = np.zeros((len(d.queries), k), dtype=bool)
    gpos = np.full(len(d.queries), -1)
    for i, p in enumerate(d.queries):
        # rank() sorts by the mix; retrieval order is the order the index gave.
        cands = sorted(matcher.rank(p), key=lambda c: -c.retrieval)
        for j, c in enumerate(cands[:k]):
            feats[i, j] = [
                c.retrieval,
                c.bm25,
                c.lcs,
                c.fuzz,
                c.pinyin,
                c.votes,
                c.kind,
                c.negation,
            ]
            valid[i, j] = True
            if c.pos == d.gold[i]:
                gpos[i] = j
    return Gathered2(feats, valid, gpos)


def mix_ranks(g: Gathered2, w: np.ndarray) -> np.ndarray:
    """Gold ranks (0: not in the first TOP) under the mix ``w`` (penalties negative)."""
    raw = np.where(g.valid, g.feats @ w, -np.inf)
    gp = g.gpos
    graw = raw[np.arange(len(raw)), np.maximum(gp, 0)][:, None]
    before = np.arange(raw.shape[1])[None, :] < gp[:, None]
    rank = (raw > graw).sum(axis=1) + ((raw == graw) & before).sum(axis=1) + 1
    return np.where((gp >= 0) & (rank <= TOP), rank, 0)


def tune_mix(sets: list[Data], *, step: float = 0.1) -> None:
    """Grid-search the mix for the best mean R@1 over the sets' tuning halves.

    Retrieval order ties are broken as Matcher.rank breaks them (stably); the
    candidate set does not depend on the mix, so one ranking per query suffices.
    The choice is reported on the held-out halves.
    """
    t0 = time.perf_counter()
    config = MatcherConfig()
    gathered = [gather_mix(d, IndexSettings(), config) for d in sets]
    tunes = [g.part(d.tune) for g, d in zip(gathered, sets, strict=True)]
    units = round(1 / step)  # the similarities' weights (all but votes) sum to 1
    votes_grid = (0.0, 0.05, 0.1, 0.15, 0.2)
    pen_grid = (0.0, 0.01, 0.02, 0.04)
    results: dict[tuple[tuple[int, ...], int, int, int], tuple[float, float]] = {}
    for split in simplex(len(MIX) - 1, units):
        for v, votes in enumerate(votes_grid):
            for a, kp in enumerate(pen_grid):
                for b, npen in enumerate(pen_grid):
                    w = np.array([*(x / units for x in split), votes, -kp, -npen])
                    score = [metrics(mix_ranks(g, w)) for g in tunes]
                    results[split, v, a, b] = (
                        sum(m.r1 for m in score) / len(score),
                        sum(m.mrr for m in score) / len(score),
                    )

    def plateau(key: tuple[tuple[int, ...], int, int, int]) -> tuple[float, float, float]:
        """Mean R@1 one grid step around ``key`` (a single best point is partly luck)."""
        split, v, a, b = key
        around = [
            results[s2, v2, a2, b2][0]
            for s2 in neighbours(split)
            for v2 in {max(v - 1, 0), v, min(v + 1, len(votes_grid) - 1)}
            for a2 in {max(a - 1, 0), a, min(a + 1, len(pen_grid) - 1)}
            for b2 in {max(b - 1, 0), b, min(b + 1, len(pen_grid) - 1)}
        ]
        return (sum(around) / len(around), *results[key])

    ranked = sorted(results, key=plateau, reverse=True)

    def weights(key: tuple[tuple[int, ...], int, int, int]) -> np.ndarray:
        split, v, a, b = key
        return np.array([*(x / units for x in split), votes_grid[v], -pen_grid[a], -pen_grid[b]])

    now = np.array(
        [getattr(config, f"{n}_weight") for n in MIX]
        + [-getattr(config, f"{n}_penalty") for n in PENALTIES]
    )
    rows = []
    choices = [("defaults now", now, "")] + [
        (f"plateau #{i + 1}", weights(key), f"{plateau(key)[0]:.3f}")
        for i, key in enumerate(ranked[:8])
    ]
    best = max(results, key=lambda key: results[key])
    choices.append(("best single point", weights(best), f"{plateau(best)[0]:.3f}"))
    for label, w, around in choices:
        cells = [
            label,
            ", ".join(f"{n} {x:+.2f}" for n, x in zip(MIX + PENALTIES, w, strict=True)),
            around,
        ]
        for g, d in zip(gathered, sets, strict=True):
            cells += [
                f"{metrics(mix_ranks(g.part(d.tune), w)).r1:.3f}",
                f"{metrics(mix_ranks(g.part(d.held), w)).r1:.3f}",
            ]
        rows.append(cells)
    head = ["mix", "weights (penalties negative)", "plateau: mean R@1 tune around"]
    for d in sets:
        head += [f"{d.name} R@1 tune", f"{d.name} R@1 held-out"]
    print(f"\n## The rerank mix, searched on the tuning halves ({len(results)} points)\n")
    print(table(head, rows))
    print(f"(search took {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
