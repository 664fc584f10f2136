"""Staff checks beyond validation: self-retrieval, same wordings, near-duplicates,
overdue reviews, superseded laws, orphans.

The review rules (how old a review may be, which laws were replaced or
renamed) are the curators' to change, in ``faq/review.yaml``.

Validation errors (BankError) stop everything; the findings here are
warnings a curator should look at but that do not stop the bot.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..bank import SMALLTALK, Bank, Faq, shown_path
from ..errors import BankError, BankIssue
from ..match.engine import Bot
from .evaluate import self_retrieval

__all__ = ["lint", "REVIEW_DAYS", "ReviewRules", "Superseded", "due_for_review", "review_rules"]

REVIEW_DAYS = 365
REVIEW_FILE = "review.yaml"


@dataclass(frozen=True)
class Superseded:
    """A law that was repealed, replaced or renamed, and what to cite instead."""

    law: str
    use: str


@dataclass(frozen=True)
class ReviewRules:
    max_age_days: int = REVIEW_DAYS
    superseded: tuple[Superseded, ...] = ()


def review_rules(faq_dir: str | os.PathLike[str]) -> ReviewRules:
    """Read ``faq/review.yaml`` (absent: the defaults); a malformed file is a BankError."""
    path = Path(faq_dir) / REVIEW_FILE
    if not path.is_file():
        return ReviewRules()
    shown = shown_path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise BankError([BankIssue(shown, line, f"YAML syntax error: {exc.problem}")]) from None
    age = data.get("max_age_days", REVIEW_DAYS) if isinstance(data, dict) else None
    items = data.get("superseded") or [] if isinstance(data, dict) else None
    if not isinstance(age, int) or isinstance(age, bool) or age <= 0:
        raise BankError([BankIssue(shown, None, "'max_age_days' must be a positive number")])
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("law"), str) and isinstance(i.get("use"), str)
        for i in items
    ):
        raise BankError([BankIssue(shown, None, "'superseded' must be a list of {law, use}")])
    laws = tuple(Superseded(i["law"].strip("《》 "), i["use"].strip()) for i in items)
    return ReviewRules(age, laws)


def lint(
    faq_dir: str | os.PathLike[str],
    *,
    review_days: int | None = None,
    today: dt.date | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[Bank, list[str]]:
    """Load the bank (raising BankError on errors) and list warnings about it.

    ``cache_dir`` is where jieba keeps its dictionary cache (the instance folder);
    ``review_days`` overrides ``max_age_days`` of ``faq/review.yaml``.
    """
    rules = review_rules(faq_dir)
    bot = Bot.load(faq_dir, cache_dir=cache_dir)
    bank = bot.bank
    warnings: list[str] = []
    _, failures = self_retrieval(bot)
    for fid, text, got in failures:
        faq = bank.by_id[fid]
        warnings.append(
            f"{faq.path}:{faq.line}: entry '{fid}': '{text}' finds entry '{got}' first "
            "(self-retrieval); reword it or merge the entries"
        )
    warnings += same_wordings(bot)
    warnings += near_duplicates(bot)
    days = review_days if review_days is not None else rules.max_age_days
    warnings += overdue(bank, review_days=days, today=today or dt.date.today())
    warnings += superseded_laws(bank, rules.superseded)
    warnings += orphans(bank)
    return bank, warnings


def same_wordings(bot: Bot) -> list[str]:
    """Wordings of different entries that the bot reads as one text.

    After normalisation and synonyms ("城管局在哪" and "城管部门在哪" both read
    "城管在哪") the bot cannot tell them apart, whichever entry wins.
    """
    first: dict[str, tuple[str, str]] = {}
    out = []
    for faq in bot.bank.faqs:
        for text in dict.fromkeys(faq.texts):
            read = bot.pipeline.prepare(text).text
            other = first.setdefault(read, (faq.id, text))
            if other[0] != faq.id:
                out.append(
                    f"{faq.path}:{faq.line}: entry '{faq.id}': '{text}' reads the same as "
                    f"'{other[1]}' of entry '{other[0]}' (as '{read}'); reword one of them"
                )
    return out


def near_duplicates(bot: Bot) -> list[str]:
    """Pairs of entries whose standard questions would make the bot ask 'did you mean'."""
    out, seen = [], set()
    for faq in bot.bank.faqs:
        reply = bot.ask(faq.question)
        if reply.type != "clarify":
            continue
        for s in reply.suggestions:
            pair = tuple(sorted((faq.id, s["id"])))
            if s["id"] != faq.id and pair not in seen:
                seen.add(pair)
                out.append(
                    f"{faq.path}:{faq.line}: entry '{faq.id}': its question is too close to "
                    f"entry '{s['id']}' (the bot would ask which one is meant)"
                )
    return out


def due_for_review(bank: Bank, *, review_days: int, today: dt.date) -> list[Faq]:
    """Entries never reviewed or reviewed more than ``review_days`` ago, oldest first."""
    due = [
        faq
        for faq in bank.faqs
        if faq.category != SMALLTALK
        and (faq.reviewed is None or (today - faq.reviewed).days > review_days)
    ]
    return sorted(due, key=lambda f: (f.reviewed is not None, f.reviewed or today, f.id))


def overdue(bank: Bank, *, review_days: int, today: dt.date) -> list[str]:
    out = []
    due = {faq.id for faq in due_for_review(bank, review_days=review_days, today=today)}
    for faq in bank.faqs:
        if faq.id not in due:
            continue
        if faq.reviewed is None:
            out.append(f"{faq.path}:{faq.line}: entry '{faq.id}': no 'reviewed' date")
        elif (today - faq.reviewed).days > review_days:
            out.append(
                f"{faq.path}:{faq.line}: entry '{faq.id}': last reviewed {faq.reviewed}, "
                f"more than {review_days} days ago"
            )
    return out


def superseded_laws(bank: Bank, laws: tuple[Superseded, ...]) -> list[str]:
    """Answers and bases that cite a law that was repealed, replaced or renamed."""
    out = []
    for faq in bank.faqs:
        for law in laws:
            where = [
                k
                for k, t in (("answer", faq.answer), ("basis", " ".join(faq.basis)))
                if law.law in t
            ]
            if where:
                out.append(
                    f"{faq.path}:{faq.line}: entry '{faq.id}': {' and '.join(where)} cite "
                    f"《{law.law}》, which was superseded; cite {law.use} instead "
                    f"(faq/{REVIEW_FILE})"
                )
    return out


def orphans(bank: Bank) -> list[str]:
    """Entries that link to nothing and that nothing links to, or that link to themselves."""
    linked = {rid for faq in bank.faqs for rid in faq.related}
    out = []
    for faq in bank.faqs:
        if faq.id in faq.related:
            out.append(f"{faq.path}:{faq.line}: entry '{faq.id}': lists itself as related")
        elif faq.category != SMALLTALK and not faq.related and faq.id not in linked:
            out.append(
                f"{faq.path}:{faq.line}: entry '{faq.id}': orphan, no related links in or out"
            )
    return out
