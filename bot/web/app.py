"""The app factory: settings, the engine and query log, then each part of the web service.

The parts, each with its own ``init_app``: :mod:`bot.web.service` (the engine
and query log requests read), :mod:`bot.web.traffic` (which requests are
internal traffic), :mod:`bot.web.api` (the JSON API),
:mod:`bot.web.reload` (hot reload), :mod:`bot.web.admin` (the analyst
console), :mod:`bot.web.widget` (the widget's files), :mod:`bot.web.errors`
(the one error path) and :mod:`bot.web.headers` (security headers, CORS).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.config import instance_path as resolve_instance_path
from bot.config import load_settings
from bot.match.engine import Bot
from bot.querylog import QueryLog
from bot.reload import published_bot, shared_banks
from bot.web import admin, api, errors, headers, reload, service, traffic, widget
from bot.web.service import Service

__all__ = ["create_app"]


def create_app(
    test_config: Mapping[str, Any] | None = None,
    *,
    instance_path: str | os.PathLike[str] | None = None,
) -> Flask:
    """Create the 智能小城 web app.

    Settings come from :func:`bot.config.load_settings` for the instance folder
    (``instance_path``, else ``$XIAOCHENG_INSTANCE_PATH``, else ``instance/`` in
    the repository), with ``test_config`` as the last layer.
    """
    instance = resolve_instance_path(instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(instance), static_folder=None)
    app.config.update(load_settings(instance, test_config))
    app.json = api.StrictJSONProvider(app)  # request bodies: bounded depth, no NaN, ...
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    if app.config["TRUST_PROXY"] > 0:
        hops = app.config["TRUST_PROXY"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )

    # Several nodes: the newest bank any of them published, else the FAQ folder.
    banks = shared_banks(app.config)
    bot, source = None, app.config["FAQ_DIR"]
    if banks is not None:
        bot = published_bot(banks, app.config["INDEX_PATH"], cache_dir=app.config["CACHE_DIR"])
        banks.close()  # the workers open their own connections
        source = "the bank the nodes share" if bot is not None else source
    if bot is None:
        bot = Bot.load(
            app.config["FAQ_DIR"],
            index_path=app.config["INDEX_PATH"],
            cache_dir=app.config["CACHE_DIR"],
        )
    app.logger.info("loaded %d FAQs from %s", len(bot.bank.faqs), source)
    url, grace = app.config["DATABASE_URL"], app.config["QUERYLOG_FEEDBACK_GRACE_S"]
    outbox = app.config["QUERYLOG_OUTBOX_DIR"] or instance / "outbox"
    # Create or migrate the schema now, once, before any worker forks. Each process
    # then opens its own log without touching the database, so a worker whose
    # database is down still answers: its rows wait in its outbox file.
    # If it is unreachable, each worker's log migrates it before its first shipment.
    try:
        QueryLog(url).close()
        migrated = True
    except sa.exc.OperationalError as e:
        app.logger.error("the query log's database is unreachable, rows wait: %s", e)
        migrated = False
    service.init_app(
        app,
        Service(
            bot,
            lambda: QueryLog(url, feedback_grace_s=grace, migrate=not migrated, outbox=outbox),
        ),
    )

    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        headers_enabled=True,
        retry_after="delta-seconds",
    )
    app.extensions["xiaocheng_limiter"] = limiter

    traffic.init_app(app)
    api.init_app(app, limiter)
    reload.init_app(app)  # after the Service is stored: it notes the bank version served now
    admin.init_app(app)
    widget.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    return app
