"""The console's door under attack, on real apps: lockouts after failed logins counted in
a real Redis shared by two apps (two workers or nodes), brute force from many addresses,
sessions revoked server-side (logout, a new password), one login valid on every node;
and the same against a real gunicorn with two workers."""

from __future__ import annotations

import http.client
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_admin as admin_tests
from flask import Flask
from flask.testing import FlaskClient
from gunicorn_server import gunicorn
from test_admin import PASSWORD, error_text, login, token_of
from werkzeug.security import generate_password_hash

from bot.web.admin.auth import (
    MSG_LOCKED,
    MSG_LOGIN_REQUIRED,
    MSG_SESSIONS_DOWN,
    MSG_WRONG_PASSWORD,
    wait_text,
)
from bot.web.admin.sessions import TABLE

COOKIE = "session"
# The lockout off: tests of other parts of the door set only what they need.
NO_LOCKOUT = {"ADMIN_LOGIN_FAILURES_PER_ADDRESS": 0, "ADMIN_LOGIN_FAILURES_PER_ACCOUNT": 0}


@pytest.fixture(scope="module")
def index_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("door-index") / "index.pkl"


@pytest.fixture
def make_app(tmp_path: Path, jieba_cache: Path, index_path: Path) -> Iterator[Callable[..., Flask]]:
    """Apps of the test's own; ``instance`` names the instance folder (apps given the
    same one share its query log database and secret key, like nodes configured alike)."""
    apps: list[Flask] = []

    def make(instance: str = "", **overrides: Any) -> Flask:
        folder = tmp_path / (instance or f"instance{len(apps)}")
        app = admin_tests._create(folder, jieba_cache, index_path, **overrides)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["xiaocheng"].close()


def attempt(client: FlaskClient, password: str, address: str = "127.0.0.1", **kwargs: Any):
    """A login from ``address`` (the socket's address, as a test client sends it)."""
    environ = {"REMOTE_ADDR": address}
    token = token_of(client.get("/admin/login", environ_base=environ).text)
    data = {"password": password, "csrf_token": token}
    return client.post("/admin/login", data=data, environ_base=environ, **kwargs)


def locked(response, seconds: int) -> bool:
    """Whether ``response`` is the lockout's 429 with a wait of ``seconds``."""
    assert response.status_code == 429, response.text
    assert error_text(response.text) == [MSG_LOCKED.format(wait=wait_text(seconds))]
    return int(response.headers["Retry-After"]) == seconds


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE, path="/admin")
    assert cookie is not None
    return cookie.value


def replay(app: Flask, value: str) -> FlaskClient:
    """A new client that sends the session cookie ``value``."""
    client = app.test_client()
    client.set_cookie(COOKIE, value, path="/admin")
    return client


# --- lockouts -------------------------------------------------------------------


def test_wait_text():
    assert [wait_text(s) for s in (0.2, 1, 59, 59.5, 60, 61, 3600)] == [
        "1秒",
        "1秒",
        "59秒",
        "1分钟",
        "1分钟",
        "2分钟",
        "60分钟",
    ]
    assert MSG_LOCKED.format(wait="1分钟") == "密码错误次数过多，登录已暂停，请1分钟后再试。"


def test_failed_logins_are_refused_at_once_then_locked_out(make_app):
    app = make_app(ADMIN_LOGIN_FAILURES_PER_ADDRESS=3, ADMIN_LOGIN_LOCKOUT_S=60)
    client = app.test_client()
    started = time.perf_counter()
    for _ in range(2):
        response = attempt(client, "wrong password")
        assert response.status_code == 401
        assert error_text(response.text) == [MSG_WRONG_PASSWORD]
    assert locked(attempt(client, "wrong password"), 60)  # the third failure locks
    # Refused at once, the right password too (it is not even checked).
    assert locked(attempt(client, PASSWORD), 60)
    assert time.perf_counter() - started < 2  # no failure waits in the worker
    response = attempt(client, PASSWORD, headers={"Accept": "application/json"})
    assert response.status_code == 429
    assert response.get_json() == {
        "error": {
            "code": "login_locked",
            "message": "密码错误次数过多，登录已暂停，请1分钟后再试。",
        }
    }
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["Cache-Control"] == "no-store"
    # The lockout is the address's: another one logs in.
    assert attempt(client, PASSWORD, "192.0.2.9").status_code == 302


def test_failures_on_one_worker_count_on_the_other(make_app, shared_limits):
    settings = {**shared_limits, "ADMIN_LOGIN_FAILURES_PER_ADDRESS": 4}
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    assert attempt(one, "wrong 1").status_code == 401
    assert attempt(two, "wrong 2").status_code == 401
    assert attempt(one, "wrong 3").status_code == 401
    assert locked(attempt(two, "wrong 4"), 60)
    assert locked(attempt(one, PASSWORD), 60)
    # An app on memory:// keeps its own counts: this one has seen no failure.
    assert attempt(make_app().test_client(), PASSWORD).status_code == 302


