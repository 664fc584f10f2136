"""Staff checks beyond validation: self-retrieval, same wordings, near-duplicates,
overdue reviews, orphans.

Validation errors (BankError) stop everything; the findings here are
warnings a curator should look at but that do not stop the bot.
"""

from __future__ import annotations

import datetime as dt
import os

from ..bank import SMALLTALK, Bank
from ..match.engine import Bot
from .evaluate import self_retrieval

__all__ = ["lint", "REVIEW_DAYS"]

REVIEW_DAYS = 365


def lint(
    faq_dir: str | os.PathLike[str],
    *,
    review_days: int = REVIEW_DAYS,
    today: dt.date | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[Bank, list[str]]:
    """Load the bank (raising BankError on errors) and list warnings about it.

    ``cache_dir`` is where jieba keeps its dictionary cache (the instance folder).
    """
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
    warnings += overdue(bank, review_days=review_days, today=today or dt.date.today())
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


def overdue(bank: Bank, *, review_days: int, today: dt.date) -> list[str]:
    out = []
    for faq in bank.faqs:
        if faq.category == SMALLTALK:
            continue
        if faq.reviewed is None:
            out.append(f"{faq.path}:{faq.line}: entry '{faq.id}': no 'reviewed' date")
        elif (today - faq.reviewed).days > review_days:
            out.append(
                f"{faq.path}:{faq.line}: entry '{faq.id}': last reviewed {faq.reviewed}, "
                f"more than {review_days} days ago"
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
