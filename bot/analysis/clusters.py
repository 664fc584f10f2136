"""Group the questions 智能小城 could not answer well into clusters of similar questions.

:func:`cluster` takes query-log rows (:meth:`bot.querylog.QueryLog.unanswered`),
merges identical questions, and vectorises the rest with TF-IDF over character
1–3-grams of the normalised text, filler words and mask tokens removed. A
simple leader clustering follows: questions are taken most frequent first, and
each joins the cluster whose leader (its most frequent question) is the most
similar by cosine, if that similarity reaches ``threshold``, else it leads a
new cluster. Clusters come largest first.

Each :class:`Cluster` carries the nearest FAQ (from a callable the caller
provides, e.g. ``lambda q: bot.ask(q).candidates[0]``) and a ready-to-paste
YAML snippet: new alternates for that FAQ when it is close enough, else the
skeleton of a new entry. :func:`render_text` is the terminal report,
:func:`to_csv_rows` the CSV export. Texts are masked again on the way out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.config import CHINA_TIME
from bot.querylog.masking import TOKENS, mask

__all__ = [
    "CHINA_TIME",
    "CLUSTER_CSV_HEADER",
    "Cluster",
    "Nearest",
    "cluster",
    "csv_cell",
    "render_text",
    "to_csv_rows",
    "with_nearest",
    "yaml_scalar",
]

_MAX_EXAMPLES = 5
_CHUNK = 256  # rows compared to the leaders at a time: bounds memory for large inputs

# Words that say nothing about the topic; removed so that "怎么办" alone does not
# make two questions alike. Longest first, so "怎么办" goes before "怎么".
_FILLERS = sorted(
    "请问 你好 您好 我想问 想问 问一下 一下 怎么样 怎么办 怎么 怎样 如何 咋样 咋办 咋 "
    "什么 为什么 哪里 哪儿 "
    "在哪 哪个 找谁 谁管 多久 几天 有没有 要不要 需要 是否 可以 能不能 能否 是不是 "
    "吗 呢 啊 吧 呀 嘛 了 的 得 我 你 您".split(),
    key=len,
    reverse=True,
)
_NOISE = re.compile(
    "|".join(re.escape(w) for w in [*TOKENS.values(), *_FILLERS]) + r"|[\W_]+", re.UNICODE
)
# Chinese characters and the full-width marks of a question: YAML never quotes these.
_PLAIN = re.compile("[\u4e00-\u9fff\u3001\u3002\uff01\uff0c\uff1f]+")
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Nearest:
    """The FAQ closest to a cluster, by the engine's own matching."""

    id: str
    question: str
    score: float


@dataclass(frozen=True)
class Cluster:
    """Similar questions the bot could not answer well, with what to do about them."""

    count: int  # questions asked, repeats included
    distinct: int  # distinct questions
    examples: tuple[str, ...]  # up to five distinct questions, most asked first, masked
    first_seen: datetime | None
    last_seen: datetime | None
    nearest: Nearest | None
    suggest_alternates: bool  # the nearest FAQ is close enough to take these as alternates

    def yaml_snippet(self) -> str:
        """Return YAML to paste into the bank, with comments saying where it goes.

        Alternates come indented for an entry's ``alternates:`` list in a
        ``faq/*.yaml`` file; a new entry comes as an item of ``faqs:``, without an
        answer and with ``id: TODO``, so the bank refuses it until a curator
        writes both.
        """
        questions = [q for q in self.examples if not any(t in q for t in TOKENS.values())]
        if self.suggest_alternates and self.nearest is not None:
            n = self.nearest
            fresh = [q for q in questions if q != n.question]
            lines = [
                f"# {self.count} 次提问，最接近条目 {n.id}「{n.question}」"
                f"（相似度 {n.score:.2f}）。",
                f"# 把下面几行加到条目 {n.id} 的 alternates: 下：",
            ]
            lines += [f"      - {yaml_scalar(q)}" for q in fresh]
            return "\n".join(lines) + "\n"
        lines = [f"# {self.count} 次提问，题库里没有足够接近的条目。新条目草稿，加到 faqs: 下，"]
        lines.append("# 补上 id 和 answer（必填）后保存：")
        lines.append("  - id: TODO")
        lead = questions[0] if questions else self.examples[0]
        lines.append(f"    question: {yaml_scalar(lead)}")
        if len(questions) > 1:
            lines.append("    alternates:")
            lines += [f"      - {yaml_scalar(q)}" for q in questions[1:]]
        lines.append("    answer:")
        lines.append("    keywords: []")
        return "\n".join(lines) + "\n"


