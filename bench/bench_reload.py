"""Reload benchmark: wrk against gunicorn while the bank is reloaded every few seconds.

    .venv/bin/python bench/bench_reload.py [--duration 20] [--every 5] [--workers N]

Starts gunicorn with the repository's gunicorn.conf.py on a free port of
127.0.0.1, serving a copy of the shipped bank from a fresh temporary instance
folder (rate limiting off). While wrk posts the questions of bench/ask.lua,
the script changes the bank every ``--every`` seconds (a probe FAQ whose id
names the round) and runs the reload command, as an operator would, in one
Python process started beforehand; each reload starts when the one before has
finished. A probe thread asks the probe
question on fresh connections every 20 ms; each reply names the worker that
answered (a header that only this script's app wrapper adds), which tells
when every worker serves the new bank.

Prints wrk's requests, statuses, socket errors and latency, each reload's
duration and how long until every worker answered from the new bank, and
the workers' proportional memory (PSS) before and after. ``--every 0`` runs
the same load without reloads, for comparison. Exit status 1 on any failed
request or a worker that never switched.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, cast

from common import free_port, wait_healthy

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LUA = REPO / "bench" / "ask.lua"
PROBE_Q = "小城热重载探针问题"
PROBE_YAML = """\
category: 基准测试
faqs:
  - id: reload-probe-{n}
    question: 小城热重载探针问题
    answer: 这是第{n}轮重载的探针答案。
