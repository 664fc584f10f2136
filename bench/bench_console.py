"""Time every console page and the report on a query log holding a year of traffic.

Run from the repository root:

    .venv/bin/python bench/bench_console.py                   # 1,000,000 rows, SQLite
    .venv/bin/python bench/bench_console.py --pg              # the same on PostgreSQL
    .venv/bin/python bench/bench_console.py --rows 200000 --runs 3

Seeding: ``--rows`` logged questions spread over the 366 days up to now, as
visits of one to four questions (one session each) at random times of day,
busier by day than by night: 72 % answers (FAQ ids of the shipped bank, the
popular ones asked far more often, 8 % of them below the low-confidence
score), 10 % clarifies (60 % followed by the visitor's choice, a question with
``from_query_id``), 18 % fallbacks (synthetic city-management questions,
bench/common.py), 3 % of the visits internal (monitoring probes, when the
schema has the ``internal`` column), feedback on 5 % of the replies. Rows go
in by bulk insert (sqlite3 ``executemany``; PostgreSQL ``COPY``) into a fresh
log made by :class:`bot.querylog.QueryLog` (every migration applied), its
secondary indexes dropped for the load and built again after it: a temporary
SQLite file, or a PostgreSQL database the bench creates and drops.

Timing: a logged-in Flask test client on the real app (the shipped bank, the
seeded log) gets every ``GET`` route under ``/admin`` (listed from the app's
URL map; a route the bench does not know is timed at its bare URL), the
question list also with a text search, a reply type, its last page and one
session's conversation; each once (the first view) and then ``--runs`` times, the
median printed. The login page starts the console's warming
(:mod:`bot.web.admin.warm`: the year's days counted into the dashboard's
summary, the suggestions' wordings asked); the bench times it and waits for it
before the first views. The CSV exports are read to the end (the
default 30 days, and 366 days once, with its row count, in process and from
``gunicorn -c gunicorn.conf.py`` with one sync worker and its 30-second timeout,
unless ``--no-gunicorn``). ``python -m bot report --since 30d`` is timed
as a subprocess (start-up included) and in process (its three reads only).
Target (issue 12): every page and the report ≤ 1 s at 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import itertools
import json
import os
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from common import ROOT, machine, synthetic_queries, table  # puts the root on sys.path

from bot.bank import load_bank
from bot.querylog import QueryLog
from bot.querylog.schema import make_tables

PG_ADMIN_URL = os.environ.get("XIAOCHENG_TEST_PG_URL", "postgresql+psycopg://@127.0.0.1:5432/test")
PASSWORD = "bench-console-password"
_COLUMNS = (
    "id", "created_at", "question", "normalized", "reply_type", "faq_id", "score",
    "candidates", "session", "latency_ms", "from_query_id",
)  # fmt: skip
_FEEDBACK = ("id", "query_id", "created_at", "helpful", "comment", "reason")
_CHUNK = 50_000
_PROBES = ("监控探测：城管热线是多少", "健康检查 测试问题")


# --- the year of traffic ----------------------------------------------------------------


def traffic(rows: int, *, internal: bool, seed: int = 12) -> Iterator[tuple[str, dict[str, Any]]]:
    """``rows`` logged questions and their feedback, in time order, as (table, row)."""
    rng = random.Random(seed)
    bank = load_bank(ROOT / "faq")
    faqs = [f for f in bank.faqs]
    weights = list(  # Zipf-like popularity, as cumulative weights for random.choices
        itertools.accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(faqs)))
    )
    rng.shuffle(faqs)
    fallbacks = synthetic_queries(20_000, seed=seed)
    cands = {f.id: json.dumps([{"id": f.id, "score": 0.9}], separators=(",", ":")) for f in faqs}
    now = datetime.now(UTC).replace(tzinfo=None)
    start = now - timedelta(days=366)
    span = (now - start).total_seconds()
    # Visits of 1 to 4 questions (a probe asks one), exactly ``rows`` questions in all,
    # at times uniform over the year, kept by day more than by night (China time).
    sizes: list[tuple[int, bool]] = []
    total = 0
    while total < rows:
        probe = internal and rng.random() < 0.03
        size = min(1 if probe else rng.choice((1, 1, 2, 2, 3, 4)), rows - total)
        sizes.append((size, probe))
        total += size
    epoch = start.replace(tzinfo=UTC).timestamp()
    times: list[float] = []
    while len(times) < len(sizes):
        t = rng.random() * span
        hour = ((epoch + t) / 3600 + 8) % 24
        if 8 <= hour < 22 or rng.random() < 0.25:
            times.append(t)
    times.sort()
    next_id = secrets.randbits(40) + 1
    for t, (size, probe) in zip(times, sizes, strict=True):
        session = f"{rng.getrandbits(128):032x}"
        at = start + timedelta(seconds=t)
        previous: dict[str, Any] | None = None
        for _ in range(size):
            row: dict[str, Any] = {
                "id": next_id, "created_at": at, "session": session,
                "latency_ms": round(rng.uniform(2, 20), 2), "from_query_id": None,
            }  # fmt: skip
            next_id += 1
            roll = rng.random()
            if probe:
                faq = faqs[0]
                row.update(question=_PROBES[0], reply_type="answer", faq_id=faq.id, score=0.9)
            elif previous is not None and previous["reply_type"] == "clarify" and roll < 0.6:
                faq = rng.choice(faqs)  # the visitor's choice of a clarify
                row.update(question=faq.question, reply_type="answer", faq_id=faq.id, score=0.95)
                row["from_query_id"] = previous["id"]
            elif roll < 0.72:
                faq = rng.choices(faqs, cum_weights=weights)[0]
                score = rng.uniform(0.3, 0.5) if rng.random() < 0.08 else rng.uniform(0.5, 0.99)
                row.update(
                    question=rng.choice(faq.texts), reply_type="answer", faq_id=faq.id, score=score
                )
            elif roll < 0.82:
                faq = rng.choices(faqs, cum_weights=weights)[0]
                row.update(
                    question=rng.choice(faq.texts) + rng.choice(("吗", "呢", "怎么弄", "")),
                    reply_type="clarify", faq_id=None, score=rng.uniform(0.35, 0.55),
                )  # fmt: skip
            else:
                faq = None
                row.update(
                    question=rng.choice(fallbacks), reply_type="fallback", faq_id=None,
                    score=rng.uniform(0.05, 0.35),
                )  # fmt: skip
            row["normalized"] = row["question"]
            row["candidates"] = cands[faq.id] if faq is not None else "[]"
            row["score"] = round(row["score"], 4)
            if internal:
                row["internal"] = probe
            yield "queries", row
            if rng.random() < 0.05 and not probe:
                helpful = rng.random() < 0.75
                reason = "none_of_these" if row["reply_type"] == "clarify" and not helpful else None
                yield "feedback", {
                    "id": next_id, "query_id": row["id"], "helpful": helpful, "comment": None,
                    "reason": reason, "created_at": at + timedelta(seconds=30),
                }  # fmt: skip
                next_id += 1
            previous = row
            at += timedelta(seconds=rng.uniform(10, 90))


def _has_internal(url: str, schema: str | None = None) -> bool:
    engine = sa.create_engine(url)
    try:
        columns = sa.inspect(engine).get_columns("queries", schema=schema)
    finally:
        engine.dispose()
    return any(c["name"] == "internal" for c in columns)


def _without_indexes(url: str) -> Callable[[], None]:
    """Drop the log's secondary indexes for a bulk load; return what builds them again."""
    t = make_tables(None, 500)
    indexes = [*t.queries.indexes, *t.feedback.indexes]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    engine.dispose()

    def rebuild() -> None:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for index in indexes:
                index.create(conn)
        engine.dispose()

    return rebuild


