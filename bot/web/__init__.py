"""The web service: app factory, JSON API, OpenAPI, hot reload and the analyst console."""

from .app import Service, create_app

__all__ = ["Service", "create_app"]