def cluster(
    rows: Iterable[Mapping[str, Any]],
    *,
    nearest: Callable[[str], Any] | None = None,
    threshold: float = 0.4,
    alternate_min_score: float = 0.4,
) -> list[Cluster]:
    """Cluster query-log rows (``question``, ``normalized``, ``created_at``; or grouped
    rows with ``count``, ``first_seen`` and ``last_seen``), largest first.

    ``nearest(question)`` returns the closest FAQ as a mapping or object with
    ``id``, ``question`` and ``score`` (e.g. an engine candidate), or None; it is
    called once per cluster, with the cluster's most asked question.
    ``threshold`` is the cosine similarity a question needs to its cluster's
    leader; ``alternate_min_score`` the nearest FAQ's score from which the
    snippet proposes alternates rather than a new entry.
    """
    items = _merge_identical(rows)
    if not items:
        return []
    items.sort(key=lambda it: (-it.count, -_timestamp(it.last_seen), it.key))
    groups = _leader_groups([it.key for it in items], threshold)
    clusters = []
    for members in groups:
        group = [items[i] for i in members]
        questions: Counter[str] = Counter()
        for it in group:
            questions.update(it.questions)
        examples = tuple(q for q, _ in questions.most_common(_MAX_EXAMPLES))
        seen = [t for it in group for t in (it.first_seen, it.last_seen) if t is not None]
        clusters.append(
            Cluster(
                count=sum(it.count for it in group),
                distinct=len(questions),
                examples=examples,
                first_seen=min(seen, default=None),
                last_seen=max(seen, default=None),
                nearest=None,
                suggest_alternates=False,
            )
        )
    clusters.sort(key=lambda c: (-c.count, -_timestamp(c.last_seen), c.examples))
    if nearest is None:
        return clusters
    return with_nearest(clusters, nearest, alternate_min_score=alternate_min_score)


def with_nearest(
    clusters: Sequence[Cluster],
    find: Callable[[str], Any],
    *,
    alternate_min_score: float = 0.4,
    limit: int | None = None,
) -> list[Cluster]:
    """The clusters with their nearest FAQ: ``find(question)`` for the first ``limit``
    clusters (None: all), called with each one's most asked question.

    ``find`` returns a mapping or object with ``id``, ``question`` and ``score``
    (e.g. an engine candidate), or None. From ``alternate_min_score`` the
    cluster's questions are proposed as alternates of that FAQ, below it as a
    new entry. Clusters past ``limit`` keep ``nearest=None``.
    """
    shown = clusters if limit is None else clusters[:limit]
    found = []
    for c in shown:
        near = _nearest(find, c.examples[0])
        found.append(
            replace(
                c,
                nearest=near,
                suggest_alternates=near is not None and near.score >= alternate_min_score,
            )
        )
    return found + list(clusters[len(shown) :])


def render_text(
    clusters: Iterable[Cluster], *, snippets: bool = False, tz: tzinfo = CHINA_TIME
) -> str:
    """Return the terminal report; with ``snippets``, each cluster's YAML follows it."""
    clusters = list(clusters)
    total = sum(c.count for c in clusters)
    lines = [f"未能很好回答的问题：{len(clusters)} 类，共 {total} 次提问"]
    for rank, c in enumerate(clusters, 1):
        when = f"{_when(c.first_seen, tz)} ~ {_when(c.last_seen, tz)}" if c.first_seen else ""
        near = (
            f"最接近 {c.nearest.id}「{c.nearest.question}」{c.nearest.score:.2f}"
            if c.nearest
            else "无接近条目"
        )
        lines.append("")
        lines.append(
            " ".join(filter(None, [f"{rank}.", f"{c.count} 次（{c.distinct} 种问法）", when, near]))
        )
        lines += [f"   - {q}" for q in c.examples]
        if snippets:
            lines += ["", *("   " + line for line in c.yaml_snippet().splitlines())]
    return "\n".join(lines) + "\n"


#: The clusters CSV's columns, in Chinese for the analysts who open it in Excel or WPS.
CLUSTER_CSV_HEADER = (
    "序号",
    "提问次数",
    "问法数",
    "首次提问（北京时间）",
    "最近提问（北京时间）",
    "最接近的问答编号",
    "最接近的问答",
    "相似度",
    "建议",
    "例句",
)


