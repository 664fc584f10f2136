"""Fit the ranking's topic weight, the calibration curve and the reply thresholds.

The fit reads the ``fit`` halves of one or more development sets together
(the bank-style questions and the real citizen messages), so one set of
values serves both kinds of visitor, and it weighs the sets equally however
many questions each has (the real-message set has about ten messages for
other agencies per message in the remit). The caps on wrong answers and on
out-of-remit questions answered hold for every set on its own.

Three steps, each on the fit halves only:

1. the topic model's weight in the ranking (bot/match/topics.py) and the
   votes' (each FAQ's share of the best-matching rows): the pair of
   :data:`TOPIC_WEIGHTS` and :data:`VOTES_WEIGHTS` whose best FAQ is right
   most often, the sets weighed equally (votes favour an FAQ with many
   wordings, and banks differ in how many their FAQs have);
2. the calibration: a logistic regression of "the best FAQ is the right
   one" on the matcher's :class:`~bot.match.matcher.Evidence`;
3. the answer threshold that maximises right answers minus ``wrong_cost``
   times the wrong ones (in the remit or not), summed over the sets as
   shares of their questions in the remit, among the thresholds that keep
   every set within both caps (rounded up to whole questions); and the
   lowest clarify threshold that offers choices to no more out-of-remit
   questions of any set than twice its cap: one for short questions, one
   for messages long enough for the clerk (``clarify_message``), whose
   evidence is weaker (a complaint shares fewer words with any wording);
4. the tie window: the widest of :data:`TIE_WINDOWS` under which at most
   :data:`TIE_MAX_SHARE` of any set's questions, answered right, would become
   a clarify (two FAQs closer than that are offered, however short the
   question: 罚款).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..match.engine import Bot
from .evaluate import FALLBACK, Labelled

__all__ = ["FitSet", "fit_thresholds", "TOPIC_WEIGHTS", "VOTES_WEIGHTS", "TIE_WINDOWS", "COEFS"]

TOPIC_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
# The default (MatcherConfig.votes_weight, chosen on BQ and LCQMC) first: it wins ties.
VOTES_WEIGHTS = (0.2, 0.1, 0.0)
# Raw distances between the best two FAQs under which they count as tied (offered).
TIE_WINDOWS = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05)
TIE_MAX_SHARE = 0.01
COEFS = (
    "raw_coef",
    "margin_coef",
    "coverage_coef",
    "unknown_coef",
    "votes_coef",
    "coverage_margin_coef",
    "topic_coef",
    "topic_margin_coef",
)


@dataclass(frozen=True)
class FitSet:
    """The fit half of one development set and the caps its answers must keep."""

    items: list[Labelled]
    max_wrong: float  # wrong answers, as a share of its questions in the remit
    max_out_answered: float  # out-of-remit questions answered, as a share of those


@dataclass(frozen=True)
class _Scored:
    """One labelled question as the fit sees it."""

    group: int  # which development set
    raw: float
    evidence: list[float]
    right: bool  # in the remit and the best FAQ is its FAQ
    in_remit: bool
    routed: bool  # judged to be for another agency whatever the score
    message: bool  # long enough for the clerk: a complaint, not a short question


def _score(bot: Bot, groups: list[list[Labelled]]) -> list[_Scored]:
    scored = []
    for g, items in enumerate(groups):
        for item in items:
            p = bot.pipeline.prepare(item.q)
            cands = bot.matcher.rank(p)
            ev = bot.matcher.evidence(p, cands)
            top = bot.bank.faqs[cands[0].pos].id if cands else None
            in_remit = item.id != FALLBACK and not item.gap
            routed = bot.is_outside(item.q, p)
            is_right = in_remit and top in item.accepted
            scored.append(_Scored(g, ev.raw, ev.vector(), is_right, in_remit, routed, p.message))
    return scored


def _top1(scored: list[_Scored], n_groups: int) -> float:
    """The mean over the sets of the share of questions in the remit whose best FAQ is right."""
    shares = []
    for g in range(n_groups):
        mine = [s for s in scored if s.group == g and s.in_remit]
        shares.append(sum(s.right for s in mine) / len(mine) if mine else 0.0)
    return sum(shares) / n_groups


def _rank_weights(bot: Bot, groups: list[list[Labelled]]) -> tuple[float, float, list[_Scored]]:
    """The topic and votes weights with the best top-1 on ``groups``, and the scored questions."""
    start = bot.matcher.config
    topics = TOPIC_WEIGHTS if bot.index.topics is not None else (0.0,)
    best: tuple[float, float, list[_Scored]] | None = None
    best_top1 = -1.0
    try:
        for v in VOTES_WEIGHTS:
            for w in topics:
                bot.matcher.config = replace(start, topic_weight=w, votes_weight=v)
                scored = _score(bot, groups)
                top1 = _top1(scored, len(groups))
                if top1 > best_top1 + 1e-9:
                    best, best_top1 = (w, v, scored), top1
    finally:
        bot.matcher.config = start
    assert best is not None
    return best


def fit_thresholds(bot: Bot, sets: list[FitSet], *, wrong_cost: float = 4.0) -> dict[str, Any]:
    """The values for faq/thresholds.yaml, fitted on the fit halves ``sets``."""
    from sklearn.linear_model import LogisticRegression

    sets = [s for s in sets if s.items]
    groups = [s.items for s in sets]
    if not groups:
        raise ValueError("no labelled questions to fit on")
    topic_weight, votes_weight, scored = _rank_weights(bot, groups)
    x = np.array([s.evidence for s in scored])
    y = np.array([s.right for s in scored], dtype=int)
    if len(set(y.tolist())) < 2:
        raise ValueError("the labelled questions need both right and wrong top-1 results to fit")
    sizes = [sum(s.group == g for s in scored) for g in range(len(groups))]
    weight = np.array([len(scored) / (len(groups) * sizes[s.group]) for s in scored])
    model = LogisticRegression(C=100.0, max_iter=2000).fit(x, y, sample_weight=weight)
    probs = model.predict_proba(x)[:, 1]
    override = bot.matcher.config.outside_override
    answerable = [not s.routed or s.raw >= override for s in scored]
    caps = []
    for g, fit_set in enumerate(sets):
        n_in = sum(s.in_remit for s in scored if s.group == g)
        n_out = sizes[g] - n_in
        cap_wrong = math.ceil(fit_set.max_wrong * n_in)
        cap_out = math.ceil(fit_set.max_out_answered * n_out)
        caps.append((max(n_in, 1), cap_wrong, cap_out))

    def counts(t: float, g: int, messages: bool | None = None) -> tuple[int, int, int]:
        right = wrong = out = 0
        for p, a, s in zip(probs, answerable, scored, strict=True):
            if s.group != g or p < t or not a or messages not in (None, s.message):
                continue
            right += s.right
            wrong += s.in_remit and not s.right
            out += not s.in_remit
        return right, wrong, out

    best_answer, best_utility = 0.99, -math.inf
    for t in np.arange(0.05, 0.99, 0.01):
        utility, within = 0.0, True
        for g, (n_in, cap_wrong, cap_out) in enumerate(caps):
            right, wrong, out = counts(float(t), g)
            within = within and wrong <= cap_wrong and out <= cap_out
            utility += (right - wrong_cost * (wrong + out)) / n_in
        if within and utility > best_utility:
            best_answer, best_utility = float(t), utility
    clarify = {}
    for messages in (False, True):  # short questions, then messages (their own threshold)
        clarify[messages] = best_answer
        for t in np.arange(0.01, best_answer, 0.01):
            offered = [counts(float(t), g, messages)[2] for g in range(len(caps))]
            if all(n <= 2 * cap_out for n, (_, _, cap_out) in zip(offered, caps, strict=True)):
                clarify[messages] = float(t)
                break
    # The widest tie window that turns at most TIE_MAX_SHARE of any set's right answers
    # into a clarify (near-exact ties do happen: those are coin flips, fine to offer).
    margin = COEFS.index("margin_coef")
    tie_window = 0.0
    for w in TIE_WINDOWS:
        turned = [0] * len(caps)
        for p, a, s in zip(probs, answerable, scored, strict=True):
            turned[s.group] += p >= best_answer and a and s.right and s.evidence[margin] < w
        if any(n > TIE_MAX_SHARE * n_in for n, (n_in, _, _) in zip(turned, caps, strict=True)):
            break
        tie_window = w
    coefs = zip(COEFS, (float(v) for v in model.coef_[0]), strict=True)
    return {
        "bias": round(float(model.intercept_[0]), 4),
        **{name: round(value, 4) for name, value in coefs},
        "topic_weight": topic_weight,
        "votes_weight": votes_weight,
        "answer": round(best_answer, 2),
        "clarify": round(clarify[False], 2),
        "clarify_message": round(clarify[True], 2),
        "tie_window": tie_window,
    }
