"""The bank as an Excel/WPS workbook in the console: download it, upload it back.

``GET /admin/faqs/export.xlsx`` is :func:`bot.curate.xlsx.export_xlsx` of the bank
folder. ``POST /admin/faqs/import`` takes the workbook (field ``workbook``) and
imports it with :func:`bot.curate.xlsx.import_xlsx`: every bad cell listed and
nothing written, or only the changed entries written; then the bank is
published through the hot reload and each changed entry recorded for
``/admin/history``, as the editor does.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Response, current_app, request
from flask.typing import ResponseReturnValue

from bot.config import CHINA_TIME
from bot.curate.edit import Draft, EditError
from bot.curate.explain import explain_message
from bot.curate.xlsx import CellIssue, WorkbookError, export_xlsx, import_xlsx
from bot.web.admin.curation import who
from bot.web.admin.editor import faq_list
from bot.web.reload import reload_bank
from bot.web.service import get_service

__all__ = ["MSG_NO_FILE", "XLSX_TYPE", "export_workbook", "import_workbook"]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MSG_NO_FILE = "请先选择要导入的 .xlsx 表格文件。"


def export_workbook() -> Response:
    """The whole bank as one workbook, named after today's date."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "faq.xlsx"
        export_xlsx(current_app.config["FAQ_DIR"], path)
        data = path.read_bytes()
    day = datetime.now(CHINA_TIME).strftime("%Y%m%d")
    response = Response(data, mimetype=XLSX_TYPE)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=faq_{day}.xlsx; filename*=UTF-8''%E9%A2%98%E5%BA%93_{day}.xlsx"
    )
    return response


def _cell_text(issue: CellIssue) -> str:
    where = f"{issue.sheet}!{issue.cell}" if issue.cell else issue.sheet
    who_ = f"，条目 {issue.entry}" if issue.entry else ""
    return f"{where}{who_}：{explain_message(issue.message).text}"


def _fields(faq_dir: str) -> dict[str, dict[str, Any]]:
    draft = Draft(faq_dir)
    out = {}
    for faq in get_service().bot.bank.faqs:
        try:
            out[faq.id] = draft.fields(faq.id)
        except EditError:
            continue  # on disk no more: the import reports it
    return out


def import_workbook() -> ResponseReturnValue:
    """Check the uploaded workbook, write what it changes, reload, record."""
    upload = request.files.get("workbook")
    if upload is None or not upload.filename:
        return faq_list(import_problems=[MSG_NO_FILE]), 400
    faq_dir = str(current_app.config["FAQ_DIR"])
    before = _fields(faq_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.xlsx"
        upload.save(path)
        try:
            result = import_xlsx(faq_dir, path)
        except WorkbookError as e:
            # A file that is no workbook names the temporary path: say the uploaded name.
            texts = [_cell_text(i).replace(str(path), upload.filename) for i in e.issues]
            return faq_list(import_problems=texts), 422
    version = None
    if result.files:
        reloaded = reload_bank(current_app)
        version = reloaded.version[:12] if reloaded.ok else None
        after = Draft(faq_dir)
        for entry in [*result.changed, *result.added]:
            get_service().querylog.record_curation(
                "edit", entry, who=who(), file=after.file_of(entry), before=before.get(entry),
                after=after.fields(entry),
            )  # fmt: skip
    current_app.logger.info(
        "admin: workbook imported, %d changed, %d added", len(result.changed), len(result.added)
    )
    shown = {"files": result.files, "changed": result.changed, "added": result.added,
             "version": version}  # fmt: skip
    return faq_list(imported=shown)
