"""The CSV export of a large log against a real gunicorn: complete, within the worker
timeout, in bounded memory (bot/web/admin/export.py reads one statement through a
server-side cursor, in batches)."""

from __future__ import annotations

import csv
import http.client
import io
import random
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gunicorn_server import children, gunicorn
from werkzeug.security import generate_password_hash

from bot.querylog import QueryLog

ROWS = 120_000
INTERNAL_EVERY = 50  # one row in 50 is a monitoring probe, left out of the export
PASSWORD = "export-test-password"
_INSERT = (
    "INSERT INTO queries (id, created_at, question, normalized, reply_type, faq_id, score, "
    "candidates, session, latency_ms, from_query_id, internal) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, '[]', ?, 5.0, NULL, ?)"
)


def _seed(path: Path) -> int:
    """ROWS questions over the last 300 days, in bulk; return how many are visitors'."""
    QueryLog(f"sqlite:///{path}", background=False).close()  # the schema, every migration
    rng = random.Random(5)
    now = datetime.now(UTC).replace(tzinfo=None)
    words = ["违章搭建怎么举报", "占道经营找谁", "夜间施工太吵", "今天天气怎么样", "罚款在哪交"]
    rows = []
    for i in range(ROWS):
        at = now - timedelta(seconds=rng.uniform(60, 300 * 86400))
        q = f"{rng.choice(words)}{i}"  # unique, so a lost or doubled row shows
        kind = ("answer", "clarify", "fallback")[i % 3]
        faq = "building-report" if kind == "answer" else None
        rows.append((i + 1, at.strftime("%Y-%m-%d %H:%M:%S.%f"), q, q, kind, faq,
                     0.8, f"s{i % 9973}", i % INTERNAL_EVERY == 0))  # fmt: skip
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(_INSERT, rows)
    conn.close()
    return ROWS - len(range(0, ROWS, INTERNAL_EVERY))


def _request(port: int, method: str, path: str, cookie: str = "", body: str = ""):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": cookie} if cookie else {}
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body.encode(), headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def _peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1))


def test_a_year_export_streams_completely_within_the_worker_timeout(
    tmp_path: Path, faq_dir: Path, jieba_cache: Path
) -> None:
    database = tmp_path / "querylog.db"
    visitors = _seed(database)
    settings = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "FAQ_DIR": str(faq_dir),
        "CACHE_DIR": str(jieba_cache),
        "DATABASE_URL": f"sqlite:///{database}",
        "RATELIMIT_ENABLED": "false",
        "ADMIN_PASSWORD_HASH": generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
    }
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(log_path, settings=settings, workers=1) as (port, proc):
        response, page = _request(port, "GET", "/admin/login")
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.decode())
        assert token is not None
        form = f"password={PASSWORD}&csrf_token={token[1]}"
        response, _ = _request(port, "POST", "/admin/login", cookie, form)
        assert response.status == 302
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0] or cookie
        [worker] = children(proc.pid)
        assert _request(port, "GET", "/admin/queries", cookie)[0].status == 200
        before = _peak_rss_kb(worker)

        today = (datetime.now(UTC) + timedelta(hours=8)).date()
        year = f"from={today - timedelta(days=365)}&to={today}"
        response, body = _request(port, "GET", f"/admin/export/queries.csv?{year}", cookie)
        assert response.status == 200
        grown_mb = (_peak_rss_kb(worker) - before) / 1024
        assert children(proc.pid) == {worker}  # not killed by the 30-second timeout
    text = body.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[-1][0] != "导出未完成：咨询记录库暂时无法访问，请稍后重新导出。"
    assert len(rows) - 1 == visitors
    assert len({row[1] for row in rows[1:]}) == visitors  # no row twice, none lost
    stamps = [row[0] for row in rows[1:]]
    assert stamps == sorted(stamps, reverse=True)
    # The body is ~7 MB; a worker holding every row at once would grow by hundreds.
    assert grown_mb < 60, f"the worker's peak memory grew by {grown_mb:.0f} MB"
    assert "Traceback" not in log_path.read_text("utf-8", "replace")
