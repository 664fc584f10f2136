"""The exception family of 智能小城.

    XiaochengError
     ├── BankError          the FAQ bank in faq/ has problems (each names file, line, entry)
     ├── IndexArtifactError an index file is missing, unreadable, stale or foreign
     └── QueryLogError      the query-log store refused an operation
          └── UnknownQuery  feedback names a query id that was never logged

"No match" is not an error: it is a normal fallback reply.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BankError",
    "BankIssue",
    "IndexArtifactError",
    "QueryLogError",
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


class BankError(XiaochengError):
    """The FAQ bank could not be loaded; ``issues`` lists every problem found."""

    def __init__(self, issues: list[BankIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class IndexArtifactError(XiaochengError):
    """An index file cannot be used as it is."""


class QueryLogError(XiaochengError):
    """The query-log store refused an operation."""


class UnknownQuery(QueryLogError):
    """Feedback refers to a query id that is not in the log."""
