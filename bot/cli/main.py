"""``python -m bot``: one parser with a subcommand per job, one error printer.

Commands: ask, lint, eval, fit, train (:mod:`bot.cli.bank`), report, purge,
reload (:mod:`bot.cli.ops`) and admin-password (:mod:`bot.cli.admin_password`).
Settings (FAQ_DIR, INDEX_PATH, CACHE_DIR, the fit caps, ...) come from
:func:`bot.config.load_settings` for the instance folder.

Errors are turned into one-line messages here, at the edge:
``Error: faq/x.yaml:12: entry 'x-3': missing 'answer'`` and exit status 1.
A reader that stops early (``python -m bot ask --json ... | head``) ends the
command quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import XiaochengError
from . import admin_password, bank, ops
from .output import fail, print_errors

__all__ = ["build_parser", "main", "purge_main", "reload_main", "report_main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="智能小城 FAQ chatbot: ask, check, tune and operate from the shell.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (bank, ops, admin_password):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except XiaochengError as exc:
        return fail(exc)
    except (FileNotFoundError, IsADirectoryError) as exc:
        return print_errors([f"{exc.filename}: {exc.strerror}"])
    except BrokenPipeError:
        # The reader went away: point stdout at /dev/null so the final flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(command: str, argv: Sequence[str] | None) -> int:
    return main([command, *(sys.argv[1:] if argv is None else argv)])


def report_main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot report [--since 7d] [--limit N] [--snippets]``."""
    return _run("report", argv)


def purge_main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot purge [--days N] [--dry-run]``."""
    return _run("purge", argv)


def reload_main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot reload [--faq DIR] [--index PATH]``."""
    return _run("reload", argv)
