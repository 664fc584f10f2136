"""Load and validate the FAQ bank (``faq/*.yaml``) into frozen records.

Every problem found is reported, each naming the file, the line and the
entry id, so a curator can fix a whole batch at once. The folder may also
hold ``site.yaml`` (placeholder values), ``dict.txt`` (jieba user words),
``synonyms.yaml`` (canonical word → variants), ``outside.yaml`` (topics
outside the bureau's remit, routed elsewhere) and ``thresholds.yaml``
(decision thresholds written by ``python -m bot fit``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import BankError, BankIssue
from .site import DEFAULT_SITE, placeholders

__all__ = [
    "SMALLTALK",
    "Bank",
    "Faq",
    "Link",
    "OutsideTopic",
    "load_bank",
    "bank_files",
    "shown_path",
]

#: The category of small talk (greetings, thanks): answered, but never suggested,
#: listed among the categories or asked for keywords and related questions.
SMALLTALK = "闲聊"

# Files in the bank folder that are not FAQ files.
EXTRA_FILES = ("site.yaml", "synonyms.yaml", "outside.yaml", "thresholds.yaml")
DICT_FILE = "dict.txt"

ENTRY_KEYS = (
    "id",
    "question",
    "alternates",
    "answer",
    "category",
    "keywords",
    "related",
    "basis",
    "reviewed",
    "links",
)
FILE_KEYS = ("category", "faqs")
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class Faq:
    """One curated question and its answer, as written in the bank."""

    id: str
    question: str
    answer: str
    category: str
    alternates: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    basis: tuple[str, ...] = ()
    reviewed: dt.date | None = None
    links: tuple[Link, ...] = ()
    path: str = ""
    line: int = 0

    @property
    def texts(self) -> tuple[str, ...]:
        """The standard question followed by its alternates."""
        return (self.question, *self.alternates)


@dataclass(frozen=True)
class OutsideTopic:
    """A topic outside the bureau's remit and where to send the visitor."""

    name: str
    keywords: tuple[str, ...]
    route: str


@dataclass(frozen=True)
class Bank:
    """The validated bank plus its optional extras."""

    faqs: tuple[Faq, ...]
    site: dict[str, str]
    synonyms: dict[str, str]  # variant → canonical
    outside: tuple[OutsideTopic, ...]
    thresholds: dict[str, Any]
    dict_path: Path | None
    digest: str
    by_id: dict[str, Faq] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {f.id: f for f in self.faqs})

    @property
    def categories(self) -> list[str]:
        seen: dict[str, None] = {}
        for f in self.faqs:
            seen.setdefault(f.category, None)
        return list(seen)


# --- YAML with line numbers -------------------------------------------------


