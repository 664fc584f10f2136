"""Fit the out-of-remit model and write ``faq/remit.json``.

``python -m bot.quality.remit_fit [--faq DIR] [--c C]`` trains
:class:`bot.match.remit.Remit` on the bank's wordings (smalltalk left out)
and the fit half of the real-message development set: in-remit and gap
messages are inside, other-agency messages outside. Every text is read as
the bot reads a question (``TextPipeline.prepare(...)``: the clerk's reading,
without places and request frames, and its content words).

Two choices are made by cross-validation on the fit half (folds of its
messages; the bank's wordings are in every training fold): the weight of a
real in-remit message against one bank wording (:data:`MESSAGE_WEIGHTS`),
and the probability from which a message is routed away
(:data:`THRESHOLDS`). The rule: the largest share of other-agency messages
routed minus :data:`ROUTED_IN_COST` times the share of in-remit messages
routed (a citizen of ours sent away costs more than a stranger kept: a
stranger kept still has to pass the answer threshold). The test half is not
looked at; the file holds hashed buckets and weights only.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from pathlib import Path

from ..bank import SMALLTALK, Bank, load_bank
from ..match.engine import DEFAULT_FAQ_DIR, pipeline_for
from ..match.remit import REMIT_FILE, Reading, Remit, split_reading
from .evaluate import FALLBACK, Labelled
from .messages import DEFAULT_LABELS, DEFAULT_MESSAGES, load_messages

__all__ = ["fit_remit", "main", "MESSAGE_WEIGHTS", "THRESHOLDS", "ROUTED_IN_COST"]

MESSAGE_WEIGHTS = (1.0, 5.0, 15.0, 30.0)
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
ROUTED_IN_COST = 2.0
FOLDS = 5


def _inside(item: Labelled) -> bool:
    return item.id != FALLBACK or item.gap


def _train(
    wordings: list[Reading], messages: list[tuple[Reading, bool]], weight: float, c: float
) -> Remit:
    inside = [*wordings, *(t for t, i in messages if i)]
    outside = [t for t, i in messages if not i]
    n_msg_in = len(inside) - len(wordings)
    weights = [1.0] * len(wordings) + [weight] * n_msg_in + [1.0] * len(outside)
    return Remit.fit(inside, outside, c=c, weights=weights)


def choose(
    wordings: list[Reading], messages: list[tuple[Reading, bool]], *, c: float = 4.0, seed: int = 0
) -> tuple[float, float, dict[tuple[float, float], tuple[float, float]]]:
    """(message weight, threshold, {(weight, threshold): (in routed, out routed)}) by CV."""
    order = list(range(len(messages)))
    random.Random(seed).shuffle(order)
    curve: dict[tuple[float, float], tuple[float, float]] = {}
    for weight in MESSAGE_WEIGHTS:
        probs: list[tuple[float, bool]] = []
        for k in range(FOLDS):
            held = {j for n, j in enumerate(order) if n % FOLDS == k}
            kept = [m for j, m in enumerate(messages) if j not in held]
            model = _train(wordings, kept, weight, c)
            probs += [(model.outside(*split_reading(messages[j][0])), messages[j][1]) for j in held]
        n_in = sum(i for _, i in probs) or 1
        n_out = sum(not i for _, i in probs) or 1
        for thr in THRESHOLDS:
            routed_in = sum(p >= thr for p, i in probs if i) / n_in
            routed_out = sum(p >= thr for p, i in probs if not i) / n_out
            curve[(weight, thr)] = (routed_in, routed_out)
    best = max(curve, key=lambda k: (curve[k][1] - ROUTED_IN_COST * curve[k][0], -k[0], k[1]))
    return best[0], best[1], curve


def fit_remit(
    bank: Bank,
    items: list[Labelled],
    *,
    read: Callable[[str], Reading] | None = None,
    c: float = 4.0,
) -> tuple[Remit, dict[tuple[float, float], tuple[float, float]]]:
    """Fit on the bank's wordings and the ``fit`` half of ``items`` (texts read by ``read``)."""
    if read is None:
        pipeline = pipeline_for(bank)

        def prepared(t: str) -> Reading:
            p = pipeline.prepare(t)
            return p.text, p.words

        read = prepared
    wordings = [read(t) for f in bank.faqs if f.category != SMALLTALK for t in f.texts]
    messages = [(read(i.q), _inside(i)) for i in items if i.half == "fit"]
    weight, threshold, curve = choose(wordings, messages, c=c)
    model = _train(wordings, messages, weight, c)
    model.threshold = threshold
    return model, {k: v for k, v in curve.items() if k[0] == weight}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bot.quality.remit_fit", description=__doc__)
    ap.add_argument("--faq", default=str(DEFAULT_FAQ_DIR))
    ap.add_argument("--labels", default=str(DEFAULT_LABELS))
    ap.add_argument("--messages", default=str(DEFAULT_MESSAGES))
    ap.add_argument("--c", type=float, default=4.0, help="inverse strength of the L2 penalty")
    args = ap.parse_args(argv)
    bank = load_bank(args.faq)
    items = load_messages(args.labels, args.messages, known_ids=set(bank.by_id))
    model, curve = fit_remit(bank, items, c=args.c)
    print("cross-validated on the fit half (in-remit routed / other-agency routed):")
    for (weight, thr), (r_in, r_out) in sorted(curve.items()):
        mark = " <- chosen" if thr == model.threshold else ""
        print(f"  message weight {weight:g}, from {thr:.2f}: {r_in:.1%} / {r_out:.1%}{mark}")
    out = Path(args.faq) / REMIT_FILE
    model.save(out)
    print(f"wrote {out}: {len(model.weights)} weights, threshold {model.threshold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
