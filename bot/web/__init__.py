"""The web service: app factory, JSON API, OpenAPI, hot reload and the analyst console."""

from .app import create_app
from .service import Service, get_service

__all__ = ["Service", "create_app", "get_service"]
