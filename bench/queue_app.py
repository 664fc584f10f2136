"""The load benchmark's comparison for the durable query log.

The real app (the same bank, engine and settings as ``app.py``) with the query
log that keeps rows in an in-memory queue, as it did before the outbox: rows are
written to the database by a thread, and lost if the worker dies first.
``bench_load.py --queue`` serves it beside 智能小城 and drives both with the
same wrk script in turns, so their ratio is what the durable log costs.
Never served outside the benchmark.
"""

from bot.querylog import QueryLog
from bot.web import create_app
from bot.web.service import Service, get_service, init_app

app = create_app()
_url = app.config["DATABASE_URL"]
_grace = app.config["QUERYLOG_FEEDBACK_GRACE_S"]
init_app(app, Service(get_service(app).bot, lambda: QueryLog(_url, feedback_grace_s=_grace)))
