"""The operators' commands on the query log: ``report`` (clusters of unanswered
questions) and ``purge`` (retention), plus :func:`unanswered_clusters`, which
the analyst console shares with the report.

``bot/cli.py`` hands its arguments to :func:`report_main` and :func:`purge_main`;
both read the settings with :func:`bot.config.load_settings` (``DATABASE_URL``,
``FAQ_DIR``, ``INDEX_PATH``, ``CACHE_DIR`` and the keys in :data:`DEFAULTS`) and
return an exit status: 0, 1 with ``Error: ...`` on stderr, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bot.analysis.clusters import CHINA_TIME, Cluster, Nearest, cluster, render_text
from bot.config import DEFAULTS, instance_path, load_settings
from bot.errors import XiaochengError
from bot.match.engine import Bot
from bot.querylog import QueryLog

__all__ = [
    "parse_since",
    "purge_main",
    "report_main",
    "unanswered_clusters",
]

_SINCE = re.compile(r"(\d{1,4})\s*([dhw])")
_UNITS = {"d": "days", "h": "hours", "w": "weeks"}


def setting(settings: Mapping[str, Any], key: str) -> Any:
    """``settings[key]``, else its default from :data:`bot.config.DEFAULTS`."""
    value = settings.get(key)
    return DEFAULTS[key] if value is None else value


def unanswered_clusters(
    log: QueryLog,
    bot: Bot,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    nearest_for: int | None = 50,
) -> list[Cluster]:
    """Cluster the unanswered and low-confidence questions of [since, until), largest first.

    The nearest FAQ (by the engine's own ranking) is looked up for the first
    ``nearest_for`` clusters only (None: all), since each lookup asks the
    engine once; the others keep ``nearest=None`` and propose a new entry.
    """
    settings = settings or {}
    rows = log.unanswered(
        since,
        until,
        threshold=float(setting(settings, "CLUSTER_LOW_SCORE")),
        limit=int(setting(settings, "CLUSTER_MAX_ROWS")),
    )
    clusters = cluster(rows, threshold=float(setting(settings, "CLUSTER_THRESHOLD")))
    alternate_min = float(setting(settings, "CLUSTER_ALTERNATE_MIN_SCORE"))
    shown = clusters if nearest_for is None else clusters[:nearest_for]
    with_nearest = []
    for c in shown:
        near = _nearest(bot, c.examples[0])
        with_nearest.append(
            replace(
                c,
                nearest=near,
                suggest_alternates=near is not None and near.score >= alternate_min,
            )
        )
    return with_nearest + clusters[len(shown) :]


def _nearest(bot: Bot, question: str) -> Nearest | None:
    candidates = bot.ask(question).candidates
    if not candidates:
        return None
    top = candidates[0]
    return Nearest(id=str(top["id"]), question=str(top["question"]), score=float(top["score"]))


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``2w`` before ``now``, or a date ``2024-03-01`` (from 00:00
    China time); returned in UTC. Raises ValueError for anything else."""
    now = now or datetime.now(UTC)
    text = text.strip()
    m = _SINCE.fullmatch(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use a number of days, hours or weeks (7d, 24h, 2w) "
            "or a date (2024-03-01)"
        ) from None
    return datetime.combine(day, time(), CHINA_TIME).astimezone(UTC)


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


def _settings() -> dict[str, Any]:
    return load_settings(instance_path())


def _fail(exc: Exception) -> int:
    print(f"Error: {exc}", file=sys.stderr)
    return 1


def report_main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot report [--since 7d] [--limit N] [--snippets]``: print the clusters."""
    parser = argparse.ArgumentParser(
        prog="python -m bot report",
        description="Print the clusters of questions 智能小城 could not answer well, "
        "largest first, with the nearest FAQ of each.",
    )
    parser.add_argument(
        "--since",
        type=_since_arg,
        default="7d",
        metavar="WHEN",
        help="from 7d, 24h, 2w ago or from a date such as 2024-03-01 (default: 7d)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=30,
        metavar="N",
        help="print the N largest clusters (default: 30)",
    )
    parser.add_argument(
        "--snippets",
        action="store_true",
        help="print each cluster's YAML snippet for the bank",
    )
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error("--limit must be 1 or more")
    try:
        settings = _settings()
        bot = Bot.load(
            settings["FAQ_DIR"],
            index_path=settings["INDEX_PATH"],
            cache_dir=settings["CACHE_DIR"],
        )
        with QueryLog(settings["DATABASE_URL"], background=False) as log:
            clusters = unanswered_clusters(
                log, bot, args.since, settings=settings, nearest_for=args.limit
            )
    except XiaochengError as e:
        return _fail(e)
    shown = clusters[: args.limit]
    since = args.since.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")
    print(f"自 {since} 起（中国时间）")
    if len(clusters) > len(shown):
        rest = sum(c.count for c in clusters[len(shown) :])
        print(f"共 {len(clusters)} 类；下面是最大的 {len(shown)} 类，其余 {rest} 次提问未列出。")
    sys.stdout.write(render_text(shown, snippets=args.snippets))
    return 0


def purge_main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot purge [--days N] [--dry-run]``: delete questions older than N days."""
    parser = argparse.ArgumentParser(
        prog="python -m bot purge",
        description="Delete logged questions (and their feedback) older than N days.",
    )
    parser.add_argument(
        "--days",
        type=_days_arg,
        default=None,
        metavar="N",
        help="keep the last N days (default: LOG_RETENTION_DAYS from the settings, "
        f"{DEFAULTS['LOG_RETENTION_DAYS']} unless set)",
    )
    parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    args = parser.parse_args(argv)
    try:
        settings = _settings()
        days = args.days if args.days is not None else setting(settings, "LOG_RETENTION_DAYS")
        if isinstance(days, str) and days.strip().isdigit():  # from the environment
            days = int(days)
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            raise XiaochengError(
                f"LOG_RETENTION_DAYS must be a whole number 0 or more, not {days!r}"
            )
        with QueryLog(settings["DATABASE_URL"], background=False) as log:
            if args.dry_run:
                cutoff = datetime.now(UTC) - timedelta(days=days)
                n = log.count(until=cutoff)
                print(f"Would delete {n} queries older than {days} days (and their feedback).")
            else:
                n = log.purge(days)
                print(f"Deleted {n} queries older than {days} days (and their feedback).")
    except XiaochengError as e:
        return _fail(e)
    return 0
