"""The console's pages: dashboard, clusters of unanswered questions, the question
list and the bank page with its reload button, plus the console's own assets
and error page.

Charts are inline SVG from :mod:`bot.web.admin.charts`; the pages carry no
inline script or style, as the Content-Security-Policy demands. Every text
shown was masked by the query log (:mod:`bot.querylog.masking`).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import (
    Response,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as BaseResponse

from bot.analysis.report import learned_by_faq, unanswered_clusters
from bot.analysis.spikes import spikes
from bot.config import CHINA_TIME
from bot.errors import BankError
from bot.quality.lint import ReviewRules, due_for_review, review_rules
from bot.querylog import REPLY_TYPES
from bot.reload import bank_version
from bot.web import errors
from bot.web.admin import charts as admin_charts
from bot.web.admin.auth import csrf_token, logged_in
from bot.web.admin.filters import TRAFFIC, current_filters, when
from bot.web.reload import reload_bank
from bot.web.service import get_service

if TYPE_CHECKING:
    from bot.match.engine import Bot

__all__ = [
    "TYPE_NAMES",
    "asset",
    "asset_versions",
    "bank",
    "clusters",
    "dashboard",
    "error_page",
    "faq_question",
    "private",
    "queries",
    "reload",
    "template_globals",
]

_STATIC_DIR = Path(__file__).resolve().parent / "static"
_ASSETS = {
    "admin.css": "text/css; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_TOP_FAQS = 10
_HELPFUL_SHOWN = 15
# Chart sizes, in px at which the text is 12 px: about the size each is shown at.
_WIDE_CHART = (900, 280)  # width, height
_HALF_CHART = (540, 230)  # width, label width

TYPE_NAMES = {"answer": "直接回答", "clarify": "反问澄清", "fallback": "未能回答"}


def asset_versions() -> dict[str, str]:
    """A short content hash per asset, put in its URL so a changed file is fetched anew."""
    return {
        name: hashlib.sha256((_STATIC_DIR / name).read_bytes()).hexdigest()[:10] for name in _ASSETS
    }


# --- responses ------------------------------------------------------------------


def error_page(status: int, message: str) -> str:
    """The console's error page (bot.web.errors answers JSON requests itself)."""
    return render_template("admin/error.html", status=status, message=message, **template_globals())


def private(response: Response) -> Response:
    """Keep the console's pages out of caches and search engines."""
    if request.endpoint != "admin.asset":
        response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def template_globals() -> dict[str, Any]:
    service = get_service()
    versions = current_app.extensions.get("xiaocheng_admin_assets", {})

    def asset_url(name: str) -> str:
        return url_for("admin.asset", filename=name, v=versions.get(name))

    return {
        "bureau": service.bot.site.get("bureau_name", ""),
        "bot_name": service.bot.site.get("bot_name", "智能小城"),
        "logged_in": logged_in(quiet=True),
        "csrf_token": csrf_token,
        "asset_url": asset_url,
        "type_names": TYPE_NAMES,
        "traffic_names": TRAFFIC,
    }


def asset(filename: str) -> BaseResponse:
    content_type = _ASSETS.get(filename)
    if content_type is None:
        raise NotFound()
    response = send_from_directory(
        _STATIC_DIR, filename, mimetype=content_type, max_age=current_app.config["STATIC_MAX_AGE"]
    )
    response.headers["Content-Type"] = content_type
    return response


# --- pages ------------------------------------------------------------------------


def faq_question(bot: Bot, faq_id: str | None) -> str:
    if not faq_id:
        return ""
    faq = bot.bank.by_id.get(faq_id)
    return faq.question if faq else ""


def _faq_title(bot: Bot, faq_id: str) -> str:
    """The FAQ's question, or a note that the bank no longer has it."""
    return faq_question(bot, faq_id) or f"{faq_id}（已不在题库中）"


def _short_day(label: str) -> str:
    return label[5:]  # 2024-03-01 -> 03-01


