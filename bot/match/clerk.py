"""Read a message the way a clerk would: keep what decides the topic.

Citizens write complaints, not questions: they name the place
(某某区某某路某某小区7栋), the shop or company that is only the location,
and wrap the matter in request frames (强烈要求…, 望有关部门尽快处理,
迟迟得不到解决). None of that tells which FAQ helps, yet every such word
counts against the match as an unknown word. :class:`Clerk` takes it out
of a normalised text, for the bank's wordings and the visitor's message
alike (the text pipeline calls it for both), so the two stay comparable.

What is taken out, in this order of evidence:

* jieba's part-of-speech tags: place names (``ns``), person names
  (``nr``), organisation and other proper names (``nt``, ``nz``), when the
  word is not a word of the bank;
* suffix rules: a word ending in an administrative or address suffix
  (区, 县, 镇, 村, 街道, 路, 巷, 栋, 号, …) that the bank does not use, and
  the unknown name words right before a place noun (… 小区, … 公司,
  … 花园), which jieba often cuts into pieces it does not tag as names;
* numbers with their address units (7栋, 3单元, 502室);
* request and complaint frames and fillers (:data:`FRAMES`).

Words the bank itself uses are never taken out (小区, 公园, 道路, 噪音):
a bank word decides topics by definition. If nothing would be left, the
text is kept as it was (a message that is only an address still gets the
usual reply). Long messages are cut into clauses at punctuation; clauses
that are nothing but place and frame are dropped.

A maintained PyPI table of administrative divisions (cpca) was weighed:
it lists provinces, cities and counties only (not 街道, 小区 or shops, the
bulk of what citizens name), was last released in 2021 and pulls in pandas;
jieba's own dictionary already tags county-level names as ``ns``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

import jieba
import jieba.posseg as pseg

__all__ = ["Clerk", "FRAMES", "CLAUSE_BREAK"]

# Characters a clause ends at, before normalisation removes punctuation.
CLAUSE_BREAK = re.compile(r"[，,。.！!？?；;：:、\n\r\t…～~（）()【】\[\]“”\"'‘’《》]+")

# Proper-name tags of jieba.posseg.
_NAME_TAGS = frozenset({"ns", "nr", "nrt", "nrfg", "nt", "nz"})
# Word endings that make a place or an address (longest first is not needed: endswith).
_PLACE_SUFFIXES = (
    "省",
    "市",
    "区",
    "县",
    "镇",
    "乡",
    "村",
    "组",
    "街道",
    "社区",
    "路",
    "街",
    "巷",
    "弄",
    "里",
    "大道",
    "号",
    "栋",
    "幢",
    "单元",
    "室",
    "楼",
    "苑",
    "庭",
    "府",
    "湾",
    "城",
    "园",
    "居",
)
# Place nouns: the unknown name words right before one are its name.
_PLACE_NOUNS = frozenset(
    {
        "小区",
        "花园",
        "家园",
        "新村",
        "公寓",
        "大厦",
        "广场",
        "公司",
        "有限公司",
        "集团",
        "宾馆",
        "酒店",
        "商场",
        "超市",
        "市场",
        "学校",
        "中学",
        "小学",
        "幼儿园",
        "医院",
        "银行",
        "工厂",
        "厂",
        "店",
        "路",
        "街",
        "巷",
        "村",
        "镇",
        "区",
        "县",
        "市",
        "段",
        "附近",
        "旁",
        "旁边",
        "对面",
        "门口",
        "楼下",
    }
)
_NOUNISH = frozenset({"n", "ng", "nr", "nrt", "nrfg", "ns", "nt", "nz", "x", "j", "eng", "g", "zg"})
_UNITS = frozenset({"号", "栋", "幢", "单元", "室", "楼", "层", "组", "期", "号楼", "弄"})
_NUMBER = re.compile(r"^[0-9一二三四五六七八九十百零两]+$")
_ADDRESS_UNIT = re.compile(
    r"^[0-9一二三四五六七八九十百零两]+(号|栋|幢|单元|室|楼|层|组|期|区|号楼)?$"
)

# Request and complaint frames and fillers: they wrap the matter, they are not it.
FRAMES: tuple[str, ...] = (
    "关于",
    "强烈",
    "坚决",
    "请求",
    "恳请",
    "恳求",
    "希望",
    "建议",
    "反映",
    "一事",
    "有关部门",
    "相关部门",
    "尽快",
    "早日",
    "予以",
    "迟迟",
    "得不到",
    "无人管",
    "没人管",
    "回复",
    "答复",
)

_FRAME_RE = re.compile("|".join(sorted(map(re.escape, FRAMES), key=len, reverse=True)))


_tags_lock = threading.Lock()
_tags: dict[Any, dict[str, str]] = {}


def _pos_tokenizer(tokenizer: jieba.Tokenizer) -> pseg.POSTokenizer:
    """jieba's part-of-speech tokenizer over ``tokenizer``, its tag table read once per process.

    Reading the tags of jieba's main dictionary costs a second, in every
    worker at every reload; each tokenizer gets a copy (user words add tags).
    """
    key = tokenizer.dictionary
    with _tags_lock:
        if key not in _tags:
            _tags[key] = pseg.POSTokenizer(tokenizer).word_tag_tab
    pos = pseg.POSTokenizer.__new__(pseg.POSTokenizer)
    pos.tokenizer = tokenizer
    pos.word_tag_tab = dict(_tags[key])
    return pos


class Clerk:
    """Takes place names, addresses, frames and fillers out of a normalised text."""

    def __init__(
        self,
        tokenizer: jieba.Tokenizer,
        keep: Iterable[str] = (),
        *,
        names: bool = True,
        suffixes: bool = True,
        frames: bool = True,
    ) -> None:
        self._pos = _pos_tokenizer(tokenizer)
        self.keep = frozenset(keep)
        self.names, self.suffixes, self.frames = names, suffixes, frames
        self._frames = frozenset(FRAMES)

    def read(self, clauses: Iterable[str]) -> str:
        """The normalised ``clauses`` with what does not decide the topic taken out.

        A clause left empty is dropped; returns ``""`` when nothing is left.
        """
        return "".join(self._clause(c) for c in clauses if c.strip())

    def _clause(self, clause: str) -> str:
        if self.frames:
            # A frame may be inside one jieba word (强烈要求): cut it out of the text first.
            clause = _FRAME_RE.sub("", clause)
        pairs = [(w, f) for w, f in self._pos.lcut(clause.strip()) if w.strip()]
        drop = [False] * len(pairs)
        for i, (word, flag) in enumerate(pairs):
            if self.frames and word in self._frames:
                drop[i] = True
                continue
            if self.suffixes and _NUMBER.match(word):
                after = pairs[i + 1][0] if i + 1 < len(pairs) else ""
                if after in _UNITS:
                    drop[i] = drop[i + 1] = True
                    continue
            if word in self.keep or self._holds_kept(word):
                continue
            if self.names and flag in _NAME_TAGS and len(word) > 1:
                drop[i] = True
            elif self.suffixes and (
                _ADDRESS_UNIT.match(word) or (len(word) > 1 and word.endswith(_PLACE_SUFFIXES))
            ):
                drop[i] = True
        if self.suffixes:
            # The unknown name words right before a place noun are its name.
            for i, (word, _) in enumerate(pairs):
                if word not in _PLACE_NOUNS:
                    continue
                j = i - 1
                while j >= 0 and j >= i - 3:
                    w, f = pairs[j]
                    if w in self.keep or f not in _NOUNISH:
                        break
                    drop[j] = True
                    j -= 1
                if word not in self.keep and j < i - 1:
                    drop[i] = True  # the place noun went with its name
        return "".join(w for (w, _), d in zip(pairs, drop, strict=True) if not d)

    def _holds_kept(self, word: str) -> bool:
        """Whether a bank word of two or more characters is part of ``word`` (交警大队: 交警)."""
        n = len(word)
        return n > 2 and any(
            word[i : i + k] in self.keep for k in range(2, n) for i in range(n - k + 1)
        )
