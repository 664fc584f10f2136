"""Start the repository's gunicorn configuration on a free loopback port, for tests."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _healthy(port: int, statuses: tuple[int, ...] = (200,)) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status in statuses
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def gunicorn(
    log_path: Path,
    *,
    settings: dict[str, str],
    workers: int = 3,
    app: str = "app:app",
    ready: tuple[int, ...] = (200,),
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Run gunicorn -c gunicorn.conf.py with XIAOCHENG_* ``settings``; yield (port, process)
    once /healthz answers with a status in ``ready``.

    Leaving the block sends SIGTERM and waits, so every worker flushes its query log.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIAOCHENG_")}
    env.update({f"XIAOCHENG_{k}": v for k, v in settings.items()})
    env.update(
        XIAOCHENG_BIND=f"127.0.0.1:{port}",
        XIAOCHENG_WORKERS=str(workers),
        XIAOCHENG_LOG_LEVEL="warning",
    )
    command = [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py"]
    command += ["--pythonpath", str(ROOT / "tests"), app]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not _healthy(port, ready):
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer /healthz:\n{log_path.read_text()}")
            time.sleep(0.1)
        wait_for(lambda: len(children(proc.pid)) == workers, 20, f"{workers} workers")
        yield port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
