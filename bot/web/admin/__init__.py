"""The analyst console under ``/admin``."""