def _sqlite_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's DateTime on SQLite


def seed_sqlite(path: Path, rows: int) -> dict[str, int]:
    QueryLog(f"sqlite:///{path}", background=False).close()  # every migration
    internal = _has_internal(f"sqlite:///{path}")
    rebuild = _without_indexes(f"sqlite:///{path}")
    qcols = _COLUMNS + (("internal",) if internal else ())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    counts = {"queries": 0, "feedback": 0}
    q_sql = f"INSERT INTO queries ({','.join(qcols)}) VALUES ({','.join('?' * len(qcols))})"
    f_sql = f"INSERT INTO feedback ({','.join(_FEEDBACK)}) VALUES ({','.join('?' * 6)})"
    batches: dict[str, list[tuple[Any, ...]]] = {"queries": [], "feedback": []}

    def write() -> None:
        conn.execute("BEGIN")
        conn.executemany(q_sql, batches["queries"])
        conn.executemany(f_sql, batches["feedback"])
        conn.execute("COMMIT")
        for rows_ in batches.values():
            rows_.clear()

    for kind, row in traffic(rows, internal=internal):
        row = {**row, "created_at": _sqlite_time(row["created_at"])}
        cols = qcols if kind == "queries" else _FEEDBACK
        batches[kind].append(tuple(row[c] for c in cols))
        counts[kind] += 1
        if len(batches["queries"]) >= _CHUNK:
            write()
    write()
    conn.close()
    rebuild()
    return counts


