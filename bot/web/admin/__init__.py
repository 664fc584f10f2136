"""The analyst console under ``/admin``: :mod:`.auth` (the door, with its session
records in :mod:`.sessions` and its lockout in :mod:`.throttle`), :mod:`.filters`,
:mod:`.views` (the pages), :mod:`.curation` (suggestions inbox, history),
:mod:`.export` (CSV) and :mod:`.charts` (SVG);
:func:`init_app` puts them on an app."""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_limiter import Limiter

from bot.web import errors
from bot.web.admin import auth, curation, export, views

__all__ = ["init_app"]


def init_app(app: Flask) -> None:
    """Add the console to ``app``; calling it again for the same app does nothing.

    Raises :class:`bot.config.ConfigError` if ``ADMIN_PASSWORD_HASH`` is set but
    is not a werkzeug password hash. Creates the console's sessions table in the
    query log's database (``DATABASE_URL``) if it is missing.
    """
    if "admin" in app.blueprints:
        return
    auth.check_hash_setting(app.config.get("ADMIN_PASSWORD_HASH"))
    auth.init_door(app)
    if app.config.get("SESSION_COOKIE_PATH") is None:
        # Only the console uses the session: the widget's requests need not carry it.
        app.config["SESSION_COOKIE_PATH"] = auth.PREFIX
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.session_interface = auth.ConsoleSessions()

    bp = Blueprint("admin", __name__, url_prefix=auth.PREFIX, template_folder="templates")
    limiter: Limiter | None = app.extensions.get("xiaocheng_limiter")
    login_view = auth.login
    if limiter is not None:
        cfg = app.config
        limit = limiter.limit(lambda: cfg["ADMIN_LOGIN_RATELIMIT"], methods=["POST"])
        login_view = limit(auth.login)
    bp.add_url_rule("/login", "login", login_view, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", auth.logout, methods=["POST"])
    bp.add_url_rule("/", "dashboard", views.dashboard)
    bp.add_url_rule("/clusters", "clusters", views.clusters)
    bp.add_url_rule("/queries", "queries", views.queries)
    bp.add_url_rule("/export/queries.csv", "export_queries", export.export_queries)
    bp.add_url_rule("/export/clusters.csv", "export_clusters", export.export_clusters)
    bp.add_url_rule("/suggestions", "suggestions", curation.suggestions)
    bp.add_url_rule("/suggestions/accept", "accept", curation.accept, methods=["POST"])
    bp.add_url_rule("/suggestions/reject", "reject", curation.reject, methods=["POST"])
    bp.add_url_rule("/history", "history", curation.history)
    bp.add_url_rule("/bank", "bank", views.bank)
    bp.add_url_rule("/reload", "reload", views.reload, methods=["POST"])
    bp.add_url_rule("/static/<path:filename>", "asset", views.asset)
    bp.after_request(views.private)
    bp.context_processor(views.template_globals)
    app.register_blueprint(bp)
    app.extensions["xiaocheng_admin_assets"] = views.asset_versions()
    app.before_request(auth.guard)
    errors.add_page(app, auth.PREFIX, views.error_page)
