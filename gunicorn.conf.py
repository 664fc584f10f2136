"""Gunicorn settings for 智能小城 (``make serve``; ``gunicorn -c gunicorn.conf.py``).

Environment variables:

- ``XIAOCHENG_BIND``: address to listen on (default ``127.0.0.1:8000``; put a
  reverse proxy in front and set ``XIAOCHENG_TRUST_PROXY=1``).
- ``XIAOCHENG_WORKERS``: worker processes (default cores + 1, at most 9).
- ``XIAOCHENG_ACCESS_LOG``: ``-`` for stdout or a file path (default off); it
  logs paths without their query strings.

The app is loaded once in the master before the workers fork, so the FAQ index
is read once and its memory shared copy-on-write. Each worker opens its own
query log on first use (its outbox file, shipper thread and connections cannot
cross a fork) and ships its rows when it exits; rows the database cannot take
then stay in the outbox for the next worker.

Requests gunicorn refuses itself (a request line over ``limit_request_line``,
4094 bytes; headers over ``limit_request_field_size``; a malformed request or
chunk) get the API's JSON error body with the security headers, not
gunicorn's HTML page: gunicorn has no setting for that page, so the workers
are sync workers whose error writer goes through
:func:`bot.web.errors.gunicorn_error_page`.
"""

import gc
import os

from gunicorn.workers.sync import SyncWorker

from bot.web.errors import gunicorn_error_page


class _ErrorPageSocket:
    """The client socket as gunicorn's error page writer sees it: the page becomes JSON."""

    def __init__(self, sock):
        self._sock = sock

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def sendall(self, data):
        return self._sock.sendall(gunicorn_error_page(data))


class JSONErrorSyncWorker(SyncWorker):
    """gunicorn's sync worker, answering the requests it refuses with the JSON error body."""

    def handle_error(self, req, client, addr, exc):
        super().handle_error(req, _ErrorPageSocket(client), addr, exc)


wsgi_app = "app:app"
bind = [os.environ.get("XIAOCHENG_BIND", "127.0.0.1:8000")]
# Requests are short and CPU-bound, so workers beyond the cores only take turns:
# on 2 cores bench_load measured 665 req/s with 2 workers, 628 with 3, 535 with 5.
# One spare worker keeps answering while another rebuilds the index for a reload.
workers = int(os.environ.get("XIAOCHENG_WORKERS") or min((os.cpu_count() or 1) + 1, 9))
# Plain sync workers (gthread measured the same CPU per request on 2 cores),
# with JSON error pages.
worker_class = JSONErrorSyncWorker
preload_app = True
timeout = 30
graceful_timeout = 20
keepalive = 2
accesslog = os.environ.get("XIAOCHENG_ACCESS_LOG") or None
# Gunicorn's default format, with the path in place of the request line: a query
# string (/api/suggest?q=…) is what a visitor typed and may hold personal data.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("XIAOCHENG_LOG_LEVEL", "info")
proc_name = "xiaocheng"
# Gunicorn >= 25 opens a control socket at one fixed per-user path; several
# servers on one machine (tests, benchmark, a second site) would fight over it.
control_socket_disable = True


def pre_fork(server, worker):
    """Freeze what the master loaded (bank, index, dictionaries) before forking.

    The workers' garbage collector then never walks those objects: their pages
    stay shared copy-on-write, and no long collection lands inside a request.
    """
    gc.freeze()


def worker_exit(server, worker):
    """Ship this worker's query-log rows before the process goes away (what the
    database cannot take now stays in the worker's outbox)."""
    app = getattr(worker, "wsgi", None)
    service = getattr(app, "extensions", {}).get("xiaocheng")
    if service is not None:
        service.close()