"""


def tagged_app():  # type: ignore[no-untyped-def]
    """gunicorn's app here: the real app, each reply naming its worker's pid."""
    from bot.web import create_app
    from bot.web.reload import init_app

    app = create_app()
    init_app(app)  # until create_app does it itself
    inner = app.wsgi_app

    def wsgi_app(environ, start_response):  # type: ignore[no-untyped-def]
        pid = str(os.getpid())

        def start(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
            return start_response(status, [*headers, ("X-Worker-Pid", pid)], exc_info)

        return inner(environ, start)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]
    return app


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
        total += int(match.group(1)) if match else 0
    return total / 1024


def _wrk_command(port: int, duration: int, connections: int) -> list[str]:
    return [
        "wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
        "-s", str(LUA), f"http://127.0.0.1:{port}/api/ask",
    ]  # fmt: skip


def _parse_wrk(out: str) -> tuple[dict[str, int], dict[int, int]]:
    match = re.search(r"^JSON (\{.*\})$", out, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    statuses = {int(c): int(n) for c, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.MULTILINE)}
    return json.loads(match.group(1)), statuses


class _Probe(threading.Thread):
    """Asks the probe question every 20 ms; records (time, worker pid, FAQ id) or a failure."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.replies: list[tuple[float, int, str | None]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        body = json.dumps({"q": PROBE_Q, "session": "bench-probe"})
        while not self.stop.wait(0.02):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("POST", "/api/ask", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                if response.status != 200:
                    raise ValueError(f"status {response.status}")
                faq = json.loads(data)["faq"]
                pid = int(response.getheader("X-Worker-Pid", "0"))
                self.replies.append((time.monotonic(), pid, faq["id"] if faq else None))
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                self.failures.append(repr(exc))
            finally:
                conn.close()


# Runs ``python -m bot reload`` once per line read, so Python's start-up and imports
# (seconds on a busy machine) are paid once, outside the measured reloads.
_RELOADER = """
import sys
from bot.cli.main import reload_main
for _ in sys.stdin:
    reload_main([])
    print("END", flush=True)
"""


class _Reloader:
    """An operator's shell running the reload command again and again."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _RELOADER],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._stdin = cast(IO[str], self.proc.stdin)  # both are pipes
        self._stdout = cast(IO[str], self.proc.stdout)

    def reload(self) -> tuple[float, float, float]:
        """Reload once; return (published at, seconds taken, seconds to build the index)."""
        start = time.monotonic()
        self._stdin.write("\n")
        self._stdin.flush()
        lines = []
        for line in self._stdout:
            if line == "END\n":
                break
            lines.append(line)
        out = "".join(lines)
        match = re.search(r"built in ([0-9.]+) s", out)
        if match is None:
            raise SystemExit(f"python -m bot reload did not build:\n{out}")
        return time.monotonic(), time.monotonic() - start, float(match.group(1))

    def close(self) -> None:
        self._stdin.close()
        self.proc.wait(30)


def _first_seen(
    replies: list[tuple[float, int, str | None]], n: int, published: float
) -> dict[int, float]:
    """When each worker first answered from reload ``n``."""
    seen: dict[int, float] = {}
    for at, pid, faq_id in list(replies):
        if at >= published and faq_id == f"reload-probe-{n}":
            seen.setdefault(pid, at)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="measured seconds (default 20)")
    parser.add_argument(
        "--every", type=float, default=5.0, help="seconds between reloads (0: none)"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: its config)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="xiaocheng-reload-"))
    faq_dir, instance = tmp / "faq", tmp / "instance"
    shutil.copytree(REPO / "faq", faq_dir)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIAOCHENG_")}
    env.update(
        XIAOCHENG_INSTANCE_PATH=str(instance),
        XIAOCHENG_FAQ_DIR=str(faq_dir),
        XIAOCHENG_BIND=f"127.0.0.1:{port}",
        XIAOCHENG_RATELIMIT_ENABLED="false",
        XIAOCHENG_LOG_LEVEL="warning",
    )
    if args.workers:
        env["XIAOCHENG_WORKERS"] = str(args.workers)
    gunicorn = [
        str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py",
        "--pythonpath", str(REPO / "bench"), "bench_reload:tagged_app()",
    ]  # fmt: skip
    proc = subprocess.Popen(gunicorn, cwd=REPO, env=env)
    reloader = _Reloader(env)
    rounds: list[tuple[int, float, float, float]] = []  # round, published at, command s, build s
    probe = _Probe(port)
    try:
        wait_healthy(port, proc, timeout=120)
        subprocess.run(_wrk_command(port, 3, args.connections), check=True, capture_output=True)
        workers = _children(proc.pid)
        pss_before = _pss_mb(workers)
        probe.start()
        load_before = os.getloadavg()[0]
        wrk = subprocess.Popen(
            _wrk_command(port, args.duration, args.connections), stdout=subprocess.PIPE, text=True
        )
        start = time.monotonic()
        n = 0
        while args.every > 0:
            due = max(start + (n + 1) * args.every, time.monotonic())
            if due + 1 > start + args.duration:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            n += 1
            (faq_dir / "reload-probe.yaml").write_text(PROBE_YAML.format(n=n), "utf-8")
            rounds.append((n, *reloader.reload()))
        out, _ = wrk.communicate()
        load_during = os.getloadavg()[0]
        # Keep probing until every worker answered from the last reload (or 30 s).
        deadline = time.monotonic() + 30
        while rounds and time.monotonic() < deadline:
            if set(_first_seen(probe.replies, *rounds[-1][:2])) >= set(workers):
                break
            time.sleep(0.2)
        probe.stop.set()
        probe.join(15)
        workers_after = _children(proc.pid)
        pss_after = _pss_mb(workers_after)
    finally:
        reloader.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    summary, statuses = _parse_wrk(out)
    answered = sum(statuses.values())
    socket_errors = summary["connect_errors"] + summary["read_errors"] + summary["write_errors"]

    print(
        f"gunicorn workers: {len(workers)}; wrk: {args.connections} connections, "
        f"{args.duration} s; reload every {args.every:g} s ({len(rounds)} reloads)"
    )
    print(f"load average: {load_before:.2f} before, {load_during:.2f} at the end")
    print(f"requests: {answered} answered ({answered / (summary['duration_us'] / 1e6):,.0f} req/s)")
    print(
        f"statuses: {dict(sorted(statuses.items()))}; non-2xx {summary['non_2xx']}; "
        f"socket errors {socket_errors} (connect {summary['connect_errors']}, "
        f"read {summary['read_errors']}, write {summary['write_errors']}), "
        f"timeouts {summary['timeouts']}"
    )
    print(
        f"latency: p50 {summary['p50_us'] / 1000:.1f} ms, p90 {summary['p90_us'] / 1000:.1f} ms, "
        f"p99 {summary['p99_us'] / 1000:.1f} ms, max {summary['max_us'] / 1000:.1f} ms"
    )
    failures = []
    for n, published, took, built in rounds:
        first_seen = _first_seen(probe.replies, n, published)
        missing = sorted(set(workers) - set(first_seen))
        done = f"reload {n}: took {took:.2f} s (bank checked, copied and indexed in {built:.2f} s)"
        if missing:
            print(f"{done}; workers {missing} never answered from it")
            failures.append(f"reload {n} did not reach every worker")
        else:
            delay = max(first_seen.values()) - published
            print(f"{done}; every worker answered from it {delay:.2f} s later")
    print(
        f"probe: {len(probe.replies)} answered, {len(probe.failures)} failed"
        + (f" ({probe.failures[0]})" if probe.failures else "")
    )
    print(f"workers' memory (PSS): {pss_before:.0f} MB before, {pss_after:.0f} MB after")
    if set(workers_after) != set(workers):
        failures.append(f"workers changed: {sorted(workers)} → {sorted(workers_after)}")
    if summary["non_2xx"] or socket_errors or summary["timeouts"] or set(statuses) - {200}:
        failures.append("failed requests under wrk")
    if probe.failures:
        failures.append(f"{len(probe.failures)} failed probe requests")
    shutil.rmtree(tmp)
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
