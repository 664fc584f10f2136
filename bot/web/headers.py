"""Headers on every response: the security headers and CORS for the portal origins."""

from __future__ import annotations

from flask import Flask, Response, current_app, request

__all__ = ["SECURITY_HEADERS", "init_app"]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}
_CORS_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


def init_app(app: Flask) -> None:
    # Browsers send Origin without a trailing slash; people often write one.
    app.config["CORS_ORIGINS"] = [origin.rstrip("/") for origin in app.config["CORS_ORIGINS"]]
    app.after_request(_add_security_headers)
    app.after_request(_add_cors_headers)


def _add_security_headers(response: Response) -> Response:
    """Add the security headers a view has not set itself (one pass: this runs on every
    response, and Werkzeug's per-header lookups raise and catch KeyError when absent)."""
    present = {name.lower() for name, _ in response.headers.items()}
    response.headers.extend(
        [(name, value) for name, value in SECURITY_HEADERS.items() if name.lower() not in present]
    )
    return response


def _add_cors_headers(response: Response) -> Response:
    """Let the configured portal origins, and only them, call us from a browser."""
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if not origin or origin not in current_app.config["CORS_ORIGINS"]:
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response.headers.update(_CORS_PREFLIGHT_HEADERS)
    return response
