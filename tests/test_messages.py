"""bot.quality.messages: real-message labels joined with titles kept outside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import Bot
from bot.bank import load_bank
from bot.errors import BankError
from bot.quality.evaluate import FALLBACK, evaluate
from bot.quality.messages import DEFAULT_LABELS, DEFAULT_MESSAGES, load_messages, message_key

KNOWN = {"building-report", "building-demolish", "vendor-report", "night-market"}
TITLES = [
    "楼顶加盖了一层违建",
    "夜市太吵睡不着",
    "社保怎么转移",
    "公共厕所太脏了",
    "门口摆摊又违建",
]


def write(tmp_path: Path, rows: list[str]) -> tuple[Path, Path]:
    messages = tmp_path / "messages.tsv"
    messages.write_text("title\tlabel\n" + "".join(f"{t}\t城乡建设\n" for t in TITLES), "utf-8")
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.tsv").write_text("key\tlabels\ttopic\n" + "".join(r + "\n" for r in rows), "utf-8")
    return labels, messages


def test_labels_are_joined_by_key(tmp_path: Path) -> None:
    k = [message_key(t) for t in TITLES]
    labels, messages = write(
        tmp_path,
        [
            f"{k[0]}\tbuilding-report\tbuilding roof",
            f"{k[1]}\tnight-market\tnight market",
            f"{k[2]}\toutside:labour\tsocial insurance",
            f"{k[3]}\tgap\tpublic toilet",
            f"{k[4]}\tvendor-report,building-report\ttwo complaints",
        ],
    )
    items = {i.q: i for i in load_messages(labels, messages, known_ids=KNOWN)}
    assert items[TITLES[0]].accepted == ("building-report",)
    assert (items[TITLES[2]].id, items[TITLES[2]].gap) == (FALLBACK, False)
    assert (items[TITLES[3]].id, items[TITLES[3]].gap) == (FALLBACK, True)
    assert items[TITLES[4]].accepted == ("vendor-report", "building-report")
    assert {i.half for i in items.values()} <= {"fit", "test"}
    assert all(
        i.half == ("fit" if int(message_key(i.q), 16) % 2 == 0 else "test") for i in items.values()
    )


def test_bad_rows_name_file_and_line(tmp_path: Path) -> None:
    k = [message_key(t) for t in TITLES]
    labels, messages = write(
        tmp_path,
        [
            f"{k[0]}\tbuilding-reprot\tbuilding",
            f"{k[1]}\tnight-market\tnight",
            f"{k[1]}\tgap\tnight",
            "0123456789abcdef\tgap\tmissing",
            "nonsense",
        ],
    )
    with pytest.raises(BankError) as e:
        load_messages(labels, messages, known_ids=KNOWN)
    shown = str(labels / "a.tsv")
    assert [str(i) for i in e.value.issues] == [
        f"{shown}:2: id 'building-reprot' is not in the FAQ bank",
        f"{shown}:4: key {k[1]} is labelled twice (a.tsv:3)",
        f"{shown}:5: key 0123456789abcdef is not a title of {messages}",
        f"{shown}:6: expected 'key<TAB>labels<TAB>topic'",
    ]


def test_evaluate_counts_any_accepted_id_and_gaps(tmp_path: Path) -> None:
    bot = Bot.load(Path(__file__).parent / "data" / "mini_faq", cache_dir=tmp_path / "jieba")
    k = [message_key(t) for t in TITLES]
    labels, messages = write(
        tmp_path,
        [f"{k[0]}\tbuilding-demolish,building-report\tb", f"{k[3]}\tgap\ttoilet"],
    )
    items = load_messages(labels, messages, known_ids=KNOWN)
    report = evaluate(bot, items)
    assert (report.n_in, report.n_gap, report.n_out) == (1, 1, 0)
    reply = bot.ask(TITLES[0])
    assert report.top1 == (reply.candidates[0]["id"] in {"building-demolish", "building-report"})
    assert report.gap_answered == (bot.ask(TITLES[3]).type == "answer")


def test_shipped_labels_load_against_the_shared_titles() -> None:
    """Every label names a bank entry and a title of the shared data set beside the clone."""
    if not DEFAULT_MESSAGES.exists():
        # The data set is not ours to ship: a clone that is not beside ../shared lacks it.
        pytest.skip(f"{DEFAULT_MESSAGES} is not beside this clone (see ../shared/eval-data)")
    bank = load_bank(Path(__file__).parent.parent / "faq")
    items = load_messages(DEFAULT_LABELS, DEFAULT_MESSAGES, known_ids=set(bank.by_id))
    in_remit = [i for i in items if i.id != FALLBACK or i.gap]
    assert len(in_remit) >= 250
    assert sum(i.id == FALLBACK and not i.gap for i in items) >= 600
    assert {i.half for i in items} == {"fit", "test"}
