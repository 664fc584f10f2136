"""The FAQ files: each entry checked against the schema, then the checks across entries.

Every problem is added to ``issues`` naming the file, the line and the entry
id; an entry too broken to check further is left out of the result.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import BankIssue
from ..site import placeholders
from .reader import LineMap, read_yaml, scalar_text
from .records import Faq, Link

__all__ = ["ENTRY_KEYS", "FILE_KEYS", "check_bank", "dangling_related", "load_faq_file"]

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


def _closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelt word, or None when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _text_list(
    entry: LineMap, key: str, shown: str, fid: str | None, issues: list[BankIssue]
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
        text = scalar_text(item)
        if not text:
            issues.append(BankIssue(shown, line, f"'{key}' has an empty or non-text item", fid))
        else:
            out.append(text)
    return tuple(out)


def load_faq_file(
    path: Path,
    shown: str,
    site: dict[str, str] | None,
    issues: list[BankIssue],
    texts: Mapping[str, str] | None = None,
) -> list[Faq] | None:
    """The entries of one FAQ file; None when the file could not be read or parsed."""
    before = len(issues)
    data = read_yaml(path, shown, issues, texts)
    if len(issues) > before:
        return None
    if data is None:
        issues.append(BankIssue(shown, None, "is empty"))
        return []
    if not isinstance(data, LineMap):
        issues.append(BankIssue(shown, 1, "must be a mapping with a list 'faqs'"))
        return []
    for key in data:
        if key not in FILE_KEYS:
            close = _closest(str(key), FILE_KEYS)
            hint = f"did you mean '{close}'?" if close else "allowed: category, faqs"
            issues.append(BankIssue(shown, data.key_lines[key], f"unknown key '{key}' ({hint})"))
    default_category = scalar_text(data.get("category"))
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
    if not isinstance(entry, LineMap):
        issues.append(BankIssue(shown, None, f"entry #{n} must be a mapping"))
        return None
    line = entry.line
    fid = scalar_text(entry.get("id"))
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
        text = scalar_text(entry.get(key))
        if not text:
            issues.append(BankIssue(shown, line, f"missing '{key}'", label))
        else:
            texts[key] = text
    category = scalar_text(entry.get("category")) or default_category
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
        reviewer=scalar_text(entry.get("reviewer")) or "",
        links=links,
        path=shown,
        line=line,
    )


def _reviewed(entry: LineMap, shown: str, label: str, issues: list[BankIssue]) -> dt.date | None:
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


def _links(entry: LineMap, shown: str, label: str, issues: list[BankIssue]) -> tuple[Link, ...]:
    value = entry.get("links")
    if value is None:
        return ()
    line = entry.key_lines.get("links", entry.line)
    items = value if isinstance(value, list) else [None]
    out = []
    for item in items:
        fields = item if isinstance(item, dict) else {}
        title, url = scalar_text(fields.get("title")), scalar_text(fields.get("url"))
        if not title or not url or set(fields) - {"title", "url"}:
            issues.append(
                BankIssue(shown, line, "each link needs exactly 'title' and 'url'", label)
            )
        else:
            out.append(Link(title, url))
    return tuple(out)


# Not bot.match.text.normalize, whose job is matching (it also folds traditional to simplified,
# keeps words apart and cuts long text): this key only tells a curator two entries repeat a text.
def _same_text_key(text: str) -> str:
    """Questions that differ only in width, case, spaces or punctuation are the same."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).lower()


def check_bank(faqs: list[Faq], issues: list[BankIssue]) -> None:
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


def dangling_related(faqs: list[Faq]) -> list[BankIssue]:
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
