"""The console's filters: a range of China-time days and a reply type read from the
query string, and how the pages show a moment.

``from`` and ``to`` are both included (default: the last 30 days); ``type`` is
a reply type or empty for all; ``text`` a piece of the question to search for,
``session`` one visitor session and ``traffic`` whose questions (``internal``
or ``all``; default: visitors' only) the question list and its export show.
A bad value is replaced and explained.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app, request

from bot.config import CHINA_TIME
from bot.querylog import REPLY_TYPES

__all__ = ["TRAFFIC", "Filters", "current_filters", "parse_filters", "today", "when"]

_DEFAULT_DAYS = 30
_MAX_TEXT = 100
_SESSION = re.compile(r"[0-9a-f]{1,64}")
#: The question list's traffic choices: visitors only (the default), internal, all.
TRAFFIC = {"": "访客提问", "internal": "仅内部流量", "all": "全部（含内部流量）"}


@dataclass(frozen=True)
class Filters:
    """A date range of China-time days (both ends included) and an optional reply type."""

    start: date
    end: date
    reply_type: str | None = None
    errors: tuple[str, ...] = ()
    text: str = ""  # questions containing this (the question list's search)
    session: str = ""  # one visitor session (hashed), read as a conversation
    traffic: str = ""  # "" visitors only, "internal" internal traffic only, "all"

    @property
    def internal(self) -> bool | None:
        """The query log's ``internal`` argument for :attr:`traffic`."""
        return {"internal": True, "all": None}.get(self.traffic, False)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), CHINA_TIME).astimezone(UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), CHINA_TIME).astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def types(self) -> list[str] | None:
        return [self.reply_type] if self.reply_type else None

    def args(self, **extra: Any) -> dict[str, Any]:
        """Query-string arguments that reproduce these filters (for links)."""
        args: dict[str, Any] = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.reply_type:
            args["type"] = self.reply_type
        if self.text:
            args["text"] = self.text
        if self.session:
            args["session"] = self.session
        if self.traffic:
            args["traffic"] = self.traffic
        args.update({k: v for k, v in extra.items() if v is not None})
        return args

    def slug(self) -> str:
        """The range (and type) as a file-name part: ``2024-03-01_2024-03-30_fallback``."""
        parts = [self.start.isoformat(), self.end.isoformat()]
        if self.reply_type:
            parts.append(self.reply_type)
        return "_".join(parts)


def today() -> date:
    return datetime.now(CHINA_TIME).date()


def parse_filters(
    args: Mapping[str, str], *, today: date, max_days: int, default_days: int = _DEFAULT_DAYS
) -> Filters:
    """Read ``from``, ``to`` and ``type``; a bad value is replaced and explained in ``errors``."""
    errors: list[str] = []
    end = _date_arg(args, "to", "结束日期", errors) or today
    start = _date_arg(args, "from", "开始日期", errors) or end - timedelta(days=default_days - 1)
    if start > end:
        start, end = end, start
        errors.append("开始日期晚于结束日期，已将两者对调。")
    if (end - start).days + 1 > max_days:
        start = end - timedelta(days=max_days - 1)
        errors.append(f"日期范围最长 {max_days} 天，已改为截至结束日期的 {max_days} 天。")
    reply_type = args.get("type", "") or None
    if reply_type is not None and reply_type not in REPLY_TYPES:
        errors.append("回复类型无效，已显示全部类型。")
        reply_type = None
    text = " ".join(args.get("text", "").split())[:_MAX_TEXT]
    session = args.get("session", "")
    if session and not _SESSION.fullmatch(session):
        errors.append("会话编号无效，已显示全部会话。")
        session = ""
    traffic = args.get("traffic", "")
    if traffic not in TRAFFIC:
        errors.append("流量范围无效，已只显示访客提问。")
        traffic = ""
    return Filters(start, end, reply_type, tuple(errors), text, session, traffic)


def _date_arg(args: Mapping[str, str], name: str, label: str, errors: list[str]) -> date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        shown = raw if len(raw) <= 20 else raw[:20] + "…"
        errors.append(f"{label}“{shown}”无法识别，请按“年-月-日”填写，例如 2024-03-01。")
        return None


def current_filters() -> Filters:
    """The filters of this request's query string."""
    return parse_filters(
        request.args, today=today(), max_days=int(current_app.config["ADMIN_MAX_DAYS"])
    )


def when(moment: datetime | None, *, seconds: bool = False) -> str:
    """``moment`` in China time as the pages show it (``2024-03-01 08:30``)."""
    if moment is None:
        return ""
    return moment.astimezone(CHINA_TIME).strftime(
        "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    )
