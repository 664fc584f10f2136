"""The operators' commands: report (clusters of unanswered questions and the
wordings visitors chose an answer for), purge
(retention) and reload (publish the bank to the running service).

All read the settings with :func:`bot.config.load_settings` (``DATABASE_URL``,
``FAQ_DIR``, ``INDEX_PATH``, ``CACHE_DIR``, ``LOG_RETENTION_DAYS``,
``RELOAD_CHECK_INTERVAL_S`` and the ``CLUSTER_*`` keys) and return an exit
status: 0, 1 with ``Error: ...`` on stderr, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..analysis.clusters import render_text
from ..analysis.report import Learned, learned_by_faq, parse_since, unanswered_clusters
from ..analysis.spikes import Spike, spikes
from ..bank import shown_path
from ..config import CHINA_TIME, DEFAULTS, instance_path, load_settings
from ..errors import XiaochengError
from ..match.engine import Bot
from ..querylog import QueryLog
from ..reload import rebuild, shared_banks
from .output import print_errors

__all__ = ["register"]


def _since_arg(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _days_arg(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if days < 0:
        raise argparse.ArgumentTypeError("the number of days must be 0 or more")
    return days


def cmd_report(args: argparse.Namespace) -> int:
    if args.limit < 1:
        args.parser.error("--limit must be 1 or more")
    settings = load_settings(instance_path())
    bot = Bot.load(
        settings["FAQ_DIR"],
        index_path=settings["INDEX_PATH"],
        cache_dir=settings["CACHE_DIR"],
    )
    with QueryLog(settings["DATABASE_URL"], background=False) as log:
        clusters = unanswered_clusters(
            log, bot, args.since, settings=settings, nearest_for=args.limit
        )
        learned = learned_by_faq(log, bot, args.since, settings=settings)
        today = spikes(log)
    shown = clusters[: args.limit]
    since = args.since.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")
    print(f"自 {since} 起（中国时间）")
    if len(clusters) > len(shown):
        rest = sum(c.count for c in clusters[len(shown) :])
        print(f"共 {len(clusters)} 类；下面是最大的 {len(shown)} 类，其余 {rest} 次提问未列出。")
    sys.stdout.write(_render_spikes(today, bot))
    sys.stdout.write(render_text(shown, snippets=args.snippets))
    sys.stdout.write(_render_learned(learned[: args.limit], len(learned), snippets=args.snippets))
    return 0


def _render_spikes(found: list[Spike], bot: Bot) -> str:
    """Today's spikes, or nothing when there are none."""
    if not found:
        return ""
    lines = ["今天提问明显增多的问答（与前 4 周同一天同一时段相比）："]
    for s in found:
        faq = bot.bank.by_id.get(s.faq_id)
        title = f"「{faq.question}」" if faq else "（已不在题库中）"
        lines.append(f"  {s.faq_id}{title}今天 {s.today} 次，平时约 {s.usual:.1f} 次")
    return "\n".join(lines) + "\n\n"


def _render_learned(learned: list[Learned], total: int, *, snippets: bool) -> str:
    """The wordings visitors chose an answer for, per FAQ (candidates for alternates)."""
    lines = ["", f"访客自己选出答案的问法（可加为相似问法）：{total} 个条目"]
    if total > len(learned):
        lines.append(f"下面是次数最多的 {len(learned)} 个条目。")
    for rank, item in enumerate(learned, 1):
        lines += ["", f"{rank}. {item.faq_id}「{item.question}」{item.count} 次"]
        for w in item.wordings:
            counts = f"点选 {w['chosen']} 次，有用反馈 {w['helpful']} 次"
            lines.append(f"   - {w['question']}（{counts}）")
        if snippets:
            lines += ["", *("   " + line for line in item.yaml_snippet().splitlines())]
    return "\n".join(lines) + "\n"