def dashboard() -> str:
    f = current_filters()
    service = get_service()
    log, bot = service.querylog, service.bot
    days = log.daily_counts(f.since, f.until)
    shares = log.type_shares(f.since, f.until)
    top = log.top_faqs(f.since, f.until, limit=_TOP_FAQS)
    rates = log.helpful_rates(f.since, f.until)

    key = f.reply_type or "total"
    per_day = [(row["day"].isoformat(), row[key]) for row in days]
    what = TYPE_NAMES[f.reply_type] + "的" if f.reply_type else ""
    daily_svg = admin_charts.bar_chart(
        per_day,
        chart_id="chart-daily",
        title=f"每日{what}提问数",
        desc=f"{f.start} 至 {f.end}，共 {sum(v for _, v in per_day)} 次",
        tip=lambda label, value: f"{label}：{value} 次",
        short_label=_short_day,
        width=_WIDE_CHART[0],
        height=_WIDE_CHART[1],
    )
    shares_svg = admin_charts.stacked_share_chart(
        [(row["day"].isoformat(), row) for row in days],
        series=[(t, TYPE_NAMES[t]) for t in REPLY_TYPES],
        chart_id="chart-shares",
        title="每日回复类型占比",
        desc="直接回答、反问澄清、未能回答各占当天提问的比例",
        short_label=_short_day,
        width=_WIDE_CHART[0],
        height=_WIDE_CHART[1],
    )
    top_rows = [{**row, "question": _faq_title(bot, row["faq_id"])} for row in top]
    for row in top_rows:
        row["cells"] = [row["faq_id"], row["question"], row["count"]]
    top_svg = admin_charts.hbar_chart(
        [(row["question"], row["count"]) for row in top_rows],
        chart_id="chart-top",
        title=f"回答次数最多的 {len(top_rows)} 个问答",
        value_text=lambda v: f"{v:g} 次",
        width=_HALF_CHART[0],
        label_width=_HALF_CHART[1],
    )
    rate_rows = [{**row, "question": _faq_title(bot, row["faq_id"])} for row in rates]
    rates_svg = admin_charts.hbar_chart(
        [(row["question"], row["rate"]) for row in rate_rows[:_HELPFUL_SHOWN]],
        chart_id="chart-helpful",
        title="各问答的有帮助率",
        desc="访客评价“有帮助”的比例，评价最多的问答在前",
        max_value=1.0,
        value_text=lambda v: f"{v * 100:.0f}%",
        width=_HALF_CHART[0],
        label_width=_HALF_CHART[1],
    )
    total = sum(s["count"] for s in shares)
    helpful = sum(r["helpful"] for r in rates)
    rated = sum(r["total"] for r in rates)
    return render_template(
        "admin/dashboard.html",
        active="dashboard",
        f=f,
        total=total,
        shares=shares,
        rated=rated,
        helpful_rate=helpful / rated if rated else None,
        per_day=per_day,
        share_table=[
            [row["day"], row["answer"], row["clarify"], row["fallback"], row["total"]]
            for row in days
        ],
        top_rows=top_rows,
        rate_rows=rate_rows,
        spikes=spikes(log),
        faq_title=lambda faq_id: _faq_title(bot, faq_id),
        charts={
            "daily": Markup(daily_svg),
            "shares": Markup(shares_svg),
            "top": Markup(top_svg),
            "helpful": Markup(rates_svg),
        },
    )


def clusters() -> str:
    f = current_filters()
    service = get_service()
    shown = int(current_app.config["ADMIN_CLUSTERS_SHOWN"])
    found = unanswered_clusters(
        service.querylog, service.bot, f.since, f.until, settings=current_app.config,
        nearest_for=shown,
    )  # fmt: skip
    learned = learned_by_faq(
        service.querylog, service.bot, f.since, f.until, settings=current_app.config
    )
    return render_template(
        "admin/clusters.html",
        active="clusters",
        f=f,
        clusters=found[:shown],
        cluster_total=len(found),
        question_total=sum(c.count for c in found),
        learned=learned[:shown],
        learned_total=len(learned),
        when=when,
    )


def queries() -> str:
    f = current_filters()
    service = get_service()
    log, bot = service.querylog, service.bot
    size = max(1, int(current_app.config["ADMIN_PAGE_SIZE"]))
    # A session is read as a conversation, oldest first; otherwise newest first.
    text, session = f.text or None, f.session or None
    total = log.count(
        f.since, f.until, types=f.types, text=text, session=session, internal=f.internal
    )
    pages = max(1, math.ceil(total / size))
    page = min(_page_arg(), pages)
    rows = log.queries(
        f.since, f.until, types=f.types, text=text, session=session, limit=size,
        offset=(page - 1) * size, oldest_first=session is not None, internal=f.internal,
        brief=True,
    )  # fmt: skip
    for row in rows:
        row["faq_question"] = faq_question(bot, row["faq_id"])
    return render_template(
        "admin/queries.html",
        active="queries",
        f=f,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        first=(page - 1) * size + 1,
        when=when,
    )


def _page_arg() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


# --- the bank and its reload ----------------------------------------------------------


def _bank_status() -> dict[str, Any]:
    bot = get_service().bot
    try:
        rules = review_rules(current_app.config["FAQ_DIR"])
    except BankError:
        rules = ReviewRules()  # the reload reports the file's errors
    today = datetime.now(CHINA_TIME).date()
    return {
        "faqs": len(bot.bank.faqs),
        "categories": len(bot.topics()),
        "version": bank_version(bot.bank)[:12],
        "faq_dir": current_app.config["FAQ_DIR"],
        "review_days": rules.max_age_days,
        "due": due_for_review(bot.bank, review_days=rules.max_age_days, today=today),
    }


def bank() -> str:
    """What the service serves now, and the button that reloads the bank."""
    return render_template("admin/bank.html", active="bank", status=_bank_status())


def reload() -> ResponseReturnValue:
    """Validate the bank folder and serve it if it has no errors (``POST /admin/reload``).

    A bank with errors is refused with every error listed (422), damaged files
    of the service (a snapshot failing its checksum) with the file named (500);
    the bank served before goes on being served.
    """
    result = reload_bank(current_app)
    status = 200 if result.ok else 500 if result.damaged else 422
    if result.ok:
        current_app.logger.info("admin: bank reloaded, version %s", result.version[:12])
    else:
        current_app.logger.warning("admin: reload refused, %d errors", len(result.errors))
    if errors.wants_json():
        payload = {
            "ok": result.ok,
            "errors": list(result.errors),
            "version": result.version,
            "faqs": result.faqs,
        }
        return jsonify(payload), status
    return render_template(
        "admin/bank.html", active="bank", status=_bank_status(), result=result
    ), status
