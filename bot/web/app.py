"""The web service: app factory, security headers, CORS, errors and the widget's files.

Only this module and its ``bot/web_*.py`` siblings import Flask. The JSON API
itself lives in :mod:`bot.web_api`, its OpenAPI description in
:mod:`bot.web_openapi`.

The engine is loaded once, when the app is created, and kept in a
:class:`Service` on ``app.extensions["xiaocheng"]``; requests read
``service.bot`` and a reload swaps in a new engine with :meth:`Service.swap_bot`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request, send_from_directory
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from bot import Bot
from bot.config import instance_path as resolve_instance_path
from bot.config import load_settings
from bot.querylog import QueryLog
from bot.web.admin.views import init_app as init_admin
from bot.web.api import error_response
from bot.web.api import init_app as init_api
from bot.web.reload import init_app as init_reload

__all__ = ["Service", "create_app"]

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}
_CORS_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}
# Explicit types: the system's mime.types may call JavaScript application/x-javascript.
_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".json": "application/json",
}

# Error codes of plain HTTP errors, and what the visitor reads for each.
_HTTP_ERRORS = {
    400: ("bad_request", "请求内容有误，请刷新页面后重试。"),
    404: ("not_found", "您访问的接口不存在。"),
    405: ("method_not_allowed", "不支持这种请求方式。"),
    413: ("payload_too_large", "提交的内容太长了，请精简后再试。"),
    415: ("unsupported_media_type", "请求格式不正确，请刷新页面后重试。"),
    429: ("rate_limited", "您的提问太频繁了，请稍等一会儿再试。"),
}
_INTERNAL_ERROR = ("internal_error", "抱歉，小城暂时出了点问题，请稍后再试。")


class Service:
    """The engine and the query log of one app, shared by all its requests.

    ``bot`` is read once per request; :meth:`swap_bot` replaces it with a single
    attribute assignment, so a request sees either the old or the new engine and
    none waits for the swap.

    The query log is opened lazily in each process: gunicorn loads the app once
    in its master and forks the workers from it, and a query log's writer thread
    and database connections must belong to the process that uses them.
    """

    def __init__(self, bot: Bot, open_querylog: Callable[[], QueryLog]) -> None:
        self._bot = bot
        self._open_querylog = open_querylog
        self._querylog: QueryLog | None = None
        self._querylog_pid: int | None = None
        self._lock = threading.Lock()

    @property
    def bot(self) -> Bot:
        return self._bot

    def swap_bot(self, bot: Bot) -> Bot:
        """Serve ``bot`` from now on; return the engine it replaces."""
        old, self._bot = self._bot, bot
        return old

    @property
    def querylog(self) -> QueryLog:
        """The query log of this process, opened on first use."""
        log, pid = self._querylog, self._querylog_pid
        if log is not None and pid == os.getpid():
            return log
        with self._lock:
            if self._querylog is None or self._querylog_pid != os.getpid():
                # One inherited through fork is the parent's: leave it alone.
                self._querylog = self._open_querylog()
                self._querylog_pid = os.getpid()
            return self._querylog

    def close(self) -> None:
        """Write this process's queued query-log rows and close the log."""
        with self._lock:
            log, self._querylog = self._querylog, None
            if log is not None and self._querylog_pid == os.getpid():
                log.close()


def create_app(
    test_config: Mapping[str, Any] | None = None,
    *,
    instance_path: str | os.PathLike[str] | None = None,
) -> Flask:
    """Create the 智能小城 web app.

    Settings come from :func:`bot.config.load_settings` for the instance folder
    (``instance_path``, else ``$XIAOCHENG_INSTANCE_PATH``, else ``instance/`` in
    the repository), with ``test_config`` as the last layer.
    """
    instance = resolve_instance_path(instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(instance), static_folder=None)
    app.config.update(load_settings(instance, test_config))
    # Browsers send Origin without a trailing slash; people often write one.
    app.config["CORS_ORIGINS"] = [origin.rstrip("/") for origin in app.config["CORS_ORIGINS"]]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    if app.config["TRUST_PROXY"] > 0:
        hops = app.config["TRUST_PROXY"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )

    bot = Bot.load(
        app.config["FAQ_DIR"],
        index_path=app.config["INDEX_PATH"],
        cache_dir=app.config["CACHE_DIR"],
    )
    app.logger.info("loaded %d FAQs from %s", len(bot.bank.faqs), app.config["FAQ_DIR"])
    url, grace = app.config["DATABASE_URL"], app.config["QUERYLOG_FEEDBACK_GRACE_S"]
    # Create or migrate the schema now, once, before any worker forks. Each process
    # then opens its own log without touching the database, so a worker whose
    # database is briefly down still answers while its log's writer retries.
    QueryLog(url).close()
    app.extensions["xiaocheng"] = Service(
        bot, lambda: QueryLog(url, feedback_grace_s=grace, migrate=False)
    )

    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        headers_enabled=True,
        retry_after="delta-seconds",
    )
    app.extensions["xiaocheng_limiter"] = limiter

    init_api(app, limiter)
    init_reload(app)  # after the Service is stored: it notes the bank version served now
    init_admin(app)
    _init_static(app)
    _init_errors(app)
    app.after_request(_add_security_headers)
    app.after_request(_add_cors_headers)
    return app


def _add_security_headers(response: Response) -> Response:
    """Add the security headers a view has not set itself (one pass: this runs on every
    response, and Werkzeug's per-header lookups raise and catch KeyError when absent)."""
    present = {name.lower() for name, _ in response.headers.items()}
    response.headers.extend(
        [(name, value) for name, value in _SECURITY_HEADERS.items() if name.lower() not in present]
    )
    return response


def _add_cors_headers(response: Response) -> Response:
    """Let the configured portal origins, and only them, call us from a browser."""
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if not origin or origin not in current_app.config["CORS_ORIGINS"]:
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response.headers.update(_CORS_PREFLIGHT_HEADERS)
    return response


def _init_static(app: Flask) -> None:
    """Serve the demo portal page at ``/`` and the widget's files."""
    app.add_url_rule("/", "demo", _demo)
    app.add_url_rule("/widget.js", "widget_js", _widget_js)
    app.add_url_rule("/widget/<path:filename>", "widget_file", _widget_file)


def _send_widget_file(filename: str, *, max_age: int) -> Response:
    content_type = _CONTENT_TYPES.get(Path(filename).suffix.lower())
    response = send_from_directory(
        current_app.config["WIDGET_DIR"], filename, mimetype=content_type, max_age=max_age
    )
    if content_type:
        response.headers["Content-Type"] = content_type
    return response


def _demo() -> Response:
    response = _send_widget_file("demo.html", max_age=0)
    response.cache_control.no_cache = True
    return response


def _widget_js() -> Response:
    return _widget_file("widget.js")


def _widget_file(filename: str) -> Response:
    response = _send_widget_file(filename, max_age=current_app.config["STATIC_MAX_AGE"])
    # Portals on other origins load these files into their own pages.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _init_errors(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _internal_error)


def _http_error(e: HTTPException) -> Response | HTTPException:
    if not _wants_json() or e.code is None:
        return e
    code, message = _HTTP_ERRORS.get(e.code, (f"http_{e.code}", "请求未能完成，请稍后再试。"))
    response = error_response(e.code, code, message)
    headers = dict(e.get_headers())
    for name in ("Allow", "Retry-After"):
        if name in headers:
            response.headers[name] = headers[name]
    return response


def _internal_error(e: InternalServerError) -> Response:
    """Apologise in JSON; Flask has already logged the exception with its traceback."""
    code, message = _INTERNAL_ERROR
    return error_response(500, code, message)
