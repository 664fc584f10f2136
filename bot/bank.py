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
import difflib
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
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
EXTRA_FILES = ("site.yaml", "synonyms.yaml", "outside.yaml", "thresholds.yaml", "review.yaml")
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
    "reviewer",
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
    reviewer: str = ""  # who did the review that set `reviewed`, if recorded
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
                f"重复的键 '{key}'（第 {result.key_lines[key]} 行已经有了）",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def _read_yaml(
    path: Path, shown: str, issues: list[BankIssue], texts: Mapping[str, str] | None = None
) -> Any:
    """Parse one file (or its replacement text in ``texts``); None, with an issue, if broken."""
    try:
        if texts is not None and path.name in texts:
            text = texts[path.name]
        else:
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
        issues.append(_syntax_issue(exc, text, shown))
        return None
    except yaml.YAMLError as exc:
        issues.append(BankIssue(shown, None, f"YAML syntax error: {exc}"))
        return None


_BLOCK_END = "expected <block end>"
_INDENT = "缩进不一致（这一行的缩进与上一级不匹配）"


def _syntax_issue(exc: yaml.MarkedYAMLError, text: str, shown: str) -> BankIssue:
    """A YAML syntax error in plain Chinese for the usual mistakes, with the line shown.

    Anything else keeps PyYAML's own wording ("YAML syntax error: …"), still
    with its position and line.
    """
    problem = exc.problem or exc.context or "invalid YAML"
    mark, start = exc.problem_mark, exc.context_mark
    lines = text.splitlines()
    message = None
    if isinstance(exc, _DuplicateKey):
        message = problem
    elif problem.startswith(_BLOCK_END):
        message = _INDENT
    elif "'\\t'" in problem:
        message = "这一行有制表符（Tab）；YAML 只能用空格缩进，请把 Tab 换成空格"
    elif problem == "mapping values are not allowed here" and mark is not None:
        line = lines[mark.line] if mark.line < len(lines) else ""
        if re.search(r":(\s|$)", line[: mark.column]):
            message = "一行里有两个“: ”；值里含有冒号时，请给整个值加上引号"
        else:
            message = _INDENT
    elif exc.context == "while scanning a quoted scalar" and start is not None:
        mark, message = start, "引号没有闭合（这里开始的引号找不到配对的结束引号）"
    elif exc.context == "while scanning a simple key" and start is not None:
        mark, message = start, "缺少冒号（每一项要写成“键: 值”，冒号后面加一个空格）"
    elif exc.context == "while parsing a flow sequence" and start is not None:
        mark, message = start, "方括号“[”没有闭合（缺少配对的“]”或逗号）"
    elif exc.context == "while parsing a flow mapping" and start is not None:
        mark, message = start, "花括号“{”没有闭合（缺少配对的“}”或逗号）"
    text_of = f"YAML 格式错误：{message}" if message else f"YAML syntax error: {problem}"
    if mark is None:
        return BankIssue(shown, None, text_of)
    if mark.line < len(lines):
        text_of += f"\n    {mark.line + 1} | {lines[mark.line]}"
    return BankIssue(shown, mark.line + 1, text_of, column=mark.column + 1)


def _closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelt word, or None when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


# --- public API ---------------------------------------------------------------


def bank_files(faq_dir: str | os.PathLike[str]) -> list[Path]:
    """Every file of the bank folder that shapes the index, in a stable order."""
    root = Path(faq_dir)
    files = sorted(p for p in root.glob("*.yaml") if p.name != "thresholds.yaml")
    if (root / DICT_FILE).is_file():
        files.append(root / DICT_FILE)
    return files


def load_bank(faq_dir: str | os.PathLike[str], *, texts: Mapping[str, str] | None = None) -> Bank:
    """Load and validate the bank in ``faq_dir``; raise BankError listing every problem.

    ``texts`` maps file names to the text to validate in place of (or beside)
    what is on disk, so an editor can check a change before writing it.
    """
    root = Path(faq_dir)
    issues: list[BankIssue] = []
    if not root.is_dir():
        raise BankError([BankIssue(shown_path(root), None, "FAQ folder not found")])

    before = len(issues)
    site = _load_site(root, issues, texts)
    site_ok = not any(i.line is None or "YAML" in i.message for i in issues[before:])
    synonyms = _load_synonyms(root, issues, texts)
    outside = _load_outside(root, issues, texts)
    thresholds = _load_thresholds(root, issues, texts)

    names = {p.name for p in root.glob("*.yaml")} | set(texts or ())
    faq_paths = [root / n for n in sorted(names) if n.endswith(".yaml") and n not in EXTRA_FILES]
    if not faq_paths:
        issues.append(BankIssue(shown_path(root), None, "no FAQ files (*.yaml) in this folder"))
    faqs: list[Faq] = []
    unread: list[str] = []
    for path in faq_paths:
        loaded = _load_faq_file(path, shown_path(path), site if site_ok else None, issues, texts)
        if loaded is None:
            unread.append(shown_path(path))
        else:
            faqs.extend(loaded)
    _check_bank(faqs, issues)
    dangling = _dangling_related(faqs)
    if unread and dangling:
        issues.append(
            BankIssue(
                shown_path(root),
                None,
                f"related ids were not checked, because {', '.join(unread)} could not be read; "
                "fix that first",
            )
        )
    elif not unread:
        issues.extend(dangling)
    if not site_ok:
        issues.append(
            BankIssue(
                shown_path(root),
                None,
                "placeholders were not checked, because site.yaml could not be read; "
                "fix that first",
            )
        )
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


