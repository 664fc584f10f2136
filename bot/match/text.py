"""Text pipeline: one function turns a question into the features the index uses.

The same :meth:`TextPipeline.prepare` serves the bank at training time and the
visitor's question at query time, so both sides are always treated alike.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jieba
from opencc import OpenCC
from pypinyin import Style, lazy_pinyin

from .clerk import CLAUSE_BREAK, Clerk

__all__ = ["CLERK_MIN_CHARS", "MAX_CHARS", "Prepared", "TextPipeline", "normalize"]

# Longer input is cut before any work is done: no FAQ question is this long.
MAX_CHARS = 500

_NOT_WORD = re.compile(r"[\W_]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_t2s = OpenCC("t2s")
jieba.setLogLevel(logging.WARNING)


def normalize(text: str, *, max_chars: int = MAX_CHARS) -> str:
    """Fold width, script, case; drop punctuation, emoji and control characters.

    Runs of letters/digits are kept apart by one space, so "hello world" stays
    two words; Chinese needs no spaces.
    """
    text = unicodedata.normalize("NFKC", text[: max_chars * 2])[:max_chars]
    text = _t2s.convert(text).lower()
    text = _NOT_WORD.sub(" ", text).strip()
    return re.sub(r"(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])", "", text)


@lru_cache(maxsize=65536)
def _char_pinyin(ch: str) -> str:
    return lazy_pinyin(ch, style=Style.NORMAL)[0] if _CJK.match(ch) else ch


@dataclass(frozen=True)
class Prepared:
    """A question after normalisation, segmentation and synonym mapping."""

    text: str  # normalised, synonyms applied, no spaces between Chinese words
    words: tuple[str, ...]  # content words (stop words removed)
    pinyin: tuple[str, ...]  # one toneless syllable per character of ``text``
    # Every segmented token, stop words included (什么, 不, 吗 tell questions apart too).
    tokens: tuple[str, ...] = ()
    # A message (at least CLERK_MIN_CHARS characters), not a short question: the clerk read it.
    message: bool = False

    @property
    def pinyin_text(self) -> str:
        return " ".join(self.pinyin)


class TextPipeline:
    """Owns a jieba tokenizer loaded with the domain dictionary and the synonym map."""

    def __init__(
        self,
        *,
        dict_path: str | Path | None = None,
        synonyms: dict[str, str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        extra_words: tuple[str, ...] = (),
        bank_texts: tuple[str, ...] = (),
        clerk: bool = True,
    ) -> None:
        self.synonyms = dict(synonyms or {})
        self.stopwords = _stopwords()
        self._tk = _fresh_tokenizer(cache_dir)
        if dict_path is not None:
            with open(dict_path, "rb") as fh:  # jieba leaks the handle if given a path
                self._tk.load_userdict(fh)
        domain = [*_dict_words(dict_path), *self.synonyms, *self.synonyms.values(), *extra_words]
        domain = [normalize(w) for w in domain]
        # Every synonym and extra word must come out of jieba whole to be mapped.
        for word in domain:
            if len(word) > 1 and not self._tk.FREQ.get(word):
                self._tk.add_word(word, freq=2000)
        self._homophones = _homophone_table(domain)
        # first syllable → lengths of the domain words that start with it, longest first
        self._homophone_sizes: dict[str, tuple[int, ...]] = {}
        for key in self._homophones:
            sizes = {*self._homophone_sizes.get(key[0], ()), len(key)}
            self._homophone_sizes[key[0]] = tuple(sorted(sizes, reverse=True))
        # The clerk never takes out a word the bank itself uses. Segmenting every
        # wording is most of a load: a reload that changed no wording, dictionary or
        # synonym (an answer, say) reuses what this process found last time.
        dictionary = Path(dict_path).read_bytes() if dict_path is not None else b""
        memo = (dictionary, tuple(domain), tuple(sorted(self.synonyms.items())), bank_texts)
        with _keep_lock:
            keep = _keep.get(memo)
        if keep is None:
            keep = frozenset(
                {*domain, *(w for t in bank_texts for w in self.segment(normalize(t)))}
            )
            with _keep_lock:
                _keep.clear()  # one bank per process is enough
                _keep[memo] = keep
        self.clerk = Clerk(self._tk, keep) if clerk else None

    def segment(self, text: str) -> list[str]:
        """Segment already-normalised text into words, mapping synonyms to canonical words."""
        out = []
        for tok in self._tk.lcut(text, HMM=True):
            tok = tok.strip()
            if tok:
                out.append(self.synonyms.get(tok, tok))
        return out

    def fix_homophones(self, text: str) -> str:
        """Replace a typo that sounds like a domain word (违张搭建 → 违章搭建).

        A stretch is replaced only when its toneless pinyin equals exactly one
        domain word's, at least half of its characters already agree, and it
        is not a word in its own right nor part of a word with its neighbours
        (so 停几天 keeps 几天 and is not read as 停机).
        """
        if not self._homophones:
            return text
        syllables = [_char_pinyin(ch) for ch in text]
        out: list[str] = []
        i = 0
        while i < len(text):
            sizes = self._homophone_sizes.get(syllables[i], ())
            for size in (n for n in sizes if n <= len(text) - i):
                word = self._homophones.get(tuple(syllables[i : i + size]))
                piece = text[i : i + size]
                if (
                    word
                    and word != piece
                    and _agree(word, piece) * 2 >= size
                    and not self._is_word(piece)
                    and not self._is_word(text[max(i - 1, 0) : i + 1])
                    and not self._is_word(text[i + size - 1 : i + size + 1])
                ):
                    out.append(word)
                    i += size
                    break
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _is_word(self, piece: str) -> bool:
        return len(piece) > 1 and bool(self._tk.FREQ.get(piece))

    def prepare(self, question: str) -> Prepared:
        """Normalise, read as a clerk, fix homophones, segment, map synonyms, drop stop words.

        The clerk (:mod:`.clerk`) takes place names, addresses and request
        frames out, clause by clause, of a text of at least
        :data:`CLERK_MIN_CHARS` normalised characters; when nothing would be
        left the normalised text is kept whole.
        """
        norm = normalize(question)
        message = len(norm) >= CLERK_MIN_CHARS
        if self.clerk is not None and message:
            clauses = CLAUSE_BREAK.split(question[: MAX_CHARS * 2])
            norm = normalize(self.clerk.read(normalize(c) for c in clauses)) or norm
        norm = self.fix_homophones(norm)
        tokens = self.segment(norm)
        text = "".join(t if _CJK.match(t[0]) else f" {t} " for t in tokens)
        text = re.sub(" +", " ", text).strip()
        words = tuple(t for t in tokens if t not in self.stopwords)
        pinyin = tuple(_char_pinyin(ch) for ch in norm if not ch.isspace())
        return Prepared(
            text=text, words=words, pinyin=pinyin, tokens=tuple(tokens), message=message
        )


#: Shorter texts are questions, not complaints: the clerk (whose part-of-speech
#: tagging is most of a short question's cost) leaves them as they are. Chosen on the
#: fit half of tests/data/gov_labels: from 11 characters, 17.2% of its messages are
#: answered right and 47.5% answered or offered, as with no limit; from 15 and 21,
#: 16.2% and 5.1% are answered right (bench/RESULTS.md, 2026-12-02).
CLERK_MIN_CHARS = 11

_MAX_HOMOPHONE = 6
_base_lock = threading.Lock()
_base: jieba.Tokenizer | None = None
_keep_lock = threading.Lock()
_keep: dict[tuple[object, ...], frozenset[str]] = {}


def _fresh_tokenizer(cache_dir: str | os.PathLike[str] | None) -> jieba.Tokenizer:
    """A tokenizer of our own with jieba's main dictionary, read once per process.

    Reading the main dictionary costs seconds; each pipeline (a reload makes
    a new one) copies the loaded word table instead, so words a bank adds
    never leak into another bank's tokenizer.
    """
    global _base
    with _base_lock:
        if _base is None:
            base = jieba.Tokenizer()
            if cache_dir is not None:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)
                base.tmp_dir = str(cache_dir)  # jieba's cache goes here, not to /tmp
            base.initialize()
            _base = base
    tk = jieba.Tokenizer()
    tk.FREQ = dict(_base.FREQ)
    tk.total = _base.total
    tk.initialized = True
    return tk


def _agree(a: str, b: str) -> int:
    return sum(x == y for x, y in zip(a, b, strict=False))


def _homophone_table(words: list[str]) -> dict[tuple[str, ...], str]:
    """Toneless pinyin of each Chinese domain word → the word; ambiguous sounds are dropped."""
    table: dict[tuple[str, ...], str] = {}
    clash: set[tuple[str, ...]] = set()
    for word in dict.fromkeys(words):
        if not 2 <= len(word) <= _MAX_HOMOPHONE or not all(_CJK.match(c) for c in word):
            continue
        key = tuple(_char_pinyin(c) for c in word)
        if key in table and table[key] != word:
            clash.add(key)
        table[key] = word
    for key in clash:
        del table[key]
    return table


def _dict_words(path: str | Path | None) -> list[str]:
    if path is None:
        return []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    raw = resources.files("bot").joinpath("data/stopwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip() for line in raw.splitlines() if line.strip() and not line.startswith("#")
    )
