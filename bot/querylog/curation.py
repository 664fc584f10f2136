"""What staff decided about the bank in the console, kept in the query log's database
so that every node sees it: accepted and rejected suggestions and entry edits, each
with who, when, which entry and the entry before and after (the history page)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from bot.querylog.schema import Tables, now

__all__ = ["CURATION_ACTIONS", "CurationRecords"]

#: accept: a suggested alternate was added; reject: a suggestion is not to be
#: proposed again; edit: an entry was changed in the console.
CURATION_ACTIONS = ("accept", "reject", "edit")


class CurationRecords:
    """The ``curation`` table of a query log (mixed into :class:`bot.querylog.QueryLog`)."""

    _engine: sa.Engine
    _t: Tables

    def record_curation(
        self,
        action: str,
        faq_id: str,
        *,
        who: str,
        wording: str | None = None,
        file: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> int:
        """Write one decision at once (not queued: staff wait for it); its id."""
        if action not in CURATION_ACTIONS:
            raise ValueError(f"unknown curation action {action!r}")
        values = {
            "created_at": now(),
            "action": action,
            "faq_id": faq_id,
            "wording": wording,
            "who": who[:128],
            "file": file,
            "before": None if before is None else json.dumps(before, ensure_ascii=False),
            "after": None if after is None else json.dumps(after, ensure_ascii=False),
        }
        with self._engine.begin() as conn:
            result = conn.execute(self._t.curation.insert().values(**values))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def curation(self, *, limit: int = 200, actions: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Decisions, newest first: ``id, created_at, action, faq_id, wording, who, file,
        before, after`` (the last two as dicts or None)."""
        c = self._t.curation
        stmt = sa.select(c).order_by(c.c.created_at.desc(), c.c.id.desc()).limit(limit)
        if actions:
            stmt = stmt.where(c.c.action.in_(actions))
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        for row in rows:
            for key in ("before", "after"):
                row[key] = None if row[key] is None else json.loads(row[key])
        return rows

    def rejected(self) -> set[tuple[str, str]]:
        """The (FAQ id, wording) pairs staff rejected as suggestions."""
        c = self._t.curation
        stmt = sa.select(c.c.faq_id, c.c.wording).where(c.c.action == "reject")
        with self._engine.connect() as conn:
            return {(f, w or "") for f, w in conn.execute(stmt)}
