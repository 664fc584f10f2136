"""The JSON API under ``/api`` and the health check.

Every ask is answered by the engine the :class:`bot.web.Service` holds at that
moment and logged once in the query log. Input is checked here, at the edge:
anything a visitor's browser could send wrongly gets a 4xx JSON error with a
Chinese message, never a 500.

Request bodies are parsed by :class:`StrictJSONProvider` (the app's JSON
provider): strict UTF-8, at most :data:`JSON_MAX_DEPTH` nested arrays or
objects (checked before parsing, so a 2 KB body of brackets cannot exhaust the
stack), no ``NaN``/``Infinity`` literals or numbers too large for a double,
no duplicate keys. Whatever breaks one of these is the 400 ``bad_json`` error.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_limiter import Limiter
from werkzeug.exceptions import RequestEntityTooLarge

from bot.errors import QueryLogUnavailable, UnknownQuery
from bot.match.engine import clean_text
from bot.querylog import FEEDBACK_REASONS
from bot.querylog.masking import mask
from bot.reload import bank_version
from bot.web.errors import LOG_UNAVAILABLE, WebError
from bot.web.openapi import openapi_document
from bot.web.service import Service, get_service
from bot.web.traffic import is_internal

__all__ = ["JSON_MAX_DEPTH", "StrictJSONProvider", "init_app", "strict_loads"]

#: The deepest nesting of arrays and objects a request body may have; the API's
#: bodies are flat objects (depth 1).
JSON_MAX_DEPTH = 16

_SESSION_MAX_CHARS = 64
_FAQ_ID_MAX_CHARS = 128
# Query ids are positive integers below 2**63, sent as decimal strings.
_QUERY_ID = re.compile(r"[1-9][0-9]{0,18}")
_BAD_REQUEST = "请求内容有误，请刷新页面后重试。"
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` nests arrays and objects deeper than ``limit`` (strings skipped)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the usual body: no need to look closer
    depth = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        if m.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def strict_loads(data: str | bytes | bytearray, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """Parse a request body as strict JSON; raise ValueError for anything hostile or unclear."""
    text = (
        data if isinstance(data, str) else bytes(data).decode("utf-8")
    )  # UnicodeError: ValueError
    if _json_depth_exceeds(text, max_depth):
        raise ValueError(f"nested deeper than {max_depth}")
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:  # not reachable within max_depth; never a 500 all the same
        raise ValueError("nested too deeply") from None


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with :func:`strict_loads` for what clients send."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_loads(s)


def init_app(app: Flask, limiter: Limiter) -> None:
    """Add the API routes to ``app``: the two that write limited by ``RATELIMIT_ASK`` and
    ``RATELIMIT_FEEDBACK``, the reads each by ``RATELIMIT_READ``, ``/healthz`` by none
    (load balancers poll it)."""
    cfg = app.config

    def limited(
        view: Callable[..., Response], setting: str, methods: tuple[str, ...] = ("POST",)
    ) -> Callable[..., Response]:
        # A disabled limiter still evaluates its decorators on every request.
        if not limiter.enabled:
            return view
        return limiter.limit(lambda: cfg[setting], methods=list(methods))(view)

    def read(view: Callable[..., Response]) -> Callable[..., Response]:
        return limited(view, "RATELIMIT_READ", ("GET", "HEAD"))

    app.before_request(_refuse_long_streamed_body)
    app.add_url_rule("/api/ask", "ask", limited(ask, "RATELIMIT_ASK"), methods=["POST"])
    app.add_url_rule("/api/suggest", "suggest", read(suggest))
    app.add_url_rule("/api/faq/<faq_id>", "faq", read(faq))
    app.add_url_rule("/api/hot", "hot", read(hot))
    app.add_url_rule(
        "/api/feedback", "feedback", limited(feedback, "RATELIMIT_FEEDBACK"), methods=["POST"]
    )
    app.add_url_rule("/api/openapi.json", "openapi", read(openapi))
    app.add_url_rule("/healthz", "healthz", healthz)
    app.extensions["xiaocheng_openapi"] = openapi_document(
        max_question_chars=cfg["MAX_QUESTION_CHARS"],
        max_comment_chars=cfg["MAX_COMMENT_CHARS"],
        max_content_length=cfg["MAX_CONTENT_LENGTH"],
        suggest_limit=cfg["SUGGEST_LIMIT"],
        json_max_depth=JSON_MAX_DEPTH,
    )


def _refuse_long_streamed_body() -> None:
    """Answer 413 to a chunked body longer than MAX_CONTENT_LENGTH.

    Werkzeug stops reading such a body at the limit and hands the view the
    first MAX_CONTENT_LENGTH bytes, which would be judged (wrongly) as bad
    JSON; one more byte from the server's stream tells whether it went on.
    """
    limit = request.max_content_length
    if (
        limit is None
        or request.content_length is not None
        or "wsgi.input_terminated" not in request.environ
        or request.method not in ("POST", "PUT", "PATCH")
    ):
        return
    if len(request.get_data(cache=True)) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise WebError(415, "unsupported_media_type", "请求格式不正确，请刷新页面后重试。")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise WebError(400, "bad_json", "请求内容无法识别，请刷新页面后重试。")
    return body


def _optional_text(body: dict[str, Any], field: str, max_chars: int) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise WebError(400, f"invalid_{field}", _BAD_REQUEST)
    value = clean_text(value)
    if len(value) > max_chars:
        raise WebError(400, f"{field}_too_long", f"内容太长了，请精简到{max_chars}字以内。")
    return value or None


def _question(body: dict[str, Any]) -> str:
    q = body.get("q")
    if q is not None and not isinstance(q, str):
        raise WebError(400, "invalid_q", _BAD_REQUEST)
    q = clean_text(q or "")
    if not q:
        raise WebError(400, "empty_question", "请输入您要咨询的问题。")
    limit = current_app.config["MAX_QUESTION_CHARS"]
    if len(q) > limit:
        raise WebError(400, "question_too_long", f"问题太长了，请精简到{limit}字以内再问。")
    return q


def _context(body: dict[str, Any]) -> str | None:
    """The FAQ answered just before (``"context": {"faq_id": ...}``); an unknown id is
    left to the engine, which ignores it."""
    context = body.get("context")
    if context is None:
        return None
    if not isinstance(context, dict):
        raise WebError(400, "invalid_context", _BAD_REQUEST)
    faq_id = context.get("faq_id")
    if faq_id is None:
        return None
    if not isinstance(faq_id, str):
        raise WebError(400, "invalid_context_faq_id", _BAD_REQUEST)
    faq_id = clean_text(faq_id)
    if len(faq_id) > _FAQ_ID_MAX_CHARS:
        raise WebError(400, "context_faq_id_too_long", _BAD_REQUEST)
    return faq_id or None


def _query_id(body: dict[str, Any], field: str, *, required: bool) -> int | None:
    """A query id sent back as the decimal string a reply gave it."""
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _QUERY_ID.fullmatch(value) or int(value) >= 2**63:
        raise WebError(400, f"invalid_{field}", _BAD_REQUEST)
    return int(value)


def ask() -> Response:
    """Answer one question and log it; ``faq_id`` answers a clicked question chip,
    ``context`` names the previous answer and ``from_query_id`` the reply a clicked
    chip came from (stored with the question; an id the log lacks is kept as sent)."""
    body = _json_body()
    q = _question(body)
    session = _optional_text(body, "session", _SESSION_MAX_CHARS)
    faq_id = _optional_text(body, "faq_id", _FAQ_ID_MAX_CHARS)
    context = _context(body)
    from_query_id = _query_id(body, "from_query_id", required=False)
    service = get_service()
    bot = service.bot
    started = time.perf_counter()
    # Before anything else: the engine, the normalised text and the log see no
    # personal data (synonyms would turn the 12345 in 13812345678 into a word).
    masked = mask(q)
    reply = bot.answer(faq_id, masked) if faq_id is not None else None
    if reply is None:
        reply = bot.ask(masked, context=context)
    latency_ms = (time.perf_counter() - started) * 1000
    result = reply.to_dict()
    result["q"] = q  # the reply echoes what the visitor typed; nothing stored holds it
    query_id = service.querylog.log_query(
        reply.q,
        reply_type=reply.type,
        normalized=reply.normalized,
        faq_id=reply.faq_id,
        score=reply.score,
        candidates=result["candidates"],
        session=session,
        latency_ms=latency_ms,
        from_query_id=from_query_id,
        internal=is_internal(),
    )
    # A string: the ids use 63 bits and JavaScript numbers hold 53 exactly.
    result["query_id"] = str(query_id)
    return jsonify(result)


def feedback() -> Response:
    """Record whether the reply to ``query_id`` helped the visitor."""
    body = _json_body()
    query_id = _query_id(body, "query_id", required=True)
    assert query_id is not None
    helpful = body.get("helpful")
    if not isinstance(helpful, bool):
        raise WebError(400, "invalid_helpful", _BAD_REQUEST)
    comment = _optional_text(body, "comment", current_app.config["MAX_COMMENT_CHARS"])
    reason = body.get("reason")
    if reason is not None and reason not in FEEDBACK_REASONS:
        raise WebError(400, "invalid_reason", _BAD_REQUEST)
    try:
        get_service().querylog.log_feedback(query_id, helpful, comment, reason=reason)
    except UnknownQuery:
        raise WebError(404, "query_not_found", "没有找到这次咨询的记录，评价未能提交。") from None
    except QueryLogUnavailable:
        raise WebError(503, "log_unavailable", LOG_UNAVAILABLE) from None
    return jsonify({"ok": True})


def _cacheable(payload: dict[str, Any]) -> Response:
    response = jsonify(payload)
    response.cache_control.public = True
    response.cache_control.max_age = current_app.config["API_MAX_AGE"]
    return response


def suggest() -> Response:
    """Type-ahead: FAQ questions for what the visitor has typed so far."""
    prefix = clean_text(request.args.get("q", ""))[: current_app.config["MAX_QUESTION_CHARS"]]
    limit = current_app.config["SUGGEST_LIMIT"]
    items = get_service().bot.suggest(prefix, limit=limit) if prefix else []
    return _cacheable({"suggestions": items})


def faq(faq_id: str) -> Response:
    """One FAQ with its related questions."""
    item = get_service().bot.faq_json(faq_id)
    if item is None:
        raise WebError(404, "faq_not_found", "没有找到这条问答，它可能已经更新，请重新提问。")
    return _cacheable(item)


def hot() -> Response:
    """The greeting, the popular questions, the human channels and the input limits."""
    payload = get_service().bot.hot(limit=current_app.config["HOT_LIMIT"])
    payload["limits"] = {"max_question_chars": current_app.config["MAX_QUESTION_CHARS"]}
    return _cacheable(payload)


def _database_reachable(service: Service) -> bool:
    try:
        service.querylog.queries(limit=1)
    except Exception as e:  # whatever the driver raises, the answer is "unreachable"
        current_app.logger.warning("health check: the query log is unreachable: %s", e)
        return False
    return True


def openapi() -> Response:
    return jsonify(current_app.extensions["xiaocheng_openapi"])


def healthz() -> tuple[Response, int]:
    """Report whether this process can answer and log questions.

    503 ``degraded`` when the query log cannot be read, or its rows cannot be
    stored (``reason`` says why); ``backlog`` is the rows waiting in the outboxes;
    ``bank_version`` is the bank this process serves (the same on every node and
    worker once a reload has reached them).
    """
    service = get_service()
    bot = service.bot
    database_ok = _database_reachable(service)
    health = service.querylog.health()
    reason = health["problem"] or (None if database_ok else "the query log cannot be read")
    payload: dict[str, Any] = {
        "status": "ok" if reason is None else "degraded",
        "faqs": len(bot.bank.faqs),
        "bank_version": bank_version(bot.bank),
        "index": {key: bot.index.meta.get(key) for key in ("format", "rows", "digest")},
        "database": "ok" if database_ok else "unreachable",
        "backlog": health["backlog"],
    }
    if reason is not None:
        payload["reason"] = reason
        current_app.logger.warning(
            "health check: degraded, %d rows wait: %s", health["backlog"], reason
        )
    response = jsonify(payload)
    response.cache_control.no_store = True
    return response, 200 if reason is None else 503
