"""The exception family of 智能小城.

    XiaochengError
     ├── IssuesError        several located problems, listed in ``issues``
     │    ├── BankError     the FAQ bank in faq/ has problems (each names file, line, entry)
     │    └── (WorkbookError in bot.curate.xlsx: cells of an imported workbook)
     ├── IndexArtifactError an index file is missing, unreadable, stale or foreign
 ├── SharedBankError    the database the nodes share banks through cannot be used
     └── QueryLogError      the query-log store refused an operation
          ├── UnknownQuery  feedback names a query id that was never logged
          └── QueryLogUnavailable  the log's database cannot be reached to answer

"No match" is not an error: it is a normal fallback reply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "BankError",
    "BankIssue",
    "IndexArtifactError",
    "IssuesError",
    "QueryLogError",
    "QueryLogUnavailable",
    "SharedBankError",
    "UnknownQuery",
    "XiaochengError",
]


class XiaochengError(Exception):
    """Base class of every error this package raises on purpose."""


@dataclass(frozen=True)
class BankIssue:
    """One problem in the FAQ bank, located by file, line and entry."""

    path: str
    line: int | None
    message: str
    entry: str | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        who = f" entry '{self.entry}':" if self.entry else ""
        return f"{where}:{who} {self.message}"


_Issue = TypeVar("_Issue")


class IssuesError(XiaochengError, Generic[_Issue]):
    """An error made of several located problems; ``issues`` lists every one, and the
    message is one line each."""

    def __init__(self, issues: Iterable[_Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class BankError(IssuesError[BankIssue]):
    """The FAQ bank could not be loaded; ``issues`` lists every problem found."""


class IndexArtifactError(XiaochengError):
    """An index file cannot be used as it is."""


class SharedBankError(XiaochengError):
    """The database through which the nodes share published banks cannot be read or written."""


class QueryLogError(XiaochengError):
    """The query-log store refused an operation."""


class UnknownQuery(QueryLogError):
    """Feedback refers to a query id that is not in the log."""


class QueryLogUnavailable(QueryLogError):
    """The query log's database cannot be reached, so a question about it has no answer."""
