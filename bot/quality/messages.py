"""Real citizen messages as a labelled development set, text kept out of the repository.

The labels live in ``tests/data/gov_labels/*.tsv`` (``key<TAB>labels<TAB>topic``);
the message titles they label are read at run time from the public data set
beside the project (``../shared/eval-data/gov_messages/messages.tsv``), which
must never be copied into the repository. A title's key is the first 16 hex
digits of the SHA-256 of the stripped title; its half is ``fit`` when that
key is even, ``test`` when it is odd.

A label is a comma-separated list of FAQ ids (the first is the best), or
``gap`` (in the remit, no entry answers it), or ``outside:<agency>`` (for
another agency).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import BankError, BankIssue
from .evaluate import FALLBACK, Labelled

__all__ = ["DEFAULT_LABELS", "DEFAULT_MESSAGES", "message_key", "load_messages"]

_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LABELS = _ROOT / "tests" / "data" / "gov_labels"
DEFAULT_MESSAGES = _ROOT.parent / "shared" / "eval-data" / "gov_messages" / "messages.tsv"

GAP = "gap"
OUTSIDE = "outside:"


def message_key(title: str) -> str:
    """The key a title is labelled under."""
    return hashlib.sha256(title.strip().encode("utf-8")).hexdigest()[:16]


def _half(key: str) -> str:
    return "fit" if int(key, 16) % 2 == 0 else "test"


def load_messages(
    labels: str | os.PathLike[str] = DEFAULT_LABELS,
    messages: str | os.PathLike[str] = DEFAULT_MESSAGES,
    *,
    known_ids: set[str],
) -> list[Labelled]:
    """Join the label files (a folder of ``.tsv`` or one file) with the message titles.

    Unknown FAQ ids, malformed rows and keys labelled twice are errors naming
    file and line; a label whose title is not in ``messages`` is an error too
    (the labels were made for that file).
    """
    paths = sorted(Path(labels).glob("*.tsv")) if Path(labels).is_dir() else [Path(labels)]
    titles: dict[str, str] = {}
    with open(messages, encoding="utf-8") as f:
        next(f, None)  # header
        for line in f:
            title = line.rstrip("\n").split("\t")[0].strip()
            if title:
                titles.setdefault(message_key(title), title)
    items: list[Labelled] = []
    issues: list[BankIssue] = []
    seen: dict[str, str] = {}
    for path in paths:
        shown = str(path)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if n == 1 or not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or len(fields[0]) != 16:
                issues.append(BankIssue(shown, n, "expected 'key<TAB>labels<TAB>topic'"))
                continue
            key, label = fields[0], fields[1].strip()
            if key in seen:
                issues.append(BankIssue(shown, n, f"key {key} is labelled twice ({seen[key]})"))
                continue
            seen[key] = f"{path.name}:{n}"
            if key not in titles:
                issues.append(BankIssue(shown, n, f"key {key} is not a title of {messages}"))
                continue
            item = _item(titles[key], key, label, known_ids)
            if isinstance(item, str):
                issues.append(BankIssue(shown, n, item))
            else:
                items.append(item)
    if issues:
        raise BankError(issues)
    return items


def _item(title: str, key: str, label: str, known_ids: set[str]) -> Labelled | str:
    half = _half(key)
    if label == GAP:
        return Labelled(title, FALLBACK, 0, gap=True, split=half)
    if label.startswith(OUTSIDE):
        return Labelled(title, FALLBACK, 0, split=half)
    ids = tuple(dict.fromkeys(i.strip() for i in label.split(",") if i.strip()))
    unknown = [i for i in ids if i not in known_ids]
    if not ids or unknown:
        return f"id '{(unknown or [label])[0]}' is not in the FAQ bank"
    return Labelled(title, ids[0], 0, ids=ids, split=half)
