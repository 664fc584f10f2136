"""The bank as an Excel/WPS workbook, and back.

:func:`export_xlsx` writes one row per entry on the sheet 问答 (alternates,
keywords, related ids and laws one per line in their cell; links as
``标题：网址`` lines) and a sheet 说明 that explains every column.
:func:`import_xlsx` reads such a workbook, checks every cell and then the
whole bank as it would be, and writes YAML only when all of it is valid: an
entry whose row is unchanged is not touched, so exporting and importing an
unchanged bank leaves every file byte-identical. A row with a new 编号 becomes
a new entry at the end of the file named in 文件. Rows removed from the sheet
do not delete entries.

Problems are reported as ``问答!D7: entry 'vendor-report': 扩展问不能为空``
(:class:`WorkbookError`, one :class:`CellIssue` each; both in :mod:`.sheet`, with
the sheet's layout).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from ..bank import EXTRA_FILES, Bank, Faq, load_bank
from ..errors import BankError
from .edit import Draft, EditConflict, EditError, file_digest
from .sheet import (
    COL,
    COLUMNS,
    HEADERS,
    HELP_SHEET,
    ID_PATTERN,
    LIST_FIELDS,
    SHEET,
    VERSION_SHEET,
    CellIssue,
    WorkbookError,
)

__all__ = ["COLUMNS", "CellIssue", "ImportResult", "WorkbookError", "export_xlsx", "import_xlsx"]


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the files written and the entries changed or added."""

    files: list[str]
    changed: list[str]
    added: list[str]


# --- export -------------------------------------------------------------------------


def _cell_value(faq: Faq, key: str) -> str:
    if key == "file":
        return Path(faq.path).name
    if key in LIST_FIELDS:
        return "\n".join(getattr(faq, key))
    if key == "links":
        return "\n".join(f"{link.title}：{link.url}" for link in faq.links)
    if key == "reviewed":
        return faq.reviewed.isoformat() if faq.reviewed else ""
    return str(getattr(faq, key))


def export_xlsx(faq_dir: str | os.PathLike[str], path: str | os.PathLike[str]) -> int:
    """Write the bank in ``faq_dir`` to ``path`` as a workbook; the number of entry rows.

    A hidden sheet records each FAQ file's SHA-256, so that an import of this
    workbook refuses to overwrite a file that someone changed after the export.
    """
    bank = load_bank(faq_dir)
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    head_font, head_fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    wrap = Alignment(wrap_text=True, vertical="top")
    ws.append(list(HEADERS))
    for i, (_, _, width, _) in enumerate(COLUMNS, start=1):
        cell = ws.cell(row=1, column=i)
        cell.font, cell.fill, cell.alignment = head_font, head_fill, wrap
        ws.column_dimensions[get_column_letter(i)].width = width
    for faq in bank.faqs:
        ws.append([_cell_value(faq, key) for _, key, _, _ in COLUMNS])
        for cell in ws[ws.max_row]:
            cell.alignment = wrap
            cell.number_format = "@"  # text: Excel must not turn 2026-11-20 into a date
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text that starts with "=" is not a formula
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{ws.max_row}"

    doc = wb.create_sheet(HELP_SHEET)
    doc.append(["列", "说明"])
    for cell in doc[1]:
        cell.font, cell.fill = head_font, head_fill
    for header, _, _, text in COLUMNS:
        doc.append([header, text])
    doc.append([])
    for line in (
        "每行是一个问答条目。改完保存后运行 python -m bot import 本文件，导入前会检查整个表格，"
        "有错误时列出每个出错的单元格，一个文件都不改。",
        "只会改动内容有变化的条目，其余条目的 YAML 文件保持原样；删除表格中的行不会删除条目。",
    ):
        doc.append(["", line])
    doc.column_dimensions["A"].width = 12
    doc.column_dimensions["B"].width = 100
    for row in doc.iter_rows():
        for cell in row:
            cell.alignment = wrap
    versions = wb.create_sheet(VERSION_SHEET)
    versions.sheet_state = "hidden"
    versions.append(["文件", "SHA-256"])
    for name in dict.fromkeys(Path(f.path).name for f in bank.faqs):
        versions.append([name, file_digest((Path(faq_dir) / name).read_bytes())])
    wb.save(os.fspath(path))
    return len(bank.faqs)


# --- import -------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def _lines(value: Any) -> list[str]:
    return [line.strip() for line in _text(value).split("\n") if line.strip()]


@dataclass
class _Row:
    number: int
    fields: dict[str, Any]
    file: str