def to_csv_rows(clusters: Iterable[Cluster], *, tz: tzinfo = CHINA_TIME) -> list[list[str]]:
    """Return the clusters as CSV rows, header first, every cell safe to open in a spreadsheet."""
    rows = [list(CLUSTER_CSV_HEADER)]
    for rank, c in enumerate(clusters, 1):
        n = c.nearest
        row = [
            rank,
            c.count,
            c.distinct,
            _when(c.first_seen, tz),
            _when(c.last_seen, tz),
            n.id if n else "",
            n.question if n else "",
            f"{n.score:.2f}" if n else "",
            "加为相似问法" if c.suggest_alternates else "新建条目",
            " | ".join(c.examples),
        ]
        rows.append([csv_cell(value) for value in row])
    return rows


def csv_cell(value: object) -> str:
    """Return ``value`` as CSV cell text that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_CSV_FORMULA_START) else text


@dataclass
class _Item:
    """One distinct question key with everything asked under it."""

    key: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    questions: Counter[str]


def _merge_identical(rows: Iterable[Mapping[str, Any]]) -> list[_Item]:
    """One item per key; a row is one question asked (``created_at``) or one text asked
    ``count`` times (``first_seen``, ``last_seen``: QueryLog.unanswered_texts)."""
    items: dict[str, _Item] = {}
    for row in rows:
        question = mask(str(row.get("question") or "")).strip()
        if not question:
            continue
        key = _key(str(row.get("normalized") or "") or question)
        n = int(row.get("count") or 1)
        first = row.get("first_seen", row.get("created_at"))
        last = row.get("last_seen", row.get("created_at"))
        item = items.get(key)
        if item is None:
            items[key] = _Item(key, n, first, last, Counter({question: n}))
            continue
        item.count += n
        item.questions[question] += n
        if first is not None:
            item.first_seen = first if item.first_seen is None else min(item.first_seen, first)
        if last is not None:
            item.last_seen = last if item.last_seen is None else max(item.last_seen, last)
    return list(items.values())


def _key(text: str) -> str:
    """The text that is compared: lower case, no mask tokens, fillers or punctuation."""
    stripped = _NOISE.sub("", text.lower())
    return stripped or text.strip().lower()


def _char_ngrams(text: str) -> list[str]:
    return [text[i : i + n] for n in (1, 2, 3) for i in range(len(text) - n + 1)]


def _leader_groups(keys: list[str], threshold: float) -> list[list[int]]:
    """Group ``keys`` (most frequent first) by cosine similarity to each group's leader."""
    vectorizer = TfidfVectorizer(
        analyzer=_char_ngrams, token_pattern=None, lowercase=False, sublinear_tf=True
    )
    matrix = vectorizer.fit_transform(keys).tocsr()
    leaders: list[int] = []
    groups: list[list[int]] = []
    for start in range(0, len(keys), _CHUNK):
        stop = min(start + _CHUNK, len(keys))
        before = len(leaders)
        # Columns: the leaders so far, then this chunk's rows (new leaders come from it).
        columns = leaders + list(range(start, stop))
        sims = (matrix[start:stop] @ matrix[columns].T).toarray()
        # The best of the leaders before this chunk, for all its rows at once; then, row
        # by row, the leaders the chunk made so far. A tie goes to the older leader.
        if before:
            old_best = sims[:, :before].argmax(axis=1)
            old_value = sims[np.arange(stop - start), old_best]
        new_cols: list[int] = []
        for i in range(start, stop):
            r = i - start
            best, value = (int(old_best[r]), old_value[r]) if before else (-1, -1.0)
            if new_cols:
                candidates = sims[r, new_cols]
                k = int(np.argmax(candidates))
                if candidates[k] > value:
                    best, value = before + k, candidates[k]
            if best >= 0 and value >= threshold:
                groups[best].append(i)
                continue
            leaders.append(i)
            new_cols.append(before + r)
            groups.append([i])
    return groups


def _nearest(find: Callable[[str], Any], question: str) -> Nearest | None:
    found = find(question)
    if found is None:
        return None
    if isinstance(found, Mapping):
        fid, text, score = found.get("id"), found.get("question"), found.get("score")
    else:
        fid, text, score = found.id, found.question, found.score
    return Nearest(id=str(fid), question=str(text), score=float(score or 0.0))


def _when(moment: datetime | None, tz: tzinfo) -> str:
    if moment is None:
        return ""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return aware.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _timestamp(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).timestamp()


def yaml_scalar(text: str) -> str:
    """Return ``text`` as a one-line YAML scalar, quoted only when YAML needs it."""
    if _PLAIN.fullmatch(text):
        return text  # what safe_dump writes for it, in a thousandth of the time
    dumped = yaml.safe_dump({"k": " ".join(text.split())}, allow_unicode=True, width=10**6)
    return dumped[len("k: ") :].rstrip("\n")
