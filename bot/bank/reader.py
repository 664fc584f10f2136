"""Reading one bank file: YAML with line numbers, syntax errors in plain Chinese, paths as shown.

Mappings come back as :class:`LineMap` (the line of the mapping and of each
key), a duplicate key is an error, and dates stay text so the entry checks
can report a bad one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import BankIssue

__all__ = ["LineMap", "read_yaml", "scalar_text", "shown_path"]


class LineMap(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps line numbers, rejects duplicate keys and keeps dates as text."""


# The same loader on libyaml's parser, when PyYAML has it: a bank is read in a
# tenth of the time (each reload reads it in every worker). A file it refuses
# is read again by _Loader, whose error messages _syntax_issue knows.
_FastLoader: Any = _Loader
if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(yaml.CSafeLoader):
        """_Loader on libyaml's parser."""

    _FastLoader = _CLoader

for _loader in {_Loader, _FastLoader}:
    _loader.yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LineMap:
    result = LineMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise _DuplicateKey(
                None,
                None,
                f"重复的键 '{key}'（第 {result.key_lines[key]} 行已经有了）",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


for _loader in {_Loader, _FastLoader}:
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def read_yaml(
    path: Path, shown: str, issues: list[BankIssue], texts: Mapping[str, str] | None = None
) -> Any:
    """Parse one file (or its replacement text in ``texts``); None, with an issue, if broken."""
    try:
        if texts is not None and path.name in texts:
            text = texts[path.name]
        else:
            text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        issues.append(BankIssue(shown, None, f"is not UTF-8 text ({exc.reason})"))
        return None
    except OSError as exc:
        issues.append(BankIssue(shown, None, f"cannot be read ({exc.strerror})"))
        return None
    try:
        return yaml.load(text, Loader=_FastLoader)  # noqa: S506 - both are SafeLoaders
    except yaml.YAMLError:
        pass  # read it again below, for the error in the words _syntax_issue knows
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        issues.append(_syntax_issue(exc, text, shown))
        return None
    except yaml.YAMLError as exc:
        issues.append(BankIssue(shown, None, f"YAML syntax error: {exc}"))
        return None


_BLOCK_END = "expected <block end>"
_INDENT = "缩进不一致（这一行的缩进与上一级不匹配）"


def _syntax_issue(exc: yaml.MarkedYAMLError, text: str, shown: str) -> BankIssue:
    """A YAML syntax error in plain Chinese for the usual mistakes, with the line shown.

    Anything else keeps PyYAML's own wording ("YAML syntax error: …"), still
    with its position and line.
    """
    problem = exc.problem or exc.context or "invalid YAML"
    mark, start = exc.problem_mark, exc.context_mark
    lines = text.splitlines()
    message = None
    if isinstance(exc, _DuplicateKey):
        message = problem
    elif problem.startswith(_BLOCK_END):
        message = _INDENT
    elif "'\\t'" in problem:
        message = "这一行有制表符（Tab）；YAML 只能用空格缩进，请把 Tab 换成空格"
    elif problem == "mapping values are not allowed here" and mark is not None:
        line = lines[mark.line] if mark.line < len(lines) else ""
        if re.search(r":(\s|$)", line[: mark.column]):
            message = "一行里有两个“: ”；值里含有冒号时，请给整个值加上引号"
        else:
            message = _INDENT
    elif exc.context == "while scanning a quoted scalar" and start is not None:
        mark, message = start, "引号没有闭合（这里开始的引号找不到配对的结束引号）"
    elif exc.context == "while scanning a simple key" and start is not None:
        mark, message = start, "缺少冒号（每一项要写成“键: 值”，冒号后面加一个空格）"
    elif exc.context == "while parsing a flow sequence" and start is not None:
        mark, message = start, "方括号“[”没有闭合（缺少配对的“]”或逗号）"
    elif exc.context == "while parsing a flow mapping" and start is not None:
        mark, message = start, "花括号“{”没有闭合（缺少配对的“}”或逗号）"
    text_of = f"YAML 格式错误：{message}" if message else f"YAML syntax error: {problem}"
    if mark is None:
        return BankIssue(shown, None, text_of)
    if mark.line < len(lines):
        text_of += f"\n    {mark.line + 1} | {lines[mark.line]}"
    return BankIssue(shown, mark.line + 1, text_of, column=mark.column + 1)


def scalar_text(value: Any) -> str | None:
    """Scalars as text (YAML reads 12345 as a number); None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value).strip()
    return None


def shown_path(path: str | os.PathLike[str]) -> str:
    """The path as a curator would type it: relative to the working folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(Path(path).resolve()) if rel.startswith("..") else rel
