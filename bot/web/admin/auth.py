"""The console's door: one password, a session kept server-side, a guard on every path
under ``/admin``, CSRF tokens and a lockout after failed logins.

One password, kept as a werkzeug hash in ``ADMIN_PASSWORD_HASH``
(``python -m bot.admin_password`` makes one); without it the console says so
and refuses every login. Logging in records a session in the query log's
database (:mod:`.sessions`) and puts its id in Flask's signed session cookie
(HttpOnly, SameSite=Lax, path ``/admin``, Secure when
``SESSION_COOKIE_SECURE``); the login lapses after ``ADMIN_SESSION_HOURS``, as
soon as the password hash changes, and at logout, when its record is deleted:
a cookie replayed after logout is refused on every node. The guard
(:func:`guard`, installed on the app, not just on the blueprint) covers every
path under ``/admin`` whoever registered it: an anonymous GET or HEAD is
redirected to the login page, any other anonymous request gets 401. The login
page and the console's own CSS and JavaScript are the only public URLs. Every
other request that is not a GET or HEAD must carry the session's CSRF token
(form field ``csrf_token`` or header ``X-CSRF-Token``), compared in constant
time; without it: 400.

Login attempts are rate-limited per client address (``ADMIN_LOGIN_RATELIMIT``),
and failed ones lock the address, or the account, out for a while
(:mod:`.throttle`): a locked-out attempt is refused at once with 429, a
``Retry-After`` header and the wait in the message. No failure sleeps in a
worker. When the session records cannot be read or written, console requests
get 503 with :data:`MSG_SESSIONS_DOWN`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time as clock
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Flask,
    Request,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response as BaseResponse

from bot.config import ConfigError
from bot.web.admin.sessions import SessionStore
from bot.web.admin.throttle import LoginThrottle
from bot.web.errors import WebError, error_response, wants_json

__all__ = [
    "MSG_CSRF",
    "MSG_LOCKED",
    "MSG_LOGGED_OUT",
    "MSG_LOGIN_REQUIRED",
    "MSG_NOT_CONFIGURED",
    "MSG_SESSIONS_DOWN",
    "MSG_WRONG_PASSWORD",
    "PREFIX",
    "ConsoleSessions",
    "check_hash_setting",
    "csrf_token",
    "guard",
    "init_door",
    "logged_in",
    "login",
    "logout",
    "password_mark",
    "wait_text",
]

PREFIX = "/admin"
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.asset"})
READ_METHODS = frozenset({"GET", "HEAD"})
_SESSIONS = "xiaocheng_console_sessions"
_THROTTLE = "xiaocheng_login_throttle"

MSG_NOT_CONFIGURED = (
    "分析后台尚未设置登录密码，暂时无法登录。请运维人员运行 python -m bot.admin_password "
    "生成密码哈希，写入 instance/config.toml 的 ADMIN_PASSWORD_HASH 后重启服务。"
)
MSG_WRONG_PASSWORD = "密码不正确，请重新输入。"
MSG_LOGGED_OUT = "您已安全退出。"
MSG_LOGIN_REQUIRED = "请先登录分析后台。"
MSG_CSRF = "页面已过期或来源无法确认，操作未执行。请返回上一页，刷新后再试。"
#: ``{wait}`` is :func:`wait_text` of the seconds left.
MSG_LOCKED = "密码错误次数过多，登录已暂停，请{wait}后再试。"
MSG_SESSIONS_DOWN = "分析后台暂时无法核对登录状态，请稍后再试。"

T = TypeVar("T")


class ConsoleSessions(SecureCookieSessionInterface):
    """The signed session under the console's cookie path only; a null session elsewhere.

    The widget's API never carries the cookie, and skipping the signer there
    saves every ask its set-up; a view outside the console that tried to
    write to the session would fail loudly.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(self.get_cookie_path(app)):
            return self.make_null_session(app)
        return super().open_session(app, request)


def check_hash_setting(value: object) -> None:
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


def init_door(app: Flask) -> None:
    """Open the session store and the login throttle of ``app``; create the sessions
    table if missing and end the logins of any other password (if the database is
    unreachable, the table is created when it is first used)."""
    store = SessionStore(app.config["DATABASE_URL"])
    try:
        store.create_table()
        pwhash = app.config.get("ADMIN_PASSWORD_HASH")
        if pwhash:
            lapsed = clock.time() - float(app.config["ADMIN_SESSION_HOURS"]) * 3600
            store.purge(password_mark(app.config["SECRET_KEY"], pwhash), started_before=lapsed)
    except sa.exc.OperationalError as e:
        # The database is down: start all the same (visitors are served, their
        # questions wait in the outbox); the table is made at the first login.
        app.logger.error("admin: the console's session records are unreachable: %s", e)
        store.create_later()
    store.close()
    app.extensions[_SESSIONS] = store
    app.extensions[_THROTTLE] = LoginThrottle.from_config(app.config)