def _optional_yaml(
    root: Path, name: str, issues: list[BankIssue], texts: Mapping[str, str] | None
) -> tuple[str, Any] | None:
    """(shown path, data) of an optional extra file; None if absent, empty or unreadable."""
    path = root / name
    if not path.is_file() and name not in (texts or {}):
        return None
    shown = shown_path(path)
    data = _read_yaml(path, shown, issues, texts)
    return None if data is None else (shown, data)


def _load_site(
    root: Path, issues: list[BankIssue], texts: Mapping[str, str] | None
) -> dict[str, str]:
    site = dict(DEFAULT_SITE)
    found = _optional_yaml(root, "site.yaml", issues, texts)
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


def _load_synonyms(
    root: Path, issues: list[BankIssue], texts: Mapping[str, str] | None
) -> dict[str, str]:
    found = _optional_yaml(root, "synonyms.yaml", issues, texts)
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


def _load_outside(
    root: Path, issues: list[BankIssue], texts: Mapping[str, str] | None
) -> tuple[OutsideTopic, ...]:
    found = _optional_yaml(root, "outside.yaml", issues, texts)
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


def _load_thresholds(
    root: Path, issues: list[BankIssue], texts: Mapping[str, str] | None
) -> dict[str, Any]:
    found = _optional_yaml(root, "thresholds.yaml", issues, texts)
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
    path: Path,
    shown: str,
    site: dict[str, str] | None,
    issues: list[BankIssue],
    texts: Mapping[str, str] | None = None,
) -> list[Faq] | None:
    """The entries of one FAQ file; None when the file could not be read or parsed."""
    before = len(issues)
    data = _read_yaml(path, shown, issues, texts)
    if len(issues) > before:
        return None
    if data is None:
        issues.append(BankIssue(shown, None, "is empty"))
        return []
    if not isinstance(data, _Map):
        issues.append(BankIssue(shown, 1, "must be a mapping with a list 'faqs'"))
        return []
    for key in data:
        if key not in FILE_KEYS:
            close = _closest(str(key), FILE_KEYS)
            hint = f"did you mean '{close}'?" if close else "allowed: category, faqs"
            issues.append(BankIssue(shown, data.key_lines[key], f"unknown key '{key}' ({hint})"))
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
    site: dict[str, str] | None,
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
            close = _closest(str(key), ENTRY_KEYS)
            hint = f" (did you mean '{close}'?)" if close else ""
            issues.append(
                BankIssue(shown, entry.key_lines[key], f"unknown key '{key}'{hint}", label)
            )

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

    checked = [("answer", texts.get("answer", ""))] + [("links", x.url) for x in links]
    known = site if site is not None else {}
    for key, text in checked if site is not None else []:
        for name in placeholders(text):
            if name not in known:
                close = _closest(name, known)
                hint = f"; did you mean {{{close}}}?" if close else ""
                issues.append(
                    BankIssue(
                        shown,
                        entry.key_lines.get(key, line),
                        f"unknown placeholder {{{name}}} (not in site.yaml{hint})",
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
        reviewer=_text(entry.get("reviewer")) or "",
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
    """Cross-entry checks: duplicate ids and repeated questions."""
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


def _dangling_related(faqs: list[Faq]) -> list[BankIssue]:
    """A problem for each related id that names no entry, with the closest id if one is near."""
    ids = {f.id for f in faqs}
    issues = []
    for faq in faqs:
        for rid in faq.related:
            if rid not in ids:
                close = _closest(rid, ids)
                hint = f" (did you mean '{close}'?)" if close else ""
                issues.append(
                    BankIssue(
                        faq.path, faq.line, f"related id '{rid}' does not exist{hint}", faq.id
                    )
                )
    return issues
