"""Fit, save, load and query the TF-IDF index of the FAQ bank.

One row per standard question and per alternate, each pointing to its FAQ.
Three feature blocks — every segmented token (stop words included: 什么,
不, 吗 tell questions apart), character 1–2-grams and pinyin syllable
1–2-grams — are fitted with scikit-learn's ``TfidfVectorizer``;
each block's rows are L2-normalised and weighted, so the dot product of a
query with a row is the weighted sum of the three cosine similarities.

Queries are scored by walking the posting lists of the query's features
(the matrix is stored transposed), which costs time in proportion to how
common those features are, not to the size of the bank.

The saved file starts with a one-line header and a JSON metadata line, read
before anything is unpickled, so a stale or foreign file is recognised and
never loaded.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import platform
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from ..errors import IndexArtifactError
from ..files import atomic_write
from .text import Prepared
from .topics import TopicModel

__all__ = ["Index", "IndexSettings", "features", "MAGIC", "FORMAT"]

MAGIC = b"XIAOCHENG-INDEX\n"
# 2: the topic model (bot/match/topics.py) is part of the index.
# 3: the word block keeps stop words; the character block is 1–2-grams (was 1–3).
FORMAT = 3
_LIBS = ("scikit-learn", "scipy", "numpy", "jieba", "pypinyin", "opencc-python-reimplemented")


@dataclass(frozen=True)
class IndexSettings:
    """Weights of the three feature blocks (they sum to 1)."""

    word_weight: float = 0.45
    char_weight: float = 0.45
    pinyin_weight: float = 0.10


def features(p: Prepared) -> tuple[list[str], list[str], list[str]]:
    """The word, character n-gram and pinyin n-gram features of a prepared question.

    Words are all of the question's tokens (its content words when it was
    prepared without them); characters are 1- and 2-grams: 3-grams mostly
    repeat what the words already say and cost general paraphrases recall
    (bench/RESULTS.md, 2026-12-02, fourth session).
    """
    chars = p.text.replace(" ", "")
    grams = [chars[i : i + n] for n in (1, 2) for i in range(len(chars) - n + 1)]
    py = p.pinyin
    pys = list(py) + [f"{a}_{b}" for a, b in zip(py, py[1:], strict=False)]
    return list(p.tokens or p.words), grams, pys


Features = Callable[[Prepared], tuple[list[str], list[str], list[str]]]


def _identity(doc: list[str]) -> list[str]:
    return doc


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBS:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "?"
    return out


@dataclass
class _Block:
    vocab: dict[str, int]
    idf: np.ndarray
    weight: float
    offset: int


class Index:
    """Rows of (FAQ position, prepared text) and their weighted TF-IDF vectors."""

    def __init__(
        self,
        *,
        blocks: list[_Block],
        postings: sp.csr_matrix,
        row_faq: np.ndarray,
        row_text: list[str],
        row_pinyin: list[str],
        meta: dict[str, Any],
        topics: TopicModel | None = None,
        features: Features = features,
    ) -> None:
        self.blocks = blocks
        self.features = features  # the same function for the rows and the queries
        self.postings = postings  # (features × rows), CSR: one posting list per feature
        self.row_faq = row_faq
        self.row_text = row_text
        self.row_pinyin = row_pinyin
        self.meta = meta
        self.topics = topics  # None for a bank it cannot learn from (see topics.py)
        self._starts: list[int] | None = None

    @property
    def n_rows(self) -> int:
        return len(self.row_faq)

    def rows_of(self, pos: int) -> range:
        """The rows of the FAQ at ``pos`` (rows are built FAQ by FAQ, in bank order)."""
        if self._starts is None:
            faqs = int(self.row_faq[-1]) + 2 if len(self.row_faq) else 1
            self._starts = np.searchsorted(self.row_faq, np.arange(faqs)).tolist()
        starts = self._starts
        return range(starts[pos], starts[pos + 1]) if pos + 1 < len(starts) else range(0)

    # --- building ------------------------------------------------------------

    @classmethod
    def build(
        cls,
        rows: Sequence[tuple[int, Prepared]],
        *,
        digest: str,
        settings: IndexSettings = IndexSettings(),  # noqa: B008 - frozen dataclass
        features: Features = features,
    ) -> Index:
        """Fit the three TF-IDF blocks over ``rows`` of (FAQ position, prepared text).

        ``features`` turns a prepared text into its three blocks' features; the
        index uses it for queries too (a bench can try another one). It is not
        saved: a loaded index uses :func:`features`.
        """
        if not rows:
            raise IndexArtifactError("cannot build an index from an empty bank")
        rows = sorted(rows, key=lambda row: row[0])  # rows_of() relies on FAQ order
        feats = [features(p) for _, p in rows]
        weights = (settings.word_weight, settings.char_weight, settings.pinyin_weight)
        blocks, matrices, offset = [], [], 0
        for b, weight in enumerate(weights):
            docs = [f[b] for f in feats]
            vec = TfidfVectorizer(
                analyzer=_identity, token_pattern=None, lowercase=False, sublinear_tf=True
            )
            if not any(docs):
                docs = [["∅"] for _ in docs]  # a block with no features at all
            m = vec.fit_transform(docs) * weight
            blocks.append(_Block(vec.vocabulary_, vec.idf_.astype(np.float64), weight, offset))
            matrices.append(m)
            offset += m.shape[1]
        stacked = sp.hstack(matrices, format="csr")
        meta = {
            "format": FORMAT,
            "digest": digest,
            "versions": _versions(),
            "settings": settings.__dict__,
            "rows": len(rows),
        }
        row_faq = np.array([pos for pos, _ in rows], dtype=np.int32)
        return cls(
            blocks=blocks,
            postings=stacked.T.tocsr(),
            row_faq=row_faq,
            row_text=[p.text for _, p in rows],
            row_pinyin=[p.pinyin_text for _, p in rows],
            meta=meta,
            topics=TopicModel.train(stacked, row_faq),
            features=features,
        )

    # --- querying ------------------------------------------------------------

    def vector(self, p: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """Columns and weights of the query vector, as the rows were built."""
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for block, feats in zip(self.blocks, self.features(p), strict=True):
            vocab = block.vocab
            counts = Counter(c for c in map(vocab.get, feats) if c is not None)
            if not counts:
                continue
            bc = np.fromiter(counts, dtype=np.int64, count=len(counts))
            bv = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
            bv *= block.idf[bc]
            bv /= math.sqrt(float(bv @ bv))
            cols.append(bc + block.offset)
            vals.append(bv)
        if not cols:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return np.concatenate(cols), np.concatenate(vals)

    def scores(
        self,
        p: Prepared,
        *,
        max_postings: int | None = None,
        vector: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Similarity of the query to every row (weighted sum of cosines, 0..1).

        Features found in more than ``max_postings`` rows are skipped when the
        question has rarer ones: in a large bank they are the commonest
        characters, whose low IDF adds little to any row but whose posting
        lists would cost most of the time.
        """
        cols, vals = vector if vector is not None else self.vector(p)
        if not len(cols):
            return np.zeros(self.n_rows)
        ptr = self.postings.indptr
        starts = ptr[cols]
        lengths = ptr[cols + 1] - starts
        if max_postings is not None and lengths.max() > max_postings:
            rare = lengths <= max_postings
            if rare.any():
                starts, lengths, vals = starts[rare], lengths[rare], vals[rare]
        if not lengths.sum():
            return np.zeros(self.n_rows)
        # Positions of every posting of every query feature, without a Python loop.
        take = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        weights = np.repeat(vals, lengths) * self.postings.data[take]
        return np.bincount(self.postings.indices[take], weights=weights, minlength=self.n_rows)

    def top_faqs(
        self,
        p: Prepared,
        *,
        k: int = 10,
        rows: int = 64,
        vote_rows: int = 10,
        max_postings: int | None = None,
        vector: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[tuple[int, float, list[int], float]]:
        """The best ``k`` FAQs as (FAQ position, best row score, rows by score, votes).

        ``votes`` is the FAQ's share of the best ``vote_rows`` rows: a question
        close to several wordings of one FAQ gives it many votes. A row that
        does not match at all votes for no FAQ, so a question that grazes a
        single wording of a small bank does not give that FAQ every vote.
        """
        s = self.scores(p, max_postings=max_postings, vector=vector)
        n = min(rows, self.n_rows)
        top = np.argpartition(-s, n - 1)[:n] if n < self.n_rows else np.arange(self.n_rows)
        top = top[np.argsort(-s[top], kind="stable")]
        top = top[s[top] > 0.0]
        found: dict[int, tuple[float, list[int]]] = {}
        hits: dict[int, int] = {}
        faqs = self.row_faq[top].tolist()
        for i, (r, score, pos) in enumerate(zip(top.tolist(), s[top].tolist(), faqs, strict=True)):
            if i < vote_rows:
                hits[pos] = hits.get(pos, 0) + 1
            if pos in found:
                found[pos][1].append(r)
            elif len(found) < k:
                found[pos] = (score, [r])
        voters = max(1, min(vote_rows, self.n_rows))
        return [(pos, sc, rs, hits.get(pos, 0) / voters) for pos, (sc, rs) in found.items()]

    # --- persistence ---------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a reader never sees a half-written file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "blocks": self.blocks,
            "postings": self.postings,
            "row_faq": self.row_faq,
            "row_text": self.row_text,
            "row_pinyin": self.row_pinyin,
            "topics": self.topics,
        }

        def write(fh: BinaryIO) -> None:
            fh.write(MAGIC)
            fh.write(json.dumps(self.meta, sort_keys=True).encode() + b"\n")
            pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)

        atomic_write(path, write)

    @staticmethod
    def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
        """Read the metadata line without unpickling anything."""
        try:
            with open(path, "rb") as fh:
                if fh.read(len(MAGIC)) != MAGIC:
                    raise IndexArtifactError(f"{path} is not a 智能小城 index file")
                meta = json.loads(fh.readline())
        except FileNotFoundError:
            raise IndexArtifactError(f"{path} does not exist; run python train.py") from None
        except (OSError, ValueError) as exc:
            raise IndexArtifactError(f"{path} cannot be read ({exc})") from None
        if not isinstance(meta, dict):
            raise IndexArtifactError(f"{path} has no metadata line")
        return meta

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, digest: str) -> Index:
        """Load ``path`` if it was built by this code, these libraries and this bank."""
        meta = cls.read_meta(path)
        problem = stale_reason(meta, digest)
        if problem:
            raise IndexArtifactError(f"{path} {problem}; run python train.py to rebuild it")
        with open(path, "rb") as fh:
            fh.readline()
            fh.readline()
            try:
                payload = pickle.load(fh)  # noqa: S301 - our own artifact, header checked
            except Exception as exc:  # unpickling can raise almost anything
                raise IndexArtifactError(f"{path} is damaged ({exc.__class__.__name__})") from None
        return cls(meta=meta, **payload)


def stale_reason(meta: dict[str, Any], digest: str) -> str | None:
    """Why an index with ``meta`` cannot serve the bank with ``digest`` (None: it can)."""
    if meta.get("format") != FORMAT:
        return f"has format {meta.get('format')!r}, this code reads format {FORMAT}"
    if meta.get("settings") != IndexSettings().__dict__:
        return "was built with other feature weights"
    if meta.get("digest") != digest:
        return "was built from a different version of the FAQ bank"
    versions = meta.get("versions", {})
    for lib, now in _versions().items():
        if versions.get(lib) != now:
            return f"was built with {lib} {versions.get(lib)}, this machine has {now}"
    return None
