"""Measure the query log: how long log_query keeps a visitor, and rows written per second.

Run from the repository root:

    .venv/bin/python bench/bench_querylog.py [--rows 20000] [--threads 4] [--no-postgres]

For SQLite (a temporary file) and PostgreSQL (a temporary schema in the
database at 127.0.0.1:5432/test) it runs three scenarios:

- burst: one thread logs ``--burst`` rows (fewer than the queue holds), as a
  visitor's request would; latency of each call, then the time until all are written;
- sustained: ``--threads`` threads log ``--rows`` rows as fast as they can, so the
  queue fills and callers start writing themselves; rows/s until all are written;
- sync: the same call with ``background=False``, each row its own transaction,
  the cost that the queue keeps away from the visitor.

Every scenario checks that exactly the rows sent are in the table.

``--ask`` measures instead what the web service's durable log costs per ask, in
one process: a store with an outbox (as each gunicorn worker has) and one with
the in-memory queue, both on SQLite files, take turns in blocks of
``--block-rows`` asks, ``--pause-ms`` apart (so that rows ship in batches as
under load); each block is flushed. Printed: the median time in ``log_query``
and the median CPU of the process per row (shipping included), each side, and
outbox / queue. To compare code, copy the script into another checkout's
``bench/`` and run it there (it imports the checkout it sits in).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.querylog import QueryLog  # noqa: E402

PG_URL = "postgresql+psycopg://@127.0.0.1:5432/test"
QUESTIONS = [
    "路边有人摆摊占道经营怎么办",
    "我的车浙A12345被贴了罚单，电话13812345678，怎么处理",
    "违章搭建去哪里举报",
    "晚上施工太吵了有人管吗",
    "罚款200元在哪交",
]


def _log_one(store: QueryLog, i: int) -> None:
    store.log_query(
        QUESTIONS[i % len(QUESTIONS)],
        normalized=QUESTIONS[i % len(QUESTIONS)],
        reply_type=("answer", "clarify", "fallback")[i % 3],
        faq_id="vendor-report",
        score=0.8,
        candidates=[{"id": f"faq-{k}", "score": 0.8 - k / 10} for k in range(5)],
        session=f"session-{i % 97}",
        latency_ms=5.0,
    )


def _timed_calls(store: QueryLog, indices: range) -> list[float]:
    latencies = []
    for i in indices:
        start = time.perf_counter()
        _log_one(store, i)
        latencies.append(time.perf_counter() - start)
    return latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _scenario(
    open_store: Callable[..., QueryLog], name: str, rows: int, threads: int, **options: object
) -> dict[str, object]:
    store = open_store(**options)
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = rows // threads

    def work(n: int) -> None:
        mine = _timed_calls(store, range(n * per_thread, (n + 1) * per_thread))
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    calls_done = time.perf_counter()
    store.flush()
    written = time.perf_counter()
    count = store.count()
    store.close()
    sent = per_thread * threads
    if count != sent:
        raise SystemExit(f"{name}: sent {sent} rows, found {count}")
    return {
        "scenario": name,
        "rows": sent,
        "threads": threads,
        "median_us": statistics.median(latencies) * 1e6,
        "p99_us": _percentile(latencies, 0.99) * 1e6,
        "calls_s": calls_done - start,
        "rows_per_s": sent / (written - start),
    }


def _backends(use_postgres: bool) -> list[tuple[str, Callable[..., QueryLog], Callable[[], None]]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-querylog-"))
    runs = [0]

    def sqlite_store(**options: object) -> QueryLog:
        runs[0] += 1
        return QueryLog(f"sqlite:///{folder / f'q{runs[0]}.db'}", **options)  # type: ignore[arg-type]

    def sqlite_cleanup() -> None:
        for path in sorted(folder.iterdir()):
            path.unlink()
        folder.rmdir()

    backends = [("sqlite", sqlite_store, sqlite_cleanup)]
    if use_postgres:
        schemas: list[str] = []

        def pg_store(**options: object) -> QueryLog:
            schemas.append(f"bench_querylog_{uuid.uuid4().hex[:12]}")
            return QueryLog(PG_URL, schema=schemas[-1], **options)  # type: ignore[arg-type]

        def pg_cleanup() -> None:
            engine = sa.create_engine(PG_URL)
            with engine.begin() as conn:
                for schema in schemas:
                    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            engine.dispose()

        backends.append(("postgresql", pg_store, pg_cleanup))
    return backends


def _ask_blocks(
    stores: dict[str, QueryLog], blocks: int, rows: int, pause_s: float
) -> dict[str, tuple[list[float], list[float]]]:
    """Per store: each call's time in log_query, and CPU per row of each block."""
    results: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in stores}
    sent = 0
    for _ in range(blocks):
        for name, store in stores.items():
            latencies, cpu = results[name]
            start_cpu = time.process_time()
            for i in range(sent, sent + rows):
                start = time.perf_counter()
                _log_one(store, i)
                latencies.append(time.perf_counter() - start)
                time.sleep(pause_s)
            if not store.flush(timeout=60):
                raise SystemExit(f"{name}: rows not shipped within 60 s")
            cpu.append((time.process_time() - start_cpu) / rows)
        sent += rows
    return results


