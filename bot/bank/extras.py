"""The bank folder's optional extra files, each read into what the engine uses.

``site.yaml`` (placeholder values), ``synonyms.yaml`` (canonical word →
variants), ``outside.yaml`` (topics outside the bureau's remit, routed
elsewhere) and ``thresholds.yaml`` (decision thresholds written by
``python -m bot fit``). A missing file is no problem; every problem in one is
added to ``issues``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import BankIssue
from ..site import DEFAULT_SITE
from .reader import LineMap, read_yaml, scalar_text, shown_path
from .records import OutsideTopic

__all__ = ["load_outside", "load_site", "load_synonyms", "load_thresholds"]


def _optional_yaml(
    root: Path, name: str, issues: list[BankIssue], texts: Mapping[str, str] | None
) -> tuple[str, Any] | None:
    """(shown path, data) of an optional extra file; None if absent, empty or unreadable."""
    path = root / name
    if not path.is_file() and name not in (texts or {}):
        return None
    shown = shown_path(path)
    data = read_yaml(path, shown, issues, texts)
    return None if data is None else (shown, data)


def load_site(
    root: Path, issues: list[BankIssue], texts: Mapping[str, str] | None
) -> dict[str, str]:
    site = dict(DEFAULT_SITE)
    found = _optional_yaml(root, "site.yaml", issues, texts)
    if found is None:
        return site
    shown, data = found
    if not isinstance(data, LineMap):
        issues.append(BankIssue(shown, 1, "must be a mapping of placeholder name to text"))
        return site
    for key, value in data.items():
        line = data.key_lines.get(key)
        text = scalar_text(value)
        if not isinstance(key, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
            issues.append(BankIssue(shown, line, f"placeholder name '{key}' must be a-z, 0-9, _"))
        elif text is None:
            issues.append(BankIssue(shown, line, f"'{key}' must be text"))
        else:
            site[key] = text
    return site


def load_synonyms(
    root: Path, issues: list[BankIssue], texts: Mapping[str, str] | None
) -> dict[str, str]:
    found = _optional_yaml(root, "synonyms.yaml", issues, texts)
    if found is None:
        return {}
    shown, data = found
    if not isinstance(data, LineMap):
        issues.append(BankIssue(shown, 1, "must map a canonical word to a list of variants"))
        return {}
    mapping: dict[str, str] = {}
    where: dict[str, int | None] = {}
    for canonical, variants in data.items():
        line = data.key_lines.get(canonical)
        canon = scalar_text(canonical)
        if not canon or not isinstance(variants, list):
            issues.append(BankIssue(shown, line, f"'{canonical}' must map to a list of variants"))
            continue
        for variant in variants:
            word = scalar_text(variant)
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


def load_outside(
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
        name, route = scalar_text(item.get("name")), scalar_text(item.get("route"))
        words = item.get("keywords")
        unknown = sorted(set(item) - {"name", "keywords", "route"})
        if unknown:
            issues.append(BankIssue(shown, line, f"topic has unknown key '{unknown[0]}'"))
        elif not name or not route or not isinstance(words, list) or not words:
            issues.append(BankIssue(shown, line, "topic needs 'name', 'route' and 'keywords'"))
        else:
            kws = tuple(w for w in (scalar_text(x) for x in words) if w)
            result.append(OutsideTopic(name, kws, route))
    return tuple(result)


def load_thresholds(
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
