"""The bank's validation messages in plain Chinese for the console, each naming its field.

The command line prints the checks of :mod:`bot.bank` and :mod:`bot.curate.edit`
as they are (``faq/street.yaml:12: entry 'x': missing 'answer'``); the console's
editor shows the same problems through :func:`explain` and :func:`explain_edit`:
the file and line, the entry, the field by its name on the form (答案, 相似问法, …)
and what is wrong. A message no pattern knows is shown as the checks wrote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BankIssue

__all__ = ["FIELD_NAMES", "Explained", "explain", "explain_edit", "explain_message"]

#: Each entry field by the name the console's form gives it.
FIELD_NAMES = {
    "id": "编号",
    "question": "标准问",
    "alternates": "相似问法",
    "answer": "答案",
    "category": "分类",
    "keywords": "关键词",
    "related": "相关问题",
    "basis": "依据",
    "reviewed": "复核日期",
    "reviewer": "复核人",
    "links": "链接",
}


@dataclass(frozen=True)
class Explained:
    """One problem for the form: the field it belongs to (None: the file or entry) and the text."""

    field: str | None
    text: str


def _name(key: str) -> str:
    return FIELD_NAMES.get(key, key)


# (pattern of the English message, field, Chinese text: {0}, {1}… are the pattern's groups)
_RULES: tuple[tuple[re.Pattern[str], str | None, str], ...] = tuple(
    (re.compile(pattern), field, text)
    for pattern, field, text in (
        (r"^missing 'category' \(none for the file either\)$", "category",
         "没有填写，文件也没有统一的分类"),
        (r"^missing '(\w+)'$", "{0}", "不能为空"),
        (r"^'(\w+)' cannot be empty$", "{0}", "不能为空"),
        (r"^'(\w+)' must be a list$", "{0}", "要写成列表（表单中每行一项）"),
        (r"^'(\w+)' has an empty or non-text item$", "{0}", "有一项是空的或不是文字"),
        (r"^'reviewed' is not a date YYYY-MM-DD: '(.*)'$", "reviewed",
         "“{0}”不是日期，要写成 2026-11-20 这样的格式"),
        (r"^unknown placeholder \{(\w*)\} \(not in site\.yaml; did you mean \{(\w+)\}\?\)$",
         "answer", "用了 site.yaml 里没有的占位符 {{{0}}}，是不是 {{{1}}}？"),
        (r"^unknown placeholder \{(.*)\} \(not in site\.yaml\)$", "answer",
         "用了 site.yaml 里没有的占位符 {{{0}}}"),
        (r"^related id '(.*)' does not exist \(did you mean '(.*)'\?\)$", "related",
         "编号“{0}”的条目不存在，是不是“{1}”？"),
        (r"^related id '(.*)' does not exist$", "related", "编号“{0}”的条目不存在"),
        (r"^question '(.*)' is also in entry '(.*)' \((.*)\)$", None,
         "问法“{0}”已经是条目 {1} 的标准问或相似问法（{2}），同一个问法不能属于两个条目"),
        (r"^duplicate id, also defined at (.*)$", "id", "编号重复，{0} 已经有这个编号"),
        (r"^id must be lowercase a-z, 0-9 and '-'$", "id", "只能用小写字母、数字和“-”"),
        (r"^each link needs exactly 'title' and 'url'$", "links", "每个链接要有标题和网址"),
        (r"^unknown key '(.*)' \(did you mean '(.*)'\?\)$", None, "未知的键“{0}”，是不是“{1}”？"),
        (r"^unknown key '(.*)'.*$", None, "未知的键“{0}”"),
        (r"^entry #(\d+) has no 'id'$", "id", "第 {0} 个条目没有编号"),
        (r"^entry '(.*)' does not exist$", None,
         "条目“{0}”不存在（可能刚被删除或改名），请回到问答列表"),
        (r"^entry '(.*)' already exists in (.*)$", "id", "编号“{0}”已经被 {1} 里的条目用了"),
        (r"^a new entry needs an 'id'$", "id", "新条目要有编号"),
        (r"^the id cannot be changed$", "id", "已有条目的编号不能改"),
        (r"^'(.*)' is not a FAQ file name \(like street-order\.yaml\)$", "file",
         "“{0}”不是问答文件名（应像 street-order.yaml 这样）"),
        (r"^(.*): no such FAQ file$", "file", "题库里没有文件 {0}"),
        (r"^(.*): cannot be edited until it parses \(python -m bot lint\)$", "file",
         "{0} 有格式错误，修好之前不能在后台编辑（请运行 python -m bot lint 查看）"),
        (r"^is empty$", None, "文件是空的"),
        (r"^related ids were not checked, because (.*) could not be read; fix that first$", None,
         "{0} 读不出来，没有检查相关问题的编号；请先修好它"),
        (r"^placeholders were not checked, because site\.yaml could not be read; fix that first$",
         None, "site.yaml 读不出来，没有检查占位符；请先修好它"),
    )
)  # fmt: skip
_ENTRY = re.compile(r"^entry '([^']*)': (.*)$", re.S)


def explain_message(message: str) -> Explained:
    """A message of the checks (without file and entry) in Chinese, with its field."""
    for pattern, field, text in _RULES:
        m = pattern.match(message)
        if m is None:
            continue
        groups = m.groups()
        key = field.format(*groups) if field else None
        said = text.format(*groups)
        if key in FIELD_NAMES:
            return Explained(key, f"【{_name(key)}】{said}")
        return Explained(key, said)
    return Explained(None, message)


def explain(issue: BankIssue) -> Explained:
    """One problem of the bank check, in Chinese, with its file, line and entry."""
    found = explain_message(issue.message)
    where = issue.path + (f" 第 {issue.line} 行" if issue.line is not None else "")
    who = f"，条目 {issue.entry}" if issue.entry else ""
    return Explained(found.field, f"{where}{who}：{found.text}")


def explain_edit(message: str) -> Explained:
    """A refused edit (:class:`bot.curate.edit.EditError`'s text) in Chinese."""
    m = _ENTRY.match(message)
    if m is None:
        return explain_message(message)
    found = explain_message(m.group(2))
    return Explained(found.field, f"条目 {m.group(1)}：{found.text}")
