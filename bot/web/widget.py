"""The demo portal page at ``/`` and the widget's files, with explicit content types."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, current_app, send_from_directory

__all__ = ["init_app"]

# Explicit types: the system's mime.types may call JavaScript application/x-javascript.
_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".json": "application/json",
}


def init_app(app: Flask) -> None:
    """Serve the demo portal page at ``/`` and the widget's files."""
    app.add_url_rule("/", "demo", _demo)
    app.add_url_rule("/widget.js", "widget_js", _widget_js)
    app.add_url_rule("/widget/<path:filename>", "widget_file", _widget_file)


def _send_widget_file(filename: str, *, max_age: int) -> Response:
    content_type = _CONTENT_TYPES.get(Path(filename).suffix.lower())
    response = send_from_directory(
        current_app.config["WIDGET_DIR"], filename, mimetype=content_type, max_age=max_age
    )
    if content_type:
        response.headers["Content-Type"] = content_type
    return response


def _demo() -> Response:
    response = _send_widget_file("demo.html", max_age=0)
    response.cache_control.no_cache = True
    return response


def _widget_js() -> Response:
    return _widget_file("widget.js")


def _widget_file(filename: str) -> Response:
    response = _send_widget_file(filename, max_age=current_app.config["STATIC_MAX_AGE"])
    # Portals on other origins load these files into their own pages.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
