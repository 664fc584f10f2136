"""The analyst console under ``/admin``: login, dashboard, clusters of unanswered
questions, the question list and CSV exports.

Access. One password, kept as a werkzeug hash in ``ADMIN_PASSWORD_HASH``
(``python -m bot.admin_password`` makes one); without it the console says so
and refuses every login. Logging in puts a mark in Flask's signed session
cookie (HttpOnly, SameSite=Lax, path ``/admin``, Secure when
``SESSION_COOKIE_SECURE``); the mark lapses after ``ADMIN_SESSION_HOURS`` and
as soon as the password hash changes. A guard on the app, not just on this
blueprint, covers every path under ``/admin`` whoever registered it: an
anonymous GET or HEAD is redirected to the login page, any other anonymous
request gets 401. The login page and the console's own CSS and JavaScript are
the only public URLs. Every other request that is not a GET or HEAD must carry
the session's CSRF token (form field ``csrf_token`` or header
``X-CSRF-Token``), compared in constant time; without it: 400. A failed login
waits ``ADMIN_LOGIN_DELAY_S`` seconds, and login attempts are rate-limited per
client address (``ADMIN_LOGIN_RATELIMIT``).

Pages. Dates in the filters are China-time days, ``from`` and ``to`` both
included (default: the last 30 days); ``type`` is a reply type or empty for
all. Charts are inline SVG from :mod:`bot.web.admin.charts`; the pages carry no
inline script or style, as the Content-Security-Policy demands. Every text
shown or exported was masked by the query log (:mod:`bot.querylog.masking`).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
import secrets
import time as clock
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from markupsafe import Markup
from werkzeug.exceptions import NotFound
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response as BaseResponse

from bot.analysis.clusters import CHINA_TIME, csv_cell, to_csv_rows
from bot.analysis.report import learned_by_faq, unanswered_clusters
from bot.config import ConfigError
from bot.errors import BankError
from bot.quality.lint import ReviewRules, due_for_review, review_rules
from bot.querylog import REPLY_TYPES
from bot.reload import bank_version
from bot.web import errors
from bot.web.admin import charts as admin_charts
from bot.web.errors import WebError
from bot.web.reload import reload_bank
from bot.web.service import get_service

if TYPE_CHECKING:
    from bot.match.engine import Bot

__all__ = ["csrf_token", "init_app", "logged_in"]

PREFIX = "/admin"
_STATIC_DIR = Path(__file__).resolve().parent / "static"
_ASSETS = {
    "admin.css": "text/css; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.asset"})
_READ_METHODS = frozenset({"GET", "HEAD"})
_DEFAULT_DAYS = 30
_EXPORT_BATCH = 2000
# Clusters in a CSV export that get their nearest FAQ (one engine lookup each).
_EXPORT_NEAREST = 500
_TOP_FAQS = 10
_HELPFUL_SHOWN = 15
# Chart sizes, in px at which the text is 12 px: about the size each is shown at.
_WIDE_CHART = (900, 280)  # width, height
_HALF_CHART = (540, 230)  # width, label width

TYPE_NAMES = {"answer": "直接回答", "clarify": "反问澄清", "fallback": "未能回答"}

MSG_NOT_CONFIGURED = (
    "分析后台尚未设置登录密码，暂时无法登录。请运维人员运行 python -m bot.admin_password "
    "生成密码哈希，写入 instance/config.toml 的 ADMIN_PASSWORD_HASH 后重启服务。"
)
MSG_WRONG_PASSWORD = "密码不正确，请重新输入。"
MSG_LOGGED_OUT = "您已安全退出。"
MSG_LOGIN_REQUIRED = "请先登录分析后台。"
MSG_CSRF = "页面已过期或来源无法确认，操作未执行。请返回上一页，刷新后再试。"
# --- registration -----------------------------------------------------------------


class _ConsoleSessions(SecureCookieSessionInterface):
    """The signed session under the console's cookie path only; a null session elsewhere.

    The widget's API never carries the cookie, and skipping the signer there
    saves every ask its set-up; a view outside the console that tried to
    write to the session would fail loudly.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(self.get_cookie_path(app)):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Add the console to ``app``; calling it again for the same app does nothing.

    Raises :class:`bot.config.ConfigError` if ``ADMIN_PASSWORD_HASH`` is set but
    is not a werkzeug password hash.
    """
    if "admin" in app.blueprints:
        return
    _check_hash_setting(app.config.get("ADMIN_PASSWORD_HASH"))
    if app.config.get("SESSION_COOKIE_PATH") is None:
        # Only the console uses the session: the widget's requests need not carry it.
        app.config["SESSION_COOKIE_PATH"] = PREFIX
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.session_interface = _ConsoleSessions()

    bp = Blueprint("admin", __name__, url_prefix=PREFIX, template_folder="templates")
    limiter: Limiter | None = app.extensions.get("xiaocheng_limiter")
    login_view = login
    if limiter is not None:
        cfg = app.config
        login_view = limiter.limit(lambda: cfg["ADMIN_LOGIN_RATELIMIT"], methods=["POST"])(login)
    bp.add_url_rule("/login", "login", login_view, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout, methods=["POST"])
    bp.add_url_rule("/", "dashboard", dashboard)
    bp.add_url_rule("/clusters", "clusters", clusters)
    bp.add_url_rule("/queries", "queries", queries)
    bp.add_url_rule("/export/queries.csv", "export_queries", export_queries)
    bp.add_url_rule("/export/clusters.csv", "export_clusters", export_clusters)
    bp.add_url_rule("/bank", "bank", bank)
    bp.add_url_rule("/reload", "reload", reload, methods=["POST"])
    bp.add_url_rule("/static/<path:filename>", "asset", asset)
    bp.after_request(_private)
    bp.context_processor(_template_globals)
    app.register_blueprint(bp)
    app.extensions["xiaocheng_admin_assets"] = _asset_versions()
    app.before_request(_guard)
    errors.add_page(app, PREFIX, _error_page)


def _check_hash_setting(value: object) -> None:
    if value is None or value == "":
        return
    problem = None
    if not isinstance(value, str) or value.count("$") < 2:
        problem = "is not a password hash"
    else:
        try:
            check_password_hash(value, "")
        except (ValueError, TypeError) as e:
            problem = f"is not a usable password hash ({e})"
    if problem:
        raise ConfigError(
            f"ADMIN_PASSWORD_HASH {problem}; make one with python -m bot.admin_password"
        )


def _asset_versions() -> dict[str, str]:
    """A short content hash per asset, put in its URL so a changed file is fetched anew."""
    return {
        name: hashlib.sha256((_STATIC_DIR / name).read_bytes()).hexdigest()[:10] for name in _ASSETS
    }


# --- access -----------------------------------------------------------------------


def logged_in() -> bool:
    """Whether this request's session holds a current login to the console."""
    pwhash = current_app.config.get("ADMIN_PASSWORD_HASH")
    mark, at = session.get("admin"), session.get("admin_at")
    if not pwhash or not isinstance(mark, str) or not isinstance(at, int):
        return False
    if not hmac.compare_digest(mark, _password_mark(pwhash)):
        return False  # the password changed since this login
    age = clock.time() - at
    return -60 <= age < float(current_app.config["ADMIN_SESSION_HOURS"]) * 3600


