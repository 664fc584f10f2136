"""The console's CSV exports: the filtered questions and the clusters, streamed as
UTF-8 with a byte-order mark (for Excel), every cell guarded against formula
injection.

The first page of questions is read before the response starts, so a query log
that cannot be read is the console's 503 page; one lost in mid-stream ends the
file with a line saying the export is incomplete (the status is sent by then).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app

from bot.analysis.clusters import CHINA_TIME, csv_cell, to_csv_rows
from bot.analysis.report import unanswered_clusters
from bot.web.admin.filters import current_filters, when
from bot.web.admin.views import TYPE_NAMES, faq_question
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
    """The filtered questions (date range, type, search text, session), newest first, as CSV."""
    f = current_filters()
    service = get_service()
    log, bot = service.querylog, service.bot
    # Rows logged while the export runs would shift the pages; leave them out.
    until = min(f.until, datetime.now(UTC))

    def page(offset: int) -> list[dict[str, Any]]:
        return log.queries(
            f.since, until, types=f.types, text=f.text or None, session=f.session or None,
            limit=_EXPORT_BATCH, offset=offset,
        )  # fmt: skip

    first = page(0)  # an unreachable log fails here, before the response starts

    def rows() -> Iterator[list[Any]]:
        yield QUERY_CSV_HEADER
        offset = 0
        while True:
            batch = first if offset == 0 else page(offset)
            for row in batch:
                yield [
                    when(row["created_at"], seconds=True),
                    row["question"],
                    TYPE_NAMES.get(row["reply_type"], row["reply_type"]),
                    row["faq_id"] or "",
                    faq_question(bot, row["faq_id"]),
                    "" if row["score"] is None else f"{row['score']:.4f}",
                ]
            if len(batch) < _EXPORT_BATCH:
                return
            offset += len(batch)

    return _csv_response(rows(), f"queries_{f.slug()}.csv")


def export_clusters() -> Response:
    """The clusters of the date range, largest first, as CSV."""
    f = replace(current_filters(), reply_type=None)  # clusters have no reply-type filter
    service = get_service()
    found = unanswered_clusters(
        service.querylog, service.bot, f.since, f.until, settings=current_app.config,
        nearest_for=_EXPORT_NEAREST,
    )  # fmt: skip
    return _csv_response(to_csv_rows(found, tz=CHINA_TIME), f"clusters_{f.slug()}.csv")


def _csv_response(rows: Iterable[list[Any]], filename: str) -> Response:
    """Stream ``rows`` as UTF-8 CSV with a byte-order mark (for Excel), every cell
    guarded against formula injection."""

    def generate() -> Iterator[str]:
        yield "\ufeff"
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        try:
            for row in rows:
                writer.writerow([csv_cell(value) for value in row])
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
