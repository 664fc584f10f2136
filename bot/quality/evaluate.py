"""Measure the bot on labelled questions and check self-retrieval (fitting: fit.py).

A labelled file is a YAML list of ``{q: 问题, id: faq-id | fallback}``. It is
split in two halves by a hash of the question: ``fit`` questions tune the
calibration and thresholds, ``test`` questions report on them, so the report
never grades the thresholds on the questions they were fitted to.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..bank import shown_path
from ..errors import BankError, BankIssue
from ..match.engine import Bot

__all__ = [
    "Labelled",
    "EvalReport",
    "load_labelled",
    "split_of",
    "evaluate",
    "self_retrieval",
    "FALLBACK",
]

FALLBACK = "fallback"


@dataclass(frozen=True)
class Labelled:
    """One labelled question: the FAQs that answer it, or none.

    ``id`` is the best FAQ, or ``fallback`` for a question outside the remit;
    ``ids`` every FAQ whose answer would help (real messages may have
    several); ``gap`` marks a question in the remit that no entry answers, so
    answering it is as wrong as answering an out-of-remit one.
    """

    q: str
    id: str
    line: int
    ids: tuple[str, ...] = ()
    gap: bool = False
    split: str = ""  # "fit" or "test"; empty means split_of(q)

    @property
    def accepted(self) -> tuple[str, ...]:
        return self.ids or (self.id,)

    @property
    def half(self) -> str:
        return self.split or split_of(self.q)


def split_of(q: str) -> str:
    """'fit' or 'test': a stable half of the questions, the same on every machine."""
    return "fit" if zlib.crc32(q.encode("utf-8")) % 2 == 0 else "test"


def load_labelled(path: str | os.PathLike[str], *, known_ids: set[str]) -> list[Labelled]:
    """Read labelled questions; unknown ids are errors naming file and line."""
    shown = shown_path(path)
    text = Path(path).read_text(encoding="utf-8")
    try:
        nodes = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise BankError(
            [BankIssue(shown, mark.line + 1 if mark else None, f"YAML syntax error: {exc.problem}")]
        ) from None
    items: list[Labelled] = []
    issues: list[BankIssue] = []
    if not isinstance(nodes, yaml.SequenceNode):
        raise BankError([BankIssue(shown, 1, "must be a list of {q, id}")])
    for node in nodes.value:
        line = node.start_mark.line + 1
        data = yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.MappingNode) else None
        if not isinstance(data, dict) or not data.get("q") or not data.get("id"):
            issues.append(BankIssue(shown, line, "each item needs 'q' and 'id'"))
            continue
        qid = str(data["id"])
        if qid != FALLBACK and qid not in known_ids:
            issues.append(BankIssue(shown, line, f"id '{qid}' is not in the FAQ bank"))
            continue
        items.append(Labelled(str(data["q"]), qid, line))
    if issues:
        raise BankError(issues)
    return items


@dataclass
class EvalReport:
    n_in: int = 0
    n_out: int = 0
    n_gap: int = 0
    gap_answered: int = 0
    top1: int = 0
    answered_correct: int = 0
    clarified: int = 0
    clarified_with_gold: int = 0
    wrong_answer: int = 0
    fell_back: int = 0
    out_answered: int = 0
    misses: list[tuple[Labelled, str, str | None]] = field(default_factory=list)

    def rates(self) -> dict[str, float]:
        n, m = max(self.n_in, 1), max(self.n_out, 1)
        return {
            "top1_accuracy": self.top1 / n,
            "answered_correct": self.answered_correct / n,
            "clarified": self.clarified / n,
            "clarified_with_gold": self.clarified_with_gold / n,
            "wrong_answer": self.wrong_answer / n,
            "fell_back": self.fell_back / n,
            "answered_or_offered": (self.answered_correct + self.clarified_with_gold) / n,
            "out_of_domain_answered": self.out_answered / m,
            "gap_answered": self.gap_answered / max(self.n_gap, 1),
        }

    def render(self) -> str:
        r = self.rates()
        lines = [
            f"questions: {self.n_in} in the remit, {self.n_out} outside"
            + (f", {self.n_gap} in the remit with no entry (gap)" if self.n_gap else ""),
            f"top-1 accuracy          {r['top1_accuracy']:.1%}",
            f"answered correctly      {r['answered_correct']:.1%}",
            f"clarified               {r['clarified']:.1%} "
            f"(right FAQ among the choices: {r['clarified_with_gold']:.1%})",
            f"answered or offered     {r['answered_or_offered']:.1%}",
            f"wrong answers           {r['wrong_answer']:.1%}",
            f"fell back               {r['fell_back']:.1%}",
            f"outside remit answered  {r['out_of_domain_answered']:.1%}",
        ]
        if self.n_gap:
            lines.append(f"gap answered            {r['gap_answered']:.1%}")
        if self.misses:
            lines.append(f"misses ({len(self.misses)}):")
            for item, got_type, got_id in self.misses:
                where = f"line {item.line}" if item.line else "message"
                lines.append(
                    f"  {where}: {item.q!r} expected {'|'.join(item.accepted)}, got {got_type}"
                    + (f" {got_id}" if got_id else "")
                )
        return "\n".join(lines)


def evaluate(bot: Bot, items: list[Labelled]) -> EvalReport:
    rep = EvalReport()
    for item in items:
        reply = bot.ask(item.q)
        top = reply.candidates[0]["id"] if reply.candidates else None
        if item.gap:
            rep.n_gap += 1
            if reply.type == "answer" and reply.faq_id:
                rep.gap_answered += 1
                rep.misses.append((item, reply.type, reply.faq_id))
            continue
        if item.id == FALLBACK:
            rep.n_out += 1
            if reply.type == "answer" and reply.faq_id:
                rep.out_answered += 1
                rep.misses.append((item, reply.type, reply.faq_id))
            continue
        rep.n_in += 1
        rep.top1 += top in item.accepted
        if reply.type == "answer":
            if reply.faq_id in item.accepted:
                rep.answered_correct += 1
                continue
            rep.wrong_answer += 1
        elif reply.type == "clarify":
            rep.clarified += 1
            rep.clarified_with_gold += any(s["id"] in item.accepted for s in reply.suggestions)
        else:
            rep.fell_back += 1
        rep.misses.append((item, reply.type, reply.faq_id or top))
    return rep


def self_retrieval(bot: Bot) -> tuple[int, list[tuple[str, str, str | None]]]:
    """Rank every question and alternate; return (total, failures as (faq id, text, got))."""
    total, failures = 0, []
    for faq in bot.bank.faqs:
        for text in dict.fromkeys(faq.texts):
            total += 1
            ranked = bot.matcher.rank(bot.pipeline.prepare(text))
            got = bot.bank.faqs[ranked[0].pos].id if ranked else None
            if got != faq.id:
                failures.append((faq.id, text, got))
    return total, failures
