"""The query log: what visitors asked and what they were told, masked before it is stored."""

from .schema import FEEDBACK_REASONS, REPLY_TYPES, SCHEMA_VERSION
from .store import QueryLog

__all__ = ["FEEDBACK_REASONS", "REPLY_TYPES", "SCHEMA_VERSION", "QueryLog"]
