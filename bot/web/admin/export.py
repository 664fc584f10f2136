"""The console's CSV exports: the filtered questions and the clusters, streamed as
UTF-8 with a byte-order mark (for Excel), every cell guarded against formula
injection.

The questions are read by one statement through a server-side cursor
(:meth:`bot.querylog.QueryLog.export_rows`), in batches of 2,000 rows of plain
tuples with the local time written by the database; each batch goes out as one
chunk, so memory stays bounded by a batch whatever the range, and a year of
traffic (1,000,000 rows) streams well inside gunicorn's 30-second worker timeout
(bench/bench_console.py times it).
The first batch is read before the response starts, so a query log that cannot
be read is the console's 503 page; one lost in mid-stream ends the file with a
line saying the export is incomplete (the status is sent by then).
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app

from bot.analysis.clusters import CHINA_TIME, csv_cell, to_csv_rows
from bot.analysis.report import unanswered_clusters
from bot.web.admin.filters import current_filters
from bot.web.admin.views import TYPE_NAMES
from bot.web.service import get_service

__all__ = ["QUERY_CSV_HEADER", "export_clusters", "export_queries"]

_EXPORT_BATCH = 2000
# Clusters in a CSV export that get their nearest FAQ (one engine lookup each).
_EXPORT_NEAREST = 500

_logger = logging.getLogger(__name__)
_INCOMPLETE = "导出未完成：咨询记录库暂时无法访问，请稍后重新导出。"
#: The question list's columns and reply types, in Chinese for Excel and WPS users.
QUERY_CSV_HEADER = ["时间（北京时间）", "问题", "回复类型", "问答编号", "匹配的问答", "得分"]


def export_queries() -> Response:
    """The filtered questions (date range, type, search text, session, traffic), newest
    first, as CSV."""
    f = current_filters()
    service = get_service()
    log, bot = service.querylog, service.bot
    # Rows logged while the export runs are left out: the file is the range as it was.
    until = min(f.until, datetime.now(UTC))
    rows = log.export_rows(
        f.since, until, types=f.types, text=f.text or None, session=f.session or None,
        internal=f.internal, batch=_EXPORT_BATCH, shown=csv_cell,
    )  # fmt: skip
    first = next(rows, [])  # an unreachable log fails here, before the response starts

    # Each FAQ's cells (its id and title) guarded once; questions once each, above.
    faqs: dict[str | None, tuple[str, str]] = {None: ("", "")}
    faqs.update({faq.id: (csv_cell(faq.id), csv_cell(faq.question)) for faq in bot.bank.faqs})
    types = {t: TYPE_NAMES.get(t, t) for t in TYPE_NAMES}

    def faq_cells(faq_id: str | None) -> tuple[str, str]:
        return faqs.setdefault(faq_id, (csv_cell(faq_id or ""), ""))  # no longer in the bank

    def batches() -> Iterator[list[tuple[str, ...]]]:
        yield [tuple(QUERY_CSV_HEADER)]
        for batch in itertools.chain([first], rows):
            yield [
                (
                    at,
                    question,
                    types.get(kind, kind),
                    *(faqs.get(faq) or faq_cells(faq)),
                    "" if score is None else f"{score:.4f}",
                )
                for at, question, kind, faq, score in batch
            ]

    response = _csv_response(batches(), f"queries_{f.slug()}.csv")
    # The cursor's connection goes back to the pool even if the client leaves early.
    response.call_on_close(rows.close)
    return response


def export_clusters() -> Response:
    """The clusters of the date range, largest first, as CSV."""
    f = replace(current_filters(), reply_type=None)  # clusters have no reply-type filter
    service = get_service()
    found = unanswered_clusters(
        service.querylog, service.bot, f.since, f.until, settings=current_app.config,
        nearest_for=_EXPORT_NEAREST,
    )  # fmt: skip
    return _csv_response([to_csv_rows(found, tz=CHINA_TIME)], f"clusters_{f.slug()}.csv")


def _csv_response(batches: Iterable[Sequence[Sequence[Any]]], filename: str) -> Response:
    """Stream ``batches`` of rows, each cell guarded against formula injection already
    (:func:`bot.analysis.clusters.csv_cell`), as UTF-8 CSV with a byte-order mark (for
    Excel), one chunk per batch."""

    def generate() -> Iterator[str]:
        yield "\ufeff"
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        try:
            for batch in batches:
                writer.writerows(batch)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        except sa.exc.SQLAlchemyError as e:
            _logger.warning("export %s cut short: %s", filename, e)
            writer.writerow([_INCOMPLETE])
            yield buffer.getvalue()

    response = Response(generate(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
