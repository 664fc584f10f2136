"""The query log under real faults, against a real gunicorn: no answered question is lost.

Each test counts the rows sent (answered asks), stored (in the configured
database once the fault is over) and the requests that failed, and prints them
(``pytest -s``). Faults: a PostgreSQL database refusing every connection
(``ALLOW_CONNECTIONS false`` and its sessions ended) for longer than the old
in-memory queue, with a worker killed and the server restarted meanwhile;
``kill -9`` of workers under load; an SQLite file that cannot be written
(immutable, or read-only when not root) made writable again; an SQLite
database on a full file system (a 1 MB tmpfs, filled). PostgreSQL is the server
at 127.0.0.1:5432, in a database each test creates and drops.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from gunicorn_server import children, gunicorn, wait_for
from pg_database import fresh_database

from bot.querylog import QueryLog
from bot.web.errors import LOG_UNAVAILABLE

MINI_FAQ = Path(__file__).parent / "data" / "mini_faq"
CLIENTS = 8


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """One request; (0, {}) if the connection failed (a worker killed under it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, data, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    except (OSError, http.client.HTTPException, ValueError):
        return 0, {}
    finally:
        conn.close()


def ask_many(port: int, numbers: range) -> list[tuple[int, str]]:
    """Ask one question per number from CLIENTS threads; (status, query_id) each."""

    def ask(i: int) -> tuple[int, str]:
        status, body = request(port, "POST", "/api/ask", {"q": f"第{i}号：违章搭建怎么举报"})
        return status, body.get("query_id", "")

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(ask, numbers))


