"""bot.bank: every error kind names file, line and entry, in one sentence."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from bot.bank import load_bank
from bot.errors import BankError


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(folder: Path) -> list[str]:
    with pytest.raises(BankError) as info:
        load_bank(folder)
    return [str(i) for i in info.value.issues]


@pytest.fixture
def bank_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty bank folder; paths in messages are relative to tmp_path."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "faq"
    folder.mkdir()
    return folder


GOOD = """\
category: 违法建筑
faqs:
  - id: b-1
    question: 如何举报违法建筑？
    alternates: [违建怎么举报]
    answer: 拨打{hotline}。
"""


def test_loads_the_fixture_bank(faq_dir: Path) -> None:
    bank = load_bank(faq_dir)
    assert [f.id for f in bank.faqs] == [
        "building-report",
        "building-demolish",
        "vendor-report",
        "night-market",
        "smalltalk-hello",
    ]
    first = bank.by_id["building-report"]
    assert first.category == "违法建筑"
    assert first.alternates == ("违章搭建怎么举报", "邻居私搭乱建找谁", "违建")
    assert first.reviewed == dt.date(2026, 11, 1)
    assert first.links[0].url == "{message_board_url}"
    assert first.line == 3
    assert bank.by_id["smalltalk-hello"].category == "闲聊"
    assert bank.site["city_name"] == "测试市"
    assert bank.synonyms["违建"] == "违法建筑"
    assert bank.outside[0].route == "人力资源和社会保障部门"


def test_a_folder_of_faq_files_alone_works(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD)
    bank = load_bank(bank_dir)
    assert bank.site["hotline"] == "12345"
    assert bank.synonyms == {} and bank.dict_path is None


def test_yaml_syntax_error_names_line_and_column(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD + "  - id: [unclosed\n")
    assert errors_of(bank_dir) == [
        "faq/b.yaml:7:9: YAML 格式错误：方括号“[”没有闭合（缺少配对的“]”或逗号）\n"
        "    7 |   - id: [unclosed"
    ]


def test_unknown_key(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD + "    anwser: 拼错了\n")
    assert errors_of(bank_dir) == [
        "faq/b.yaml:7: entry 'b-1': unknown key 'anwser' (did you mean 'answer'?)"
    ]


def test_unknown_file_key(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", "categroy: x\n" + GOOD)
    assert errors_of(bank_dir) == [
        "faq/b.yaml:1: unknown key 'categroy' (did you mean 'category'?)"
    ]


@pytest.mark.parametrize("key", ["question", "answer"])
def test_missing_question_or_answer(bank_dir: Path, key: str) -> None:
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(f"    {key}:"))
    write(bank_dir, "b.yaml", text + "\n")
    assert errors_of(bank_dir) == [f"faq/b.yaml:3: entry 'b-1': missing '{key}'"]


def test_missing_category(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD.replace("category: 违法建筑\n", ""))
    assert errors_of(bank_dir) == [
        "faq/b.yaml:2: entry 'b-1': missing 'category' (none for the file either)"
    ]


def test_duplicate_id_names_both_places(bank_dir: Path) -> None:
    write(bank_dir, "a.yaml", GOOD)
    write(
        bank_dir,
        "b.yaml",
        GOOD.replace("如何举报违法建筑？", "别的问题").replace("违建怎么举报", "x"),
    )
    assert errors_of(bank_dir) == [
        "faq/b.yaml:3: entry 'b-1': duplicate id, also defined at faq/a.yaml:3"
    ]


def test_same_question_in_two_entries(bank_dir: Path) -> None:
    write(bank_dir, "a.yaml", GOOD)
    write(
        bank_dir,
        "b.yaml",
        GOOD.replace("b-1", "b-2").replace("如何举报违法建筑？", "如何举报违法建筑?"),
    )
    assert errors_of(bank_dir) == [
        "faq/b.yaml:3: entry 'b-2': question '如何举报违法建筑?' is also in entry 'b-1' "
        "(faq/a.yaml:3)",
        "faq/b.yaml:3: entry 'b-2': question '违建怎么举报' is also in entry 'b-1' (faq/a.yaml:3)",
    ]


def test_related_id_must_exist(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD + "    related: [b-9]\n")
    assert errors_of(bank_dir) == [
        "faq/b.yaml:3: entry 'b-1': related id 'b-9' does not exist (did you mean 'b-1'?)"
    ]


def test_unknown_placeholder(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD.replace("{hotline}", "{hot_line}"))
    assert errors_of(bank_dir) == [
        "faq/b.yaml:6: entry 'b-1': unknown placeholder {hot_line} "
        "(not in site.yaml; did you mean {hotline}?)"
    ]


def test_placeholder_defined_in_site_yaml(bank_dir: Path) -> None:
    write(bank_dir, "site.yaml", "district_office: 示例区城管中队\n")
    write(bank_dir, "b.yaml", GOOD.replace("{hotline}", "{district_office}{{不是占位符}}"))
    assert load_bank(bank_dir).site["district_office"] == "示例区城管中队"


@pytest.mark.parametrize("value", ["2024-13-01", "last year", "2024/03/01"])
def test_bad_date(bank_dir: Path, value: str) -> None:
    write(bank_dir, "b.yaml", GOOD + f"    reviewed: {value}\n")
    assert errors_of(bank_dir) == [
        f"faq/b.yaml:7: entry 'b-1': 'reviewed' is not a date YYYY-MM-DD: '{value}'"
    ]


def test_bad_id(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD.replace("b-1", "B_1"))
    assert errors_of(bank_dir) == [
        "faq/b.yaml:3: entry 'B_1': id must be lowercase a-z, 0-9 and '-'"
    ]


def test_duplicate_yaml_key(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD + "    question: 又一个\n")
    assert errors_of(bank_dir) == [
        "faq/b.yaml:7:5: YAML 格式错误：重复的键 'question'（第 4 行已经有了）\n"
        "    7 |     question: 又一个"
    ]


def test_every_problem_is_reported_at_once(bank_dir: Path) -> None:
    write(bank_dir, "a.yaml", GOOD + "    related: [nope]\n    reviewed: soon\n")
    write(bank_dir, "b.yaml", "faqs:\n  - id: c-1\n    question: 问\n")
    assert len(errors_of(bank_dir)) == 4


def test_synonym_variant_in_two_groups(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD)
    write(bank_dir, "synonyms.yaml", "违法建筑: [违建]\n违章: [违建]\n")
    assert errors_of(bank_dir) == [
        "faq/synonyms.yaml:2: variant '违建' is in two groups: '违法建筑' (line 1) and '违章'"
    ]


def test_non_utf8_file(bank_dir: Path) -> None:
    (bank_dir / "b.yaml").write_bytes("category: 违建\n".encode("gbk"))
    assert errors_of(bank_dir)[0].startswith("faq/b.yaml: is not UTF-8 text")


def test_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert errors_of(tmp_path / "nope") == ["nope: FAQ folder not found"]


def test_numbers_in_yaml_are_text(bank_dir: Path) -> None:
    write(bank_dir, "b.yaml", GOOD.replace("[违建怎么举报]", "[12345, 违建怎么举报]"))
    assert load_bank(bank_dir).faqs[0].alternates == ("12345", "违建怎么举报")


def test_digest_changes_with_the_bank(faq_dir: Path) -> None:
    before = load_bank(faq_dir).digest
    with open(faq_dir / "dict.txt", "a", encoding="utf-8") as fh:
        fh.write("门前三包 2000 n\n")
    assert load_bank(faq_dir).digest != before
    assert os.path.exists(faq_dir / "dict.txt")
