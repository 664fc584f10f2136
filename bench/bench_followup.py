"""Follow-up turns on the shipped bank: right with the previous answer as context, and without.

Reads tests/data/followups.yaml (pairs of previous FAQ, next turn, expected
FAQ, kind followup/switch), split into fit/test halves by
``bot.quality.evaluate.split_of(q)``; the follow-up tuning values were chosen on the
fit half only. For each half and kind it prints how many turns are answered
with the expected FAQ with ``Bot.ask(q, context=prev)`` and with ``Bot.ask(q)``,
how many topic switches were pulled to the previous topic (answered with the
previous FAQ or one of its related entries instead of the expected one), and
the median extra time a contextual ask costs over the same ask alone.

    python bench/bench_followup.py [--repeat 5] [--misses]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from common import ROOT, machine

from bot import Bot
from bot.quality.evaluate import split_of

DATA = ROOT / "tests" / "data" / "followups.yaml"
KINDS = ("followup", "switch")


@dataclass(frozen=True)
class Pair:
    prev: str
    q: str
    id: str
    kind: str

    @property
    def half(self) -> str:
        return split_of(self.q)


@dataclass(frozen=True)
class Outcome:
    pair: Pair
    alone: str | None  # FAQ answered without context (None: clarify or fallback)
    with_context: str | None

    @property
    def right_alone(self) -> bool:
        return self.alone == self.pair.id

    @property
    def right(self) -> bool:
        return self.with_context == self.pair.id

    def pulled(self, bot: Bot) -> bool:
        """A switch answered with the previous FAQ or one of its related entries, wrongly."""
        if self.pair.kind != "switch" or self.right or self.with_context is None:
            return False
        prev = bot.bank.faqs[bot._pos[self.pair.prev]]
        return self.with_context in {prev.id, *prev.related}


def load_pairs(path: Path = DATA) -> list[Pair]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Pair(str(x["prev"]), str(x["q"]), str(x["id"]), str(x["kind"])) for x in raw]


def answered(bot: Bot, q: str, context: str | None = None) -> str | None:
    reply = bot.ask(q, context=context)
    return reply.faq_id if reply.type == "answer" else None


def run(bot: Bot, pairs: list[Pair]) -> list[Outcome]:
    return [Outcome(p, answered(bot, p.q), answered(bot, p.q, p.prev)) for p in pairs]


def extra_ms(bot: Bot, pairs: list[Pair], repeat: int) -> float:
    """Median over turns of (contextual ask − alone ask), each the best of ``repeat`` runs."""
    extra = []
    for p in pairs:
        alone = min(_timed(bot, p.q, None) for _ in range(repeat))
        ctx = min(_timed(bot, p.q, p.prev) for _ in range(repeat))
        extra.append(ctx - alone)
    return statistics.median(extra) * 1000


def _timed(bot: Bot, q: str, context: str | None) -> float:
    t = time.perf_counter()
    bot.ask(q, context=context)
    return time.perf_counter() - t


def report(bot: Bot, outcomes: list[Outcome]) -> str:
    lines = [
        "| half | kind | n | right with context | right without context | switches pulled |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for half in ("fit", "test", "all"):
        rows = [o for o in outcomes if half in ("all", o.pair.half)]
        for kind in KINDS:
            sub = [o for o in rows if o.pair.kind == kind]
            if not sub:
                continue
            n = len(sub)
            ctx = sum(o.right for o in sub)
            alone = sum(o.right_alone for o in sub)
            pulled = sum(o.pulled(bot) for o in sub) if kind == "switch" else "—"
            lines.append(
                f"| {half} | {kind} | {n} | {ctx} ({ctx / n:.0%}) | {alone} ({alone / n:.0%}) "
                f"| {pulled} |"
            )
        n = len(rows)
        ctx = sum(o.right for o in rows)
        alone = sum(o.right_alone for o in rows)
        lines.append(
            f"| {half} | both | {n} | {ctx} ({ctx / n:.0%}) | {alone} ({alone / n:.0%}) | |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="timing runs per turn (best is kept)")
    ap.add_argument("--misses", action="store_true", help="list the turns answered wrongly")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        bot = Bot.load(ROOT / "faq", cache_dir=cache)
        pairs = load_pairs()
        outcomes = run(bot, pairs)
        print(f"# Follow-up turns ({len(pairs)} pairs, {DATA.relative_to(ROOT)})\n")
        print(report(bot, outcomes))
        ms = extra_ms(bot, [p for p in pairs if p.kind == "followup"], args.repeat)
        print(f"\nmedian extra time per contextual ask (follow-ups): {ms:.2f} ms")
        print(f"machine: {machine()}")
        if args.misses:
            print("\nwrong with context:")
            for o in outcomes:
                if not o.right:
                    print(
                        f"  [{o.pair.half} {o.pair.kind}] after {o.pair.prev}: {o.pair.q} → "
                        f"{o.with_context} (alone {o.alone}, expected {o.pair.id})"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