def _read_rows(
    path: str | os.PathLike[str], issues: list[CellIssue], versions: dict[str, str]
) -> list[_Row]:
    try:
        wb = load_workbook(os.fspath(path), read_only=True, data_only=True)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, InvalidFileException) as exc:
        raise WorkbookError(
            [CellIssue(str(path), None, f"不是可以读取的 .xlsx 文件（{exc}）")]
        ) from exc
    try:
        if SHEET not in wb.sheetnames:
            issues.append(CellIssue(SHEET, None, f"找不到工作表“{SHEET}”"))
            return []
        rows = list(wb[SHEET].iter_rows(values_only=True))
        if VERSION_SHEET in wb.sheetnames:
            for name, digest in list(wb[VERSION_SHEET].iter_rows(values_only=True))[1:]:
                versions[_text(name)] = _text(digest)
    finally:
        wb.close()
    header = [_text(v) for v in (rows[0] if rows else ())]
    for i, want in enumerate(HEADERS):
        got = header[i] if i < len(header) else ""
        if got != want:
            issues.append(
                CellIssue(SHEET, f"{get_column_letter(i + 1)}1", f"表头应为“{want}”，现在是“{got}”")
            )
    if issues:
        return []
    out = []
    for number, values in enumerate(rows[1:], start=2):
        cells = dict(zip((c[1] for c in COLUMNS), values, strict=False))
        if all(_text(v) == "" for v in cells.values()):
            continue
        fields: dict[str, Any] = {}
        eid = _text(cells.get("id"))
        fields["id"] = eid
        for key in ("category", "question", "answer"):
            fields[key] = _text(cells.get(key))
        for key in LIST_FIELDS:
            fields[key] = _lines(cells.get(key))
        fields["reviewed"] = _text(cells.get("reviewed")) or None
        fields["links"] = _lines(cells.get("links"))
        out.append(_Row(number, fields, _text(cells.get("file"))))
    return out


_REQUIRED = {
    "id": "编号不能为空",
    "category": "分类不能为空",
    "question": "标准问不能为空",
    "alternates": "扩展问不能为空",
    "answer": "答案不能为空",
    "file": "文件不能为空",
}


def _is_faq_file(name: str) -> bool:
    return (
        name.endswith(".yaml") and "/" not in name and "\\" not in name and name not in EXTRA_FILES
    )


def _check_row(row: _Row, issues: list[CellIssue]) -> None:
    """Cell checks; parses links and dates in place."""
    eid = row.fields["id"] or None
    for key, message in _REQUIRED.items():
        value = row.file if key == "file" else row.fields[key]
        if not value:
            issues.append(CellIssue(SHEET, f"{COL[key]}{row.number}", message, eid))
    if eid and not ID_PATTERN.match(eid):
        issues.append(
            CellIssue(SHEET, f"{COL['id']}{row.number}", "编号只能用小写字母、数字和“-”", eid)
        )
    if row.file and (not row.file.endswith(".yaml") or "/" in row.file or row.file in EXTRA_FILES):
        issues.append(
            CellIssue(
                SHEET,
                f"{COL['file']}{row.number}",
                f"文件“{row.file}”不是问答文件名（应像 street-order.yaml 这样）",
                eid,
            )
        )
    reviewed = row.fields["reviewed"]
    if reviewed is not None:
        try:
            row.fields["reviewed"] = dt.date.fromisoformat(reviewed)
        except ValueError:
            issues.append(
                CellIssue(
                    SHEET,
                    f"{COL['reviewed']}{row.number}",
                    f"审核日期“{reviewed}”要写成 2026-11-20 这样的格式",
                    eid,
                )
            )
    links = []
    for n, line in enumerate(row.fields["links"], start=1):
        m = re.match(r"^([^：:]*)[：:](.*)$", line)
        title, url = (m.group(1).strip(), m.group(2).strip()) if m else ("", "")
        if not title or not url or title.lower() in ("http", "https"):
            issues.append(
                CellIssue(
                    SHEET,
                    f"{COL['links']}{row.number}",
                    f"链接第 {n} 行要写成“标题：网址”",
                    eid,
                )
            )
        else:
            links.append({"title": title, "url": url})
    row.fields["links"] = links


def _faq_fields(faq: Faq) -> dict[str, Any]:
    return {
        "id": faq.id,
        "category": faq.category,
        "question": faq.question,
        "alternates": list(faq.alternates),
        "answer": faq.answer,
        "keywords": list(faq.keywords),
        "related": list(faq.related),
        "basis": list(faq.basis),
        "reviewed": faq.reviewed,
        "links": [{"title": link.title, "url": link.url} for link in faq.links],
    }