def cmd_purge(args: argparse.Namespace) -> int:
    settings = load_settings(instance_path())
    days = args.days if args.days is not None else settings["LOG_RETENTION_DAYS"]
    if isinstance(days, str) and days.strip().isdigit():  # from the environment
        days = int(days)
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise XiaochengError(f"LOG_RETENTION_DAYS must be a whole number 0 or more, not {days!r}")
    with QueryLog(settings["DATABASE_URL"], background=False) as log:
        if args.dry_run:
            cutoff = datetime.now(UTC) - timedelta(days=days)
            n = log.count(until=cutoff, internal=None)
            print(f"Would delete {n} queries older than {days} days (and their feedback).")
        else:
            n = log.purge(days)
            print(f"Deleted {n} queries older than {days} days (and their feedback).")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """Rebuild for the service's instance folder and print the outcome; 1 if refused."""
    settings = load_settings(instance_path())
    faq_dir = args.faq or settings["FAQ_DIR"]
    index_path = Path(args.index or settings["INDEX_PATH"])
    shared = shared_banks(settings)
    try:
        result = rebuild(faq_dir, index_path, cache_dir=settings.get("CACHE_DIR"), shared=shared)
    finally:
        if shared is not None:
            shared.close()
    if not result.ok:
        print_errors(result.errors)
        print("nothing was reloaded: the service keeps its previous bank", file=sys.stderr)
        return 1
    was = "unchanged" if result.previous == result.version else f"was {_short(result.previous)}"
    print(
        f"bank: {result.faqs} FAQs, {result.rows} questions and alternates "
        f"(version {_short(result.version)}, {was})"
    )
    snapshot = shown_path(result.snapshot or index_path.parent)
    if result.built:
        print(f"index: built in {result.seconds:.2f} s into {snapshot}")
    else:
        print(f"index: {snapshot} is current, reused")
    interval = float(settings["RELOAD_CHECK_INTERVAL_S"])
    print(f"running workers switch to it on their next request (checked every {interval:g} s)")
    if result.seq is not None:
        print(f"published to every node through the shared database (publication {result.seq})")
    return 0


def _short(version: str | None) -> str:
    return version[:12] if version else "none"


def register(sub: Any) -> None:
    """Add report, purge and reload to the subcommands ``sub``."""
    p = sub.add_parser(
        "report",
        help="group unanswered questions of the query log into clusters",
        description="Print the clusters of questions 智能小城 could not answer well, "
        "largest first, with the nearest FAQ of each; then, per FAQ, the visitor "
        "questions that ended in it by the visitor's own choice (a clicked suggestion, "
        "or helpful feedback after a low-score answer), ready to become alternates.",
    )
    p.add_argument(
        "--since",
        type=_since_arg,
        default="7d",
        metavar="WHEN",
        help="from 7d, 24h, 2w ago or from a date such as 2024-03-01 (default: 7d)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=30,
        metavar="N",
        help="print the N largest clusters and the N FAQs with most chosen wordings (default: 30)",
    )
    p.add_argument(
        "--snippets",
        action="store_true",
        help="print each cluster's and each FAQ's YAML snippet for the bank",
    )
    p.set_defaults(func=cmd_report, parser=p)

    p = sub.add_parser(
        "purge",
        help="delete query-log rows older than the retention period",
        description="Delete logged questions (and their feedback) older than N days.",
    )
    p.add_argument(
        "--days",
        type=_days_arg,
        default=None,
        metavar="N",
        help="keep the last N days (default: LOG_RETENTION_DAYS from the settings, "
        f"{DEFAULTS['LOG_RETENTION_DAYS']} unless set)",
    )
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser(
        "reload",
        help="validate the bank, rebuild the index, tell workers to swap",
        description="Validate the bank, rebuild the index and let the running service "
        "switch to it without a restart. With BANK_SHARED, publish it through the shared "
        "database too: every node serves it within seconds.",
    )
    p.add_argument(
        "--faq", default=None, metavar="DIR", help="FAQ bank folder (default: the FAQ_DIR setting)"
    )
    p.add_argument(
        "--index",
        default=None,
        metavar="PATH",
        help="index file the service reads (default: the INDEX_PATH setting)",
    )
    p.set_defaults(func=cmd_reload)