def seed_postgres(url: str, rows: int) -> dict[str, int]:
    QueryLog(url, background=False).close()
    internal = _has_internal(url)
    rebuild = _without_indexes(url)
    qcols = _COLUMNS + (("internal",) if internal else ())
    engine = sa.create_engine(url)
    counts = {"queries": 0, "feedback": 0}
    feedback: list[tuple[Any, ...]] = []
    with engine.connect() as conn:
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            with cur.copy(f"COPY queries ({','.join(qcols)}) FROM STDIN") as copy:
                for kind, row in traffic(rows, internal=internal):
                    if kind == "queries":
                        copy.write_row(tuple(row[c] for c in qcols))
                    else:
                        feedback.append(tuple(row[c] for c in _FEEDBACK))
                    counts[kind] += 1
            with cur.copy(f"COPY feedback ({','.join(_FEEDBACK)}) FROM STDIN") as copy:
                for f in feedback:
                    copy.write_row(f)
        raw.commit()
        rebuild()
        raw.autocommit = True
        with raw.cursor() as cur:
            cur.execute("VACUUM ANALYZE queries")  # what autovacuum does soon after a load
            cur.execute("VACUUM ANALYZE feedback")
    engine.dispose()
    return counts


# --- timing -------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any], runs: int, *, warm: bool = True) -> tuple[float, float, Any]:
    """(the first call's time, the median of ``runs`` calls after it, the last result)."""
    started = time.perf_counter()
    result = fn()
    first = time.perf_counter() - started
    if not warm:
        return first, first, result
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times), result


def _app(url: str, instance: Path) -> Any:
    from werkzeug.security import generate_password_hash

    from bot.web import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "RATELIMIT_ENABLED": False,
            "ADMIN_PASSWORD_HASH": generate_password_hash(PASSWORD),
            "ADMIN_LOGIN_FAILURES_PER_ADDRESS": 0,
            "ADMIN_LOGIN_FAILURES_PER_ACCOUNT": 0,
        },
        instance_path=instance,
    )


def _login(app: Any) -> Any:
    import re

    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/login").text)
    assert token is not None
    response = client.post("/admin/login", data={"password": PASSWORD, "csrf_token": token[1]})
    if response.status_code != 302:
        raise SystemExit(f"Error: console login failed with {response.status_code}")
    return client


def _pages(app: Any, session: str, last_page: int, year: str) -> list[tuple[str, str]]:
    """(what, URL) for every GET route under /admin, with the question list's variants."""
    faq_id = app.extensions["xiaocheng"].bot.bank.faqs[0].id
    known = {
        "admin.dashboard": [("dashboard", "/admin/"), ("dashboard, 366 days", f"/admin/?{year}")],
        "admin.queries": [
            ("questions", "/admin/queries"),
            ("questions, text search 占道", "/admin/queries?text=占道"),
            ("questions, fallbacks", "/admin/queries?type=fallback"),
            ("questions, last page", f"/admin/queries?page={last_page}"),
            ("questions, 366 days, text search", f"/admin/queries?{year}&text=占道"),
            ("questions, one session", f"/admin/queries?session={session}&{year}"),
        ],
        "admin.clusters": [("clusters", "/admin/clusters")],
        "admin.suggestions": [("suggestions", "/admin/suggestions")],
        "admin.history": [("history", "/admin/history")],
        "admin.faq_edit": [("faq editor, one entry", f"/admin/faq/{faq_id}")],
        "admin.bank": [("bank", "/admin/bank")],
        "admin.export_clusters": [("clusters.csv", "/admin/export/clusters.csv")],
        "admin.export_queries": [("queries.csv, 30 days (once)", "/admin/export/queries.csv")],
    }
    skipped = {"admin.login", "admin.asset", "admin.logout"}
    pages: list[tuple[str, str]] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/admin") or "GET" not in (rule.methods or ()):
            continue
        if rule.endpoint in skipped:
            continue
        pages += known.get(rule.endpoint, [(rule.endpoint, rule.rule)])
    return pages


