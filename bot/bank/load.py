"""Loading the bank folder: every file read and checked, the problems raised together.

:func:`load_bank` reads the extra files (:mod:`.extras`) and every FAQ file
(:mod:`.entries`), then runs the checks across entries; a problem anywhere
raises one :class:`~bot.errors.BankError` listing them all. A check that
depends on a file that could not be read is skipped with a note saying so,
never reported as follow-on errors.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import BankError, BankIssue
from .entries import check_bank, dangling_related, load_faq_file
from .extras import load_outside, load_site, load_synonyms, load_thresholds
from .reader import shown_path
from .records import Bank, Faq

__all__ = ["DICT_FILE", "EXTRA_FILES", "bank_files", "load_bank"]

# Files in the bank folder that are not FAQ files.
EXTRA_FILES = ("site.yaml", "synonyms.yaml", "outside.yaml", "thresholds.yaml", "review.yaml")
DICT_FILE = "dict.txt"


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
    site = load_site(root, issues, texts)
    site_ok = not any(i.line is None or "YAML" in i.message for i in issues[before:])
    synonyms = load_synonyms(root, issues, texts)
    outside = load_outside(root, issues, texts)
    thresholds = load_thresholds(root, issues, texts)

    names = {p.name for p in root.glob("*.yaml")} | set(texts or ())
    faq_paths = [root / n for n in sorted(names) if n.endswith(".yaml") and n not in EXTRA_FILES]
    if not faq_paths:
        issues.append(BankIssue(shown_path(root), None, "no FAQ files (*.yaml) in this folder"))
    faqs: list[Faq] = []
    unread: list[str] = []
    for path in faq_paths:
        loaded = load_faq_file(path, shown_path(path), site if site_ok else None, issues, texts)
        if loaded is None:
            unread.append(shown_path(path))
        else:
            faqs.extend(loaded)
    check_bank(faqs, issues)
    dangling = dangling_related(faqs)
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


def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()
