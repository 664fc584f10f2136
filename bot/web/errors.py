"""The one error path of the web service.

A view refuses a request by raising :class:`WebError` (status, code, Chinese
message); HTTP errors (404, 405, 413, 429, ...) and unexpected exceptions come
here too. One set of handlers picks the answer by where the request went:

- under a console prefix (see :func:`add_page`): the console's error page, or
  the JSON body for a JSON request (:func:`wants_json`);
- ``/api/...`` and ``/healthz``: the JSON body ``{"error": {"code", "message"}}``
  the widget shows (the API contract);
- anywhere else: Werkzeug's own page for HTTP errors, the JSON apology for 500.

A query log whose database cannot be reached (a console page, an export, the
lookup behind feedback) is 503 ``log_unavailable`` with :data:`LOG_UNAVAILABLE`,
not a 500: the outage is the operator's to fix, not a bug, and the questions
asked meanwhile wait in the outbox.

Requests gunicorn refuses before the app sees them (a URL over
``limit_request_line``, too many or too large headers, a malformed request
line or chunk) would get gunicorn's bare HTML page; :func:`gunicorn_error_page`
turns that page into the same JSON body with the security headers
(``gunicorn.conf.py`` wires it into the workers).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from bot.errors import QueryLogUnavailable
from bot.web.headers import SECURITY_HEADERS

__all__ = [
    "LOG_UNAVAILABLE",
    "WebError",
    "add_page",
    "error_response",
    "gunicorn_error_page",
    "init_app",
    "wants_json",
]

_PAGES = "xiaocheng_error_pages"
_DEFAULT_MESSAGE = "请求未能完成，请稍后再试。"
# Per HTTP status: the API's error code, what a visitor of the widget reads,
# and what a user of the console reads (None: the default message).
_HTTP_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: (
        "bad_request",
        "请求内容有误，请刷新页面后重试。",
        "请求内容有误，请返回上一页刷新后再试。",
    ),
    404: ("not_found", "您访问的接口不存在。", "您访问的页面不存在。"),
    405: ("method_not_allowed", "不支持这种请求方式。", "不支持这种请求方式。"),
    413: ("payload_too_large", "提交的内容太长了，请精简后再试。", "提交的内容太长了。"),
    414: ("uri_too_long", "请求的网址太长了，请缩短后再试。", "请求的网址太长了。"),
    415: ("unsupported_media_type", "请求格式不正确，请刷新页面后重试。", None),
    429: ("rate_limited", "您的提问太频繁了，请稍等一会儿再试。", "登录尝试过于频繁，请稍后再试。"),
    431: ("headers_too_large", "请求头太大了，请清除本站 Cookie 后重试。", None),
}
_INTERNAL_ERROR = ("internal_error", "抱歉，小城暂时出了点问题，请稍后再试。")
#: What a visitor or analyst reads while the query log's database is unreachable.
LOG_UNAVAILABLE = "咨询记录库暂时无法访问，请稍后再试；您的咨询记录不会丢失。"
# What the database driver raises when it cannot be reached or answer in time.
_OUTAGES = (
    QueryLogUnavailable,
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
)

# Renders a console's error page: (status, message) -> HTML.
Page = Callable[[int, str], str]


class WebError(Exception):
    """A request refused with ``status``, a machine-readable ``code`` and a Chinese message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


def init_app(app: Flask) -> None:
    app.extensions.setdefault(_PAGES, {})
    app.register_error_handler(WebError, _web_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _internal_error)
    for outage in _OUTAGES:
        app.register_error_handler(outage, _outage)


def add_page(app: Flask, prefix: str, render: Page) -> None:
    """Answer errors of requests under ``prefix`` with the page ``render`` makes."""
    app.extensions.setdefault(_PAGES, {})[prefix] = render


def error_response(status: int, code: str, message: str) -> Response:
    """The JSON error body the widget shows to the visitor."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def wants_json() -> bool:
    """Whether the request asked for JSON (a JSON body, or JSON first in Accept)."""
    return request.is_json or request.accept_mimetypes.best == "application/json"


def _page() -> Page | None:
    path = request.path
    for prefix, render in current_app.extensions.get(_PAGES, {}).items():
        if path == prefix or path.startswith(prefix + "/"):
            return render  # type: ignore[no-any-return]
    return None


def _is_api() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _page_response(render: Page, status: int, code: str, message: str) -> Response:
    if wants_json():
        response = error_response(status, code, message)
    else:
        response = Response(render(status, message), status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _web_error(e: WebError) -> Response:
    render = _page()
    if render is not None:
        return _page_response(render, e.status, e.code, e.message)
    return error_response(e.status, e.code, e.message)


def _http_error(e: HTTPException) -> Response | HTTPException:
    if e.code is None or e.code < 400:
        return e
    render = _page()
    if render is not None:
        message = _HTTP_ERRORS.get(e.code, ("", "", None))[2] or _DEFAULT_MESSAGE
        response = _page_response(render, e.code, f"http_{e.code}", message)
    elif _is_api():
        code, message, _ = _HTTP_ERRORS.get(e.code, (f"http_{e.code}", _DEFAULT_MESSAGE, None))
        response = error_response(e.code, code, message)
    else:
        return e
    headers = dict(e.get_headers())
    for name in ("Allow", "Retry-After"):
        if name in headers:
            response.headers[name] = headers[name]
    return response


def _outage(e: Exception) -> Response:
    current_app.logger.warning("%s %s: the query log is unavailable: %s", request.method,
                               request.path, str(e).splitlines()[0] if str(e) else e)  # fmt: skip
    response = _web_error(WebError(503, "log_unavailable", LOG_UNAVAILABLE))
    response.headers["Retry-After"] = "30"
    return response


def _internal_error(e: InternalServerError) -> Response:
    """Apologise; Flask has already logged the exception with its traceback."""
    render = _page()
    if render is not None:
        return _page_response(render, 500, "http_500", _DEFAULT_MESSAGE)
    code, message = _INTERNAL_ERROR
    return error_response(500, code, message)


def gunicorn_error_page(raw: bytes) -> bytes:
    """Rewrite the HTTP response gunicorn writes for a request it refused as our JSON error.

    ``raw`` is gunicorn's whole response (status line, headers, HTML page);
    the status is kept, the page becomes ``{"error": {"code", "message"}}``
    with the security headers. Anything unexpected is returned unchanged.
    """
    head, _, _ = raw.partition(b"\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return raw
    status = int(parts[1])
    reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
    if status >= 500:
        code, message = _INTERNAL_ERROR
    else:
        code, message, _ = _HTTP_ERRORS.get(status, ("bad_request", _DEFAULT_MESSAGE, None))
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()
    headers = {
        "Connection": "close",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
        **SECURITY_HEADERS,
    }
    lines = [f"HTTP/1.1 {status} {reason}".rstrip()] + [f"{k}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body