def _get(client: Any, url: str) -> Callable[[], int]:
    def fetch() -> int:
        response = client.get(url)
        body = response.get_data()  # a streamed export is read to its end
        if response.status_code != 200:
            raise SystemExit(f"Error: GET {url} answered {response.status_code}")
        return len(body)

    return fetch


def _csv_rows(client: Any, url: str) -> tuple[int, str]:
    text = client.get(url).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    return len(rows) - 1, rows[-1][0] if rows else ""


def _http(
    port: int, method: str, path: str, cookie: str = "", body: str = ""
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Cookie": cookie} if cookie else {}
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body.encode(), headers)
    return conn.getresponse(), conn


def export_through_gunicorn(env: dict[str, str], year: str) -> tuple[float, int, bool]:
    """The 366-day export from ``gunicorn -c gunicorn.conf.py`` (one sync worker, its
    30-second timeout): (seconds to the last byte, CSV rows, whether the worker died)."""
    import re
    import socket

    from werkzeug.security import generate_password_hash

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **env, "XIAOCHENG_BIND": f"127.0.0.1:{port}", "XIAOCHENG_WORKERS": "1",
        "XIAOCHENG_LOG_LEVEL": "warning", "XIAOCHENG_RATELIMIT_ENABLED": "false",
        "XIAOCHENG_ADMIN_PASSWORD_HASH": generate_password_hash(PASSWORD),
    }  # fmt: skip
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    proc = subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                response, conn = _http(port, "GET", "/admin/login")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("Error: gunicorn did not start") from None
                time.sleep(0.2)
        page = response.read().decode()
        conn.close()
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        form = f"password={PASSWORD}&csrf_token={token[1]}"
        response, conn = _http(port, "POST", "/admin/login", cookie, form)
        response.read()
        conn.close()
        if response.status != 302:
            raise SystemExit(f"Error: console login through gunicorn answered {response.status}")
        cookie = response.getheader("Set-Cookie", "").split(";", 1)[0] or cookie
        workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        started = time.perf_counter()
        response, conn = _http(port, "GET", f"/admin/export/queries.csv?{year}", cookie)
        lines, cut = 0, False
        try:
            while chunk := response.read(1 << 16):
                lines += chunk.count(b"\n")  # a "\r\n" may straddle two chunks
        except http.client.IncompleteRead as e:
            lines += e.partial.count(b"\n")
            cut = True  # the chunked body never ended: the worker was killed mid-stream
        took = time.perf_counter() - started
        conn.close()
        time.sleep(1)  # the master reaps a killed worker and forks another
        after = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        return took, lines - 1, cut or after != workers
    finally:
        proc.terminate()
        proc.wait(60)


