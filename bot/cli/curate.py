"""The curators' spreadsheet commands: export the bank to Excel/WPS and import it back."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import instance_path, load_settings

__all__ = ["register"]


def _faq_dir(args: argparse.Namespace) -> str:
    return str(args.faq or load_settings(instance_path())["FAQ_DIR"])


def cmd_export(args: argparse.Namespace) -> int:
    from ..curate.xlsx import export_xlsx

    rows = export_xlsx(_faq_dir(args), args.xlsx)
    print(f"wrote {args.xlsx}: {rows} entries")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ..curate.xlsx import import_xlsx

    result = import_xlsx(_faq_dir(args), args.file, dry_run=args.dry_run)
    print(
        f"{'checked' if args.dry_run else 'imported'} {args.file}: "
        f"{len(result.changed)} entries changed, {len(result.added)} added"
        + (f"; wrote {', '.join(result.files)}" if result.files else "")
    )
    return 0


def register(sub: Any) -> None:
    """Add ``export`` and ``import`` to the ``python -m bot`` parser."""
    faq_help = "FAQ bank folder (default: the FAQ_DIR setting, the shipped faq/)"
    p = sub.add_parser("export", help="write the bank as an Excel/WPS workbook")
    p.add_argument("--xlsx", required=True, metavar="FILE", help="the .xlsx file to write")
    p.add_argument("--faq", default=None, metavar="DIR", help=faq_help)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import", help="check a workbook from export and write its changes to faq/*.yaml"
    )
    p.add_argument("file", help="the .xlsx file")
    p.add_argument("--faq", default=None, metavar="DIR", help=faq_help)
    p.add_argument("--dry-run", action="store_true", help="check only; write nothing")
    p.set_defaults(func=cmd_import)
