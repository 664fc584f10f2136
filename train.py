"""Validate the FAQ bank, build the index, save it and report self-retrieval.

python train.py [--faq DIR] [--index PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bot import Bot, XiaochengError
from bot.bank import shown_path
from bot.cli.main import _fail, default_index_path
from bot.match.engine import DEFAULT_FAQ_DIR, build_index
from bot.quality.evaluate import self_retrieval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate faq/, build the TF-IDF index and check that every "
        "question and alternate finds its own FAQ."
    )
    parser.add_argument(
        "--faq", default=str(DEFAULT_FAQ_DIR), metavar="DIR", help="FAQ bank folder"
    )
    parser.add_argument(
        "--index",
        default=None,
        metavar="PATH",
        help="where to save the index (default: instance/index.pkl)",
    )
    args = parser.parse_args(argv)
    index_path = args.index or default_index_path()
    try:
        start = time.perf_counter()
        bot = Bot.load(args.faq, index_path=None, cache_dir=os.path.dirname(index_path) or ".")
        bot.index = build_index(bot.bank, bot.pipeline)
        bot.index.save(index_path)
        took = time.perf_counter() - start
    except XiaochengError as exc:
        return _fail(exc)
    bank = bot.bank
    print(
        f"bank: {len(bank.faqs)} FAQs, {bot.index.n_rows} questions and alternates, "
        f"{len(bank.categories)} categories"
    )
    print(f"index: {shown_path(index_path)} built in {took:.2f} s")
    total, failures = self_retrieval(bot)
    print(
        f"self-retrieval: {total - len(failures)}/{total} = {(total - len(failures)) / total:.1%}"
    )
    for fid, text, got in failures:
        print(f"  miss: '{text}' of {fid} → {got}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
