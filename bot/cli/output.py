"""The command line's one error printer: ``Error: ...`` lines on stderr, exit status 1."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from ..errors import IssuesError, XiaochengError

__all__ = ["fail", "print_errors"]


def print_errors(lines: Iterable[str]) -> int:
    """Print each line as ``Error: line`` on stderr; return the exit status 1."""
    for line in lines:
        print(f"Error: {line}", file=sys.stderr)
    return 1


def fail(exc: XiaochengError) -> int:
    """Print ``exc`` (each issue of an error that lists several on its own line); return 1."""
    if isinstance(exc, IssuesError):
        return print_errors(str(i) for i in exc.issues)
    return print_errors([str(exc)])