def run(
    url: str,
    instance: Path,
    runs: int,
    env: dict[str, str],
    *,
    year_export: bool = True,
    gunicorn_export: bool = True,
) -> list[list[str]]:
    out: list[list[str]] = []
    app = _app(url, instance)
    started = time.perf_counter()
    client = _login(app)  # its login page starts the console's warming (bot/web/admin/warm.py)
    warming = app.extensions["xiaocheng_admin_warm"].thread
    if warming is not None:
        warming.join()
        took = time.perf_counter() - started
        out.append(["warming after the login page (background)", "", f"{took * 1000:.0f}", "", ""])
        print(f"  warming (background, from the login page): {took * 1000:.0f} ms", flush=True)
    log = app.extensions["xiaocheng"].querylog
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        session = conn.exec_driver_sql(
            "SELECT session FROM queries WHERE session IS NOT NULL "
            "GROUP BY session HAVING COUNT(*) >= 3 LIMIT 1"
        ).scalar()
    engine.dispose()
    today = datetime.now(UTC) + timedelta(hours=8)
    year = f"from={(today - timedelta(days=365)).date()}&to={today.date()}"
    size = int(app.config["ADMIN_PAGE_SIZE"])
    last = max(1, -(-log.count(datetime.now(UTC) - timedelta(days=31)) // size))
    for what, page in _pages(app, session or "0", last, year):
        once = what.endswith("(once)")  # a download of tens of thousands of rows
        first, median, size_ = _timed(_get(client, page), runs, warm=not once)
        ms = [f"{first * 1000:.0f}", f"{median * 1000:.0f}"]
        out.append([what, page, *ms, f"{size_ // 1024} KB"])
        print(f"  {what}: first {first * 1000:.0f} ms, median {median * 1000:.0f} ms", flush=True)
    if year_export:
        started = time.perf_counter()
        n, last_cell = _csv_rows(client, f"/admin/export/queries.csv?{year}")
        took = time.perf_counter() - started
        complete = "complete" if not last_cell.startswith("导出未完成") else "INCOMPLETE"
        what = f"{n} rows, {complete}, {n / took:,.0f} rows/s"
        out.append(["queries.csv, 366 days (once)", what, f"{took * 1000:.0f}", "", ""])
        print(f"  export 366 days: {n} rows in {took:.1f} s", flush=True)

    if gunicorn_export:
        took, n, killed = export_through_gunicorn(env, year)
        what = f"{n} rows, {'WORKER KILLED' if killed else 'complete'}, {n / took:,.0f} rows/s"
        out.append(["queries.csv, 366 days, gunicorn (once)", what, f"{took * 1000:.0f}", "", ""])
        print(f"  export 366 days through gunicorn: {n} rows in {took:.1f} s", flush=True)

    from bot.analysis.report import learned_by_faq, parse_since, unanswered_clusters
    from bot.analysis.spikes import spikes

    bot = app.extensions["xiaocheng"].bot

    def report_reads() -> None:
        since = parse_since("30d")
        unanswered_clusters(log, bot, since, settings=app.config, nearest_for=20)
        learned_by_faq(log, bot, since, settings=app.config)
        spikes(log)

    first, median, _ = _timed(report_reads, runs)
    ms = [f"{first * 1000:.0f}", f"{median * 1000:.0f}"]
    out.append(["report --since 30d, in process", "", *ms, ""])

    def report_cli() -> None:
        subprocess.run(
            [sys.executable, "-m", "bot", "report", "--since", "30d"],
            cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    first, median, _ = _timed(report_cli, max(1, runs // 2))
    out.append(
        ["python -m bot report --since 30d", "with start-up", f"{first * 1000:.0f}",
         f"{median * 1000:.0f}", ""]
    )  # fmt: skip
    app.extensions["xiaocheng"].close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="logged questions to seed")
    parser.add_argument("--runs", type=int, default=5, help="timed requests per page")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--no-year-export", action="store_true", help="skip the 366-day CSV export")
    parser.add_argument(
        "--no-gunicorn", action="store_true", help="skip the 366-day export through gunicorn"
    )
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        instance = Path(tmp) / "instance"
        admin = None
        name = f"bench_console_{uuid.uuid4().hex[:10]}"
        if args.pg:
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            url = admin.url.set(database=name).render_as_string(hide_password=False)
        else:
            url = f"sqlite:///{Path(tmp) / 'querylog.db'}"
        try:
            started = time.perf_counter()
            counts = (
                seed_postgres(url, args.rows)
                if args.pg
                else seed_sqlite(Path(tmp) / "querylog.db", args.rows)
            )
            seeded = time.perf_counter() - started
            backend = "PostgreSQL" if args.pg else "SQLite"
            print(
                f"\n{backend}: seeded {counts['queries']:,} questions and "
                f"{counts['feedback']:,} feedback rows in {seeded:.1f} s\n",
                flush=True,
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("XIAOCHENG_")}
            env.update(XIAOCHENG_DATABASE_URL=url, XIAOCHENG_INSTANCE_PATH=str(instance))
            env["PYTHONPATH"] = str(ROOT)
            rows = run(
                url, instance, args.runs, env, year_export=not args.no_year_export,
                gunicorn_export=not args.no_year_export and not args.no_gunicorn,
            )  # fmt: skip
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()
    print()
    print(table(["page", "URL", "first ms", f"median ms ({args.runs} runs after)", "size"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
