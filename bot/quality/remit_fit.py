"""Fit the out-of-remit model and write ``faq/remit.json``.

``python -m bot.quality.remit_fit [--faq DIR] [--c C]`` trains
:class:`bot.match.remit.Remit` on the bank's wordings (smalltalk left out)
and the fit half of the real-message development set: in-remit and gap
messages are inside, other-agency messages outside. The test half is not
looked at; the file holds hashed buckets and weights only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bank import SMALLTALK, Bank, load_bank
from ..match.engine import DEFAULT_FAQ_DIR
from ..match.remit import REMIT_FILE, Remit
from .evaluate import FALLBACK, Labelled
from .messages import DEFAULT_LABELS, DEFAULT_MESSAGES, load_messages

__all__ = ["fit_remit", "main"]


def fit_remit(bank: Bank, items: list[Labelled], *, c: float = 4.0) -> Remit:
    """Fit on the bank's wordings and the ``fit`` half of ``items``."""
    inside = [t for f in bank.faqs if f.category != SMALLTALK for t in f.texts]
    fit = [i for i in items if i.half == "fit"]
    inside += [i.q for i in fit if i.id != FALLBACK or i.gap]
    outside = [i.q for i in fit if i.id == FALLBACK and not i.gap]
    return Remit.fit(inside, outside, c=c)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bot.quality.remit_fit", description=__doc__)
    ap.add_argument("--faq", default=str(DEFAULT_FAQ_DIR))
    ap.add_argument("--labels", default=str(DEFAULT_LABELS))
    ap.add_argument("--messages", default=str(DEFAULT_MESSAGES))
    ap.add_argument("--c", type=float, default=4.0, help="inverse L1 strength")
    args = ap.parse_args(argv)
    bank = load_bank(args.faq)
    items = load_messages(args.labels, args.messages, known_ids=set(bank.by_id))
    model = fit_remit(bank, items, c=args.c)
    out = Path(args.faq) / REMIT_FILE
    model.save(out)
    print(f"wrote {out}: {len(model.weights)} weights")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
