"""The workbook's layout (sheet names and columns, shared by export and import) and
its errors, one :class:`CellIssue` per bad cell."""

from __future__ import annotations

import re
from dataclasses import dataclass

from openpyxl.utils import get_column_letter

from ..errors import IssuesError

__all__ = [
    "COLUMNS",
    "COL",
    "HEADERS",
    "HELP_SHEET",
    "ID_PATTERN",
    "LIST_FIELDS",
    "SHEET",
    "VERSION_SHEET",
    "CellIssue",
    "WorkbookError",
]

SHEET = "问答"
HELP_SHEET = "说明"
VERSION_SHEET = "版本"
#: (header, bank field, column width, what the 说明 sheet says)
COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    (
        "编号",
        "id",
        26,
        "条目的唯一编号：小写字母、数字和“-”。已有条目的编号不要改；新增一行并写一个新编号即新增条目。",
    ),
    ("分类", "category", 12, "条目所属的分类，如“市容秩序”。"),
    ("标准问", "question", 30, "最常见、最规范的问法，全库不能重复。"),
    (
        "扩展问",
        "alternates",
        36,
        "群众的其他问法，每行一个（单元格内换行：Excel 按 Alt+Enter，WPS 同样）。不能为空。",
    ),
    (
        "答案",
        "answer",
        60,
        "回复群众的答案，2–6 句平实的话；城市信息写成 {hotline} 这样的占位符（见 faq/site.yaml）。",
    ),
    ("关键词", "keywords", 18, "可选。把兜底提示引到本条的词，每行一个。"),
    ("相关问题", "related", 26, "可选。答完后推荐的其他条目的编号，每行一个。"),
    (
        "依据",
        "basis",
        30,
        "可选。答案所依据的法律法规名称，每行一个，如《城市市容和环境卫生管理条例》。",
    ),
    (
        "链接",
        "links",
        36,
        "可选。每行一个，写成“标题：网址”，网址可用占位符，如“网上留言：{message_board_url}”。",
    ),
    ("审核日期", "reviewed", 12, "可选。最近一次审核内容的日期，写成 2026-11-20 这样的格式。"),
    (
        "文件",
        "file",
        22,
        "条目所在的 YAML 文件（faq 目录下），如 street-order.yaml。"
        "已有条目不能改；新条目写在这里指定的文件末尾。",
    ),
)
HEADERS = tuple(c[0] for c in COLUMNS)
COL = {c[1]: get_column_letter(i) for i, c in enumerate(COLUMNS, start=1)}
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
LIST_FIELDS = ("alternates", "keywords", "related", "basis")


@dataclass(frozen=True)
class CellIssue:
    """One problem in the workbook, located by sheet and cell."""

    sheet: str
    cell: str | None
    message: str
    entry: str | None = None

    def __str__(self) -> str:
        where = f"{self.sheet}!{self.cell}" if self.cell else self.sheet
        who = f" entry '{self.entry}':" if self.entry else ""
        return f"{where}:{who} {self.message}"


class WorkbookError(IssuesError[CellIssue]):
    """The workbook cannot be imported; ``issues`` lists every bad cell."""
