"""Every ask sent to several gunicorn workers at once is exactly one row in the log.

Runs the repository's gunicorn configuration (3 workers) against SQLite and
against the PostgreSQL server at 127.0.0.1:5432 (a fresh database per test).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from gunicorn_server import gunicorn
from pg_database import fresh_database

N = 240
CLIENTS = 12


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
        return
    with fresh_database("xc_load") as (url, _admin, _name):
        yield url


def ask(port: int, i: int) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"q": f"第{i}号：违章搭建怎么举报", "session": f"load-{i % 7}"})
        conn.request("POST", "/api/ask", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read()).get("query_id", "")
    finally:
        conn.close()


def test_n_concurrent_asks_are_n_rows(
    database_url: str, faq_dir: Path, tmp_path: Path, jieba_cache: Path
) -> None:
    settings = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "FAQ_DIR": str(faq_dir),
        "CACHE_DIR": str(jieba_cache),
        "DATABASE_URL": database_url,
        "RATELIMIT_ENABLED": "false",
    }
    with gunicorn(tmp_path / "gunicorn.log", settings=settings, workers=3) as (port, _):
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(lambda i: ask(port, i), range(N)))
    # gunicorn has stopped: every worker has flushed its log.
    assert [status for status, _ in results] == [200] * N
    ids = {query_id for _, query_id in results}
    assert len(ids) == N

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT id, question FROM queries").all()
    finally:
        engine.dispose()
    assert len(rows) == N
    assert {str(row.id) for row in rows} == ids
    assert sorted(row.question for row in rows) == sorted(
        f"第{i}号：违章搭建怎么举报" for i in range(N)
    )