def test_brute_force_from_many_addresses_locks_the_account(make_app, shared_limits):
    settings = {
        **shared_limits,
        "ADMIN_LOGIN_FAILURES_PER_ADDRESS": 5,
        "ADMIN_LOGIN_FAILURES_PER_ACCOUNT": 12,
        "ADMIN_LOGIN_LOCKOUT_S": 120,
    }
    direct = make_app(**settings).test_client()
    proxied = make_app(**settings, TRUST_PROXY=1).test_client()  # behind one proxy
    codes = []
    for i in range(6):
        codes.append(attempt(direct, f"guess {i}", f"198.51.100.{i}").status_code)
        headers = {"X-Forwarded-For": f"203.0.113.{i}"}
        codes.append(attempt(proxied, f"guess {i}", "10.0.0.1", headers=headers).status_code)
    assert codes == [401] * 11 + [429]  # no address failed more than once
    # The account is locked, whatever the address and whatever the password.
    assert locked(attempt(direct, PASSWORD, "192.0.2.50"), 120)
    headers = {"X-Forwarded-For": "192.0.2.51"}
    assert locked(attempt(proxied, PASSWORD, "10.0.0.1", headers=headers), 120)


def test_the_right_password_works_again_when_the_lockout_ends(make_app, shared_limits):
    app = make_app(
        **shared_limits,
        ADMIN_LOGIN_FAILURES_PER_ADDRESS=2,
        ADMIN_LOGIN_FAILURE_WINDOW_S=30,
        ADMIN_LOGIN_LOCKOUT_S=1,
        ADMIN_LOGIN_LOCKOUT_MAX_S=2,
    )
    client = app.test_client()
    assert attempt(client, "wrong").status_code == 401
    assert locked(attempt(client, "wrong"), 1)
    assert locked(attempt(client, PASSWORD), 1)
    time.sleep(1.2)
    response = attempt(client, PASSWORD)
    assert response.status_code == 302  # the failures were forgotten with the lockout
    token = token_of(client.get("/admin/").text)
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    # The next lockout within the window lasts twice as long, at most the maximum.
    assert attempt(client, "wrong").status_code == 401
    assert locked(attempt(client, "wrong"), 2)
    time.sleep(1.2)
    assert attempt(client, PASSWORD).status_code == 429
    time.sleep(1.0)
    assert attempt(client, PASSWORD).status_code == 302


def test_login_attempts_are_rate_limited_across_workers(make_app, shared_limits):
    settings = {**shared_limits, **NO_LOCKOUT}
    settings.update(RATELIMIT_ENABLED=True, ADMIN_LOGIN_RATELIMIT="3/minute")
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    assert attempt(one, "wrong").status_code == 401
    assert attempt(two, "wrong").status_code == 401
    assert attempt(one, "wrong").status_code == 401
    response = attempt(two, PASSWORD)
    assert response.status_code == 429
    assert error_text(response.text) == ["登录尝试过于频繁，请稍后再试。"]
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_the_lockout_counts_in_memory_while_its_storage_is_down(make_app, caplog):
    app = make_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1", ADMIN_LOGIN_FAILURES_PER_ADDRESS=2)
    client = app.test_client()
    assert attempt(client, "wrong").status_code == 401
    assert locked(attempt(client, "wrong"), 60)
    assert "the login throttle's storage is unreachable" in caplog.text


# --- sessions kept server-side -------------------------------------------------------


