"""The query log's read side: listings and figures for the analyst console and reports.

A :class:`LogReader` reads the tables of :mod:`bot.querylog.schema` through one
SQLAlchemy engine; :class:`bot.querylog.QueryLog` is one, with the writing on top.
Every question and comment read is masked again with :func:`bot.querylog.masking.mask`,
so rules added since a row was written apply to it too. The dashboard's figures
(questions per day, reply types, top FAQs, feedback) are those of
:class:`bot.querylog.summary.DayFigures`, which it inherits.

``since`` and ``until`` bound ``created_at`` as [since, until); either may be
None. Naive datetimes are taken as UTC. Days are local days, shifted from UTC
by ``utc_offset_minutes`` (default: China Standard Time, bot.config).

Internal traffic (rows logged with ``internal=True``: tests, monitoring probes)
is left out of every figure and listing; :meth:`LogReader.queries` and
:meth:`LogReader.count` show it on request (``internal=True`` for it alone,
``None`` for all rows).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.config import CHINA_UTC_OFFSET_MINUTES
from bot.querylog.masking import mask
from bot.querylog.schema import Tables, as_utc
from bot.querylog.summary import DayFigures

__all__ = ["LogReader"]

# The columns of a listing's row (LogReader.queries with brief=True).
_BRIEF = ("id", "created_at", "question", "reply_type", "faq_id", "score", "session", "internal")
# How long before the period a reply may have been shown whose chip was clicked in it.
_CHIP_WINDOW = timedelta(days=1)
# Distinct questions an export remembers masked (then it starts afresh): bounded memory.
_MASK_MEMO = 50_000


class LogReader(DayFigures):
    """Reads of the log in tables ``t`` through ``engine``."""

    def __init__(
        self, engine: sa.Engine, t: Tables, *, utc_offset_minutes: int = CHINA_UTC_OFFSET_MINUTES
    ) -> None:
        self._engine = engine
        self._t = t
        self._offset = timedelta(minutes=utc_offset_minutes)

    def queries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        types: Iterable[str] | None = None,
        limit: int | None = 100,
        offset: int = 0,
        text: str | None = None,
        session: str | None = None,
        oldest_first: bool = False,
        internal: bool | None = False,
        after: tuple[datetime, int] | None = None,
        brief: bool = False,
    ) -> list[dict[str, Any]]:
        """Logged questions, newest first, for listing and CSV export (``limit=None``: all).

        ``text`` keeps questions containing it (as typed, masked); ``session`` the
        questions of one (hashed) session, e.g. oldest first to read a conversation;
        ``internal`` visitors' questions (False), internal traffic's (True) or all
        (None). ``after`` is the ``(created_at, id)`` of the last row of the page
        before: the next page starts after it (keyset pagination, as fast on the
        last page as on the first; ``offset`` is for a page picked by number).
        Each row: ``id, created_at, question, normalized, reply_type, faq_id, score,
        candidates`` (list of ``{"id", "score"}``), ``session, latency_ms, from_query_id,
        internal``; ``brief`` rows only what a listing shows (``id, created_at,
        question, reply_type, faq_id, score, session, internal``), read and masked in
        about half the time (the CSV export of a year).
        """
        q = self._t.queries
        where = self._listed(since, until, types, text, session, internal)
        if after is not None:
            at, last = after
            if oldest_first:
                where += [q.c.created_at >= at, sa.or_(q.c.created_at > at, q.c.id > last)]
            else:
                where += [q.c.created_at <= at, sa.or_(q.c.created_at < at, q.c.id < last)]
        order = (q.c.created_at, q.c.id) if oldest_first else (q.c.created_at.desc(), q.c.id.desc())
        columns = [q.c[name] for name in _BRIEF] if brief else [q]
        stmt = sa.select(*columns).where(*where).order_by(*order).offset(offset).limit(limit)
        if not brief:
            return self._rows(stmt)
        with self._engine.connect() as conn:
            rows = [dict(zip(_BRIEF, r, strict=True)) for r in conn.execute(stmt)]
        for row in rows:
            row["question"] = mask(row["question"])
        return rows

    def export_rows(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        types: Iterable[str] | None = None,
        text: str | None = None,
        session: str | None = None,
        internal: bool | None = False,
        batch: int = 2000,
        shown: Callable[[str], str] | None = None,
    ) -> Generator[list[tuple[str, str, str, str | None, float | None]], None, None]:
        """The rows :meth:`queries` would list without a limit, newest first, as lists of
        up to ``batch`` tuples ``(local time "YYYY-MM-DD HH:MM:SS", question masked,
        reply_type, faq_id, score)``: the CSV export of a year. ``shown`` is applied to
        each distinct masked question once (the CSV cell guard).

        One query read through a server-side cursor (PostgreSQL; SQLite steps its
        statement as rows are fetched), so memory holds one batch whatever the range;
        the database writes the local time, so no datetime is built per row. The
        connection is held until the generator is exhausted or closed.
        """
        q = self._t.queries
        where = self._listed(since, until, types, text, session, internal)
        stmt = (
            sa.select(
                self._local_time_text(q.c.created_at), q.c.question, q.c.reply_type,
                q.c.faq_id, q.c.score,
            )
            .where(*where)
            .order_by(q.c.created_at.desc(), q.c.id.desc())
        )  # fmt: skip
        # Questions repeat (hot topics, clicked chips): each distinct one is masked once.
        masked: dict[str, str] = {}

        def masked_once(question: str) -> str:
            found = masked.get(question)
            if found is None:
                if len(masked) >= _MASK_MEMO:
                    masked.clear()
                found = mask(question)
                found = masked[question] = found if shown is None else shown(found)
            return found

        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
            for part in result.partitions(batch):
                yield [(at, masked_once(q), kind, faq, score) for at, q, kind, faq, score in part]

    def _listed(
        self,
        since: datetime | None,
        until: datetime | None,
        types: Iterable[str] | None,
        text: str | None,
        session: str | None,
        internal: bool | None,
    ) -> list[sa.ColumnElement[bool]]:
        q = self._t.queries
        # One session's rows are found by ix_queries_session; its internal flag is then
        # tested through a function (a no-op: the column is NOT NULL), which no index
        # serves, so SQLite, without statistics, does not take ix_queries_traffic for
        # it and read a year's rows to find a few.
        where = self._period(since, until, None if session else internal)
        if session and internal is not None:
            flag = sa.func.coalesce(q.c.internal, sa.false())
            where.append(flag == (sa.true() if internal else sa.false()))
        if types is not None:
            where.append(q.c.reply_type.in_(list(types)))
        if text:
            where.append(q.c.question.contains(text, autoescape=True))
        if session:
            where.append(q.c.session == session)
        return where

    def count(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        types: Iterable[str] | None = None,
        text: str | None = None,
        session: str | None = None,
        internal: bool | None = False,
    ) -> int:
        """How many questions :meth:`queries` would list without a limit."""
        q = self._t.queries
        where = self._listed(since, until, types, text, session, internal)
        stmt = sa.select(sa.func.count()).select_from(q).where(*where)
        with self._engine.connect() as conn:
            return int(conn.scalar(stmt) or 0)

    def unanswered(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        threshold: float = 0.5,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Questions the bot could not answer well: fallback, clarify, score below
        ``threshold``, or a reply the visitor found unhelpful (都不是 included); rows
        as in :meth:`queries`, newest first."""
        q = self._t.queries
        stmt = (
            sa.select(q)
            .where(*self._period(since, until), self._unanswered(threshold))
            .order_by(q.c.created_at.desc(), q.c.id.desc())
            .limit(limit)
        )
        return self._rows(stmt)

    def unanswered_texts(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        threshold: float = 0.5,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The questions of :meth:`unanswered`, grouped in the database by their stored
        text: rows ``{"question", "normalized", "count", "first_seen", "last_seen"}``,
        masked again, most asked first (then most recently asked); ``limit`` distinct
        texts at most, however many times they were asked (the clusters of a year)."""
        q = self._t.queries
        n = sa.func.count().label("n")
        last = sa.func.max(q.c.created_at).label("last_seen")
        stmt = (
            sa.select(q.c.question, q.c.normalized, n, sa.func.min(q.c.created_at), last)
            .where(*self._period(since, until), self._unanswered(threshold))
            .group_by(q.c.question, q.c.normalized)
            .order_by(n.desc(), last.desc(), q.c.question)
            .limit(limit)
        )
        keys = ("question", "normalized", "count", "first_seen", "last_seen")
        with self._engine.connect() as conn:
            rows = [dict(zip(keys, r, strict=True)) for r in conn.execute(stmt)]
        for row in rows:
            row["question"], row["normalized"] = mask(row["question"]), mask(row["normalized"])
            for key in ("first_seen", "last_seen"):
                # An aggregate's type is the driver's: SQLite gives text.
                at = row[key]
                at = datetime.fromisoformat(at) if isinstance(at, str) else at
                row[key] = None if at is None else as_utc(at)
        return rows

    def _unanswered(self, threshold: float) -> sa.ColumnElement[bool]:
        q, fb = self._t.queries, self._t.feedback
        unhelpful = sa.select(fb.c.query_id).where(fb.c.helpful.is_(False))
        return sa.or_(
            q.c.reply_type.in_(["fallback", "clarify"]),
            q.c.score.is_(None),
            q.c.score < threshold,
            q.c.id.in_(unhelpful),
        )

    def learned_wordings(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        low_score: float = 0.5,
        limit: int | None = 500,
    ) -> list[dict[str, Any]]:
        """Visitor questions that ended in an FAQ, candidates for its alternates.

        ``chosen``: how often a question's reply led, by a clicked chip (a later
        query with ``from_query_id`` pointing to it, answered with an FAQ the
        question was not already answered with), to that FAQ, where the reply was
        a clarify, a fallback or an answer below ``low_score``: a related question
        clicked after a sure answer asks for more, it does not re-word the question.
        ``helpful``: how often the question was answered with the FAQ at a calibrated score below
        ``low_score`` and the visitor said it helped. Rows ``{"faq_id",
        "question", "chosen", "helpful", "count"}``, questions masked, grouped by
        FAQ and question; most ``count`` first. ``since``/``until`` bound the
        time of the choice (its reply at most a day before ``since``) or of the answered
        question.
        """
        q, fb = self._t.queries, self._t.feedback
        parent = q.alias("parent")
        chosen_n = sa.func.count().label("n")
        chosen = (
            sa.select(q.c.faq_id, parent.c.question, chosen_n)
            .select_from(q.join(parent, q.c.from_query_id == parent.c.id))
            .where(q.c.reply_type == "answer", q.c.faq_id.is_not(None))
            .where(sa.or_(parent.c.faq_id.is_(None), parent.c.faq_id != q.c.faq_id))
            .where(sa.or_(parent.c.reply_type != "answer", parent.c.score < low_score))
            .where(*self._period(since, until))
            # A chip is clicked moments after its reply: bounding the reply's time lets
            # PostgreSQL read the replies of the period by index, not the whole log.
            .where(*self._between(parent.c.created_at, since and since - _CHIP_WINDOW, until))
            .group_by(q.c.faq_id, parent.c.question)
        )
        helpful_n = sa.func.count(sa.distinct(fb.c.query_id)).label("n")
        helpful = (
            sa.select(q.c.faq_id, q.c.question, helpful_n)
            .select_from(fb.join(q, fb.c.query_id == q.c.id))
            .where(fb.c.helpful.is_(True), q.c.reply_type == "answer")
            .where(q.c.faq_id.is_not(None), q.c.score < low_score)
            .where(*self._period(since, until))
            .group_by(q.c.faq_id, q.c.question)
        )
        counts: dict[tuple[str, str], dict[str, Any]] = {}
        with self._engine.connect() as conn:
            for kind, stmt in (("chosen", chosen), ("helpful", helpful)):
                for faq_id, question, n in conn.execute(stmt):
                    # Masked again: rules added since the row was written apply too.
                    key = (faq_id, mask(question))
                    row = counts.setdefault(
                        key, {"faq_id": key[0], "question": key[1], "chosen": 0, "helpful": 0}
                    )
                    row[kind] += int(n)
        rows = [{**row, "count": row["chosen"] + row["helpful"]} for row in counts.values()]
        rows.sort(key=lambda r: (-r["count"], r["faq_id"], r["question"]))
        return rows if limit is None else rows[:limit]

    def feedback(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Feedback rows, newest first, each with its question:
        ``id, query_id, created_at, helpful, comment, reason, question, faq_id``."""
        q, fb = self._t.queries, self._t.feedback
        stmt = (
            sa.select(fb, q.c.question, q.c.faq_id)
            .select_from(fb.join(q, fb.c.query_id == q.c.id))
            .where(*self._between(fb.c.created_at, since, until), q.c.internal == sa.false())
            .order_by(fb.c.created_at.desc(), fb.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        for row in rows:
            row["question"] = mask(row["question"])
            row["comment"] = mask(row["comment"]) if row["comment"] else row["comment"]
        return rows

    def _rows(self, stmt: sa.Select[Any]) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        for row in rows:
            # Stored masked already; masking again applies rules added since it was written.
            row["question"] = mask(row["question"])
            row["normalized"] = mask(row["normalized"])
            row["candidates"] = json.loads(row["candidates"])
        return rows

    def _local_time_text(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
        """``column`` as local time text to the second, cut (not rounded) as isoformat's
        first 19 characters are."""
        minutes = int(self._offset.total_seconds() // 60)
        if self._engine.dialect.name == "sqlite":
            # Stored as "YYYY-MM-DD HH:MM:SS.ffffff": the fraction is cut before shifting.
            return sa.func.datetime(sa.func.substr(column, 1, 19), f"{minutes:+d} minutes")
        shifted = sa.func.date_trunc("second", column) + sa.literal(self._offset, sa.Interval)
        return sa.func.to_char(shifted, "YYYY-MM-DD HH24:MI:SS")
