"""Load benchmark: wrk against gunicorn on loopback, driving POST /api/ask.

    .venv/bin/python bench/bench_load.py [--rounds 5] [--duration 10] [--connections 32]

Starts gunicorn with the repository's gunicorn.conf.py on a free port of
127.0.0.1, serving the shipped bank from a fresh temporary instance folder
(rate limiting off, so the limiter is not what is measured), and a second
gunicorn with the same settings serving bench/baseline_app.py, the smallest
Flask app that answers the same request. After a warm-up, each round runs
wrk for a fixed time against 智能小城 and then against the baseline, posting
a rotating set of questions (bench/ask.lua); the script prints every round,
the medians over the rounds (the machine is shared, so single runs move) and
the ratio to the baseline. With ``--queue`` each round also drives
bench/queue_app.py, the same app with the query log's in-memory queue instead of
its durable outbox, on its own instance folder, and prints what the durable log
costs (ours / queue, throughput and p99; every other round the queue app runs
first). Then it checks the query log after gunicorn has
shut down (its workers write their queued rows as they exit): one row per
answered request, counted exactly for a final sequential phase.

Target on the 2-core development machine, on the medians: >= 1,000
requests/s, p99 <= 50 ms, no errors. Exit status 1 when a target or the row
check is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from common import free_port, wait_healthy

REPO = Path(__file__).resolve().parent.parent
LUA = REPO / "bench" / "ask.lua"
TARGET_RPS = 1000
TARGET_P99_MS = 50.0


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported (times in microseconds)."""

    duration_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    non_2xx: int
    statuses: dict[int, int]

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def rps(self) -> float:
        return self.answered / (self.duration_us / 1e6)

    @property
    def errors(self) -> int:
        socket_errors = self.connect_errors + self.read_errors + self.write_errors
        return socket_errors + self.timeouts + self.non_2xx


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (gunicorn's master and workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk(port: int, *, duration: int, connections: int, threads: int) -> WrkResult:
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
        "-s", str(LUA), f"http://127.0.0.1:{port}/api/ask",
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    match = re.search(r"^JSON (\{.*\})$", out, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    summary = json.loads(match.group(1))
    del summary["requests"]  # counts sent requests too; statuses count answers
    statuses = {int(c): int(n) for c, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.MULTILINE)}
    return WrkResult(statuses=statuses, **summary)


def _sequential_asks(port: int, n: int) -> int:
    """Ask ``n`` questions one after another; return how many got a 200."""
    ok = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(n):
        body = json.dumps({"q": f"违章搭建怎么举报{i % 10}", "session": "exact"})
        try:
            conn.request("POST", "/api/ask", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        ok += response.status == 200
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    return ok


def _count_rows(database_url: str, since: datetime) -> tuple[int, int]:
    """Rows logged before and from ``since``."""
    sys.path.insert(0, str(REPO))
    from bot.querylog import QueryLog

    with QueryLog(database_url, background=False) as log:
        return log.count(until=since), log.count(since=since)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    try:
        wait_healthy(port, proc, timeout=120)
    except BaseException:
        _stop(proc)
        raise
    return proc


@dataclass(frozen=True)
class Round:
    """One timed wrk run against each server, back to back."""

    ours: WrkResult
    baseline: WrkResult | None
    queue: WrkResult | None
    server_cpu_s: float
    wrk_cpu_s: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per round (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds (default 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: its config)")
    parser.add_argument("--worker-class", help="override the gunicorn worker class")
    parser.add_argument("--no-baseline", action="store_true", help="skip the minimal Flask app")
    parser.add_argument(
        "--queue",
        action="store_true",
        help="also drive the app with the in-memory queue log (bench/queue_app.py) in turns",
    )
    parser.add_argument("--exact", type=int, default=500, help="sequential asks to count exactly")
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance folder")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    instance = Path(tempfile.mkdtemp(prefix="xiaocheng-bench-"))
    port, base_port, queue_port = free_port(), free_port(), free_port()
    database_url = f"sqlite:///{instance / 'querylog.db'}"
    env = {
        **os.environ,
        "XIAOCHENG_INSTANCE_PATH": str(instance),
        "XIAOCHENG_BIND": f"127.0.0.1:{port}",
        "XIAOCHENG_RATELIMIT_ENABLED": "false",
        "XIAOCHENG_DATABASE_URL": database_url,
        "XIAOCHENG_LOG_LEVEL": "warning",
    }
    if args.workers:
        env["XIAOCHENG_WORKERS"] = str(args.workers)
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py"]
    if args.worker_class:
        gunicorn += ["-k", args.worker_class]
    wrk = {"connections": args.connections, "threads": args.threads}
    load_before = os.getloadavg()[0]
    proc = _start(gunicorn, env, port)
    base = queue = None
    queue_instance = Path(tempfile.mkdtemp(prefix="xiaocheng-bench-queue-"))
    rounds: list[Round] = []
    try:
        if not args.no_baseline:
            base_env = {
                **env,
                "XIAOCHENG_BIND": f"127.0.0.1:{base_port}",
                "PYTHONPATH": str(LUA.parent),
            }
            base = _start([*gunicorn, "baseline_app:app"], base_env, base_port)
            _wrk(base_port, duration=args.warmup, **wrk)
        if args.queue:
            queue_env = {
                **env,
                "XIAOCHENG_BIND": f"127.0.0.1:{queue_port}",
                "XIAOCHENG_INSTANCE_PATH": str(queue_instance),
                "XIAOCHENG_DATABASE_URL": f"sqlite:///{queue_instance / 'querylog.db'}",
                "PYTHONPATH": os.pathsep.join([str(LUA.parent), str(REPO)]),
            }
            queue = _start([*gunicorn, "queue_app:app"], queue_env, queue_port)
            _wrk(queue_port, duration=args.warmup, **wrk)
        warm = _wrk(port, duration=args.warmup, **wrk)
        for i in range(args.rounds):
            # Every other round the queue app goes first: a trend of the machine's
            # load then favours neither side.
            queued = None
            if queue is not None and i % 2:
                queued = _wrk(queue_port, duration=args.duration, **wrk)
            server_cpu, wrk_cpu = _cpu_seconds(proc.pid), _children_cpu_seconds()
            ours = _wrk(port, duration=args.duration, **wrk)
            server_cpu = _cpu_seconds(proc.pid) - server_cpu
            wrk_cpu = _children_cpu_seconds() - wrk_cpu
            if queue is not None and not i % 2:
                queued = _wrk(queue_port, duration=args.duration, **wrk)
            baseline = None if base is None else _wrk(base_port, duration=args.duration, **wrk)
            rounds.append(Round(ours, baseline, queued, server_cpu, wrk_cpu))
        load_during = os.getloadavg()[0]
        time.sleep(1)  # let requests that wrk abandoned at its deadline finish
        exact_since = datetime.now(UTC)
        exact_ok = _sequential_asks(port, args.exact)
    finally:
        _stop(proc)  # workers write their queued rows before they exit
        for other in (base, queue):
            if other is not None:
                _stop(other)
        shutil.rmtree(queue_instance, ignore_errors=True)
    wrk_rows, exact_rows = _count_rows(database_url, exact_since)

    print(
        f"gunicorn workers: {env.get('XIAOCHENG_WORKERS', 'config default')}, "
        f"worker class: {args.worker_class or 'config default'}; "
        f"wrk: {args.connections} connections, {args.threads} threads; "
        f"{args.rounds} rounds of {args.duration} s"
        + ("" if queue is None else ", each followed by the same run against bench/queue_app.py")
        + ("" if base is None else ", then against bench/baseline_app.py")
    )
    # Other work on the machine takes cores from both gunicorn and wrk.
    print(f"load average: {load_before:.2f} before, {load_during:.2f} at the end of the timed runs")
    cores = os.cpu_count() or 1
    print(
        "round  req/s   p50 ms  p99 ms  max ms  CPU ms/req (gunicorn+wrk)"
        "  baseline req/s  p99 ms  ratio" + ("  queue req/s  p99 ms  ours/queue" if queue else "")
    )
    for i, r in enumerate(rounds, 1):
        o = r.ours
        cpu_ms = (r.server_cpu_s + r.wrk_cpu_s) / o.answered * 1000
        line = (
            f"{i:>5}  {o.rps:>5,.0f}  {o.p50_us / 1000:>6.1f}  {o.p99_us / 1000:>6.1f}  "
            f"{o.max_us / 1000:>6.1f}  {cpu_ms:>25.2f}"
        )
        if r.baseline is not None:
            b = r.baseline
            line += f"  {b.rps:>14,.0f}  {b.p99_us / 1000:>6.1f}  {o.rps / b.rps:>5.2f}"
        if r.queue is not None:
            qr = r.queue
            line += f"  {qr.rps:>11,.0f}  {qr.p99_us / 1000:>6.1f}  {o.rps / qr.rps:>10.2f}"
        print(line)
    rps = statistics.median(r.ours.rps for r in rounds)
    p99_ms = statistics.median(r.ours.p99_us for r in rounds) / 1000
    p50_ms = statistics.median(r.ours.p50_us for r in rounds) / 1000
    cpu_ms = statistics.median(
        (r.server_cpu_s + r.wrk_cpu_s) / r.ours.answered * 1000 for r in rounds
    )
    print(
        f"median: {rps:,.0f} req/s, p50 {p50_ms:.1f} ms, p99 {p99_ms:.1f} ms; "
        f"CPU {cpu_ms:.2f} ms per request (at that cost {cores} cores give at most "
        f"{cores / cpu_ms * 1000:,.0f} req/s)"
    )
    if base is not None:
        ratio = statistics.median(r.ours.rps / r.baseline.rps for r in rounds if r.baseline)
        base_rps = statistics.median(r.baseline.rps for r in rounds if r.baseline)
        print(
            f"baseline (minimal Flask app): median {base_rps:,.0f} req/s; "
            f"ours / baseline {ratio:.2f}"
        )
    if queue is not None:
        pairs = [(r.ours, r.queue, r.baseline) for r in rounds if r.queue is not None]
        q_rps = statistics.median(q.rps for _, q, _ in pairs)
        q_p99 = statistics.median(q.p99_us for _, q, _ in pairs) / 1000
        rps_ratio = statistics.median(o.rps / q.rps for o, q, _ in pairs)
        p99_ratio = statistics.median(o.p99_us / q.p99_us for o, q, _ in pairs)
        print(
            f"in-memory queue log (bench/queue_app.py): median {q_rps:,.0f} req/s, "
            f"p99 {q_p99:.1f} ms; durable / queue (medians of the rounds' ratios): "
            f"throughput {rps_ratio:.3f}, p99 {p99_ratio:.3f}"
        )
        if base is not None:
            q_base = statistics.median(q.rps / b.rps for _, q, b in pairs if b is not None)
            print(f"queue / baseline: {q_base:.2f}")
    statuses: dict[int, int] = {}
    for r in rounds:
        for code, n in r.ours.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    errors = sum(r.ours.errors for r in rounds)
    print(
        f"statuses: {dict(sorted(statuses.items()))}; errors: {errors} "
        f"(connect {sum(r.ours.connect_errors for r in rounds)}, "
        f"read {sum(r.ours.read_errors for r in rounds)}, "
        f"write {sum(r.ours.write_errors for r in rounds)}, "
        f"timeout {sum(r.ours.timeouts for r in rounds)}, "
        f"non-2xx {sum(r.ours.non_2xx for r in rounds)})"
    )
    # wrk stops with up to one request per connection in flight, which the server
    # may still answer and log: the wrk runs allow that margin, the sequential
    # phase must match exactly.
    answered = warm.answered + sum(r.ours.answered for r in rounds)
    runs = 1 + len(rounds)
    print(
        f"query log: {wrk_rows} rows for {answered} answered wrk requests "
        f"(+{wrk_rows - answered} abandoned in flight); "
        f"{exact_rows} rows for {exact_ok} of {args.exact} sequential requests"
    )
    failures = []
    if rps < TARGET_RPS:
        failures.append(f"median throughput {rps:,.0f} req/s < {TARGET_RPS:,}")
    if p99_ms > TARGET_P99_MS:
        failures.append(f"median p99 {p99_ms:.1f} ms > {TARGET_P99_MS:.0f} ms")
    if errors or warm.errors or set(statuses) - {200}:
        failures.append(f"{errors + warm.errors} errors")
    if exact_ok != args.exact or exact_rows != args.exact:
        failures.append(f"sequential phase: {exact_ok} answered, {exact_rows} logged")
    if not answered <= wrk_rows <= answered + runs * args.connections:
        failures.append(f"query log has {wrk_rows} rows for {answered} wrk requests")
    if args.keep:
        print(f"instance kept in {instance}")
    else:
        shutil.rmtree(instance)
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