def test_a_cookie_replayed_after_logout_is_refused(make_app):
    app = make_app()
    client = app.test_client()
    assert login(client).status_code == 302
    value = cookie_of(client)
    token = token_of(client.get("/admin/").text)
    assert replay(app, value).get("/admin/").status_code == 200  # the cookie is the login
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302

    stolen = replay(app, value)
    response = stolen.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=/admin/"
    headers = {"X-CSRF-Token": token, "Accept": "application/json"}
    response = replay(app, value).post("/admin/reload", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {
        "error": {"code": "login_required", "message": MSG_LOGIN_REQUIRED}
    }


def test_a_login_works_on_every_node_and_ends_on_all(make_app):
    # Two nodes configured alike: one database, one SECRET_KEY.
    key = "the same key on every node"
    first = make_app("node1", SECRET_KEY=key)
    second = make_app("node2", DATABASE_URL=first.config["DATABASE_URL"], SECRET_KEY=key)
    on_first = first.test_client()
    assert login(on_first).status_code == 302
    on_second = replay(second, cookie_of(on_first))
    assert on_second.get("/admin/").status_code == 200
    token = token_of(on_second.get("/admin/").text)
    assert on_second.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert on_first.get("/admin/").status_code == 302  # logged out on the other node


def test_a_new_password_revokes_the_old_sessions(make_app):
    app = make_app()
    client = app.test_client()
    assert login(client).status_code == 302
    old = app.config["ADMIN_PASSWORD_HASH"]
    app.config["ADMIN_PASSWORD_HASH"] = generate_password_hash("新口令 1", method="pbkdf2:sha256:1")
    assert client.get("/admin/").status_code == 302
    app.config["ADMIN_PASSWORD_HASH"] = old
    assert client.get("/admin/").status_code == 302  # its record is gone, not just hidden

    # A node started with the new password ends the other nodes' old logins at once.
    assert login(client).status_code == 302
    url, key = app.config["DATABASE_URL"], app.config["SECRET_KEY"]
    new_hash = generate_password_hash("新口令 2", method="pbkdf2:sha256:1")
    make_app(DATABASE_URL=url, SECRET_KEY=key, ADMIN_PASSWORD_HASH=new_hash)
    assert client.get("/admin/").status_code == 302


def test_unreachable_session_records_get_a_chinese_503(make_app):
    app = make_app()
    client = app.test_client()
    assert login(client).status_code == 302
    database = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        conn.execute(f"DROP TABLE {TABLE}")
    response = client.get("/admin/")
    assert response.status_code == 503
    assert error_text(response.text) == [MSG_SESSIONS_DOWN]
    response = client.get("/admin/queries", headers={"Accept": "application/json"})
    assert response.get_json() == {
        "error": {"code": "sessions_unavailable", "message": MSG_SESSIONS_DOWN}
    }


# --- a real gunicorn ------------------------------------------------------------------


class Browser:
    """One visitor of the console over HTTP, from its own loopback address, keeping the cookie."""

    def __init__(self, port: int, address: str = "127.0.0.1") -> None:
        self.port, self.address, self.cookie = port, address, ""

    def request(self, method: str, path: str, body: str = "", **headers: str):
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=30, source_address=(self.address, 0)
        )
        try:
            if self.cookie:
                headers["Cookie"] = self.cookie
            if body:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body.encode(), headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8")
        finally:
            conn.close()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, text

    def token(self, path: str = "/admin/login") -> str:
        return token_of(self.request("GET", path)[1])

    def login(self, password: str) -> int:
        token = self.token()
        body = f"password={password}&csrf_token={token}"
        return self.request("POST", "/admin/login", body)[0]


def test_brute_force_and_replay_against_gunicorn(shared_limits, faq_dir, tmp_path, jieba_cache):
    password = "s3cret-word"  # a form-safe password: the body is sent as typed
    settings = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "FAQ_DIR": str(faq_dir),
        "CACHE_DIR": str(jieba_cache),
        "ADMIN_PASSWORD_HASH": generate_password_hash(password, method="pbkdf2:sha256:1000"),
        "ADMIN_LOGIN_FAILURES_PER_ACCOUNT": "20",
        "RATELIMIT_READ": "1000/minute",
        **shared_limits,
    }
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(log_path, settings=settings, workers=2) as (port, _proc):
        # A login, its logout, and the cookie replayed: refused by both workers.
        analyst = Browser(port)
        assert analyst.login(password) == 302
        stolen = analyst.cookie
        token = analyst.token("/admin/")
        assert analyst.request("POST", "/admin/logout", f"csrf_token={token}")[0] == 302
        thief = Browser(port)
        for _ in range(4):
            thief.cookie = stolen
            assert thief.request("GET", "/admin/")[0] == 302
            thief.cookie = stolen
            assert thief.request("POST", "/admin/reload", **{"X-CSRF-Token": token})[0] == 401

        # 20 addresses guess twice each while a visitor keeps asking for /api/hot.
        visits: list[tuple[int, float]] = []
        done = threading.Event()

        def visit() -> None:
            visitor = Browser(port)
            while not done.is_set():
                started = time.perf_counter()
                status = visitor.request("GET", "/api/hot")[0]
                visits.append((status, time.perf_counter() - started))

        visitor = threading.Thread(target=visit)
        visitor.start()
        try:
            codes = [
                Browser(port, f"127.0.0.{10 + i}").login(f"guess-{round}-{i}")
                for round in range(2)
                for i in range(20)
            ]
        finally:
            done.set()
            visitor.join()
        assert codes == [401] * 19 + [429] * 21  # the account locks at its 20th failure
        assert Browser(port, "127.0.0.99").login(password) == 429
        assert visits and {status for status, _ in visits} == {200}
        assert max(seconds for _, seconds in visits) < 1.0  # no failure holds a worker
    log = log_path.read_text("utf-8", "replace")
    assert "Traceback" not in log
    assert len(re.findall(r"account:admin locked out of the console for 60 s", log)) == 1
