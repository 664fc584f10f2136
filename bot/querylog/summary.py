"""The dashboard's figures: questions per local day and reply type, the reply types'
shares, the FAQs answered most and their feedback, read from a per-day summary.

A closed local day (one before today, in the log's ``utc_offset_minutes``) is
counted once, on the first read that needs it, into ``summary_counts``: its
visitors' questions, feedback rows and helpful feedback rows by reply type and
FAQ; ``summary_days`` records that the day is counted (an empty day too). Today,
and the part of a range that does not cover whole days, is counted live from
``queries``. A year's dashboard then reads a few thousand summary rows instead
of a million questions.

A row written later for a counted day (the outbox ships rows of an outage with
their own times; feedback on a question of an earlier day; a purge) deletes
that day's summary in the writer's transaction (:func:`forget_days`), and the
next read counts it again. A count and a write cannot cross: on SQLite the
count holds the write lock (``BEGIN IMMEDIATE``); on PostgreSQL it locks
``summary_days`` in SHARE ROW EXCLUSIVE mode, which a writer's delete waits
for, so the writer deletes what the count wrote once its rows are committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.querylog.schema import REPLY_TYPES, Tables, as_utc, now

__all__ = ["DayFigures", "days_of", "forget_days"]

# Closed days counted in one transaction: bounds how long a count holds writers back.
_FILL_DAYS = 31
_COUNTS = ("questions", "rated", "helpful")
_Tally = dict[tuple[Any, ...], list[int]]


def forget_days(conn: Connection, t: Tables, days: Iterable[date], *, up_to: bool = False) -> None:
    """Delete the summary of ``days`` (with ``up_to``: of every day up to the last of them)
    in the caller's transaction, because rows of those days were written or deleted."""
    days = sorted(set(days))
    if not days:
        return
    for table in (t.summary_days, t.summary_counts):  # days first: the lock a count waits on
        which = table.c.day <= days[-1] if up_to else table.c.day.in_(days)
        conn.execute(table.delete().where(which))