def ask_cost(blocks: int, rows: int, pause_s: float) -> None:
    """Print the per-ask cost of the outbox against the in-memory queue."""
    import bot.querylog

    folder = Path(tempfile.mkdtemp(prefix="bench-querylog-ask-"))
    stores = {
        "outbox": QueryLog(f"sqlite:///{folder / 'outbox.db'}", outbox=folder / "outbox"),
        "queue": QueryLog(f"sqlite:///{folder / 'queue.db'}"),
    }
    try:
        _log_one(stores["outbox"], 0)  # open the outbox, start the threads
        _log_one(stores["queue"], 0)
        results = _ask_blocks(stores, blocks, rows, pause_s)
        for name, store in stores.items():
            if store.count() != blocks * rows + 1:
                raise SystemExit(f"{name}: sent {blocks * rows + 1} rows, found {store.count()}")
    finally:
        for store in stores.values():
            store.close()
        shutil.rmtree(folder)
    print(f"code: {Path(bot.querylog.__file__).parent}; load average {os.getloadavg()[0]:.2f}")
    print(f"{blocks} blocks of {rows} asks each side, {pause_s * 1000:g} ms apart, in turns")
    print(f"{'':<8}{'median µs in log_query':>24}{'CPU µs per row':>16}")
    medians = {}
    for name, (latencies, cpu) in results.items():
        medians[name] = (statistics.median(latencies) * 1e6, statistics.median(cpu) * 1e6)
        print(f"{name:<8}{medians[name][0]:>24.1f}{medians[name][1]:>16.1f}")
    (out_lat, out_cpu), (q_lat, q_cpu) = medians["outbox"], medians["queue"]
    print(
        f"outbox / queue: {out_lat / q_lat:.2f} in log_query, {out_cpu / q_cpu:.2f} CPU; "
        f"outbox - queue: {out_lat - q_lat:+.1f} µs, {out_cpu - q_cpu:+.1f} µs CPU per ask"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows in the sustained run")
    parser.add_argument("--burst", type=int, default=5_000, help="rows in the burst run")
    parser.add_argument("--sync-rows", type=int, default=1_000, help="rows in the sync run")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--ask", action="store_true", help="the outbox's cost per ask instead")
    parser.add_argument("--blocks", type=int, default=20, help="--ask: blocks each side")
    parser.add_argument("--block-rows", type=int, default=200, help="--ask: asks per block")
    parser.add_argument("--pause-ms", type=float, default=1.0, help="--ask: pause between asks")
    args = parser.parse_args(argv)
    if args.ask:
        ask_cost(args.blocks, args.block_rows, args.pause_ms / 1000)
        return

    header = (
        f"{'backend':<11}{'scenario':<11}{'rows':>7}{'thr':>4}"
        f"{'median µs':>11}{'p99 µs':>10}{'calls s':>9}{'rows/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for backend, open_store, cleanup in _backends(not args.no_postgres):
        try:
            results = [
                _scenario(open_store, "burst", args.burst, 1),
                _scenario(open_store, "sustained", args.rows, args.threads),
                _scenario(open_store, "sync", args.sync_rows, 1, background=False),
            ]
        finally:
            cleanup()
        for r in results:
            print(
                f"{backend:<11}{r['scenario']:<11}{r['rows']:>7}{r['threads']:>4}"
                f"{r['median_us']:>11.0f}{r['p99_us']:>10.0f}{r['calls_s']:>9.2f}"
                f"{r['rows_per_s']:>9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
