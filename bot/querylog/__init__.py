"""The query log: what visitors asked and what they were told, masked before it is stored."""

from .store import REPLY_TYPES, SCHEMA_VERSION, QueryLog

__all__ = ["REPLY_TYPES", "SCHEMA_VERSION", "QueryLog"]
