"""Curators' tools: round-trip editing of the bank and its Excel/WPS workbook."""

from .edit import Draft, EditConflict, EditError, EntryChange, file_digest

__all__ = ["Draft", "EditConflict", "EditError", "EntryChange", "file_digest"]