def _password_mark(pwhash: str) -> str:
    key = current_app.config["SECRET_KEY"]
    key = key if isinstance(key, bytes) else str(key).encode("utf-8")
    return hmac.new(key, pwhash.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _under_admin(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _guard() -> ResponseReturnValue | None:
    """Let through only logged-in requests under /admin, and only with a CSRF token
    when they are not reads."""
    if not _under_admin(request.path):
        return None
    if request.endpoint not in _PUBLIC_ENDPOINTS and not logged_in():
        if request.method in _READ_METHODS:
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        raise WebError(401, "login_required", MSG_LOGIN_REQUIRED)
    if request.method not in _READ_METHODS and not _csrf_ok():
        current_app.logger.warning(
            "admin: %s %s refused: missing or wrong CSRF token", request.method, request.path
        )
        raise WebError(400, "csrf_failed", MSG_CSRF)
    return None  # a path under /admin that is no route: bot.web.errors answers it


def _safe_next(target: str | None) -> str:
    """Where to go after login: a path of the console, never another site."""
    default = url_for("admin.dashboard")
    if not target or "\\" in target or any(ord(ch) < 0x20 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not _under_admin(parts.path):
        return default
    if parts.path.rstrip("/") in (PREFIX + "/login", PREFIX + "/logout"):
        return default
    return target


# --- responses ------------------------------------------------------------------


def _error_page(status: int, message: str) -> str:
    """The console's error page (bot.web.errors answers JSON requests itself)."""
    return render_template(
        "admin/error.html", status=status, message=message, **_template_globals()
    )


def _private(response: Response) -> Response:
    """Keep the console's pages out of caches and search engines."""
    if request.endpoint != "admin.asset":
        response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _template_globals() -> dict[str, Any]:
    service = get_service()
    versions = current_app.extensions.get("xiaocheng_admin_assets", {})

    def asset_url(name: str) -> str:
        return url_for("admin.asset", filename=name, v=versions.get(name))

    return {
        "bureau": service.bot.site.get("bureau_name", ""),
        "bot_name": service.bot.site.get("bot_name", "智能小城"),
        "logged_in": logged_in(),
        "csrf_token": csrf_token,
        "asset_url": asset_url,
        "type_names": TYPE_NAMES,
    }


# --- login ------------------------------------------------------------------------


def login() -> ResponseReturnValue:
    """Show the login form; check the password it sends."""
    pwhash = current_app.config.get("ADMIN_PASSWORD_HASH")
    target = _safe_next(request.values.get("next"))
    if not pwhash:
        status = 200 if request.method in _READ_METHODS else 503
        return render_template("admin/login.html", not_configured=MSG_NOT_CONFIGURED), status
    if request.method in _READ_METHODS:
        if logged_in():
            return redirect(target)
        notice = MSG_LOGGED_OUT if request.args.get("out") == "1" else None
        return render_template("admin/login.html", next=target, notice=notice)
    password = request.form.get("password", "")
    if password and check_password_hash(pwhash, password):
        session.clear()
        session["admin"] = _password_mark(pwhash)
        session["admin_at"] = int(clock.time())
        session["csrf"] = secrets.token_urlsafe(32)
        current_app.logger.info("admin: login from %s", request.remote_addr)
        return redirect(target)
    current_app.logger.warning("admin: failed login from %s", request.remote_addr)
    clock.sleep(float(current_app.config["ADMIN_LOGIN_DELAY_S"]))
    return render_template("admin/login.html", next=target, error=MSG_WRONG_PASSWORD), 401


def logout() -> BaseResponse:
    session.clear()
    return redirect(url_for("admin.login", out=1))


def asset(filename: str) -> BaseResponse:
    content_type = _ASSETS.get(filename)
    if content_type is None:
        raise NotFound()
    response = send_from_directory(
        _STATIC_DIR, filename, mimetype=content_type, max_age=current_app.config["STATIC_MAX_AGE"]
    )
    response.headers["Content-Type"] = content_type
    return response


# --- filters ----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """A date range of China-time days (both ends included) and an optional reply type."""

    start: date
    end: date
    reply_type: str | None = None
    errors: tuple[str, ...] = ()

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
    return Filters(start, end, reply_type, tuple(errors))


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


def _filters() -> Filters:
    return parse_filters(
        request.args, today=today(), max_days=int(current_app.config["ADMIN_MAX_DAYS"])
    )


# --- pages ------------------------------------------------------------------------


def _faq_question(bot: Bot, faq_id: str | None) -> str:
    if not faq_id:
        return ""
    faq = bot.bank.by_id.get(faq_id)
    return faq.question if faq else ""


def _faq_title(bot: Bot, faq_id: str) -> str:
    """The FAQ's question, or a note that the bank no longer has it."""
    return _faq_question(bot, faq_id) or f"{faq_id}（已不在题库中）"


def _short_day(label: str) -> str:
    return label[5:]  # 2024-03-01 -> 03-01


def dashboard() -> str:
    f = _filters()
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
        charts={
            "daily": Markup(daily_svg),
            "shares": Markup(shares_svg),
            "top": Markup(top_svg),
            "helpful": Markup(rates_svg),
        },
    )


def clusters() -> str:
    f = _filters()
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
        when=_when,
    )


def queries() -> str:
    f = _filters()
    service = get_service()
    log, bot = service.querylog, service.bot
    size = max(1, int(current_app.config["ADMIN_PAGE_SIZE"]))
    total = log.count(f.since, f.until, types=f.types)
    pages = max(1, math.ceil(total / size))
    page = min(_page_arg(), pages)
    rows = log.queries(f.since, f.until, types=f.types, limit=size, offset=(page - 1) * size)
    for row in rows:
        row["faq_question"] = _faq_question(bot, row["faq_id"])
    return render_template(
        "admin/queries.html",
        active="queries",
        f=f,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        first=(page - 1) * size + 1,
        when=_when,
    )


def _page_arg() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


def _when(moment: datetime | None, *, seconds: bool = False) -> str:
    if moment is None:
        return ""
    return moment.astimezone(CHINA_TIME).strftime(
        "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    )


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


# --- CSV exports ------------------------------------------------------------------

QUERY_CSV_HEADER = ["created_at", "question", "reply_type", "faq_id", "faq_question", "score"]


def export_queries() -> Response:
    """The filtered questions, newest first, as CSV."""
    f = _filters()
    service = get_service()
    log, bot = service.querylog, service.bot
    # Rows logged while the export runs would shift the pages; leave them out.
    until = min(f.until, datetime.now(UTC))

    def rows() -> Iterator[list[Any]]:
        yield QUERY_CSV_HEADER
        offset = 0
        while True:
            batch = log.queries(f.since, until, types=f.types, limit=_EXPORT_BATCH, offset=offset)
            for row in batch:
                yield [
                    _when(row["created_at"], seconds=True),
                    row["question"],
                    row["reply_type"],
                    row["faq_id"] or "",
                    _faq_question(bot, row["faq_id"]),
                    "" if row["score"] is None else f"{row['score']:.4f}",
                ]
            if len(batch) < _EXPORT_BATCH:
                return
            offset += len(batch)

    return _csv_response(rows(), f"queries_{f.slug()}.csv")


def export_clusters() -> Response:
    """The clusters of the date range, largest first, as CSV."""
    f = replace(_filters(), reply_type=None)  # clusters have no reply-type filter
    service = get_service()
    found = unanswered_clusters(
        service.querylog, service.bot, f.since, f.until, settings=current_app.config,
        nearest_for=_EXPORT_NEAREST,
    )  # fmt: skip
    return _csv_response(to_csv_rows(found, tz=CHINA_TIME), f"clusters_{f.slug()}.csv")


def _csv_response(rows: Iterable[list[Any]], filename: str) -> Response:
    """Stream ``rows`` as UTF-8 CSV with a byte-order mark (for Excel), every cell
    guarded against formula injection."""

    def generate() -> Iterator[str]:
        yield "\ufeff"
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        for row in rows:
            writer.writerow([csv_cell(value) for value in row])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    response = Response(generate(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
