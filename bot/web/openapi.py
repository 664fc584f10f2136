"""The OpenAPI 3.1 description of the JSON API, served at ``GET /api/openapi.json``.

Plain data, no web framework: the web layer fills in the limits it enforces.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(
    schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _header(schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


def openapi_document(
    *,
    max_question_chars: int,
    max_comment_chars: int,
    max_content_length: int,
    suggest_limit: int,
    json_max_depth: int,
) -> dict[str, Any]:
    """Return the OpenAPI document for the limits this service enforces."""
    faq_id = {"type": "string", "pattern": "^[a-z0-9-]+$", "examples": ["illegal-building-report"]}
    query_id = {"type": "string", "pattern": "^[1-9][0-9]{0,18}$", "examples": ["42"]}
    id_question = {
        "type": "object",
        "required": ["id", "question"],
        "properties": {"id": {"type": "string"}, "question": {"type": "string"}},
    }
    link = {
        "type": "object",
        "required": ["title", "url"],
        "properties": {"title": {"type": "string"}, "url": {"type": "string"}},
    }
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "examples": ["empty_question"]},
                        "message": {
                            "type": "string",
                            "description": "Chinese text a visitor can read.",
                            "examples": ["请输入您要咨询的问题。"],
                        },
                    },
                }
            },
        },
        "IdQuestion": id_question,
        "Link": link,
        "Faq": {
            "type": "object",
            "required": ["id", "question", "category", "answer"],
            "properties": {
                "id": faq_id,
                "question": {"type": "string"},
                "category": {"type": "string"},
                "answer": {"type": "string"},
                "basis": {"type": "array", "items": {"type": "string"}},
                "links": {"type": "array", "items": _ref("Link")},
            },
        },
        "FaqDetail": {
            "allOf": [
                _ref("Faq"),
                {
                    "type": "object",
                    "required": ["related"],
                    "properties": {"related": {"type": "array", "items": _ref("IdQuestion")}},
                },
            ]
        },
        "AskRequest": {
            "type": "object",
            "required": ["q"],
            "properties": {
                "q": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": max_question_chars,
                    "description": "The visitor's question; control characters are removed "
                    "before the length is checked.",
                },
                "session": {
                    "type": "string",
                    "maxLength": 64,
                    "description": "Opaque id of the widget's conversation.",
                },
                "faq_id": {
                    **faq_id,
                    "maxLength": 128,
                    "description": "Answer this FAQ directly (a clicked question chip). An id "
                    "that no longer exists is ignored and the question is matched as usual.",
                },
                "context": {
                    "type": "object",
                    "properties": {
                        "faq_id": {
                            "type": "string",
                            "maxLength": 128,
                            "description": "Id of the FAQ answered just before.",
                        }
                    },
                    "description": "The previous answer, for a follow-up turn (那罚多少钱). "
                    "The engine uses it only when the turn depends on it; a full question "
                    "on another topic is answered as if alone. An unknown id is ignored. "
                    "Not an object, or faq_id not a string or too long: 400.",
                    "examples": [{"faq_id": "vendor-report"}],
                },
                "from_query_id": {
                    **query_id,
                    "description": "query_id of the reply whose clarify choice, related "
                    "question or popular question the visitor clicked; stored with this "
                    "question in the query log, so the visitor's choice is linked to what "
                    "was asked. An id the log does not hold is stored as sent and links "
                    "nothing; not a decimal string below 2^63: 400.",
                },
            },
        },
        "Reply": {
            "type": "object",
            "required": [
                "q",
                "type",
                "score",
                "faq",
                "suggestions",
                "candidates",
                "message",
                "channels",
                "query_id",
            ],
            "properties": {
                "q": {"type": "string"},
                "type": {"type": "string", "enum": ["answer", "clarify", "fallback"]},
                "score": {"type": "number", "minimum": 0, "maximum": 1},
                "faq": {"oneOf": [_ref("Faq"), {"type": "null"}]},
                "suggestions": {
                    "type": "array",
                    "items": _ref("IdQuestion"),
                    "description": "Related questions after an answer, the choices of a "
                    "clarify, the hints of a fallback.",
                },
                "candidates": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "question", "score"],
                        "properties": {
                            "id": {"type": "string"},
                            "question": {"type": "string"},
                            "score": {"type": "number"},
                        },
                    },
                },
                "message": {"type": "string"},
                "channels": {"type": "array", "items": _ref("Link")},
                "query_id": {
                    **query_id,
                    "description": "Identifies this question in the query log, for feedback: "
                    "a decimal string below 2^63 (JavaScript numbers hold 53 bits exactly).",
                },
            },
        },
        "FeedbackRequest": {
            "type": "object",
            "required": ["query_id", "helpful"],
            "properties": {
                "query_id": {
                    **query_id,
                    "description": "The query_id of the reply; not a decimal string below "
                    "2^63: 400.",
                },
                "helpful": {"type": "boolean"},
                "comment": {"type": "string", "maxLength": max_comment_chars},
                "reason": {
                    "type": "string",
                    "enum": ["none_of_these"],
                    "description": "Why the reply did not help, where the widget knows: "
                    "none_of_these is the visitor's 都不是 under a clarify. Any other "
                    "value: 400.",
                },
            },
        },
        "Hot": {
            "type": "object",
            "required": ["greeting", "questions", "channels", "limits"],
            "properties": {
                "greeting": {"type": "string"},
                "questions": {"type": "array", "items": _ref("IdQuestion")},
                "channels": {"type": "array", "items": _ref("Link")},
                "limits": {
                    "type": "object",
                    "required": ["max_question_chars"],
                    "properties": {
                        "max_question_chars": {"type": "integer", "const": max_question_chars}
                    },
                    "description": "Input limits the widget shows before sending.",
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "faqs", "bank_version", "index", "database", "backlog"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "faqs": {"type": "integer", "minimum": 0},
                "bank_version": {"type": "string", "description": "Compare it across nodes."},
                "index": {"type": "object"},
                "database": {"type": "string", "enum": ["ok", "unreachable"]},
                "backlog": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Rows waiting in the outboxes to reach the query log.",
                },
                "reason": {"type": "string", "description": "Why the status is degraded."},
            },
        },
    }
    # Sent by the rate limiter on the operations it guards, while it is on.
    rate_limit = {
        name: _header({"type": "integer", "minimum": 0}, description)
        for name, description in (
            ("X-RateLimit-Limit", "Requests allowed in the current window."),
            ("X-RateLimit-Remaining", "Requests left in the current window."),
            ("X-RateLimit-Reset", "When the window ends, in Unix seconds."),
            ("Retry-After", "Seconds until the window ends."),
        )
    }
    cacheable = {
        "Cache-Control": _header(
            {"type": "string", "pattern": "^public, max-age=[0-9]+$"},
            "Shared caches may keep the answer for the API_MAX_AGE setting (seconds).",
            required=True,
        )
    }
    no_store = {"Cache-Control": _header({"const": "no-store"}, "Never cached.", required=True)}
    bad_request = _json(
        _ref("Error"),
        "Invalid input (empty or too long question, wrong types, body that is not a JSON "
        "object). A body that is not strict JSON is `bad_json`: invalid UTF-8, arrays or "
        f"objects nested deeper than {json_max_depth}, `NaN`/`Infinity`, numbers beyond a "
        "double, or a key given twice.",
        rate_limit,
    )
    too_large = _json(
        _ref("Error"),
        f"The body is larger than {max_content_length} bytes (chunked bodies too).",
        rate_limit,
    )
    wrong_type = _json(_ref("Error"), "The body is not sent as application/json.", rate_limit)
    limited = _json(
        _ref("Error"),
        "Too many requests from this client; see Retry-After.",
        {**rate_limit, "Retry-After": {**rate_limit["Retry-After"], "required": True}},
    )
    paths: dict[str, Any] = {
        "/api/ask": {
            "post": {
                "operationId": "ask",
                "summary": "Answer a visitor's question",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("AskRequest")}},
                },
                "responses": {
                    "200": _json(
                        _ref("Reply"), "An answer, a clarifying question, or hints.", rate_limit
                    ),
                    "400": bad_request,
                    "413": too_large,
                    "415": wrong_type,
                    "429": limited,
                },
            }
        },
        "/api/suggest": {
            "get": {
                "operationId": "suggest",
                "summary": "Type-ahead: FAQ questions matching what the visitor has typed",
                "parameters": [
                    {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["suggestions"],
                            "properties": {
                                "suggestions": {
                                    "type": "array",
                                    "items": _ref("IdQuestion"),
                                    "maxItems": suggest_limit,
                                }
                            },
                        },
                        "Up to the configured number of FAQ questions (none for an empty q).",
                        cacheable,
                    )
                },
            }
        },
        "/api/faq/{faq_id}": {
            "get": {
                "operationId": "getFaq",
                "summary": "One FAQ with its related questions",
                "parameters": [
                    {"name": "faq_id", "in": "path", "required": True, "schema": faq_id}
                ],
                "responses": {
                    "200": _json(_ref("FaqDetail"), "The FAQ.", cacheable),
                    "404": _json(_ref("Error"), "No FAQ has this id."),
                },
            }
        },
        "/api/hot": {
            "get": {
                "operationId": "hot",
                "summary": "Greeting, popular questions and human channels for the chat panel",
                "responses": {
                    "200": _json(_ref("Hot"), "What the widget shows on opening.", cacheable)
                },
            }
        },
        "/api/feedback": {
            "post": {
                "operationId": "feedback",
                "summary": "Record whether a reply helped",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("FeedbackRequest")}},
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["ok"],
                            "properties": {"ok": {"const": True}},
                        },
                        "Recorded.",
                        rate_limit,
                    ),
                    "400": bad_request,
                    "404": _json(
                        _ref("Error"), "No logged question has this query_id.", rate_limit
                    ),
                    "413": too_large,
                    "415": wrong_type,
                    "429": limited,
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness and readiness for load balancers",
                "responses": {
                    "200": _json(_ref("Health"), "Serving.", no_store),
                    "503": _json(
                        _ref("Health"), "The query-log database is unreachable.", no_store
                    ),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {
                    "200": _json(
                        {"type": "object", "required": ["openapi", "info", "paths"]},
                        "OpenAPI 3.1 document.",
                    )
                },
            }
        },
    }
    unavailable = _json(_ref("Error"), "The query log's database is unreachable.", rate_limit)
    for path, operations in paths.items():
        if path != "/healthz":  # every read but the health check is limited (RATELIMIT_READ)
            for operation in operations.values():
                operation["responses"].setdefault("429", limited)
                operation["responses"].setdefault("503", unavailable)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "智能小城 FAQ chatbot API",
            "version": "1",
            "description": "JSON API behind the 智能小城 widget. Errors are "
            '`{"error": {"code", "message"}}` with a Chinese message for the visitor: '
            "also 404 `not_found` for a path not listed here and 405 `method_not_allowed` "
            "(with Allow) for a method a path does not serve. Every response carries "
            "`Vary: Origin` and the security headers (Content-Security-Policy, "
            "X-Content-Type-Options, X-Frame-Options, Referrer-Policy); a request from a "
            "configured portal origin also gets Access-Control-Allow-Origin.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
