"""Command line: ask, lint, eval, fit — and the operators' report, purge and reload.

Errors are turned into one-line messages here, at the edge:
``Error: faq/x.yaml:12: entry 'x-3': missing 'answer'`` and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from ..bank import shown_path
from ..config import instance_path
from ..errors import XiaochengError
from ..match.engine import DEFAULT_FAQ_DIR, Bot

__all__ = ["main"]


def default_index_path() -> Path:
    return instance_path() / "index.pkl"


def _fail(exc: XiaochengError) -> int:
    issues = getattr(exc, "issues", None)  # BankError, WorkbookError: one line per problem
    lines = [str(i) for i in issues] if issues is not None else [str(exc)]
    for line in lines:
        print(f"Error: {line}", file=sys.stderr)
    return 1


def _load_bot(args: argparse.Namespace) -> Bot:
    """--index PATH must be current (it is reported, not rebuilt); the default is rebuilt."""
    if args.index is not None:
        return Bot.load(args.faq, index_path=args.index, rebuild=False)
    return Bot.load(args.faq, index_path=default_index_path())


def _print_reply(reply: dict) -> None:
    print(f"[{reply['type']}] score {reply['score']:.2f}")
    if reply["faq"]:
        faq = reply["faq"]
        print(f"{faq['question']}  ({faq['id']}, {faq['category']})")
        print(faq["answer"])
        if faq["basis"]:
            print("依据：" + "、".join(faq["basis"]))
    elif reply["message"]:
        print(reply["message"])
    for s in reply["suggestions"]:
        print(f"  · {s['question']}  ({s['id']})")
    for ch in reply["channels"] if reply["type"] == "fallback" else []:
        print(f"  ☎ {ch['title']}: {ch['url']}")
    print("candidates: " + ", ".join(f"{c['id']} {c['score']:.2f}" for c in reply["candidates"]))


def cmd_ask(args: argparse.Namespace) -> int:
    if args.jsonl == (args.question is not None):
        print("Error: give one question, or --jsonl to read questions from stdin", file=sys.stderr)
        return 2
    bot = _load_bot(args)
    if args.jsonl:
        for line in sys.stdin:
            reply = bot.ask(line.rstrip("\r\n")).to_dict()
            sys.stdout.write(json.dumps(reply, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        return 0
    reply = bot.ask(args.question).to_dict()
    if args.json:
        print(json.dumps(reply, ensure_ascii=False, indent=2))
    else:
        _print_reply(reply)
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from ..quality.lint import lint

    bank, warnings = lint(args.dir, cache_dir=instance_path())
    for w in warnings:
        print(f"Warning: {w}")
    files = len({f.path for f in bank.faqs})
    print(f"OK: {len(bank.faqs)} entries in {files} files, {len(warnings)} warnings")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..quality.evaluate import evaluate, load_labelled, split_of

    bot = _load_bot(args)
    items = load_labelled(args.file, known_ids=set(bot.bank.by_id))
    if args.split != "all":
        items = [i for i in items if split_of(i.q) == args.split]
    report = evaluate(bot, items)
    if args.json:
        print(json.dumps(report.rates(), indent=2))
    else:
        print(f"split: {args.split}")
        print(report.render())
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from ..quality.evaluate import evaluate, fit_thresholds, load_labelled, split_of

    bot = Bot.load(args.faq, index_path=default_index_path())
    items = load_labelled(args.file, known_ids=set(bot.bank.by_id))
    fit_items = [i for i in items if split_of(i.q) == "fit"]
    values = fit_thresholds(
        bot, fit_items, max_wrong=args.max_wrong, max_out_answered=args.max_out_answered
    )
    out = Path(args.faq) / "thresholds.yaml"
    header = (
        "# Written by `python -m bot fit` from the 'fit' half of the labelled questions;\n"
        "# do not edit by hand. Re-run it after changing the bank.\n"
    )
    out.write_text(header + yaml.safe_dump(values, sort_keys=True), encoding="utf-8")
    print(f"wrote {shown_path(out)}: {values}")
    bot = Bot.load(args.faq, index_path=default_index_path())
    test_items = [i for i in items if split_of(i.q) == "test"]
    print(f"held-out half ({len(test_items)} questions):")
    print(evaluate(bot, test_items).render())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..curate.xlsx import export_xlsx

    rows = export_xlsx(args.faq, args.xlsx)
    print(f"wrote {args.xlsx}: {rows} entries")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ..curate.xlsx import import_xlsx

    result = import_xlsx(args.faq, args.file, dry_run=args.dry_run)
    print(
        f"{'checked' if args.dry_run else 'imported'} {args.file}: "
        f"{len(result.changed)} entries changed, {len(result.added)} added"
        + (f"; wrote {', '.join(result.files)}" if result.files else "")
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="智能小城 FAQ chatbot: ask, check and tune from the shell.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def bank_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--faq",
            default=str(DEFAULT_FAQ_DIR),
            metavar="DIR",
            help="FAQ bank folder (default: the shipped faq/)",
        )
        p.add_argument(
            "--index",
            default=None,
            metavar="PATH",
            help="use this prebuilt index; refuse it if it is stale (default: "
            "instance/index.pkl, rebuilt when stale)",
        )

    p = sub.add_parser("ask", help="answer one question, or one per stdin line with --jsonl")
    p.add_argument("question", nargs="?", help="the question")
    p.add_argument("--json", action="store_true", help="print the reply as JSON")
    p.add_argument(
        "--jsonl",
        action="store_true",
        help="read one question per stdin line, write one JSON reply per line",
    )
    bank_options(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("lint", help="validate the bank and warn about weak spots")
    p.add_argument("dir", nargs="?", default=str(DEFAULT_FAQ_DIR), help="FAQ bank folder")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("eval", help="measure the bot on labelled questions (YAML list of q, id)")
    p.add_argument("file", help="labelled questions, e.g. tests/data/dev_questions.yaml")
    p.add_argument(
        "--split",
        choices=["test", "fit", "all"],
        default="test",
        help="which half to report on (default: test, the half not used to fit)",
    )
    p.add_argument("--json", action="store_true", help="print the rates as JSON")
    bank_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "fit", help="fit calibration and thresholds on the 'fit' half; write faq/thresholds.yaml"
    )
    p.add_argument("file", help="labelled questions")
    p.add_argument("--faq", default=str(DEFAULT_FAQ_DIR), metavar="DIR", help="FAQ bank folder")
    p.add_argument("--max-wrong", type=float, default=0.02, help="allowed wrong-answer rate")
    p.add_argument(
        "--max-out-answered",
        type=float,
        default=0.03,
        help="allowed rate of out-of-remit questions answered",
    )
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("export", help="write the bank as an Excel/WPS workbook")
    p.add_argument("--xlsx", required=True, metavar="FILE", help="the .xlsx file to write")
    p.add_argument("--faq", default=str(DEFAULT_FAQ_DIR), metavar="DIR", help="FAQ bank folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import", help="check a workbook from export and write its changes to faq/*.yaml"
    )
    p.add_argument("file", help="the .xlsx file")
    p.add_argument("--faq", default=str(DEFAULT_FAQ_DIR), metavar="DIR", help="FAQ bank folder")
    p.add_argument("--dry-run", action="store_true", help="check only; write nothing")
    p.set_defaults(func=cmd_import)

    for name, (_, _, summary) in _DELEGATED.items():  # listed here, parsed by their modules
        sub.add_parser(name, help=f"{summary} (see python -m bot {name} --help)")
    return parser


# Operators' commands with parsers of their own (bot/report.py, bot/reload.py).
_DELEGATED = {
    "report": (
        "analysis.report",
        "report_main",
        "group unanswered questions of the query log into clusters",
    ),
    "purge": (
        "analysis.report",
        "purge_main",
        "delete query-log rows older than the retention period",
    ),
    "reload": (
        "reload",
        "reload_main",
        "validate the bank, rebuild the index, tell workers to swap",
    ),
}


def _delegate(command: str, argv: Sequence[str]) -> int:
    import importlib

    module, func, _ = _DELEGATED[command]
    return int(getattr(importlib.import_module(f"bot.{module}"), func)(list(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except XiaochengError as exc:
        return _fail(exc)
    except (FileNotFoundError, IsADirectoryError) as exc:
        print(f"Error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
