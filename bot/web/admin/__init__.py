"""The analyst console under ``/admin``."""

from .views import init_app

__all__ = ["init_app"]