class _Map(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps line numbers, rejects duplicate keys and keeps dates as text."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise _DuplicateKey(
                None,
                None,
                f"duplicate key '{key}' (first at line {result.key_lines[key]})",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def _read_yaml(path: Path, shown: str, issues: list[BankIssue]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        issues.append(BankIssue(shown, None, f"is not UTF-8 text ({exc.reason})"))
        return None
    except OSError as exc:
        issues.append(BankIssue(shown, None, f"cannot be read ({exc.strerror})"))
        return None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = exc.problem or exc.context or "invalid YAML"
        issues.append(
            BankIssue(
                shown,
                mark.line + 1 if mark else None,
                f"YAML syntax error: {problem}",
                column=mark.column + 1 if mark else None,
            )
        )
        return None
    except yaml.YAMLError as exc:
        issues.append(BankIssue(shown, None, f"YAML syntax error: {exc}"))
        return None


# --- public API ---------------------------------------------------------------


def bank_files(faq_dir: str | os.PathLike[str]) -> list[Path]:
    """Every file of the bank folder that shapes the index, in a stable order."""
    root = Path(faq_dir)
    files = sorted(p for p in root.glob("*.yaml") if p.name != "thresholds.yaml")
    if (root / DICT_FILE).is_file():
        files.append(root / DICT_FILE)
    return files


def load_bank(faq_dir: str | os.PathLike[str]) -> Bank:
    """Load and validate the bank in ``faq_dir``; raise BankError listing every problem."""
    root = Path(faq_dir)
    issues: list[BankIssue] = []
    if not root.is_dir():
        raise BankError([BankIssue(shown_path(root), None, "FAQ folder not found")])

    site = _load_site(root, issues)
    synonyms = _load_synonyms(root, issues)
    outside = _load_outside(root, issues)
    thresholds = _load_thresholds(root, issues)

    faq_paths = sorted(p for p in root.glob("*.yaml") if p.name not in EXTRA_FILES)
    if not faq_paths:
        issues.append(BankIssue(shown_path(root), None, "no FAQ files (*.yaml) in this folder"))
    faqs: list[Faq] = []
    for path in faq_paths:
        faqs.extend(_load_faq_file(path, shown_path(path), site, issues))
    _check_bank(faqs, issues)
    if issues:
        raise BankError(issues)

    dict_path = root / DICT_FILE
    return Bank(
        faqs=tuple(faqs),
        site=site,
        synonyms=synonyms,
        outside=outside,
        thresholds=thresholds,
        dict_path=dict_path if dict_path.is_file() else None,
        digest=_digest(bank_files(root)),
    )


def shown_path(path: str | os.PathLike[str]) -> str:
    """The path as a curator would type it: relative to the working folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(Path(path).resolve()) if rel.startswith("..") else rel


def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _text(value: Any) -> str | None:
    """Scalars as text (YAML reads 12345 as a number); None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value).strip()
    return None


def _optional_yaml(root: Path, name: str, issues: list[BankIssue]) -> tuple[str, Any] | None:
    """(shown path, data) of an optional extra file; None if absent, empty or unreadable."""
    path = root / name
    if not path.is_file():
        return None
    shown = shown_path(path)
    data = _read_yaml(path, shown, issues)
    return None if data is None else (shown, data)


def _load_site(root: Path, issues: list[BankIssue]) -> dict[str, str]:
    site = dict(DEFAULT_SITE)
    found = _optional_yaml(root, "site.yaml", issues)
    if found is None:
        return site
    shown, data = found
    if not isinstance(data, _Map):
        issues.append(BankIssue(shown, 1, "must be a mapping of placeholder name to text"))
        return site
    for key, value in data.items():
        line = data.key_lines.get(key)
        text = _text(value)
        if not isinstance(key, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
            issues.append(BankIssue(shown, line, f"placeholder name '{key}' must be a-z, 0-9, _"))
        elif text is None:
            issues.append(BankIssue(shown, line, f"'{key}' must be text"))
        else:
            site[key] = text
    return site


def _load_synonyms(root: Path, issues: list[BankIssue]) -> dict[str, str]:
    found = _optional_yaml(root, "synonyms.yaml", issues)
    if found is None:
        return {}
    shown, data = found
    if not isinstance(data, _Map):
        issues.append(BankIssue(shown, 1, "must map a canonical word to a list of variants"))
        return {}
    mapping: dict[str, str] = {}
    where: dict[str, int | None] = {}
    for canonical, variants in data.items():
        line = data.key_lines.get(canonical)
        canon = _text(canonical)
        if not canon or not isinstance(variants, list):
            issues.append(BankIssue(shown, line, f"'{canonical}' must map to a list of variants"))
            continue
        for variant in variants:
            word = _text(variant)
            if not word:
                issues.append(BankIssue(shown, line, f"'{canonical}' has an empty variant"))
            elif word in data:
                issues.append(
                    BankIssue(
                        shown, line, f"variant '{word}' of '{canon}' is itself a canonical word"
                    )
                )
            elif word in mapping and mapping[word] != canon:
                issues.append(
                    BankIssue(
                        shown,
                        line,
                        f"variant '{word}' is in two groups: '{mapping[word]}' "
                        f"(line {where[word]}) and '{canon}'",
                    )
                )
            elif word != canon:
                mapping[word] = canon
                where[word] = line
    return mapping


def _load_outside(root: Path, issues: list[BankIssue]) -> tuple[OutsideTopic, ...]:
    found = _optional_yaml(root, "outside.yaml", issues)
    if found is None:
        return ()
    shown, data = found
    topics = data.get("topics") if isinstance(data, dict) else None
    if not isinstance(topics, list):
        issues.append(BankIssue(shown, 1, "must have a list 'topics'"))
        return ()
    result = []
    for item in topics:
        line = getattr(item, "line", None)
        if not isinstance(item, dict):
            issues.append(BankIssue(shown, line, "each topic must be a mapping"))
            continue
        name, route = _text(item.get("name")), _text(item.get("route"))
        words = item.get("keywords")
        unknown = sorted(set(item) - {"name", "keywords", "route"})
        if unknown:
            issues.append(BankIssue(shown, line, f"topic has unknown key '{unknown[0]}'"))
        elif not name or not route or not isinstance(words, list) or not words:
            issues.append(BankIssue(shown, line, "topic needs 'name', 'route' and 'keywords'"))
        else:
            kws = tuple(w for w in (_text(x) for x in words) if w)
            result.append(OutsideTopic(name, kws, route))
    return tuple(result)


def _load_thresholds(root: Path, issues: list[BankIssue]) -> dict[str, Any]:
    found = _optional_yaml(root, "thresholds.yaml", issues)
    if found is None:
        return {}
    shown, data = found
    if not isinstance(data, dict):
        issues.append(BankIssue(shown, 1, "must be a mapping"))
        return {}
    return dict(data)


def _text_list(
    entry: _Map, key: str, shown: str, fid: str | None, issues: list[BankIssue]
) -> tuple[str, ...]:
    value = entry.get(key)
    line = entry.key_lines.get(key, entry.line)
    if value is None:
        return ()
    if not isinstance(value, list):
        issues.append(BankIssue(shown, line, f"'{key}' must be a list", fid))
        return ()
    out = []
    for item in value:
        text = _text(item)
        if not text:
            issues.append(BankIssue(shown, line, f"'{key}' has an empty or non-text item", fid))
        else:
            out.append(text)
    return tuple(out)


def _load_faq_file(
    path: Path, shown: str, site: dict[str, str], issues: list[BankIssue]
) -> list[Faq]:
    data = _read_yaml(path, shown, issues)
    if data is None:
        if not issues or issues[-1].path != shown:
            issues.append(BankIssue(shown, None, "is empty"))
        return []
    if not isinstance(data, _Map):
        issues.append(BankIssue(shown, 1, "must be a mapping with a list 'faqs'"))
        return []
    for key in data:
        if key not in FILE_KEYS:
            issues.append(
                BankIssue(
                    shown, data.key_lines[key], f"unknown key '{key}' (allowed: category, faqs)"
                )
            )
    default_category = _text(data.get("category"))
    entries = data.get("faqs")
    if not isinstance(entries, list):
        issues.append(
            BankIssue(shown, data.key_lines.get("faqs", 1), "'faqs' must be a list of entries")
        )
        return []
    faqs = []
    for n, entry in enumerate(entries, start=1):
        faq = _load_entry(entry, n, shown, default_category, site, issues)
        if faq is not None:
            faqs.append(faq)
    return faqs


def _load_entry(
    entry: Any,
    n: int,
    shown: str,
    default_category: str | None,
    site: dict[str, str],
    issues: list[BankIssue],
) -> Faq | None:
    if not isinstance(entry, _Map):
        issues.append(BankIssue(shown, None, f"entry #{n} must be a mapping"))
        return None
    line = entry.line
    fid = _text(entry.get("id"))
    if not fid:
        issues.append(BankIssue(shown, line, f"entry #{n} has no 'id'"))
        label = f"#{n}"
    else:
        label = fid
        if not _ID.match(fid):
            issues.append(
                BankIssue(
                    shown, entry.key_lines["id"], "id must be lowercase a-z, 0-9 and '-'", fid
                )
            )

    for key in entry:
        if key not in ENTRY_KEYS:
            issues.append(BankIssue(shown, entry.key_lines[key], f"unknown key '{key}'", label))

    texts: dict[str, str] = {}
    for key in ("question", "answer"):
        text = _text(entry.get(key))
        if not text:
            issues.append(BankIssue(shown, line, f"missing '{key}'", label))
        else:
            texts[key] = text
    category = _text(entry.get("category")) or default_category
    if not category:
        issues.append(
            BankIssue(shown, line, "missing 'category' (none for the file either)", label)
        )

    alternates = _text_list(entry, "alternates", shown, label, issues)
    keywords = _text_list(entry, "keywords", shown, label, issues)
    related = _text_list(entry, "related", shown, label, issues)
    basis = _text_list(entry, "basis", shown, label, issues)
    reviewed = _reviewed(entry, shown, label, issues)
    links = _links(entry, shown, label, issues)

    for key, text in [("answer", texts.get("answer", ""))] + [("links", x.url) for x in links]:
        for name in placeholders(text):
            if name not in site:
                issues.append(
                    BankIssue(
                        shown,
                        entry.key_lines.get(key, line),
                        f"unknown placeholder {{{name}}} (not in site.yaml)",
                        label,
                    )
                )
    if not fid or len(texts) < 2 or not category:
        return None  # too broken for the cross-entry checks; its problems are listed
    return Faq(
        id=fid or "",
        question=texts["question"],
        answer=texts["answer"],
        category=category or "",
        alternates=alternates,
        keywords=keywords,
        related=related,
        basis=basis,
        reviewed=reviewed,
        links=links,
        path=shown,
        line=line,
    )


def _reviewed(entry: _Map, shown: str, label: str, issues: list[BankIssue]) -> dt.date | None:
    value = entry.get("reviewed")
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        issues.append(
            BankIssue(
                shown,
                entry.key_lines["reviewed"],
                f"'reviewed' is not a date YYYY-MM-DD: '{value}'",
                label,
            )
        )
        return None


def _links(entry: _Map, shown: str, label: str, issues: list[BankIssue]) -> tuple[Link, ...]:
    value = entry.get("links")
    if value is None:
        return ()
    line = entry.key_lines.get("links", entry.line)
    items = value if isinstance(value, list) else [None]
    out = []
    for item in items:
        fields = item if isinstance(item, dict) else {}
        title, url = _text(fields.get("title")), _text(fields.get("url"))
        if not title or not url or set(fields) - {"title", "url"}:
            issues.append(
                BankIssue(shown, line, "each link needs exactly 'title' and 'url'", label)
            )
        else:
            out.append(Link(title, url))
    return tuple(out)


def _same_text_key(text: str) -> str:
    """Questions that differ only in width, case, spaces or punctuation are the same."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).lower()


def _check_bank(faqs: list[Faq], issues: list[BankIssue]) -> None:
    """Cross-entry checks: duplicate ids, repeated questions, dangling related ids."""
    by_id: dict[str, Faq] = {}
    by_text: dict[str, Faq] = {}
    for faq in faqs:
        first = by_id.get(faq.id)
        if first is not None:
            issues.append(
                BankIssue(
                    faq.path,
                    faq.line,
                    f"duplicate id, also defined at {first.path}:{first.line}",
                    faq.id,
                )
            )
            continue
        by_id[faq.id] = faq
        for text in dict.fromkeys(faq.texts):
            key = _same_text_key(text)
            other = by_text.get(key)
            if other is not None and other.id != faq.id:
                issues.append(
                    BankIssue(
                        faq.path,
                        faq.line,
                        f"question '{text}' is also in entry '{other.id}' "
                        f"({other.path}:{other.line})",
                        faq.id,
                    )
                )
            else:
                by_text[key] = faq
    for faq in faqs:
        for rid in faq.related:
            if rid not in by_id:
                issues.append(
                    BankIssue(faq.path, faq.line, f"related id '{rid}' does not exist", faq.id)
                )
