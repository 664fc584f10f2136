"""The HTTP service on the small fixture bank, through Flask's test client."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from bot import Bot
from bot.reload import bank_version
from bot.web import create_app

DATA = Path(__file__).parent / "data"
PORTAL = "https://portal.example"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
BAD_REQUEST = "请求内容有误，请刷新页面后重试。"


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    """One app for the tests that only read: loading a bank takes about a second."""
    root = tmp_path_factory.mktemp("web")
    faq_dir = root / "faq"
    shutil.copytree(DATA / "mini_faq", faq_dir)
    widget_dir = root / "widget"
    widget_dir.mkdir()
    (widget_dir / "demo.html").write_text("<!doctype html><title>示例市</title>", "utf-8")
    (widget_dir / "widget.js").write_text("console.log('小城');\n", "utf-8")
    (widget_dir / "widget.css").write_text(":host { color: #222; }\n", "utf-8")
    (widget_dir / "mascot.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>', "utf-8")
    (widget_dir / "sub").mkdir()
    (widget_dir / "sub" / "x.woff2").write_bytes(b"wOF2")
    (root / "secret.txt").write_text("not for visitors", "utf-8")
    app = create_app(
        {
            "TESTING": True,
            "FAQ_DIR": str(faq_dir),
            "CACHE_DIR": str(root / "cache"),
            "WIDGET_DIR": str(widget_dir),
            "CORS_ORIGINS": [PORTAL],
            "RATELIMIT_ENABLED": False,
        },
        instance_path=root / "instance",
    )
    yield app
    app.extensions["xiaocheng"].close()


@pytest.fixture
def web(shared_app):
    return shared_app.test_client()


@pytest.fixture
def make_app(tmp_path, jieba_cache):
    """Build apps with their own settings (each in its own instance folder)."""
    apps = []

    def make(**config):
        settings = {"FAQ_DIR": str(DATA / "mini_faq"), "CACHE_DIR": str(jieba_cache), **config}
        app = create_app(settings, instance_path=tmp_path / f"instance-{len(apps)}")
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["xiaocheng"].close()


def _ask(client, payload, **kwargs):
    return client.post("/api/ask", json=payload, **kwargs)


def _error(response):
    return response.get_json()["error"]


# --- asking ------------------------------------------------------------------


def test_ask_answers_from_the_bank(web):
    response = _ask(web, {"q": "违章搭建怎么举报", "session": "s-1"})
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert "违法建筑".encode() in response.data  # UTF-8, not \\u escapes
    body = response.get_json()
    assert body["type"] == "answer"
    assert body["faq"]["id"] == "building-report"
    assert body["suggestions"] == [
        {"id": "building-demolish", "question": "违法建筑会被强制拆除吗？"}
    ]
    assert isinstance(body["query_id"], str) and body["query_id"]


def test_ask_strips_control_characters(web):
    body = _ask(web, {"q": "\x00违章\u200b搭建\x07怎么\n举报\x1b\u202e"}).get_json()
    assert body["q"] == "违章搭建怎么 举报"
    assert body["faq"]["id"] == "building-report"


def test_ask_with_faq_id_answers_that_faq(web):
    body = _ask(web, {"q": "违法建筑会被强制拆除吗？", "faq_id": "building-demolish"}).get_json()
    assert body["type"] == "answer"
    assert body["score"] == 1.0
    assert body["faq"]["id"] == "building-demolish"
    assert body["q"] == "违法建筑会被强制拆除吗？"
    assert body["query_id"]


def test_ask_with_unknown_faq_id_matches_the_question(web):
    body = _ask(web, {"q": "违章搭建怎么举报", "faq_id": "gone-since-reload"}).get_json()
    assert body["type"] == "answer"
    assert body["faq"]["id"] == "building-report"
    assert body["score"] < 1.0


def test_ask_reads_a_follow_up_with_its_context(web):
    alone = _ask(web, {"q": "拆除吗"}).get_json()
    assert alone["type"] == "clarify"
    body = _ask(web, {"q": "拆除吗", "context": {"faq_id": "building-report"}}).get_json()
    assert (body["type"], body["faq"]["id"]) == ("answer", "building-demolish")
    # A full question on another topic is answered as if alone.
    switch = _ask(web, {"q": "门口有人摆地摊", "context": {"faq_id": "building-report"}})
    assert switch.get_json()["faq"]["id"] == "vendor-report"


@pytest.mark.parametrize(
    "context",
    [{"faq_id": "gone-since-reload"}, {"faq_id": ""}, {"faq_id": None}, {}, None, {"other": 1}],
)
def test_ask_ignores_an_unknown_or_empty_context(web, context):
    body = _ask(web, {"q": "拆除吗", "context": context}).get_json()
    assert body["type"] == "clarify"  # as if alone
    assert body["query_id"]


def test_ask_with_a_context_of_exactly_the_limit_is_accepted(web):
    response = _ask(web, {"q": "拆除吗", "context": {"faq_id": "a" * 128}})
    assert response.status_code == 200


def test_ask_with_an_unknown_from_query_id_is_answered(web):
    response = _ask(web, {"q": "违章搭建怎么举报", "from_query_id": "9223372036854775807"})
    assert response.status_code == 200
    assert response.get_json()["faq"]["id"] == "building-report"


def test_ask_nonsense_falls_back_with_channels(web):
    body = _ask(web, {"q": "量子计算机的退相干时间"}).get_json()
    assert body["type"] == "fallback"
    assert body["faq"] is None
    assert {"title": "拨打12345政务服务便民热线", "url": "tel:12345"} in body["channels"]


def test_reply_matches_the_openapi_schema(web):
    doc = web.get("/api/openapi.json").get_json()
    types = set()
    for q in ("违章搭建怎么举报", "量子计算机的退相干时间", "违法"):
        body = _ask(web, {"q": q}).get_json()
        jsonschema.validate(body, {**doc, "$ref": "#/components/schemas/Reply"})  # raises
        types.add(body["type"])
    assert len(types) >= 2  # the schema is checked against more than one kind of reply


def test_question_of_exactly_the_limit_is_accepted(web):
    q = "违" * 200 + "\x00" * 20
    assert _ask(web, {"q": q}).status_code == 200


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"q": ""}, "empty_question", "请输入您要咨询的问题。"),
        ({"q": " \n\t\u3000 "}, "empty_question", "请输入您要咨询的问题。"),
        ({"q": "\x00\x01\x7f\u200b\u202e"}, "empty_question", "请输入您要咨询的问题。"),
        ({}, "empty_question", "请输入您要咨询的问题。"),
        ({"q": "违" * 201}, "question_too_long", "问题太长了，请精简到200字以内再问。"),
        ({"q": 42}, "invalid_q", BAD_REQUEST),
        ({"q": ["违建"]}, "invalid_q", BAD_REQUEST),
        ({"q": "违建", "session": 7}, "invalid_session", BAD_REQUEST),
        ({"q": "违建", "session": "s" * 65}, "session_too_long", "内容太长了，请精简到64字以内。"),
        ({"q": "违建", "faq_id": True}, "invalid_faq_id", BAD_REQUEST),
        ({"q": "违建", "context": "building-report"}, "invalid_context", BAD_REQUEST),
        ({"q": "违建", "context": ["building-report"]}, "invalid_context", BAD_REQUEST),
        ({"q": "违建", "context": 7}, "invalid_context", BAD_REQUEST),
        ({"q": "违建", "context": {"faq_id": 7}}, "invalid_context_faq_id", BAD_REQUEST),
        ({"q": "违建", "context": {"faq_id": ["a"]}}, "invalid_context_faq_id", BAD_REQUEST),
        ({"q": "违建", "context": {"faq_id": "a" * 129}}, "context_faq_id_too_long", BAD_REQUEST),
        ({"q": "违建", "from_query_id": 12}, "invalid_from_query_id", BAD_REQUEST),
        ({"q": "违建", "from_query_id": "abc"}, "invalid_from_query_id", BAD_REQUEST),
        ({"q": "违建", "from_query_id": "0"}, "invalid_from_query_id", BAD_REQUEST),
        ({"q": "违建", "from_query_id": "-3"}, "invalid_from_query_id", BAD_REQUEST),
        ({"q": "违建", "from_query_id": "1" * 20}, "invalid_from_query_id", BAD_REQUEST),
        (
            {"q": "违建", "from_query_id": "9223372036854775808"},
            "invalid_from_query_id",
            BAD_REQUEST,
        ),
        ({"q": "违建", "from_query_id": {"id": "12"}}, "invalid_from_query_id", BAD_REQUEST),
    ],
)
def test_ask_rejects_bad_fields(web, payload, code, message):
    response = _ask(web, payload)
    assert response.status_code == 400
    assert _error(response) == {"code": code, "message": message}


def test_ask_drops_lone_surrogates(web):
    data = '{"q": "\\ud800\\u0000\\udfff"}'  # JSON escapes: valid JSON, not valid UTF-8
    response = web.post("/api/ask", data=data, content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == "empty_question"
    data = '{"q": "违章\\ud800搭建怎么举报"}'
    body = web.post("/api/ask", data=data, content_type="application/json").get_json()
    assert body["q"] == "违章搭建怎么举报"


@pytest.mark.parametrize("body", ["[]", '"违建"', "null", "42", "{bad json", "\xff\xfe"])
def test_ask_rejects_a_body_that_is_not_a_json_object(web, body):
    response = web.post("/api/ask", data=body, content_type="application/json")
    assert response.status_code == 400
    assert _error(response) == {
        "code": "bad_json",
        "message": "请求内容无法识别，请刷新页面后重试。",
    }


_NESTED_ARRAYS = '{"q": ' + "[" * 1000 + "]" * 1000 + "}"
_NESTED_OBJECTS = '{"q": "违建", "x": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}"


@pytest.mark.parametrize(
    "body",
    [
        _NESTED_ARRAYS,
        _NESTED_OBJECTS,
        "[" * 4000,  # unbalanced
        '{"q": "违建", "n": 1e400}',
        '{"q": "违建", "n": NaN}',
        '{"q": "违建", "n": -Infinity}',
        '{"q": "违建", "q": "占道经营"}',
    ],
    ids=["nested-arrays", "nested-objects", "brackets", "huge-float", "nan", "infinity", "dup"],
)
def test_ask_refuses_hostile_json_as_bad_json(web, body):
    assert len(body.encode()) < 4096  # within the body limit: refused by the parser
    response = web.post("/api/ask", data=body, content_type="application/json")
    assert response.status_code == 400
    assert _error(response) == {
        "code": "bad_json",
        "message": "请求内容无法识别，请刷新页面后重试。",
    }


def test_nesting_up_to_the_documented_depth_is_parsed(web):
    document = web.get("/api/openapi.json").get_json()
    assert "nested deeper than 16" in json.dumps(document, ensure_ascii=False)
    inner = "[" * 15 + "]" * 15  # depth 16 with the object around it
    body = '{"q": "违章搭建怎么举报", "extra": ' + inner + ', "s": "[[[[[[[[[[[[[[[[[[[["}'
    response = web.post("/api/ask", data=body, content_type="application/json")
    assert response.status_code == 200
    too_deep = '{"q": "违章搭建怎么举报", "extra": ' + "[" * 16 + "]" * 16 + "}"
    response = web.post("/api/ask", data=too_deep, content_type="application/json")
    assert _error(response)["code"] == "bad_json"


def test_feedback_refuses_nested_json_as_bad_json(web):
    response = web.post("/api/feedback", data=_NESTED_ARRAYS, content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == "bad_json"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_ask_rejects_other_content_types(web, content_type):
    response = web.post("/api/ask", data='{"q": "违建"}', content_type=content_type)
    assert response.status_code == 415
    assert _error(response) == {
        "code": "unsupported_media_type",
        "message": "请求格式不正确，请刷新页面后重试。",
    }


def test_ask_accepts_json_with_charset(web):
    data = json.dumps({"q": "违章搭建怎么举报"}).encode()
    response = web.post("/api/ask", data=data, content_type="application/json; charset=utf-8")
    assert response.status_code == 200


def test_oversize_body_is_refused(web):
    response = _ask(web, {"q": "违建", "session": "x" * 5000})
    assert response.status_code == 413
    assert _error(response) == {
        "code": "payload_too_large",
        "message": "提交的内容太长了，请精简后再试。",
    }


# --- feedback ------------------------------------------------------------------


def test_every_ask_is_logged_once(app, client):
    questions = ["违章搭建怎么举报", "量子计算机的退相干时间", "违法", "\x00违建\u200b"]
    ids = [_ask(client, {"q": q, "session": "s-9"}).get_json()["query_id"] for q in questions]
    ids.append(_ask(client, {"q": "拆吗", "faq_id": "building-demolish"}).get_json()["query_id"])
    _ask(client, {"q": ""})  # refused: not logged
    log = app.extensions["xiaocheng"].querylog
    assert log.flush(timeout=10)
    rows = {str(row["id"]): row for row in log.queries()}
    assert sorted(rows) == sorted(ids)
    first = rows[ids[0]]
    assert (first["question"], first["reply_type"], first["faq_id"]) == (
        "违章搭建怎么举报",
        "answer",
        "building-report",
    )
    assert first["candidates"][0]["id"] == "building-report"
    assert first["session"] and first["session"] != "s-9"  # stored hashed
    assert first["latency_ms"] > 0
    assert rows[ids[1]]["reply_type"] == "fallback"
    assert rows[ids[3]]["question"] == "违建"
    assert (rows[ids[4]]["faq_id"], rows[ids[4]]["score"]) == ("building-demolish", 1.0)


def test_a_clicked_choice_is_linked_to_the_question_it_answers(app, client):
    clarify = _ask(client, {"q": "拆除吗"}).get_json()
    assert clarify["type"] == "clarify"
    choice = clarify["suggestions"][0]
    chosen = _ask(
        client,
        {"q": choice["question"], "faq_id": choice["id"], "from_query_id": clarify["query_id"]},
    ).get_json()
    unknown = _ask(client, {"q": "违建", "from_query_id": "12345"}).get_json()
    log = app.extensions["xiaocheng"].querylog
    assert log.flush(timeout=10)
    rows = {str(row["id"]): row for row in log.queries()}
    assert str(rows[chosen["query_id"]]["from_query_id"]) == clarify["query_id"]
    assert rows[clarify["query_id"]]["from_query_id"] is None
    assert rows[unknown["query_id"]]["from_query_id"] == 12345  # kept as sent, links nothing
    [learned] = log.learned_wordings()
    assert (learned["faq_id"], learned["question"], learned["chosen"]) == (
        choice["id"],
        "拆除吗",
        1,
    )


def test_none_of_these_is_recorded_with_its_reason(app, client):
    clarify = _ask(client, {"q": "拆除吗"}).get_json()
    response = client.post(
        "/api/feedback",
        json={"query_id": clarify["query_id"], "helpful": False, "reason": "none_of_these"},
    )
    assert response.status_code == 200
    log = app.extensions["xiaocheng"].querylog
    assert log.flush(timeout=10)
    [row] = log.feedback()
    assert (row["helpful"], row["reason"]) == (False, "none_of_these")


def test_feedback_is_recorded(app, client):
    query_id = _ask(client, {"q": "违章搭建怎么举报"}).get_json()["query_id"]
    response = client.post(
        "/api/feedback", json={"query_id": query_id, "helpful": False, "comment": "没说清\x00楚"}
    )
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}
    log = app.extensions["xiaocheng"].querylog
    assert log.flush(timeout=10)
    [row] = log.feedback()
    assert (str(row["query_id"]), row["helpful"], row["comment"]) == (query_id, False, "没说清楚")


@pytest.mark.parametrize("query_id", ["12345", "9223372036854775807"])
def test_feedback_on_an_unknown_question(web, query_id):
    response = web.post("/api/feedback", json={"query_id": query_id, "helpful": True})
    assert response.status_code == 404
    assert _error(response) == {
        "code": "query_not_found",
        "message": "没有找到这次咨询的记录，评价未能提交。",
    }


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"helpful": True}, "invalid_query_id", BAD_REQUEST),
        ({"query_id": 12, "helpful": True}, "invalid_query_id", BAD_REQUEST),
        ({"query_id": "no-such-query", "helpful": True}, "invalid_query_id", BAD_REQUEST),
        ({"query_id": "0", "helpful": True}, "invalid_query_id", BAD_REQUEST),
        ({"query_id": "-5", "helpful": True}, "invalid_query_id", BAD_REQUEST),
        ({"query_id": "9223372036854775808", "helpful": True}, "invalid_query_id", BAD_REQUEST),
        ({"query_id": "1" * 20, "helpful": True}, "invalid_query_id", BAD_REQUEST),
        ({"query_id": "12", "helpful": "yes"}, "invalid_helpful", BAD_REQUEST),
        ({"query_id": "12", "helpful": 1}, "invalid_helpful", BAD_REQUEST),
        ({"query_id": "12"}, "invalid_helpful", BAD_REQUEST),
        ({"query_id": "12", "helpful": True, "comment": 3}, "invalid_comment", BAD_REQUEST),
        ({"query_id": "12", "helpful": False, "reason": "other"}, "invalid_reason", BAD_REQUEST),
        ({"query_id": "12", "helpful": False, "reason": 1}, "invalid_reason", BAD_REQUEST),
        ({"query_id": "12", "helpful": False, "reason": ""}, "invalid_reason", BAD_REQUEST),
        (
            {"query_id": "12", "helpful": False, "reason": ["none_of_these"]},
            "invalid_reason",
            BAD_REQUEST,
        ),
        (
            {"query_id": "12", "helpful": True, "comment": "长" * 501},
            "comment_too_long",
            "内容太长了，请精简到500字以内。",
        ),
    ],
)
def test_feedback_rejects_bad_fields(web, payload, code, message):
    response = web.post("/api/feedback", json=payload)
    assert response.status_code == 400
    assert _error(response) == {"code": code, "message": message}


def test_feedback_needs_json(web):
    response = web.post("/api/feedback", data="helpful=1")
    assert response.status_code == 415


# --- reading the bank ----------------------------------------------------------


def test_suggest(web):
    response = web.get("/api/suggest", query_string={"q": "违法建筑"})
    assert response.status_code == 200
    suggestions = response.get_json()["suggestions"]
    assert {"id": "building-report", "question": "如何举报违法建筑？"} in suggestions
    assert 0 < len(suggestions) <= 8
    assert response.cache_control.max_age == 60


@pytest.mark.parametrize("q", ["", "   ", "\x00"])
def test_suggest_nothing_typed(web, q):
    assert web.get("/api/suggest", query_string={"q": q}).get_json() == {"suggestions": []}
    assert web.get("/api/suggest").get_json() == {"suggestions": []}


def test_faq(web):
    response = web.get("/api/faq/building-report")
    assert response.status_code == 200
    body = response.get_json()
    assert body["question"] == "如何举报违法建筑？"
    assert body["related"] == [{"id": "building-demolish", "question": "违法建筑会被强制拆除吗？"}]


@pytest.mark.parametrize("faq_id", ["no-such-faq", "BUILDING-REPORT", "%E8%BF%9D"])
def test_unknown_faq(web, faq_id):
    response = web.get(f"/api/faq/{faq_id}")
    assert response.status_code == 404
    assert _error(response) == {
        "code": "faq_not_found",
        "message": "没有找到这条问答，它可能已经更新，请重新提问。",
    }


def test_hot(web):
    body = web.get("/api/hot").get_json()
    assert body["greeting"].startswith("您好！我是智能小城")
    assert {"id": "building-report", "question": "如何举报违法建筑？"} in body["questions"]
    assert body["channels"][0] == {"title": "拨打12345政务服务便民热线", "url": "tel:12345"}
    assert body["limits"] == {"max_question_chars": 200}


def test_hot_limits_follow_the_setting(make_app):
    body = make_app(MAX_QUESTION_CHARS=80).test_client().get("/api/hot").get_json()
    assert body["limits"] == {"max_question_chars": 80}


def test_healthz(web, shared_app):
    response = web.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["faqs"] == 5
    assert body["database"] == "ok"
    bot = shared_app.extensions["xiaocheng"].bot
    assert body["index"]["rows"] == bot.index.meta["rows"]
    assert body["bank_version"] == bank_version(bot.bank)  # compared across nodes
    assert response.cache_control.no_store


def test_healthz_when_the_database_is_gone(app, client):
    instance = Path(app.instance_path)
    for path in instance.glob("querylog.db*"):
        path.unlink()
    (instance / "querylog.db").mkdir()  # the process has not opened its log yet
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert (body["status"], body["database"], body["faqs"]) == ("degraded", "unreachable", 5)


# --- unknown routes and failures -----------------------------------------------


@pytest.mark.parametrize("path", ["/api/nothing", "/api/faq/", "/api/ask/extra"])
def test_unknown_api_route(web, path):
    response = web.get(path)
    assert response.status_code == 404
    assert _error(response) == {"code": "not_found", "message": "您访问的接口不存在。"}
    assert response.headers["Content-Security-Policy"] == CSP


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/api/ask"), ("put", "/api/feedback"), ("post", "/api/hot")]
)
def test_wrong_method(web, method, path):
    response = getattr(web, method)(path)
    assert response.status_code == 405
    assert _error(response) == {"code": "method_not_allowed", "message": "不支持这种请求方式。"}
    assert "Allow" in response.headers


def test_unexpected_exception_gives_a_json_apology(make_app, caplog):
    app = make_app(RATELIMIT_ENABLED=False)

    def boom():
        raise RuntimeError("the disk is on fire")

    app.add_url_rule("/api/boom", "boom", boom)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/api/boom")
    assert response.status_code == 500
    assert _error(response) == {
        "code": "internal_error",
        "message": "抱歉，小城暂时出了点问题，请稍后再试。",
    }
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "the disk is on fire" in caplog.text


# --- the widget's files ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/widget.js", "text/javascript; charset=utf-8"),
        ("/widget/widget.js", "text/javascript; charset=utf-8"),
        ("/widget/widget.css", "text/css; charset=utf-8"),
        ("/widget/mascot.svg", "image/svg+xml"),
        ("/widget/sub/x.woff2", "font/woff2"),
    ],
)
def test_widget_files(web, path, content_type):
    response = web.get(path, buffered=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.cache_control.public
    assert response.cache_control.max_age == 300
    etag = response.headers["ETag"]
    again = web.get(path, headers={"If-None-Match": etag}, buffered=True)
    assert again.status_code == 304


def test_demo_page(web):
    response = web.get("/", buffered=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.cache_control.no_cache
    assert "示例市" in response.get_data(as_text=True)
    assert "Cross-Origin-Resource-Policy" not in response.headers


@pytest.mark.parametrize(
    "path", ["/widget/../secret.txt", "/widget/%2e%2e/secret.txt", "/widget/nope.js", "/widget/"]
)
def test_widget_paths_stay_in_the_folder(web, path):
    assert web.get(path, buffered=True).status_code == 404


def test_shipped_widget_is_served(client):
    assert b"<script" in client.get("/", buffered=True).data
    assert client.get("/widget.js", buffered=True).status_code == 200


# --- security ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/widget.js", "/api/hot", "/healthz", "/api/nothing"])
def test_security_headers_everywhere(web, path):
    headers = web.get(path, buffered=True).headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers["Referrer-Policy"] == "same-origin"


def test_cors_for_a_configured_portal(web):
    response = _ask(web, {"q": "违建"}, headers={"Origin": PORTAL})
    assert response.headers["Access-Control-Allow-Origin"] == PORTAL
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", ["https://evil.example", "https://portal.example.evil", "null"])
def test_cors_refused_for_other_origins(web, origin):
    response = web.get("/api/hot", headers={"Origin": origin})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" in response.headers["Vary"]


def test_cors_preflight(web):
    headers = {
        "Origin": PORTAL,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    response = web.options("/api/ask", headers=headers)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == PORTAL
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
    refused = web.options("/api/ask", headers={**headers, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Methods" not in refused.headers


# --- rate limiting ---------------------------------------------------------------


LIMITS = {"RATELIMIT_ENABLED": True, "RATELIMIT_ASK": "2/minute", "RATELIMIT_FEEDBACK": "1/minute"}


def test_rate_limit(make_app):
    client = make_app(**LIMITS).test_client()
    preflight = {"Origin": PORTAL, "Access-Control-Request-Method": "POST"}
    for _ in range(3):
        assert client.options("/api/ask", headers=preflight).status_code == 200
    assert _ask(client, {"q": "违建"}).status_code == 200
    assert _ask(client, {"q": "违建"}).status_code == 200
    response = _ask(client, {"q": "违建"})
    assert response.status_code == 429
    assert _error(response) == {
        "code": "rate_limited",
        "message": "您的提问太频繁了，请稍等一会儿再试。",
    }
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Another client is counted apart; reading is limited apart (RATELIMIT_READ).
    other = {"REMOTE_ADDR": "192.0.2.7"}
    assert _ask(client, {"q": "违建"}, environ_base=other).status_code == 200
    assert client.get("/api/hot").status_code == 200


def test_rate_limit_ignores_forwarded_for_unless_trusted(make_app):
    client = make_app(**LIMITS).test_client()
    codes = [
        _ask(client, {"q": "违建"}, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]
    client = make_app(**LIMITS, TRUST_PROXY=1).test_client()
    codes = [
        _ask(client, {"q": "违建"}, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 200]


def test_rate_limit_survives_an_unreachable_storage(make_app, caplog):
    app = make_app(**LIMITS, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1")
    client = app.test_client()
    codes = [_ask(client, {"q": "违建"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # counted in memory meanwhile
    assert "falling back to in-memory storage" in caplog.text


def test_reads_are_rate_limited_per_route(make_app):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_READ="2/minute").test_client()
    assert [client.get("/api/hot").status_code for _ in range(2)] == [200, 200]
    response = client.get("/api/hot")
    assert response.status_code == 429
    assert _error(response) == {
        "code": "rate_limited",
        "message": "您的提问太频繁了，请稍等一会儿再试。",
    }
    assert 0 < int(response.headers["Retry-After"]) <= 60
    for path in ("/api/faq/building-report", "/api/suggest?q=违", "/api/openapi.json"):
        codes = [client.get(path).status_code for _ in range(3)]
        assert codes == [200, 200, 429], path
    assert [client.get("/healthz").status_code for _ in range(5)] == [200] * 5
    other = {"REMOTE_ADDR": "192.0.2.7"}
    assert client.get("/api/hot", environ_base=other).status_code == 200
    assert _ask(client, {"q": "违建"}).status_code == 200  # asks are counted apart


def test_limits_are_shared_by_workers_through_redis(make_app, shared_limits):
    settings = {**shared_limits, **LIMITS, "RATELIMIT_READ": "3/minute"}
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    assert [c.get("/api/hot").status_code for c in (one, two, one, two)] == [200, 200, 200, 429]
    assert [_ask(c, {"q": "违建"}).status_code for c in (two, one, two)] == [200, 200, 429]


def test_feedback_rate_limit(make_app):
    client = make_app(**LIMITS).test_client()
    query_id = _ask(client, {"q": "违建"}).get_json()["query_id"]
    payload = {"query_id": query_id, "helpful": True}
    assert client.post("/api/feedback", json=payload).status_code == 200
    assert client.post("/api/feedback", json=payload).status_code == 429


# --- the app itself --------------------------------------------------------------


def test_openapi_document_is_valid_and_complete(web, shared_app):
    response = web.get("/api/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    validate_openapi(doc)
    assert doc["openapi"] == "3.1.0"
    served = {}
    for rule in shared_app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule == "/healthz":
            path = rule.rule.replace("<", "{").replace(">", "}")
            served[path] = sorted(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: sorted(ops) for path, ops in doc["paths"].items()}
    assert documented == served
    ask = doc["components"]["schemas"]["AskRequest"]["properties"]
    assert ask["q"]["maxLength"] == 200
    assert ask["context"]["properties"]["faq_id"]["maxLength"] == 128
    assert ask["from_query_id"]["type"] == "string"
    reason = doc["components"]["schemas"]["FeedbackRequest"]["properties"]["reason"]
    assert reason["enum"] == ["none_of_these"]
    hot = web.get("/api/hot").get_json()
    jsonschema.validate(hot, {**doc, "$ref": "#/components/schemas/Hot"})  # raises


def test_bank_loaded_once_and_swappable(app, client, tmp_path):
    service = app.extensions["xiaocheng"]
    before = service.bot
    client.get("/api/hot")
    _ask(client, {"q": "违建"})
    assert service.bot is before
    other = Bot.load(DATA / "mini_faq", index_path=tmp_path / "other.pkl")
    assert service.swap_bot(other) is before
    assert service.bot is other
    assert _ask(client, {"q": "违章搭建怎么举报"}).get_json()["faq"]["id"] == "building-report"


def test_settings_layers_reach_the_app(tmp_path, monkeypatch, jieba_cache):
    (tmp_path / "config.toml").write_text(
        'max_question_chars = 10\ncors_origins = ["https://file.example"]\n', "utf-8"
    )
    monkeypatch.setenv("XIAOCHENG_CORS_ORIGINS", "https://env.example/")
    monkeypatch.setenv("XIAOCHENG_RATELIMIT_ENABLED", "false")
    app = create_app(
        {"FAQ_DIR": str(DATA / "mini_faq"), "CACHE_DIR": str(jieba_cache)}, instance_path=tmp_path
    )
    try:
        assert app.config["MAX_QUESTION_CHARS"] == 10
        assert app.config["CORS_ORIGINS"] == ["https://env.example"]
        headers = {"Origin": "https://env.example"}
        response = _ask(app.test_client(), {"q": "违" * 11}, headers=headers)
        assert _error(response)["message"] == "问题太长了，请精简到10字以内再问。"
        assert response.headers["Access-Control-Allow-Origin"] == "https://env.example"
        assert app.secret_key == (tmp_path / "secret_key").read_text("ascii").strip()
    finally:
        app.extensions["xiaocheng"].close()


def test_instance_path_from_environment(tmp_path, monkeypatch, jieba_cache):
    monkeypatch.setenv("XIAOCHENG_INSTANCE_PATH", str(tmp_path / "from-env"))
    app = create_app({"FAQ_DIR": str(DATA / "mini_faq"), "CACHE_DIR": str(jieba_cache)})
    try:
        assert app.instance_path == str(tmp_path / "from-env")
        assert app.config["INDEX_PATH"] == str(tmp_path / "from-env" / "index.pkl")
        assert (tmp_path / "from-env" / "querylog.db").exists()
    finally:
        app.extensions["xiaocheng"].close()
