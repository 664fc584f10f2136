"""The bank's commands: ask, lint, eval, fit and train.

Where the bank and its index are comes from the settings (``FAQ_DIR``,
``INDEX_PATH``, ``CACHE_DIR`` through :func:`bot.config.load_settings`);
``--faq`` and ``--index`` override them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from ..bank import load_bank, shown_path
from ..config import instance_path, load_settings
from ..errors import IndexArtifactError, XiaochengError
from ..match.engine import Bot, build_index, pipeline_for
from ..match.index import Index
from ..quality.evaluate import Labelled, evaluate, load_labelled, self_retrieval
from ..quality.fit import FitSet, fit_thresholds
from ..quality.lint import lint
from ..quality.messages import DEFAULT_MESSAGES, load_messages
from ..reload import read_marker

__all__ = ["register"]


def _settings() -> dict[str, Any]:
    return load_settings(instance_path())


def _faq_dir(args: argparse.Namespace, settings: dict[str, Any]) -> str:
    return str(args.faq or settings["FAQ_DIR"])


def _load_bot(args: argparse.Namespace) -> Bot:
    """--index PATH must be current (it is reported, not rebuilt); the default is rebuilt."""
    settings = _settings()
    if args.index is not None:
        faq_dir = args.faq or _bank_of(Path(args.index), Path(settings["FAQ_DIR"]))
        return Bot.load(faq_dir, index_path=args.index, rebuild=False)
    return Bot.load(
        _faq_dir(args, settings),
        index_path=settings["INDEX_PATH"],
        cache_dir=settings["CACHE_DIR"],
    )


def _bank_of(index_path: Path, default: Path) -> Path:
    """The bank an index given without --faq was built from: the default bank, the
    bank beside it (a reload snapshot), the folder ``train`` recorded in it, or the
    snapshot its reload marker names."""
    try:
        meta = Index.read_meta(index_path)
    except IndexArtifactError:
        return default  # Bot.load says what is wrong with the file
    digest = meta.get("digest")
    built_from = meta.get("faq_dir") if isinstance(meta.get("faq_dir"), str) else None
    places = [default, index_path.parent]
    if built_from:
        places.append(Path(built_from))
    try:
        marker = read_marker(index_path)
    except IndexArtifactError:
        marker = None
    if marker is not None:
        places.append(Path(marker.snapshot))
    for place in places:
        try:
            if place.is_dir() and load_bank(place).digest == digest:
                return place
        except XiaochengError:
            continue
    if built_from:
        raise IndexArtifactError(
            f"{index_path} was built from {built_from}, which has changed since; "
            f"rebuild it: python train.py --faq {built_from} --index {index_path}"
        )
    raise IndexArtifactError(
        f"{index_path} was built from another FAQ bank than {shown_path(default)}; "
        "pass the folder it was built from with --faq DIR, or rebuild it: "
        f"python train.py --index {index_path}"
    )


def _print_reply(reply: dict[str, Any]) -> None:
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


def _jsonl_turn(line: str) -> tuple[str, str | None]:
    """One ``--jsonl`` line as (question, previous FAQ id).

    A line is a plain question, or a JSON object ``{"q": "...", "context":
    {"faq_id": "..."}}`` (context optional). A line that starts with ``{`` but is
    not a JSON object with a string ``q`` is a plain question, answered as typed;
    a context that is not an object with a string ``faq_id`` is ignored, as is an
    unknown id.
    """
    text = line.rstrip("\r\n")
    if not text.lstrip().startswith("{"):
        return text, None
    try:
        turn = json.loads(text)
    except ValueError:
        return text, None
    if not isinstance(turn, dict) or not isinstance(turn.get("q"), str):
        return text, None
    context = turn.get("context")
    faq_id = context.get("faq_id") if isinstance(context, dict) else None
    return turn["q"], faq_id if isinstance(faq_id, str) else None


def cmd_ask(args: argparse.Namespace) -> int:
    if args.jsonl == (args.question is not None):
        print("Error: give one question, or --jsonl to read questions from stdin", file=sys.stderr)
        return 2
    bot = _load_bot(args)
    if args.jsonl:
        for line in sys.stdin:
            q, context = _jsonl_turn(line)
            reply = bot.ask(q, context=context).to_dict()
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
    bank, warnings = lint(_faq_dir(args, _settings()), cache_dir=instance_path())
    for w in warnings:
        print(f"Warning: {w}")
    files = len({f.path for f in bank.faqs})
    print(f"OK: {len(bank.faqs)} entries in {files} files, {len(warnings)} warnings")
    return 0


def _is_messages(path: str) -> bool:
    return Path(path).is_dir() or path.endswith(".tsv")


def _labelled(path: str, messages: str | None, known_ids: set[str]) -> list[Labelled]:
    """A YAML list of questions, or real-message labels (a .tsv file or a folder of them)."""
    if _is_messages(path):
        return load_messages(path, messages or DEFAULT_MESSAGES, known_ids=known_ids)
    return load_labelled(path, known_ids=known_ids)


def cmd_eval(args: argparse.Namespace) -> int:
    bot = _load_bot(args)
    items = _labelled(args.file, args.messages, set(bot.bank.by_id))
    if args.split != "all":
        items = [i for i in items if i.half == args.split]
    report = evaluate(bot, items)
    if args.json:
        print(json.dumps(report.rates(), indent=2))
    else:
        print(f"split: {args.split}")
        print(report.render())
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    settings = _settings()
    faq_dir = _faq_dir(args, settings)
    index_path = settings["INDEX_PATH"]
    bot = Bot.load(faq_dir, index_path=index_path, cache_dir=settings["CACHE_DIR"])
    sets = [_labelled(f, args.messages, set(bot.bank.by_id)) for f in args.file]
    fit_sets = []
    for name, items in zip(args.file, sets, strict=True):
        kind = "_MESSAGES" if _is_messages(name) else ""
        wrong = args.max_wrong if args.max_wrong is not None else settings["FIT_MAX_WRONG" + kind]
        out = args.max_out_answered
        out = out if out is not None else settings["FIT_MAX_OUT_ANSWERED" + kind]
        fit_sets.append(FitSet([i for i in items if i.half == "fit"], wrong, out))
    values = fit_thresholds(bot, fit_sets)
    out = Path(faq_dir) / "thresholds.yaml"
    header = (
        "# Written by `python -m bot fit` from the 'fit' halves of the development sets\n"
        f"# ({', '.join(args.file)}); do not edit by hand. Re-run it after changing the bank.\n"
    )
    out.write_text(header + yaml.safe_dump(values, sort_keys=True), encoding="utf-8")
    print(f"wrote {shown_path(out)}: {values}")
    bot = Bot.load(faq_dir, index_path=index_path, cache_dir=settings["CACHE_DIR"])
    for name, items in zip(args.file, sets, strict=True):
        test_items = [i for i in items if i.half == "test"]
        print(f"held-out half of {name} ({len(test_items)} questions):")
        print(evaluate(bot, test_items).render())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    settings = _settings()
    index_path = str(args.index or settings["INDEX_PATH"])
    start = time.perf_counter()
    bank = load_bank(_faq_dir(args, settings))
    pipeline = pipeline_for(bank, cache_dir=settings["CACHE_DIR"] or Path(index_path).parent)
    bot = Bot(bank, pipeline, build_index(bank, pipeline))
    bot.index.meta["faq_dir"] = str(Path(_faq_dir(args, settings)).resolve())
    bot.index.save(index_path)
    took = time.perf_counter() - start
    print(
        f"bank: {len(bank.faqs)} FAQs, {bot.index.n_rows} questions and alternates, "
        f"{len(bank.categories)} categories"
    )
    print(f"index: {shown_path(index_path)} built in {took:.2f} s")
    total, failures = self_retrieval(bot)
    print(
        f"self-retrieval: {total - len(failures)}/{total} = {(total - len(failures)) / total:.1%}"
    )
    for fid, text, got in failures:
        print(f"  miss: '{text}' of {fid} → {got}")
    return 0 if not failures else 1


def _faq_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--faq",
        default=None,
        metavar="DIR",
        help="FAQ bank folder (default: the FAQ_DIR setting, the shipped faq/)",
    )


def _bank_options(p: argparse.ArgumentParser) -> None:
    _faq_option(p)
    p.add_argument(
        "--index",
        default=None,
        metavar="PATH",
        help="use this prebuilt index; refuse it if it is stale; without --faq, serve the "
        "bank it was built from (default: the INDEX_PATH setting, instance/index.pkl, "
        "rebuilt when stale)",
    )


def register(sub: Any) -> None:
    """Add ask, lint, eval, fit and train to the subcommands ``sub``."""
    p = sub.add_parser("ask", help="answer one question, or one per stdin line with --jsonl")
    p.add_argument("question", nargs="?", help="the question")
    p.add_argument("--json", action="store_true", help="print the reply as JSON")
    p.add_argument(
        "--jsonl",
        action="store_true",
        help="read one question per stdin line (plain text, or a JSON object "
        '{"q": ..., "context": {"faq_id": ...}}), write one JSON reply per line',
    )
    _bank_options(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("lint", help="validate the bank and warn about weak spots")
    p.add_argument(
        "dir",
        nargs="?",
        default=None,
        help="FAQ bank folder (default: the FAQ_DIR setting)",
    )
    p.set_defaults(func=lambda args: cmd_lint(argparse.Namespace(faq=args.dir)))

    p = sub.add_parser("eval", help="measure the bot on labelled questions or real messages")
    p.add_argument(
        "file",
        help="labelled questions (YAML list of q, id), e.g. tests/data/dev_questions.yaml, "
        "or real-message labels (a .tsv or a folder of them), e.g. tests/data/gov_labels",
    )
    p.add_argument(
        "--messages",
        default=None,
        metavar="TSV",
        help="the message titles the labels are keyed on "
        "(default: ../shared/eval-data/gov_messages/messages.tsv)",
    )
    p.add_argument(
        "--split",
        choices=["test", "fit", "all"],
        default="test",
        help="which half to report on (default: test, the half not used to fit)",
    )
    p.add_argument("--json", action="store_true", help="print the rates as JSON")
    _bank_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "fit", help="fit calibration and thresholds on the 'fit' half; write faq/thresholds.yaml"
    )
    p.add_argument(
        "file",
        nargs="+",
        help="development sets, fitted together and reported one by one: labelled questions "
        "(YAML) or real-message labels (a .tsv or a folder), e.g. "
        "tests/data/dev_questions.yaml tests/data/gov_labels",
    )
    p.add_argument(
        "--messages",
        default=None,
        metavar="TSV",
        help="the message titles real-message labels are keyed on "
        "(default: ../shared/eval-data/gov_messages/messages.tsv)",
    )
    _faq_option(p)
    p.add_argument(
        "--max-wrong",
        type=float,
        default=None,
        help="allowed wrong-answer rate of every set (default: the FIT_MAX_WRONG setting, "
        "FIT_MAX_WRONG_MESSAGES for real-message labels)",
    )
    p.add_argument(
        "--max-out-answered",
        type=float,
        default=None,
        help="allowed rate of out-of-remit questions answered "
        "of every set (default: the FIT_MAX_OUT_ANSWERED setting, "
        "FIT_MAX_OUT_ANSWERED_MESSAGES for real-message labels)",
    )
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "train",
        help="validate the bank, build and save the index, check self-retrieval",
        description="Validate the FAQ bank, build the TF-IDF index and check that every "
        "question and alternate finds its own FAQ.",
    )
    _faq_option(p)
    p.add_argument(
        "--index",
        default=None,
        metavar="PATH",
        help="where to save the index (default: the INDEX_PATH setting, instance/index.pkl)",
    )
    p.set_defaults(func=cmd_train)