def password_mark(secret_key: str | bytes, pwhash: str) -> str:
    """What a session records of the password it was opened with (an HMAC of its hash)."""
    key = secret_key if isinstance(secret_key, bytes) else str(secret_key).encode("utf-8")
    return hmac.new(key, pwhash.encode("utf-8"), hashlib.sha256).hexdigest()


def _mark(pwhash: str) -> str:
    return password_mark(current_app.config["SECRET_KEY"], pwhash)


def _store() -> SessionStore:
    store: SessionStore = current_app.extensions[_SESSIONS]
    return store


def _recorded(op: Callable[[SessionStore], T]) -> T:
    """``op`` on the session store; 503 with a Chinese message when the database fails."""
    try:
        return op(_store())
    except sa.exc.SQLAlchemyError as e:
        current_app.logger.error("admin: the console's session records are unreachable: %s", e)
        raise WebError(503, "sessions_unavailable", MSG_SESSIONS_DOWN) from None


def logged_in(*, quiet: bool = False) -> bool:
    """Whether this request's session holds a current login to the console.

    Raises :class:`WebError` (503) when the session records cannot be read,
    unless ``quiet`` (then: not logged in).
    """
    pwhash = current_app.config.get("ADMIN_PASSWORD_HASH")
    sid = session.get("sid")
    if not pwhash or not isinstance(sid, str):
        return False
    checked = g.get("_console_login")
    if checked is not None and checked[0] == sid:
        return bool(checked[1])
    try:
        current = _current(sid, pwhash)
    except WebError:
        if quiet:
            return False
        raise
    g._console_login = (sid, current)
    return current


def _current(sid: str, pwhash: str) -> bool:
    record = _recorded(lambda store: store.find(sid))
    if record is None:
        return False  # logged out, lapsed, or never recorded here
    mark, started = record
    age = clock.time() - started
    hours = float(current_app.config["ADMIN_SESSION_HOURS"])
    if hmac.compare_digest(mark, _mark(pwhash)) and -60 <= age < hours * 3600:
        return True
    _recorded(lambda store: store.revoke(sid))  # the password changed, or the login lapsed
    return False


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


def guard() -> ResponseReturnValue | None:
    """Let through only logged-in requests under /admin, and only with a CSRF token
    when they are not reads."""
    if not _under_admin(request.path):
        return None
    if request.endpoint not in PUBLIC_ENDPOINTS and not logged_in():
        if request.method in READ_METHODS:
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        raise WebError(401, "login_required", MSG_LOGIN_REQUIRED)
    if request.method not in READ_METHODS and not _csrf_ok():
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


def wait_text(seconds: float) -> str:
    """A wait in Chinese: whole seconds under a minute, else whole minutes (rounded up)."""
    whole = max(1, math.ceil(seconds))
    return f"{whole}秒" if whole < 60 else f"{math.ceil(whole / 60)}分钟"


def _locked_out(target: str, seconds: float) -> BaseResponse:
    """429 at once, with the wait in ``Retry-After`` and in the message."""
    message = MSG_LOCKED.format(wait=wait_text(seconds))
    if wants_json():
        response = error_response(429, "login_locked", message)
    else:
        page = render_template("admin/login.html", next=target, error=message)
        response = make_response(page, 429)
    response.headers["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response


def login() -> ResponseReturnValue:
    """Show the login form; check the password it sends, unless locked out."""
    pwhash = current_app.config.get("ADMIN_PASSWORD_HASH")
    target = _safe_next(request.values.get("next"))
    if not pwhash:
        status = 200 if request.method in READ_METHODS else 503
        return render_template("admin/login.html", not_configured=MSG_NOT_CONFIGURED), status
    if request.method in READ_METHODS:
        if logged_in():
            return redirect(target)
        notice = MSG_LOGGED_OUT if request.args.get("out") == "1" else None
        return render_template("admin/login.html", next=target, notice=notice)
    throttle: LoginThrottle = current_app.extensions[_THROTTLE]
    address = request.remote_addr
    wait = throttle.locked_for(address)
    if wait:
        current_app.logger.warning("admin: login from %s refused: locked out", address)
        return _locked_out(target, wait)
    password = request.form.get("password", "")
    if password and check_password_hash(pwhash, password):
        throttle.succeeded(address)
        mark, hours = _mark(pwhash), float(current_app.config["ADMIN_SESSION_HOURS"])
        _recorded(lambda store: store.purge(mark, started_before=clock.time() - hours * 3600))
        sid = _recorded(lambda store: store.open(mark))
        session.clear()
        session["sid"] = sid
        session["csrf"] = secrets.token_urlsafe(32)
        current_app.logger.info("admin: login from %s", address)
        return redirect(target)
    current_app.logger.warning("admin: failed login from %s", address)
    wait = throttle.failed(address)
    if wait:
        return _locked_out(target, wait)
    return render_template("admin/login.html", next=target, error=MSG_WRONG_PASSWORD), 401


def logout() -> BaseResponse:
    """End the login: its record first (a replayed cookie then opens nothing), then the cookie."""
    sid = session.get("sid")
    if isinstance(sid, str):
        _recorded(lambda store: store.revoke(sid))
    session.clear()
    return redirect(url_for("admin.login", out=1))