class DayFigures:
    """The dashboard's reads of a query log (mixed into :class:`bot.querylog.stats.LogReader`)."""

    _engine: sa.Engine
    _t: Tables
    _offset: timedelta

    def daily_counts(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Questions per local day and reply type, one row per day, days without any as 0.

        Each row: ``{"day": date, "answer": n, "clarify": n, "fallback": n, "total": n}``.
        """
        counts: dict[date, dict[str, int]] = {}
        for (d, reply_type), (n, _, _) in self._tally(since, until, ("day", "reply_type")).items():
            if n:
                counts.setdefault(d, {})[reply_type] = n
        first = self.local_day(since) if since else min(counts, default=None)
        last = self.local_day(until - timedelta(microseconds=1)) if until else None
        last = last or max(counts, default=None)
        rows = []
        d = first
        while d is not None and last is not None and d <= last:
            by_type = counts.get(d, {})
            row: dict[str, Any] = {"day": d}
            row.update({t: by_type.get(t, 0) for t in REPLY_TYPES})
            row["total"] = sum(by_type.values())
            rows.append(row)
            d += timedelta(days=1)
        return rows

    def type_shares(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Count and share of each reply type: ``[{"type", "count", "share"}]``, all three."""
        tally = self._tally(since, until, ("reply_type",))
        counts = {key[0]: n for key, (n, _, _) in tally.items()}
        total = sum(counts.values())
        return [
            {
                "type": t,
                "count": counts.get(t, 0),
                "share": counts.get(t, 0) / total if total else 0.0,
            }
            for t in REPLY_TYPES
        ]

    def top_faqs(
        self, since: datetime | None = None, until: datetime | None = None, *, limit: int = 10
    ) -> list[dict[str, Any]]:
        """The FAQs answered most often: ``[{"faq_id", "count"}]``, most first."""
        tally = self._tally(since, until, ("reply_type", "faq_id"))
        rows = [
            {"faq_id": faq_id, "count": n}
            for (reply_type, faq_id), (n, _, _) in tally.items()
            if reply_type == "answer" and faq_id is not None and n
        ]
        rows.sort(key=lambda r: (-r["count"], r["faq_id"]))
        return rows[:limit]

    def helpful_rates(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Feedback per FAQ for queries in the range, most feedback first.

        Each row: ``{"faq_id", "helpful", "not_helpful", "total", "rate"}`` where
        ``rate`` is helpful / total.
        """
        rows = [
            {"faq_id": key[0], "helpful": h, "not_helpful": n - h, "total": n, "rate": h / n}
            for key, (_, n, h) in self._tally(since, until, ("faq_id",)).items()
            if key[0] is not None and n
        ]
        rows.sort(key=lambda r: (-r["total"], r["faq_id"]))
        return rows

    # -- the summary and the live counts ------------------------------------------------

    def _tally(self, since: datetime | None, until: datetime | None, by: Sequence[str]) -> _Tally:
        """``{key: [questions, rated, helpful]}`` of visitors' questions in [since, until),
        ``key`` the values of ``by`` (of day, reply_type, faq_id): closed whole days from
        the summary (counted first where missing), the rest live."""
        whole = self._closed_days(since, until)
        tally: _Tally = {}
        if whole is None:
            self._add(tally, self._live(since, until, by))
            return tally
        first, stop = whole
        self._count_missing(first, stop)
        s = self._t.summary_counts
        stmt = (
            sa.select(*[s.c[k] for k in by], *[sa.func.sum(s.c[c]) for c in _COUNTS])
            .where(s.c.day >= first, s.c.day < stop)
            .group_by(*[s.c[k] for k in by])
        )
        with self._engine.connect() as conn:
            self._add(tally, conn.execute(stmt))
        head, tail = self._day_start(first), self._day_start(stop)
        if since is not None and as_utc(since) < head:
            self._add(tally, self._live(since, head, by))
        if until is None or tail < as_utc(until):
            self._add(tally, self._live(tail, until, by))
        return tally

    def _closed_days(
        self, since: datetime | None, until: datetime | None
    ) -> tuple[date, date] | None:
        """The closed local days wholly inside [since, until) as [first, stop), or None."""
        if since is None:
            q = self._t.queries
            with self._engine.connect() as conn:
                oldest = conn.scalar(sa.select(sa.func.min(q.c.created_at)).where(*self._period()))
            if oldest is None:
                return None
            first = self.local_day(oldest)
        else:
            first = self.local_day(since)
            if self._day_start(first) < as_utc(since):
                first += timedelta(days=1)
        stop = self.local_day(now())
        if until is not None:
            stop = min(stop, self.local_day(until))
        return (first, stop) if first < stop else None

    def _count_missing(self, first: date, stop: date) -> None:
        done = self._t.summary_days
        days = (stop - first).days
        with self._engine.connect() as conn:
            counted = conn.scalar(
                sa.select(sa.func.count()).where(done.c.day >= first, done.c.day < stop)
            )
        if counted == days:
            return
        for start in range(0, days, _FILL_DAYS):
            chunk = first + timedelta(days=start)
            self._count_days(chunk, min(stop, chunk + timedelta(days=_FILL_DAYS)))

    def _count_days(self, first: date, stop: date) -> None:
        """Count the closed days of [first, stop) that are not counted yet, in one
        transaction that no write of their rows can cross (see the module docstring)."""
        done, counts = self._t.summary_days, self._t.summary_counts
        with self._engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    name = conn.dialect.identifier_preparer.format_table(done)
                    conn.exec_driver_sql(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE")
                have = conn.scalars(
                    sa.select(done.c.day).where(done.c.day >= first, done.c.day < stop)
                )
                missing = sorted(
                    {first + timedelta(days=i) for i in range((stop - first).days)}
                    - {_as_date(d) for d in have}
                )
                if not missing:
                    return
                start, end = self._day_start(missing[0]), self._day_start(missing[-1] + _DAY)
                tally: _Tally = {}
                self._add(tally, self._live(start, end, ("day", "reply_type", "faq_id"), conn))
                wanted = set(missing)
                rows = [
                    dict(zip(("day", "reply_type", "faq_id", *_COUNTS), (*key, *n), strict=True))
                    for key, n in tally.items()
                    if key[0] in wanted
                ]
                if rows:
                    conn.execute(counts.insert(), rows)
                stamp = now()
                conn.execute(done.insert(), [{"day": d, "filled_at": stamp} for d in missing])

    def _live(
        self,
        since: datetime | None,
        until: datetime | None,
        by: Sequence[str],
        conn: Connection | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows ``(*key, questions, rated, helpful)`` counted from the log itself."""
        q, fb = self._t.queries, self._t.feedback
        columns = {"day": self.day_of(q.c.created_at), "reply_type": q.c.reply_type}
        columns["faq_id"] = q.c.faq_id
        keys = [columns[k].label(k) for k in by]
        asked = sa.select(*keys, sa.func.count()).where(*self._period(since, until)).group_by(*keys)
        helpful = sa.func.sum(sa.case((fb.c.helpful, 1), else_=0))
        rated = (
            sa.select(*keys, sa.func.count(), helpful)
            .select_from(fb.join(q, fb.c.query_id == q.c.id))
            .where(*self._period(since, until))
            .group_by(*keys)
        )
        if conn is None:
            with self._engine.connect() as own:
                return self._live(since, until, by, own)
        rows = [(*key, n, 0, 0) for *key, n in conn.execute(asked)]
        rows += [(*key, 0, n, h) for *key, n, h in conn.execute(rated)]
        if by[:1] == ["day"] or by[:1] == ("day",):
            rows = [(_as_date(d), *rest) for d, *rest in rows]  # SQLite's date() is text
        return rows

    @staticmethod
    def _add(tally: _Tally, rows: Iterable[Sequence[Any]]) -> None:
        for *key, questions, rated, helpful in rows:
            n = tally.setdefault(tuple(key), [0, 0, 0])
            n[0] += int(questions or 0)
            n[1] += int(rated or 0)
            n[2] += int(helpful or 0)

    # -- periods and local days ----------------------------------------------------------

    def _period(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        internal: bool | None = False,
    ) -> list[sa.ColumnElement[bool]]:
        """The questions of [since, until): visitors' (``internal=False``), internal
        traffic's (True) or all (None)."""
        q = self._t.queries
        where = self._between(q.c.created_at, since, until)
        if internal is not None:
            # Compared with "=", which every backend's index serves ("IS" is not).
            where.append(q.c.internal == (sa.true() if internal else sa.false()))
        return where

    @staticmethod
    def _between(
        column: sa.ColumnElement[Any], since: datetime | None, until: datetime | None
    ) -> list[sa.ColumnElement[bool]]:
        conditions = []
        if since is not None:
            conditions.append(column >= since)
        if until is not None:
            conditions.append(column < until)
        return conditions

    def day_of(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """The local day of a time column, in SQL."""
        minutes = int(self._offset.total_seconds() // 60)
        if self._engine.dialect.name == "sqlite":
            return sa.func.date(column, f"{minutes:+d} minutes")
        return sa.cast(column + sa.literal(self._offset, sa.Interval), sa.Date)

    def local_day(self, moment: datetime) -> date:
        """The local day of ``moment`` (naive: UTC)."""
        return (as_utc(moment) + self._offset).date()

    def _day_start(self, day: date) -> datetime:
        return datetime.combine(day, time(), UTC) - self._offset


_DAY = timedelta(days=1)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def days_of(moments: Iterable[datetime], offset: timedelta) -> set[date]:
    """The local days (UTC shifted by ``offset``) of ``moments`` (naive: UTC)."""
    return {(as_utc(m) + offset).date() for m in moments}