def _column_of(message: str) -> str:
    """The column a bank-level problem of an imported entry belongs to."""
    for needle, key in (
        ("related id", "related"),
        ("placeholder", "answer"),
        ("question '", "question"),
        ("'reviewed'", "reviewed"),
        ("link", "links"),
        ("category", "category"),
        ("alternates", "alternates"),
        ("keywords", "keywords"),
        ("basis", "basis"),
        ("answer", "answer"),
    ):
        if needle in message:
            return key
    return "id"


def import_xlsx(
    faq_dir: str | os.PathLike[str], path: str | os.PathLike[str], *, dry_run: bool = False
) -> ImportResult:
    """Check the workbook and the bank it makes; write the changed entries (unless dry_run).

    Raises WorkbookError naming every bad cell, and then writes nothing.
    """
    issues: list[CellIssue] = []
    versions: dict[str, str] = {}
    rows = _read_rows(path, issues, versions)
    if issues:
        raise WorkbookError(issues)
    bank = load_bank(faq_dir)
    default_category = _file_categories(faq_dir, bank)
    seen: dict[str, int] = {}
    for row in rows:
        _check_row(row, issues)
        eid = row.fields["id"]
        if eid in seen:
            issues.append(
                CellIssue(SHEET, f"{COL['id']}{row.number}", f"编号与第 {seen[eid]} 行重复", eid)
            )
        elif eid:
            seen[eid] = row.number
        faq = bank.by_id.get(eid)
        moved = faq is not None and row.file != Path(faq.path).name
        if faq is not None and moved and _is_faq_file(row.file):
            issues.append(
                CellIssue(
                    SHEET,
                    f"{COL['file']}{row.number}",
                    f"这个条目在 {Path(faq.path).name} 里，文件列不能改"
                    "（要移动条目请直接编辑 YAML）",
                    eid,
                )
            )
    if issues:
        raise WorkbookError(issues)

    draft = Draft(faq_dir)
    changed, added = [], []
    row_of = {row.fields["id"]: row.number for row in rows}
    try:
        for row in rows:
            eid = row.fields["id"]
            faq = bank.by_id.get(eid)
            if faq is None:
                fields = {k: v for k, v in row.fields.items() if v not in (None, "", [])}
                if fields.get("category") == default_category.get(row.file):
                    del fields["category"]
                draft.add_entry(row.file, fields)
                added.append(eid)
                continue
            old = _faq_fields(faq)
            diff = {k: v for k, v in row.fields.items() if old[k] != v}
            if diff.get("category") == default_category.get(row.file, ""):
                diff["category"] = None  # back to the file's category: drop the entry's own
            if diff:
                draft.update_entry(eid, diff)
                changed.append(eid)
        texts = draft.texts()
        if texts:
            load_bank(faq_dir, texts=texts)
    except EditError as exc:
        raise WorkbookError([CellIssue(SHEET, None, str(exc))]) from exc
    except BankError as exc:
        raise WorkbookError(
            [
                CellIssue(
                    SHEET,
                    f"{COL[_column_of(i.message)]}{row_of[i.entry]}" if i.entry in row_of else None,
                    i.message if i.entry in row_of else str(i),
                    i.entry if i.entry in row_of else None,
                )
                for i in exc.issues
            ]
        ) from exc
    expected = {n: versions[n] for n in texts if n in versions}
    stale = [
        n
        for n, digest in expected.items()
        if file_digest((Path(faq_dir) / n).read_bytes()) != digest
    ]
    try:
        if stale:
            raise EditConflict(", ".join(stale))
        files = [] if dry_run else draft.write(expected=expected)
    except EditConflict as exc:
        names = "、".join(stale) if stale else str(exc).split(":")[0]
        raise WorkbookError(
            [
                CellIssue(
                    SHEET,
                    None,
                    f"{names} 在导出这个表格之后被改过；为免覆盖别人的修改，什么都没有写。"
                    "请重新导出，再把修改填进新表格",
                )
            ]
        ) from exc
    return ImportResult(files=files, changed=changed, added=added)


def _file_categories(faq_dir: str | os.PathLike[str], bank: Bank) -> dict[str, str]:
    """Each FAQ file's default category (read fast with PyYAML; the bank is already valid)."""
    out: dict[str, str] = {}
    names: Iterable[str] = {Path(f.path).name for f in bank.faqs}
    for name in names:
        text = (Path(faq_dir) / name).read_text(encoding="utf-8")
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        if isinstance(data, dict) and data.get("category") is not None:
            out[name] = str(data["category"]).strip()
    return out
