"""The analyst console under ``/admin``: :mod:`.auth` (the door, with its session
records in :mod:`.sessions` and its lockout in :mod:`.throttle`), :mod:`.filters`,
:mod:`.views` (the pages), :mod:`.curation` (suggestions inbox, history),
:mod:`.editor` (the FAQ editor), :mod:`.workbook` (Excel download and upload),
:mod:`.export` (CSV), :mod:`.charts` (SVG) and :mod:`.warm` (the first views' work,
in the background);
:func:`init_app` puts them on an app."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter

from bot.web import errors
from bot.web.admin import auth, curation, editor, export, views, warm, workbook

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
    bp.add_url_rule("/faqs", "faqs", editor.faq_list)
    bp.add_url_rule("/faqs/new", "faq_new", editor.new_faq, methods=["GET", "POST"])
    bp.add_url_rule("/faqs/export.xlsx", "faq_export", workbook.export_workbook)
    bp.add_url_rule("/faqs/import", "faq_import", workbook.import_workbook, methods=["POST"])
    bp.add_url_rule("/faq/<faq_id>", "faq_edit", editor.edit_faq, methods=["GET", "POST"])
    bp.add_url_rule("/bank", "bank", views.bank)
    bp.add_url_rule("/reload", "reload", views.reload, methods=["POST"])
    bp.add_url_rule("/static/<path:filename>", "asset", views.asset)
    bp.after_request(views.private)
    bp.context_processor(views.template_globals)
    warm.init_app(app, bp)
    app.register_blueprint(bp)
    app.extensions["xiaocheng_admin_assets"] = views.asset_versions()
    app.before_request(_larger_bodies)  # before the guard reads the form's CSRF token
    app.before_request(auth.guard)
    errors.add_page(app, auth.PREFIX, views.error_page)


#: The console's forms whose bodies may be larger than the API's MAX_CONTENT_LENGTH.
_LARGE_FORMS = frozenset({"admin.faq_edit", "admin.faq_new", "admin.faq_import"})


def _larger_bodies() -> None:
    """Let an entry's form or a workbook be up to ADMIN_MAX_FORM_BYTES."""
    if request.endpoint in _LARGE_FORMS:
        request.max_content_length = int(current_app.config["ADMIN_MAX_FORM_BYTES"])
