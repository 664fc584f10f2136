"""The analyst console under /admin, on the real app, the mini bank and a real SQLite
query log filled through the real API (POST /api/ask, POST /api/feedback)."""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, session
from flask.sessions import NullSession
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from bot.analysis import report as analysis_report
from bot.config import ConfigError
from bot.match.engine import Bot
from bot.web import admin as web_admin
from bot.web import create_app
from bot.web.admin import filters as admin_filters
from bot.web.admin.auth import (
    MSG_CSRF,
    MSG_LOGGED_OUT,
    MSG_LOGIN_REQUIRED,
    MSG_NOT_CONFIGURED,
    MSG_WRONG_PASSWORD,
)
from bot.web.admin.export import QUERY_CSV_HEADER
from bot.web.admin.filters import parse_filters

PASSWORD = "后台口令 correct horse"
# A cheap hash keeps the tests fast; production hashes come from bot.admin_password.
HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")

# Endpoints the console must have; the anonymous test walks every /admin rule.
CONSOLE_ENDPOINTS = {
    "admin.login",
    "admin.logout",
    "admin.dashboard",
    "admin.clusters",
    "admin.queries",
    "admin.export_queries",
    "admin.export_clusters",
    "admin.bank",
    "admin.reload",
    "admin.suggestions",
    "admin.accept",
    "admin.reject",
    "admin.history",
    "admin.faqs",
    "admin.faq_new",
    "admin.faq_edit",
    "admin.faq_export",
    "admin.faq_import",
    "admin.asset",
}
PUBLIC_ENDPOINTS = {"admin.login", "admin.asset"}

BUILDING_Q = "如何举报违法建筑？"
VENDOR_Q = "路边有流动摊贩占道经营怎么办？"


# --- fixtures and helpers ---------------------------------------------------------


MINI_FAQ = Path(__file__).parent / "data" / "mini_faq"


@pytest.fixture(scope="session")
def index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index for every app of the session (the mini bank does not change)."""
    return tmp_path_factory.mktemp("admin-index") / "index.pkl"


def _create(instance: Path, jieba_cache: Path, index_path: Path, **overrides: Any) -> Flask:
    config = {
        "TESTING": True,
        "FAQ_DIR": str(MINI_FAQ),
        "CACHE_DIR": str(jieba_cache),
        "INDEX_PATH": str(index_path),
        "RATELIMIT_ENABLED": False,
        "ADMIN_PASSWORD_HASH": HASH,
        **overrides,
    }
    return create_app(config, instance_path=instance)


@pytest.fixture(scope="module")
def shared_app(
    tmp_path_factory: pytest.TempPathFactory, jieba_cache: Path, index_path: Path
) -> Iterator[Flask]:
    """One app for the tests of access control, which do not read the log."""
    app = _create(tmp_path_factory.mktemp("admin"), jieba_cache, index_path)
    yield app
    app.extensions["xiaocheng"].close()


@pytest.fixture
def make_app(tmp_path: Path, jieba_cache: Path, index_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps of the test's own, each with an empty query log."""
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = _create(tmp_path / f"instance{len(apps)}", jieba_cache, index_path, **overrides)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["xiaocheng"].close()


@pytest.fixture
def client(shared_app: Flask) -> FlaskClient:
    return shared_app.test_client()


@pytest.fixture
def admin(shared_app: Flask) -> FlaskClient:
    """A client logged in to the shared app."""
    return logged_in(shared_app)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app of this test's own, with an empty query log."""
    return make_app()


@pytest.fixture
def analyst(app: Flask) -> FlaskClient:
    """A client logged in to this test's own app."""
    return logged_in(app)


def logged_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    response = login(client)
    assert response.status_code == 302, response.text
    return client


def token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def login(client: FlaskClient, password: str = PASSWORD, **form: str):
    token = token_of(client.get("/admin/login").text)
    return client.post("/admin/login", data={"password": password, "csrf_token": token, **form})


def ask(app: Flask, client: FlaskClient, *questions: str) -> list[str]:
    """Ask through the real API; return the query ids once the rows are written."""
    ids = []
    for q in questions:
        response = client.post("/api/ask", json={"q": q})
        assert response.status_code == 200, response.text
        ids.append(response.get_json()["query_id"])
    app.extensions["xiaocheng"].querylog.flush()
    return ids


def feedback(app: Flask, client: FlaskClient, query_id: str, helpful: bool) -> None:
    response = client.post("/api/feedback", json={"query_id": query_id, "helpful": helpful})
    assert response.status_code == 200, response.text
    app.extensions["xiaocheng"].querylog.flush()


def svg(html: str, chart_id: str) -> str:
    match = re.search(rf'<svg [^>]*id="{chart_id}".*?</svg>', html, re.S)
    assert match, f"no chart {chart_id}"
    return match.group(0)


def bars(chart: str, cls: str = "bar") -> list[tuple[str, str]]:
    """(data-label, data-value) of every rect of class ``cls`` in the chart."""
    return re.findall(
        rf'<rect class="{cls}"[^>]* data-label="([^"]*)"[^>]* data-value="([^"]*)"', chart
    )


def today():
    return admin_filters.today()


def error_text(html: str) -> list[str]:
    return re.findall(r'<div class="notice notice-error" role="alert"><p>(.*?)</p>', html)


# --- logging in and out ------------------------------------------------------------


