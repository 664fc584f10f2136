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

Before them, the out-of-remit keyword's threshold (``remit_keyword``): a
keyword of faq/outside.yaml routes a question the learned model is not sure
of only when the model's out-of-remit probability is at least half the lowest
it gives any out-of-remit question of the fit halves that has a keyword. Every
such question stays routed, and a question the model finds more clearly in the
remit than all of them is matched on its content although it names a school
or a hospital (幼儿园侵占小区绿地).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..match.engine import Bot
from ..match.matcher import COEFS
from .evaluate import FALLBACK, Labelled, self_retrieval

__all__ = [
    "FitSet",
    "fit_thresholds",
    "keyword_threshold",
    "TOPIC_WEIGHTS",
    "VOTES_WEIGHTS",
    "TIE_WINDOWS",
    "COEFS",
]

TOPIC_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
# The default (MatcherConfig.votes_weight, chosen on BQ and LCQMC) first: it wins ties.
VOTES_WEIGHTS = (0.2, 0.1, 0.0)
# Raw distances between the best two FAQs under which they count as tied (offered).
TIE_WINDOWS = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05)
TIE_MAX_SHARE = 0.01


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
    """The topic and votes weights with the best top-1 on ``groups``, and the scored questions.

    Weights under which a wording of the bank no longer finds its own FAQ first
    (self-retrieval, ``python train.py``) are passed over while any other keeps it.
    """
    start = bot.matcher.config
    topics = TOPIC_WEIGHTS if bot.index.topics is not None else (0.0,)
    best: tuple[float, float, list[_Scored]] | None = None
    best_key = (False, -1.0)
    try:
        for v in VOTES_WEIGHTS:
            for w in topics:
                bot.matcher.config = replace(start, topic_weight=w, votes_weight=v)
                scored = _score(bot, groups)
                top1 = _top1(scored, len(groups))
                if (True, top1) <= (best_key[0], best_key[1] + 1e-9):
                    continue  # cannot beat the best, whatever its self-retrieval
                complete = not self_retrieval(bot)[1]
                if (complete, top1) > (best_key[0], best_key[1] + 1e-9):
                    best, best_key = (w, v, scored), (complete, top1)
    finally:
        bot.matcher.config = start
    assert best is not None
    return best


def keyword_threshold(bot: Bot, groups: list[list[Labelled]]) -> float:
    """``remit_keyword``: half the lowest out-of-remit probability among the out-of-remit
    questions of ``groups`` that have an out-of-remit keyword and that the model alone
    would not route (0.0 without a model or without such questions)."""
    if bot.remit is None:
        return 0.0
    lowest = math.inf
    for items in groups:
        for item in items:
            if item.id != FALLBACK or item.gap:
                continue  # in the remit (a gap too: its topic is the bureau's)
            p = bot.pipeline.prepare(item.q)
            if bot.hints.outside_topic(p) is None:
                continue
            prob = bot.remit.outside(p.text, p.words)
            if prob < bot.remit_outside:
                lowest = min(lowest, prob)
    return 0.0 if lowest == math.inf else math.floor(lowest / 2 * 10_000) / 10_000


def fit_thresholds(bot: Bot, sets: list[FitSet], *, wrong_cost: float = 4.0) -> dict[str, Any]:
    """The values for faq/thresholds.yaml, fitted on the fit halves ``sets``."""
    sets = [s for s in sets if s.items]
    groups = [s.items for s in sets]
    if not groups:
        raise ValueError("no labelled questions to fit on")
    remit_keyword, bot.remit_keyword = bot.remit_keyword, keyword_threshold(bot, groups)
    try:
        values = _fit(bot, sets, groups, wrong_cost=wrong_cost)
    finally:
        bot.remit_keyword, fitted = remit_keyword, bot.remit_keyword
    return {**values, "remit_keyword": fitted}


def _fit(
    bot: Bot, sets: list[FitSet], groups: list[list[Labelled]], *, wrong_cost: float
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

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
