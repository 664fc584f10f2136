"""Schemathesis against the OpenAPI document, in process (WSGI), on every operation.

Each operation gets generated requests, valid and invalid (schemathesis'
examples, coverage and fuzzing phases); every answer must be one the document
describes (status code, content type, headers, body) and none may be a 5xx.
Bounded and derandomized: CI sends the same few hundred requests each run.

Not checked: whether the API accepts exactly the requests the schema allows
(schemathesis' positive/negative data checks). The API cleans text before it
judges it (control characters go, a blank question is empty), which a JSON
Schema cannot say.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from bot.config import DEFAULTS
from bot.web import create_app
from bot.web.api import JSON_MAX_DEPTH
from bot.web.openapi import openapi_document

DATA = Path(__file__).parent / "data"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
]

# The document an app with the default settings serves, built here so that
# schemathesis makes one test per operation at collection time (its fixture
# loader, schemathesis.pytest.from_fixture, fails under pytest 9).
# test_the_fuzzed_document_is_the_served_one checks it is the served one.
DOCUMENT = openapi_document(
    max_question_chars=DEFAULTS["MAX_QUESTION_CHARS"],
    max_comment_chars=DEFAULTS["MAX_COMMENT_CHARS"],
    max_content_length=DEFAULTS["MAX_CONTENT_LENGTH"],
    suggest_limit=DEFAULTS["SUGGEST_LIMIT"],
    json_max_depth=JSON_MAX_DEPTH,
)
schema = schemathesis.openapi.from_dict(DOCUMENT)


def _make_app(root: Path, **config):
    faq_dir = root / "faq"
    shutil.copytree(DATA / "mini_faq", faq_dir)
    settings = {
        "TESTING": True,
        "FAQ_DIR": str(faq_dir),
        "CACHE_DIR": str(root / "cache"),
        **config,
    }
    return create_app(settings, instance_path=root / "instance")


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory):
    app = _make_app(tmp_path_factory.mktemp("fuzz"), RATELIMIT_ENABLED=False)
    yield app
    app.extensions["xiaocheng"].close()


def test_the_fuzzed_document_is_the_served_one(fuzzed_app):
    assert fuzzed_app.test_client().get("/api/openapi.json").get_json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    # The bank is tiny and most generated ids miss it: that is the point, not a bad strategy.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_openapi_document(case, fuzzed_app):
    case.call_and_validate(checks=CHECKS, app=fuzzed_app)


def test_rate_limit_headers_are_documented(tmp_path):
    """With the limiter on, its headers (and the 429 with Retry-After) match the document."""
    app = _make_app(tmp_path, RATELIMIT_ASK="2/minute", RATELIMIT_FEEDBACK="1/minute")
    try:
        ask = schema["/api/ask"]["POST"]
        statuses = []
        for q in ("违章搭建怎么举报", "", "违建"):
            case = ask.Case(body={"q": q}, media_type="application/json")
            response = case.call(app=app)
            case.validate_response(response, checks=CHECKS)
            statuses.append(response.status_code)
        assert statuses == [200, 400, 429]
        assert "x-ratelimit-remaining" in response.headers  # lower-cased by schemathesis
        feedback = schema["/api/feedback"]["POST"]
        for expected in (404, 429):
            case = feedback.Case(
                body={"query_id": "1", "helpful": True}, media_type="application/json"
            )
            response = case.call(app=app)
            case.validate_response(response, checks=CHECKS)
            assert response.status_code == expected
    finally:
        app.extensions["xiaocheng"].close()