def test_login_page_is_chinese_with_a_csrf_field(client):
    response = client.get("/admin/login")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="zh-CN">' in html
    assert '<h1 id="login-title">登录咨询分析后台</h1>' in html
    assert '<label for="password">后台密码</label>' in html
    assert len(token_of(html)) >= 40
    assert 'autocomplete="current-password"' in html


def test_login_then_logout(client):
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200

    token = token_of(client.get("/admin/").text)
    response = client.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?out=1"
    assert MSG_LOGGED_OUT in client.get("/admin/login?out=1").text
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=/admin/"


def test_wrong_password_is_refused(client):
    response = login(client, "wrong password")
    assert response.status_code == 401
    assert error_text(response.text) == [MSG_WRONG_PASSWORD]
    assert 'aria-invalid="true"' in response.text
    assert client.get("/admin/").status_code == 302
    assert login(client, "").status_code == 401


def test_session_cookie_flags(make_app):
    client = make_app().test_client()
    cookie = login(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie

    secure = make_app(SESSION_COOKIE_SECURE=True).test_client()
    secure_cookie = login(secure).headers["Set-Cookie"]
    assert "; Secure" in secure_cookie


def test_login_returns_to_the_page_asked_for_and_never_off_site(client):
    response = client.get("/admin/queries?type=fallback")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=/admin/queries?type%3Dfallback"
    response = login(client, next="/admin/queries?type=fallback")
    assert response.headers["Location"] == "/admin/queries?type=fallback"
    for target in [
        "//evil.example/admin/",
        "https://evil.example/admin/",
        "/\\evil.example",
        "/api/hot",
        "/admin/logout",
        "javascript:alert(1)",
    ]:
        client.post("/admin/logout", data={"csrf_token": token_of(client.get("/admin/").text)})
        response = login(client, next=target)
        assert response.headers["Location"] == "/admin/", target


def test_a_logged_in_visit_to_the_login_page_goes_to_the_dashboard(admin):
    response = admin.get("/admin/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


def test_login_lapses_after_the_session_hours(make_app):
    client = make_app(ADMIN_SESSION_HOURS=0).test_client()
    assert login(client).status_code == 302
    assert client.get("/admin/").status_code == 302


def test_changing_the_password_ends_every_login(app, analyst):
    assert analyst.get("/admin/").status_code == 200
    app.config["ADMIN_PASSWORD_HASH"] = generate_password_hash(
        "另一个口令 new", method="pbkdf2:sha256:1000"
    )
    assert analyst.get("/admin/").status_code == 302


def test_without_a_password_hash_the_console_says_so_and_refuses(make_app):
    client = make_app(ADMIN_PASSWORD_HASH=None).test_client()
    page = client.get("/admin/login")
    assert page.status_code == 200
    assert error_text(page.text) == [MSG_NOT_CONFIGURED]
    assert 'type="password"' not in page.text
    # No form to take a token from: give the session one, as a form would have.
    with client.session_transaction("/admin/login") as session:
        session["csrf"] = token = "t" * 43
    response = client.post("/admin/login", data={"password": "", "csrf_token": token})
    assert response.status_code == 503
    assert error_text(response.text) == [MSG_NOT_CONFIGURED]
    assert client.get("/admin/").status_code == 302


def test_only_the_console_opens_the_signed_session(make_app):
    app = make_app()
    for path in ("/api/ask", "/api/hot", "/healthz", "/"):
        with app.test_request_context(path):
            assert isinstance(session, NullSession), path
    with app.test_request_context("/admin/login"):
        assert not isinstance(session, NullSession)
        session["csrf"] = "t"  # the console's session takes writes


def test_an_unusable_password_hash_stops_start_up():
    app = Flask(__name__)
    app.config["ADMIN_PASSWORD_HASH"] = "my-plain-password"
    with pytest.raises(ConfigError) as excinfo:
        web_admin.init_app(app)
    assert str(excinfo.value) == (
        "ADMIN_PASSWORD_HASH is not a password hash; make one with python -m bot.admin_password"
    )
    app = Flask(__name__)
    app.config["ADMIN_PASSWORD_HASH"] = "md5$salt$hash"
    with pytest.raises(ConfigError, match="is not a usable password hash"):
        web_admin.init_app(app)


def test_login_attempts_are_rate_limited(make_app):
    client = make_app(RATELIMIT_ENABLED=True, ADMIN_LOGIN_RATELIMIT="2/minute").test_client()
    assert login(client, "wrong 1").status_code == 401
    assert login(client, "wrong 2").status_code == 401
    response = login(client)
    assert response.status_code == 429
    assert error_text(response.text) == ["登录尝试过于频繁，请稍后再试。"]
    assert int(response.headers["Retry-After"]) > 0
    # Showing the form is not limited.
    assert client.get("/admin/login").status_code == 200


def test_init_app_twice_is_harmless(shared_app):
    app = shared_app
    rules = len(list(app.url_map.iter_rules()))
    guards = len(app.before_request_funcs[None])
    web_admin.init_app(app)
    assert len(list(app.url_map.iter_rules())) == rules
    assert len(app.before_request_funcs[None]) == guards


# --- CSRF -----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_login_without_the_right_csrf_token_is_refused(client, token):
    client.get("/admin/login")
    data = {"password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/admin/login", data=data)
    assert response.status_code == 400
    assert error_text(response.text) == [MSG_CSRF]
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_logout_without_the_right_csrf_token_is_refused(admin, token):
    data = {} if token is None else {"csrf_token": token}
    response = admin.post("/admin/logout", data=data)
    assert response.status_code == 400
    assert error_text(response.text) == [MSG_CSRF]
    assert admin.get("/admin/").status_code == 200  # still logged in


def test_csrf_token_in_a_header_and_json_errors(admin):
    response = admin.post("/admin/logout", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.get_json() == {"error": {"code": "csrf_failed", "message": MSG_CSRF}}
    token = token_of(admin.get("/admin/").text)
    response = admin.post("/admin/logout", headers={"X-CSRF-Token": token})
    assert response.status_code == 302


def test_a_token_from_another_session_is_refused(shared_app, admin):
    other = shared_app.test_client()
    other_token = token_of(other.get("/admin/login").text)
    response = admin.post("/admin/logout", data={"csrf_token": other_token})
    assert response.status_code == 400


# --- nothing without logging in --------------------------------------------------


def admin_rules(app: Flask) -> list[tuple[str, str, set[str]]]:
    return sorted(
        (rule.rule, rule.endpoint, set(rule.methods or ()) - {"HEAD", "OPTIONS"})
        for rule in app.url_map.iter_rules()
        if rule.rule == "/admin" or rule.rule.startswith("/admin/")
    )


def test_every_admin_url_refuses_an_anonymous_client(app):
    client = app.test_client()
    ask(app, client, "今天天气怎么样", "违章搭建怎么举报")
    rules = admin_rules(app)
    assert CONSOLE_ENDPOINTS <= {endpoint for _, endpoint, _ in rules}
    checked = 0
    for rule, endpoint, methods in rules:
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        rule = rule.replace("<faq_id>", "vendor-report")  # an entry that exists
        assert "<" not in rule, f"{rule}: a rule with arguments needs its own case here"
        for method in sorted(methods | {"POST"}):
            response = client.open(rule, method=method)
            if method == "GET":
                assert response.status_code == 302, rule
                assert response.headers["Location"].startswith("/admin/login?next=/admin"), rule
            else:
                assert response.status_code == 401, (method, rule)
                assert error_text(response.text) == [MSG_LOGIN_REQUIRED]
            assert "今天天气" not in response.text
            checked += 1
        assert client.head(rule).status_code == 302
    assert checked >= 24  # 11 pages and exports x (GET, POST), logout and reload
    # Paths nobody registered are not revealed either.
    for path in ["/admin", "/admin/nope", "/admin/export/other.csv"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/admin/login?next=")
    assert client.put("/admin/reload").status_code == 401


def test_only_the_login_page_and_the_console_assets_are_public(client):
    assert client.get("/admin/login").status_code == 200
    with client.get("/admin/static/admin.css") as css:
        assert css.status_code == 200
        assert css.headers["Content-Type"] == "text/css; charset=utf-8"
        assert b"--blue: #1d5aa3;" in css.data
    with client.get("/admin/static/admin.js") as js:
        assert js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    for path in ["/admin/static/nope.css", "/admin/static/../web_admin.py", "/admin/static/"]:
        assert client.get(path).status_code in (302, 404), path
    assert "web_admin" not in client.get("/admin/static/../web_admin.py").text


# --- pages are CSP-clean and private ------------------------------------------------


def test_pages_carry_no_inline_script_or_style_and_are_not_cached(app, analyst):
    ask(app, analyst, "今天天气怎么样", "摊贩", "违章搭建怎么举报")
    pages = ["/admin/", "/admin/clusters", "/admin/queries", "/admin/bank", "/admin/login"]
    for path in [*pages, "/admin/nope"]:
        response = analyst.get(path)
        html = response.text
        assert not re.search(r"\sstyle\s*=", html), path
        assert not re.search(r"<script(?![^>]*\ssrc=)", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store", path
        assert response.headers["X-Robots-Tag"] == "noindex, nofollow"


def test_console_404_is_a_chinese_page(admin):
    response = admin.get("/admin/nope")
    assert response.status_code == 404
    assert error_text(response.text) == ["您访问的页面不存在。"]


# --- dashboard -------------------------------------------------------------------


@pytest.fixture
def filled(app: Flask) -> dict[str, list[str]]:
    """8 questions today: 5 answered (3 + 2), 1 clarified, 2 not answered; 4 verdicts."""
    client = app.test_client()
    ids = {
        "building": ask(app, client, "违章搭建怎么举报", "违建", "邻居私搭乱建找谁"),
        "vendor": ask(app, client, "小摊贩占道", "占道经营投诉"),
        "weather": ask(app, client, "今天天气怎么样", "今天天气怎么样"),
        "clarify": ask(app, client, "摊贩"),
    }
    feedback(app, client, ids["building"][0], True)
    feedback(app, client, ids["building"][1], True)
    feedback(app, client, ids["building"][2], False)
    feedback(app, client, ids["vendor"][0], True)
    return ids


def test_dashboard_charts_show_the_logged_numbers(analyst, filled):
    html = analyst.get("/admin/").text
    day = today()

    daily = bars(svg(html, "chart-daily"))
    assert len(daily) == 30
    assert daily[0][0] == (day - timedelta(days=29)).isoformat()
    assert daily[-1] == (day.isoformat(), "8")
    assert {value for _, value in daily[:-1]} == {"0"}
    assert '<title id="chart-daily-title">每日提问数</title>' in html
    assert f"<title>{day.isoformat()}：8 次</title>" in html

    shares = svg(html, "chart-shares")
    today_segments = re.findall(
        rf'<rect class="seg seg-(\w+)"[^>]* data-label="{day}" data-series="\w+" '
        r'data-value="(\d+)"',
        shares,
    )
    assert today_segments == [("answer", "5"), ("clarify", "1"), ("fallback", "2")]
    assert len(bars(shares, "empty")) == 29
    assert "直接回答 62.5%（5）" in shares
    assert "反问澄清 12.5%（1）" in shares
    assert "未能回答 25%（2）" in shares

    assert bars(svg(html, "chart-top")) == [(BUILDING_Q, "3"), (VENDOR_Q, "2")]
    assert bars(svg(html, "chart-helpful")) == [(BUILDING_Q, "0.67"), (VENDOR_Q, "1")]

    stats = dict(re.findall(r'<p class="stat-value" id="stat-(\w+)">([^<]*)</p>', html))
    assert stats == {
        "total": "8",
        "answer": "5",
        "clarify": "1",
        "fallback": "2",
        "helpful": "75.0%",
    }
    rates = re.findall(
        r'<tr><td><span class="faq-id">([\w-]+)</span> [^<]*</td><td class="num">(\d+)</td>'
        r'<td class="num">(\d+)</td><td class="num">([^<]+)</td></tr>',
        html,
    )
    assert rates == [("building-report", "2", "1", "66.7%"), ("vendor-report", "1", "0", "100.0%")]


def test_dashboard_filters_by_date_range_and_type(analyst, filled):
    day = today()
    week = analyst.get(f"/admin/?from={day - timedelta(days=6)}&to={day}").text
    assert len(bars(svg(week, "chart-daily"))) == 7
    assert f"{day - timedelta(days=6)} 至 {day}（7 天，北京时间）" in week

    earlier = analyst.get(f"/admin/?from={day - timedelta(days=9)}&to={day - timedelta(days=1)}")
    daily = bars(svg(earlier.text, "chart-daily"))
    assert len(daily) == 9 and {v for _, v in daily} == {"0"}
    assert "这段时间还没有直接回答的提问。" in earlier.text

    fallback = analyst.get("/admin/?type=fallback").text
    assert bars(svg(fallback, "chart-daily"))[-1] == (day.isoformat(), "2")
    assert '<title id="chart-daily-title">每日未能回答的提问数</title>' in fallback
    assert '<option value="fallback" selected>未能回答</option>' in fallback


@pytest.mark.parametrize(
    ("query", "message", "days"),
    [
        (
            "from=2024-13-01",
            "开始日期“2024-13-01”无法识别，请按“年-月-日”填写，例如 2024-03-01。",
            30,
        ),
        ("to=tomorrow", "结束日期“tomorrow”无法识别，请按“年-月-日”填写，例如 2024-03-01。", 30),
        ("from=2024-03-10&to=2024-03-01", "开始日期晚于结束日期，已将两者对调。", 10),
        (
            "from=2020-01-01&to=2024-03-01",
            "日期范围最长 366 天，已改为截至结束日期的 366 天。",
            366,
        ),
        ("type=everything", "回复类型无效，已显示全部类型。", 30),
    ],
)
def test_bad_filters_are_explained_and_replaced(admin, query, message, days):
    html = admin.get(f"/admin/?{query}").text
    notices = re.findall(
        r'<div class="notice notice-warn" role="alert">\s*<ul><li>(.*?)</li>', html
    )
    assert notices == [message]
    assert len(bars(svg(html, "chart-daily"))) == days


def test_filters_read_china_time_days():
    f = parse_filters({"from": "2024-03-01", "to": "2024-03-02"}, today=today(), max_days=366)
    assert f.since.isoformat() == "2024-02-29T16:00:00+00:00"
    assert f.until.isoformat() == "2024-03-02T16:00:00+00:00"
    assert f.days == 2
    assert f.slug() == "2024-03-01_2024-03-02"


# --- clusters ----------------------------------------------------------------------


def test_clusters_page_groups_repeated_unanswered_questions(app, analyst):
    ask(
        app,
        analyst,
        "今天天气怎么样",
        "今天天气怎么样",
        "今天天气如何",
        "今天天气怎么样？",
        "摊贩",
        "共享单车乱停 13812345678",
        "违章搭建怎么举报",
    )
    html = analyst.get("/admin/clusters").text
    assert '<p class="summary" id="cluster-summary">共 3 类、6 次提问。</p>' in html
    heads = re.findall(
        r'<span class="count">(\d+) 次提问</span><span class="distinct">(\d+) 种问法</span>', html
    )
    assert heads == [("4", "3"), ("1", "1"), ("1", "1")]
    first = html[html.index('id="cluster-1"') : html.index('id="cluster-2"')]
    # Most asked first; equally asked, the most recent first.
    assert re.findall(r"<li>([^<]+)</li>", first) == [
        "今天天气怎么样",
        "今天天气怎么样？",
        "今天天气如何",
    ]
    day = today().isoformat()
    assert f"首次 {day} " in first and f"最近 {day} " in first
    assert '<span class="tag tag-new">建议新建条目</span>' in first
    pre = re.search(r'<pre id="yaml-1"[^>]*>(.*?)</pre>', first, re.S).group(1)
    assert pre.startswith("# 4 次提问，题库里没有足够接近的条目。")
    assert "  - id: TODO\n    question: 今天天气怎么样\n    alternates:\n" in pre
    assert (
        '<button type="button" class="button button-small copy" data-copy="yaml-1" '
        'aria-label="复制第 1 类的 YAML 片段" hidden>复制</button>' in first
    )

    # A clarified question close to an entry: proposed as that entry's alternate.
    stall = next(part for part in html.split('<li class="cluster"') if "<li>摊贩</li>" in part)
    assert f'<span class="faq-id">vendor-report</span> {VENDOR_Q}' in stall
    assert '<span class="tag tag-alt">建议加为相似问法</span>' in stall
    assert "# 把下面几行加到条目 vendor-report 的 alternates: 下：\n      - 摊贩\n" in stall

    assert "13812345678" not in html
    assert "共享单车乱停 [手机号]" in html
    assert "违章搭建怎么举报" not in html  # answered well


def test_clusters_page_without_unanswered_questions(analyst):
    html = analyst.get("/admin/clusters").text
    assert "这段时间没有未能回答的提问。" in html
    assert "共 0 类、0 次提问。" in html


def test_clusters_page_lists_the_wordings_visitors_chose_an_answer_for(app, analyst):
    [clarify] = ask(app, analyst, "摊贩")
    body = {"q": VENDOR_Q, "faq_id": "vendor-report", "from_query_id": clarify}
    assert analyst.post("/api/ask", json=body).status_code == 200
    app.extensions["xiaocheng"].querylog.flush()
    html = analyst.get("/admin/clusters").text
    section = html[html.index('<section class="learned"') :]
    assert '<p class="summary" id="learned-summary">共 1 个条目。</p>' in section
    rows = re.findall(r"<tr>(.*?)</tr>", section[section.index("<tbody>") :], re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert cells[0] == [f"<code>vendor-report</code> {VENDOR_Q}", "摊贩", "1", "0"]
    pre = re.search(r'<pre id="learned-yaml-1"[^>]*>(.*?)</pre>', section, re.S).group(1)
    assert "# 把下面几行加到条目 vendor-report 的 alternates: 下：\n      - 摊贩\n" in pre


def test_clusters_page_without_chosen_wordings(analyst):
    html = analyst.get("/admin/clusters").text
    assert "这段时间没有访客自己选出答案的问法。" in html
    assert '<table id="learned-table">' not in html


# --- suggestions inbox and history --------------------------------------------------


@pytest.fixture
def curator(make_app: Callable[..., Flask], faq_dir: Path, tmp_path: Path) -> tuple[Flask, Path]:
    """An app on a writable copy of the mini bank, with an index of its own."""
    index = tmp_path / "own-index" / "index.pkl"
    index.parent.mkdir()
    return make_app(FAQ_DIR=str(faq_dir), INDEX_PATH=str(index)), faq_dir


def _choose(app: Flask, client: FlaskClient, q: str) -> dict[str, str]:
    """Ask ``q`` (a clarify) and click its first choice, as the widget does; the choice."""
    reply = client.post("/api/ask", json={"q": q}).get_json()
    assert reply["type"] == "clarify", reply
    choice = reply["suggestions"][0]
    body = {"q": choice["question"], "faq_id": choice["id"], "from_query_id": reply["query_id"]}
    assert client.post("/api/ask", json=body).status_code == 200
    app.extensions["xiaocheng"].querylog.flush()
    return choice


def _rows(html: str, table: str) -> list[list[str]]:
    body = html[html.index(f'<table id="{table}">') :]
    body = body[body.index("<tbody>") : body.index("</tbody>")]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in rows]  # fmt: skip


def test_accepting_a_suggestion_changes_the_live_answer_and_only_that_line(curator):
    app, faq_dir = curator
    analyst = logged_in(app)
    choice = _choose(app, analyst, "拆除吗")
    page = analyst.get("/admin/suggestions").text
    [row] = [r for r in _rows(page, "suggestion-table") if r[0] == "拆除吗"]
    assert row[1] == f"{choice['id']} {choice['question']}"
    assert row[2] == "访客点选 1 次；聚类 1 次提问"  # both paths propose it
    assert row[3] == "反问澄清"

    path = faq_dir / "building.yaml"
    before = path.read_text(encoding="utf-8").splitlines()
    form = {"csrf_token": token_of(page), "faq_id": choice["id"], "wording": "拆除吗"}
    response = analyst.post("/admin/suggestions/accept", data=form)
    assert response.status_code == 200
    assert f"已把“拆除吗”加为条目 <code>{choice['id']}</code> 的相似问法，题库已重新加载" in (
        response.text
    )
    after = path.read_text(encoding="utf-8").splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(after) == len(before) and len(changed) == 1
    old, new = changed[0]
    assert new.startswith("    alternates: [") and new.replace(", 拆除吗]", "]") == old

    # The live bot answers it now, without a restart; the suggestion is gone by itself.
    reply = analyst.post("/api/ask", json={"q": "拆除吗"}).get_json()
    assert (reply["type"], reply["faq"]["id"]) == ("answer", choice["id"])
    page = analyst.get("/admin/suggestions").text
    assert "拆除吗" not in "".join(r[0] for r in _rows_or_empty(page))
    history = _rows(analyst.get("/admin/history").text, "history-table")
    assert history[0][1:6] == ["采纳建议", choice["id"], "拆除吗", "+ 拆除吗", "building.yaml"]
    assert history[0][6] == "分析后台（127.0.0.1）"


def _rows_or_empty(html: str) -> list[list[str]]:
    return _rows(html, "suggestion-table") if 'id="suggestion-table"' in html else []


def test_a_rejected_suggestion_is_not_proposed_again(curator):
    app, faq_dir = curator
    analyst = logged_in(app)
    ask(app, analyst, "摊贩")  # a clarify close to vendor-report: a cluster proposal
    page = analyst.get("/admin/suggestions").text
    [row] = [r for r in _rows(page, "suggestion-table") if r[0] == "摊贩"]
    assert row[1].startswith("vendor-report ") and row[2] == "聚类 1 次提问"
    unchanged = {p.name: p.read_bytes() for p in faq_dir.glob("*.yaml")}
    form = {"csrf_token": token_of(page), "faq_id": "vendor-report", "wording": "摊贩"}
    response = analyst.post("/admin/suggestions/reject", data=form)
    assert "已记下：不再建议把“摊贩”加给条目 <code>vendor-report</code>。" in response.text
    assert "摊贩" not in [r[0] for r in _rows_or_empty(response.text)]
    ask(app, analyst, "摊贩")
    assert "摊贩" not in [r[0] for r in _rows_or_empty(analyst.get("/admin/suggestions").text)]
    assert {p.name: p.read_bytes() for p in faq_dir.glob("*.yaml")} == unchanged
    history = _rows(analyst.get("/admin/history").text, "history-table")
    assert history[0][1:4] == ["不采纳", "vendor-report", "摊贩"]


def test_a_suggestion_for_an_unknown_entry_or_without_a_token_is_refused(curator):
    app, _ = curator
    analyst = logged_in(app)
    page = analyst.get("/admin/suggestions").text
    assert "这段时间没有待处理的问法建议。" in page
    form = {"csrf_token": token_of(page), "faq_id": "no-such-faq", "wording": "拆除吗"}
    response = analyst.post("/admin/suggestions/accept", data=form)
    assert response.status_code == 400
    assert "这条建议已无法处理（条目不存在或问法为空），请刷新页面后再试。" in response.text
    del form["csrf_token"]
    assert analyst.post("/admin/suggestions/reject", data=form).status_code == 400
    assert "还没有在后台修改过题库。" in analyst.get("/admin/history").text


# --- question list ---------------------------------------------------------------


def test_queries_are_listed_newest_first_with_paging_and_filters(make_app):
    app = make_app(ADMIN_PAGE_SIZE=3)
    client = app.test_client()
    asked = [
        "违建",
        "小摊贩占道",
        "今天天气怎么样",
        "摊贩",
        "夜市太吵了",
        "社保怎么交",
        "违建",
        "hello",
    ]
    ask(app, client, *asked)
    login(client)

    def questions(html: str) -> list[str]:
        return re.findall(r'<td class="question">([^<]*)</td>', html)

    first = client.get("/admin/queries").text
    assert questions(first) == asked[::-1][:3]
    assert "共 8 条，第 1 / 3 页" in first
    day, start = today(), today() - timedelta(days=29)
    second = client.get(f"/admin/queries?from={start}&to={day}&page=2").text
    assert questions(second) == asked[::-1][3:6]
    assert f'href="/admin/queries?from={start}&amp;to={day}&amp;page=3" rel="next"' in second
    assert f'href="/admin/queries?from={start}&amp;to={day}&amp;page=1" rel="prev"' in second
    assert questions(client.get("/admin/queries?page=99").text) == asked[::-1][6:]
    assert questions(client.get("/admin/queries?page=x").text) == asked[::-1][:3]

    fallback = client.get("/admin/queries?type=fallback").text
    assert questions(fallback) == ["社保怎么交", "今天天气怎么样"]
    assert "共 2 条，第 1 / 1 页" in fallback
    assert '<span class="type type-fallback">未能回答</span>' in fallback
    assert (
        f'href="/admin/export/queries.csv?from={start}&amp;to={day}&amp;type=fallback"' in fallback
    )
    answered = client.get("/admin/queries?type=answer&page=2").text
    assert questions(answered) == ["小摊贩占道", "违建"]
    assert (
        f'<a class="faq-id" href="/admin/faq/vendor-report">vendor-report</a> {VENDOR_Q}'
        in answered
    )

    empty = client.get(f"/admin/queries?to={day - timedelta(days=1)}").text
    assert "没有符合条件的咨询记录。" in empty


# --- bank reload -----------------------------------------------------------------------

NEW_ENTRY = """
  - id: sidewalk-parking
    question: 人行道上乱停车谁管？
    answer: 请拨打{hotline}反映。
"""


def test_reload_serves_a_good_bank_and_refuses_a_broken_one(make_app, faq_dir, tmp_path):
    app = make_app(FAQ_DIR=str(faq_dir), INDEX_PATH=str(tmp_path / "own-index.pkl"))
    client = logged_in(app)
    assert '<dd id="bank-faqs">5 条</dd>' in client.get("/admin/bank").text

    with (faq_dir / "street.yaml").open("a", encoding="utf-8") as f:
        f.write(NEW_ENTRY)
    token = token_of(client.get("/admin/bank").text)
    response = client.post("/admin/reload", data={"csrf_token": token})
    assert response.status_code == 200
    assert "题库已重新加载：6 条问答" in response.text
    assert '<dd id="bank-faqs">6 条</dd>' in response.text
    reply = client.post("/api/ask", json={"q": "人行道上乱停车谁管"}).get_json()
    assert reply["faq"]["id"] == "sidewalk-parking"

    (faq_dir / "broken.yaml").write_text("category: 测试\nfaqs:\n  - id: [\n", encoding="utf-8")
    response = client.post("/admin/reload", data={"csrf_token": token})
    assert response.status_code == 422
    assert "题库有 1 处错误，未加载，继续使用原题库。" in response.text
    assert re.search(r"<li><code>[^<]*broken\.yaml[^<]*</code></li>", response.text)
    assert '<dd id="bank-faqs">6 条</dd>' in response.text
    assert client.post("/api/ask", json={"q": "违建"}).get_json()["type"] == "answer"

    response = client.post(
        "/admin/reload", headers={"X-CSRF-Token": token, "Accept": "application/json"}
    )
    assert response.status_code == 422
    body = response.get_json()
    assert body["ok"] is False and len(body["errors"]) == 1


# --- CSV exports -----------------------------------------------------------------------


FORMULAS = ['=HYPERLINK("http://x.test","点我")', "+1 违建", "-违建", "@小城 你好"]


def test_queries_csv_is_masked_guarded_and_opens_in_excel(app, analyst):
    asked = ["违章搭建怎么举报", "我的电话是 138-1234-5678，车牌粤B12345", *FORMULAS]
    ask(app, analyst, *asked)
    response = analyst.get("/admin/export/queries.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    day = today()
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="queries_{day - timedelta(days=29)}_{day}.csv"'
    )
    body = response.data
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert text.startswith("时间（北京时间）,问题,回复类型,问答编号,匹配的问答,得分\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == QUERY_CSV_HEADER
    stamps = [row[0] for row in rows[1:]]
    assert all(re.fullmatch(rf"{day} \d\d:\d\d:\d\d", s) for s in stamps), stamps
    got = [row[1:] for row in rows[1:]]
    replies = {row[0]: row for row in got}
    assert [row[0] for row in got] == [
        "'@小城 你好",
        "'-违建",
        "'+1 违建",
        '\'=HYPERLINK("http://x.test","点我")',
        "我的电话是 [手机号]，车牌[车牌号]",
        "违章搭建怎么举报",
    ]
    answered = replies["违章搭建怎么举报"]
    assert answered[1:4] == ["直接回答", "building-report", BUILDING_Q]
    assert re.fullmatch(r"0\.\d{4}|1\.0000", answered[4])
    assert "1234" not in text and "B12345" not in text
    # The quoted formula cell as it is on disk.
    assert '"\'=HYPERLINK(""http://x.test"",""点我"")"' in text


def test_queries_csv_follows_the_filters(app, analyst):
    ask(app, analyst, "违建", "今天天气怎么样", "社保怎么交")
    day = today()
    response = analyst.get(f"/admin/export/queries.csv?from={day}&to={day}&type=fallback")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="queries_{day}_{day}_fallback.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [row[1] for row in rows[1:]] == ["社保怎么交", "今天天气怎么样"]
    earlier = analyst.get(f"/admin/export/queries.csv?to={day - timedelta(days=1)}")
    assert (
        earlier.data.decode("utf-8-sig")
        == "时间（北京时间）,问题,回复类型,问答编号,匹配的问答,得分\r\n"
    )


def test_queries_csv_names_an_faq_no_longer_in_the_bank_by_its_id(app, analyst):
    log = app.extensions["xiaocheng"].querylog
    log.log_query("旧条目的问题", reply_type="answer", faq_id="=gone-faq", score=0.9)
    log.log_query("违章搭建怎么举报", reply_type="answer", faq_id="building-report", score=0.9)
    log.flush()
    rows = list(csv.reader(io.StringIO(analyst.get("/admin/export/queries.csv").data.decode())))
    assert [row[1:] for row in rows[1:]] == [
        ["违章搭建怎么举报", "直接回答", "building-report", BUILDING_Q, "0.9000"],
        ["旧条目的问题", "直接回答", "'=gone-faq", "", "0.9000"],
    ]


def test_clusters_csv(app, analyst):
    ask(
        app,
        analyst,
        "今天天气怎么样",
        "今天天气怎么样",
        "今天天气如何",
        "摊贩",
        "=SUM(A1) 13812345678",
    )
    response = analyst.get("/admin/export/clusters.csv?type=answer")
    day = today()
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="clusters_{day - timedelta(days=29)}_{day}.csv"'
    )
    assert response.data.startswith(b"\xef\xbb\xbf")
    text = response.data.decode("utf-8-sig")
    assert text.startswith(
        "序号,提问次数,问法数,首次提问（北京时间）,最近提问（北京时间）,最接近的问答编号,"
        "最接近的问答,相似度,建议,例句\r\n"
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert [(r[0], r[1], r[2], r[8], r[9]) for r in rows[1:]] == [
        ("1", "3", "2", "新建条目", "今天天气怎么样 | 今天天气如何"),
        ("2", "1", "1", "新建条目", "'=SUM(A1) [手机号]"),
        ("3", "1", "1", "加为相似问法", "摊贩"),
    ]
    assert rows[3][5:8] == ["vendor-report", VENDOR_Q, rows[3][7]]
    assert float(rows[3][7]) >= 0.4
    assert all(re.fullmatch(rf"{day} \d\d:\d\d", r[3]) for r in rows[1:])
    assert "13812345678" not in text


def test_bank_page_lists_the_entries_due_for_review(make_app, faq_dir, tmp_path):
    (faq_dir / "review.yaml").write_text("max_age_days: 100000\n", encoding="utf-8")
    app = make_app(FAQ_DIR=str(faq_dir), INDEX_PATH=str(tmp_path / "own-index.pkl"))
    page = logged_in(app).get("/admin/bank").text
    assert "超过 100000 天未复核" in page
    # building-report was reviewed on 2026-11-01; building-demolish never was.
    assert (
        "<code>building-demolish</code></a></td><td>违法建筑会被强制拆除吗？</td><td>从未复核"
        in page
    )
    assert "<code>building-report</code>" not in page


def test_queries_can_be_searched_and_read_as_one_visitors_conversation(make_app):
    app = make_app()
    client = app.test_client()
    for q, visitor in [
        ("小摊贩占道", "visitor-a"),
        ("违建", "visitor-b"),
        ("那罚多少钱", "visitor-a"),
        ("摊贩", "visitor-b"),
        ("谢谢", "visitor-a"),
    ]:
        assert client.post("/api/ask", json={"q": q, "session": visitor}).status_code == 200
    app.extensions["xiaocheng"].querylog.flush()
    login(client)

    def questions(html: str) -> list[str]:
        return re.findall(r'<td class="question">([^<]*)</td>', html)

    found = client.get("/admin/queries?text=摊贩").text
    assert questions(found) == ["摊贩", "小摊贩占道"]
    assert "共 2 条，第 1 / 1 页" in found
    assert 'name="text" type="search" value="摊贩"' in found
    assert "text=%E6%91%8A%E8%B4%A9" in found  # the CSV export keeps the search
    assert questions(client.get("/admin/queries?text=100%25").text) == []  # LIKE escaped

    links = re.findall(r'href="(/admin/queries\?[^"]*session=[0-9a-f]+[^"]*)"', found)
    assert len(links) == 2
    conversation = client.get(links[1].replace("&amp;", "&")).text  # 小摊贩占道's session
    assert questions(conversation) == ["小摊贩占道", "那罚多少钱", "谢谢"]  # oldest first
    assert "正在查看一位访客的会话" in conversation and "visitor-a" not in conversation
    csv_link = re.search(r'href="(/admin/export/queries\.csv\?[^"]*)"', conversation).group(1)
    rows = list(csv.reader(io.StringIO(client.get(csv_link.replace("&amp;", "&")).text)))
    assert [r[1] for r in rows[1:]] == ["谢谢", "那罚多少钱", "小摊贩占道"]  # the same session

    bad = client.get("/admin/queries?session=NOT-A-SESSION").text
    assert "会话编号无效，已显示全部会话。" in bad
    assert len(questions(bad)) == 5


def _seed_a_spike(app: Flask, faq_id: str, n: int) -> None:
    """``n`` answers with ``faq_id`` now (today, China time)."""
    log = app.extensions["xiaocheng"].querylog
    for _ in range(n):
        log.log_query("违建", reply_type="answer", faq_id=faq_id, score=0.9)
    log.flush()


def test_the_dashboard_shows_todays_spikes(app, analyst):
    assert 'id="spikes"' not in analyst.get("/admin/").text
    _seed_a_spike(app, "building-report", 12)
    html = analyst.get("/admin/").text
    assert '<h2 id="h-spikes">今天提问明显增多的问答</h2>' in html
    assert f"<li><code>building-report</code> {BUILDING_Q}：今天 12 次，平时约 0.0 次</li>" in html


# --- the first views prepared in the background (bot/web/admin/warm.py) ------------


def _counted_days(app: Flask) -> int:
    engine = sa.create_engine(app.config["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM summary_days").scalar_one())
    finally:
        engine.dispose()


def _warmed(app: Flask) -> threading.Thread:
    thread = app.extensions["xiaocheng_admin_warm"].thread
    assert thread is not None, "no warming thread was started"
    thread.join(timeout=30)
    assert not thread.is_alive(), "the warming thread did not finish in 30 s"
    return thread


def test_the_first_console_request_prepares_the_year_and_the_suggestions(make_app) -> None:
    app = make_app(ADMIN_WARM=True)
    service = app.extensions["xiaocheng"]
    now = datetime.now(UTC)
    for age in (3, 2):
        service.querylog.log_query(
            "马路上天天有人摆摊卖菜", reply_type="fallback", score=0.05,
            created_at=now - timedelta(days=age),
        )  # fmt: skip
    service.querylog.flush()
    assert _counted_days(app) == 0
    app.test_client().get("/admin/login")  # before anyone has logged in
    first = _warmed(app)
    assert _counted_days(app) == 365  # every closed day of the longest range (366 days)
    assert "马路上天天有人摆摊卖菜" in analysis_report._ASKED[service.bot]
    logged_in(app).get("/admin/")
    assert app.extensions["xiaocheng_admin_warm"].thread is first  # warm: not again

    service.swap_bot(Bot.load(MINI_FAQ, index_path=app.config["INDEX_PATH"],
                              cache_dir=app.config["CACHE_DIR"]))  # fmt: skip
    app.test_client().get("/admin/login")
    assert _warmed(app) is not first  # a new bank is warmed again
    assert "马路上天天有人摆摊卖菜" in analysis_report._ASKED[service.bot]


def test_no_warming_when_switched_off(make_app) -> None:
    app = make_app(ADMIN_WARM=False)
    app.test_client().get("/admin/login")
    assert app.extensions["xiaocheng_admin_warm"].thread is None
    assert _counted_days(app) == 0


def test_warming_against_a_broken_log_is_one_warning(make_app, caplog) -> None:
    app = make_app(ADMIN_WARM=True)
    service = app.extensions["xiaocheng"]
    engine = sa.create_engine(app.config["DATABASE_URL"])
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE summary_days")
    engine.dispose()
    with caplog.at_level("WARNING", logger="bot.web.admin.warm"):
        app.test_client().get("/admin/login")
        _warmed(app)
    warnings = [r for r in caplog.records if r.name == "bot.web.admin.warm"]
    assert len(warnings) == 1 and "summary_days" in warnings[0].getMessage()
    assert warnings[0].exc_info is None
    assert service.bot is not None