def wait_health(
    port: int, ok: Callable[[int, dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    """Poll /healthz until ``ok(status, payload)``; return the payload."""
    seen: list[tuple[int, dict[str, Any]]] = []

    def check() -> bool:
        seen.append(request(port, "GET", "/healthz"))
        return ok(*seen[-1])

    wait_for(check, timeout, f"{what} (last /healthz: {seen[-1] if seen else None})")
    return seen[-1][1]


def degraded(status: int, payload: dict[str, Any]) -> bool:
    return status == 503 and payload.get("status") == "degraded" and payload["backlog"] > 0


def caught_up(status: int, payload: dict[str, Any]) -> bool:
    return status == 200 and payload.get("backlog") == 0


def stored_ids(url: str) -> list[int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.exec_driver_sql("SELECT id FROM queries")]
    finally:
        engine.dispose()


def outbox_rows(folder: Path) -> int:
    total = 0
    for path in folder.glob("outbox-*.db"):
        with sqlite3.connect(path) as conn:
            total += conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    return total


def report(name: str, sent: int, stored: int, failed: int) -> None:
    print(f"\n{name}: rows sent {sent}, stored {stored}, requests failed {failed}")


def server_settings(root: Path, jieba_cache: Path, database_url: str) -> dict[str, str]:
    shutil.copytree(MINI_FAQ, root / "faq")
    return {
        "INSTANCE_PATH": str(root / "instance"),
        "FAQ_DIR": str(root / "faq"),
        "CACHE_DIR": str(jieba_cache),
        "DATABASE_URL": database_url,
        "RATELIMIT_ENABLED": "false",
        "QUERYLOG_FEEDBACK_GRACE_S": "0.3",
    }


# -- PostgreSQL down ------------------------------------------------------------


@pytest.fixture
def pg_database() -> Iterator[tuple[str, sa.Engine, str]]:
    """(url, admin engine, name) of a database of this test's own."""
    with fresh_database("xc_faults") as database:
        yield database


def connections(admin: sa.Engine, name: str, *, allowed: bool) -> None:
    """Let the database take connections, or refuse new ones and end the open ones."""
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


@pytest.mark.postgres
def test_a_postgresql_outage_with_a_kill_and_a_restart_loses_no_row(
    pg_database: tuple[str, sa.Engine, str], tmp_path: Path, jieba_cache: Path
) -> None:
    url, admin, name = pg_database
    settings = server_settings(tmp_path, jieba_cache, url)
    outbox = tmp_path / "instance" / "outbox"
    n = 1500
    results: list[tuple[int, str]] = []
    with gunicorn(tmp_path / "gunicorn1.log", settings=settings, workers=2) as (port, proc):
        results += ask_many(port, range(50))
        connections(admin, name, allowed=False)
        started = time.monotonic()
        results += ask_many(port, range(50, 50 + n))
        assert time.monotonic() - started < 40  # nobody waited on the database
        health = wait_health(port, degraded, 10, "503 degraded")
        assert health["database"] == "unreachable" and health["reason"]
        # Feedback on a question that waits in an outbox is accepted ...
        status, _ = request(
            port, "POST", "/api/feedback", {"query_id": results[-1][1], "helpful": True}
        )
        assert status == 200
        # ... and on one no outbox holds, refused with the outage message.
        status, body = request(
            port, "POST", "/api/feedback", {"query_id": "12345", "helpful": True}
        )
        assert (status, body["error"]["code"]) == (503, "log_unavailable")
        assert body["error"]["message"] == LOG_UNAVAILABLE
        # kill -9 of a worker during the outage: its outbox waits for the others.
        victim = min(children(proc.pid))
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(children(proc.pid) - {victim}) == 2, 20, "a replacement worker")
        results += ask_many(port, range(50 + n, 100 + n))
        # Leaving the block: SIGTERM during the outage, the rows stay in the outboxes.
    assert outbox_rows(outbox) > 0
    # Started again while the database is still down (the schema check waits too),
    # then the database returns: the new workers ship what the old ones left.
    with gunicorn(tmp_path / "gunicorn2.log", settings=settings, workers=2, ready=(503,)) as (
        port,
        _,
    ):
        results += ask_many(port, range(100 + n, 150 + n))
        wait_health(port, degraded, 10, "503 degraded after the restart")
        connections(admin, name, allowed=True)
        wait_health(port, caught_up, 30, "the backlog shipped")
    answered = {query_id for status, query_id in results if status == 200}
    stored = stored_ids(url)
    failed = sum(status != 200 for status, _ in results)
    report("PostgreSQL outage (kill -9, SIGTERM, restart)", len(answered), len(stored), failed)
    assert failed == 0
    assert len(stored) == len(set(stored)) == len(results)
    assert {str(i) for i in stored} == answered
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM feedback").scalar() == 1
    engine.dispose()
    assert list(outbox.glob("outbox-*.db")) == []
    for log_name in ("gunicorn1.log", "gunicorn2.log"):
        assert "Traceback" not in (tmp_path / log_name).read_text("utf-8", "replace")


# -- workers killed ---------------------------------------------------------------


def test_kill_9_of_workers_under_load_loses_no_answered_question(
    tmp_path: Path, jieba_cache: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log' / 'querylog.db'}"
    settings = server_settings(tmp_path, jieba_cache, url)
    n, kills = 900, 3
    done = 0
    killed: list[int] = []

    def ask(i: int) -> tuple[int, str]:
        nonlocal done
        status, body = request(port, "POST", "/api/ask", {"q": f"第{i}号：违章搭建怎么举报"})
        done += 1
        return status, body.get("query_id", "")

    with gunicorn(tmp_path / "gunicorn.log", settings=settings, workers=3) as (port, proc):

        def killer() -> None:
            for k in range(1, kills + 1):
                goal = k * n // (kills + 1)
                wait_for(lambda: done >= goal, 30, "asks answered")  # noqa: B023 (called here)
                victim = min(children(proc.pid) - set(killed))
                killed.append(victim)
                os.kill(victim, signal.SIGKILL)

        thread = threading.Thread(target=killer)
        thread.start()
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(ask, range(n)))
        thread.join()
        assert len(killed) == kills
    answered = {query_id for status, query_id in results if status == 200}
    failed = sum(status != 200 for status, _ in results)
    stored = {str(i) for i in stored_ids(url)}
    report(f"kill -9 of {kills} workers under load", len(answered), len(stored), failed)
    assert answered <= stored
    # A row beyond the answered ones is a question whose worker died before replying.
    assert len(stored) - len(answered) <= failed
    assert failed <= kills * CLIENTS
    assert list((tmp_path / "instance" / "outbox").glob("outbox-*.db")) == []


# -- SQLite that cannot be written --------------------------------------------------


def survive(port: int, url: str, name: str, reason: str, *, repair: Callable[[], None]) -> None:
    """Ask 150 questions of a server whose log cannot be written; /healthz must say so
    (``reason`` in its reason) within seconds; after ``repair`` every one is stored."""
    results = ask_many(port, range(150))
    started = time.monotonic()
    health = wait_health(port, degraded, 5, "503 degraded")
    seconds = time.monotonic() - started
    assert reason in health["reason"]
    repair()
    wait_health(port, caught_up, 15, "the backlog written")
    answered = {query_id for status, query_id in results if status == 200}
    stored = {str(i) for i in stored_ids(url)}
    failed = len(results) - len(answered)
    report(f"{name} (degraded after {seconds:.1f} s)", len(answered), len(stored), failed)
    assert len(answered) == len(results) == 150
    assert stored == answered


def set_read_only(path: Path, read_only: bool) -> None:
    """Make ``path`` unwritable (immutable as root, who ignores permissions) or writable."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if read_only else "-i", str(path)], check=True)
    else:
        path.chmod(0o444 if read_only else 0o644)


def test_a_read_only_sqlite_file_made_writable_again_loses_no_row(
    tmp_path: Path, jieba_cache: Path
) -> None:
    db = tmp_path / "log" / "querylog.db"
    url = f"sqlite:///{db}"
    QueryLog(url).close()  # an existing log, then made read-only before the server starts
    settings = server_settings(tmp_path, jieba_cache, url)
    set_read_only(db, True)
    try:
        with gunicorn(tmp_path / "gunicorn.log", settings=settings, workers=2) as (port, _):
            survive(
                port, url, "read-only SQLite", "readonly", repair=lambda: set_read_only(db, False)
            )
    finally:
        set_read_only(db, False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs of this test's own (mounting needs root: skipped otherwise)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; return the filler file."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler


def test_an_sqlite_log_on_a_full_disk_loses_no_row(
    small_disk: Path, tmp_path: Path, jieba_cache: Path
) -> None:
    url = f"sqlite:///{small_disk / 'querylog.db'}"
    settings = server_settings(tmp_path, jieba_cache, url)  # the outbox: on another disk
    with gunicorn(tmp_path / "gunicorn.log", settings=settings, workers=2) as (port, _):
        filler = fill(small_disk)
        survive(port, url, "full disk under SQLite", "full", repair=filler.unlink)


# -- the console and feedback while the log is down -----------------------------------


@pytest.mark.postgres
def test_console_exports_and_feedback_during_an_outage_get_the_outage_message(
    pg_database: tuple[str, sa.Engine, str], tmp_path: Path, jieba_cache: Path
) -> None:
    from test_admin import HASH, logged_in

    from bot.web import create_app
    from bot.web.admin.auth import MSG_SESSIONS_DOWN

    url, admin, name = pg_database
    app = create_app(
        {
            "TESTING": True,
            "FAQ_DIR": str(MINI_FAQ),
            "CACHE_DIR": str(jieba_cache),
            "INDEX_PATH": str(tmp_path / "index.pkl"),
            "RATELIMIT_ENABLED": False,
            "ADMIN_PASSWORD_HASH": HASH,
            "ADMIN_LOGIN_DELAY_S": 0,
            "DATABASE_URL": url,
            "QUERYLOG_FEEDBACK_GRACE_S": 0.2,
        },
        instance_path=tmp_path / "instance",
    )
    try:
        analyst, visitor = logged_in(app), app.test_client()
        connections(admin, name, allowed=False)
        for path in ("/admin/", "/admin/queries", "/admin/clusters", "/admin/export/queries.csv"):
            response = analyst.get(path)
            assert response.status_code == 503, path
            # The login is checked first, in the same database: the door's message.
            assert MSG_SESSIONS_DOWN in response.text, path
            assert "Traceback" not in response.text
        reply = visitor.post("/api/ask", json={"q": "违章搭建怎么举报"})
        assert reply.status_code == 200
        response = visitor.post(
            "/api/feedback", json={"query_id": reply.json["query_id"], "helpful": False}
        )
        assert response.status_code == 200  # its question waits in the outbox
        response = visitor.post("/api/feedback", json={"query_id": "12345", "helpful": True})
        assert response.status_code == 503
        assert response.json["error"] == {"code": "log_unavailable", "message": LOG_UNAVAILABLE}
        connections(admin, name, allowed=True)
        log = app.extensions["xiaocheng"].querylog
        assert log.flush(timeout=15)
        assert (log.count(), len(log.feedback())) == (1, 1)
        assert analyst.get("/admin/export/queries.csv").status_code == 200
    finally:
        app.extensions["xiaocheng"].close()
        app.extensions["xiaocheng_console_sessions"].close()


def test_an_outbox_on_a_full_disk_keeps_rows_in_memory_and_says_so(
    small_disk: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'querylog.db'}"
    folder = small_disk / "outbox"
    filler = fill(small_disk)
    with QueryLog(url, outbox=folder) as store:
        ids = [store.log_query(f"问题{i}", reply_type="answer") for i in range(20)]
        assert len(set(ids)) == 20
        problem = store.health()["problem"]
        assert problem and problem.startswith("the outbox cannot be")
        assert store.flush(timeout=10)  # the database took them from memory
        assert store.count() == 20
        assert list(folder.glob("outbox-*")) == []  # no half-made outbox left behind
        filler.unlink()

        # Once there is room again the outbox is made anew (tried every few seconds).
        def recovered() -> bool:
            store.log_query("有空间了", reply_type="answer")
            return store.health()["problem"] is None

        wait_for(recovered, 10, "the outbox made anew")
    assert QueryLog(url).count() > 20
