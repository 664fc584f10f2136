"""The query log: what visitors asked and what they were told, masked before it is stored."""

from .store import FEEDBACK_REASONS, REPLY_TYPES, SCHEMA_VERSION, QueryLog

__all__ = ["FEEDBACK_REASONS", "REPLY_TYPES", "SCHEMA_VERSION", "QueryLog"]
