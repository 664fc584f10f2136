"""bot.bank for curators: YAML mistakes in plain Chinese, no follow-on errors, "did you mean"."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.bank import load_bank
from bot.errors import BankError

GOOD = """\
category: 违法建筑
faqs:
  - id: b-1
    question: 如何举报违法建筑？
    alternates: [违建怎么举报]
    answer: 拨打{hotline}。
"""
OTHER = """\
category: 市容
faqs:
  - id: vendor-report
    question: 摆摊怎么举报？
    answer: 拨打{hotline}。
    related: [b-1]
"""


@pytest.fixture
def bank_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "faq"
    folder.mkdir()
    return folder


def errors_of(folder: Path, name: str, text: str) -> list[str]:
    (folder / name).write_text(text, encoding="utf-8")
    with pytest.raises(BankError) as info:
        load_bank(folder)
    return [str(i) for i in info.value.issues]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD + "   keywords: [违建]\n",
            "faq/b.yaml:7:4: YAML 格式错误：缩进不一致（这一行的缩进与上一级不匹配）\n"
            "    7 |    keywords: [违建]",
        ),
        (
            GOOD + "  - id: b-2\n      question: 问\n",
            "faq/b.yaml:8:15: YAML 格式错误：缩进不一致（这一行的缩进与上一级不匹配）\n"
            "    8 |       question: 问",
        ),
        (
            GOOD + "\tkeywords: [违建]\n",
            "faq/b.yaml:7:1: YAML 格式错误：这一行有制表符（Tab）；YAML 只能用空格缩进，"
            "请把 Tab 换成空格\n    7 | \tkeywords: [违建]",
        ),
        (
            GOOD.replace("如何举报违法建筑？", '"如何举报违法建筑？'),
            "faq/b.yaml:4:15: YAML 格式错误：引号没有闭合（这里开始的引号找不到配对的结束引号）\n"
            '    4 |     question: "如何举报违法建筑？',
        ),
        (
            GOOD.replace("question: ", "question "),
            "faq/b.yaml:4:5: YAML 格式错误：缺少冒号（每一项要写成“键: 值”，冒号后面加一个空格）\n"
            "    4 |     question 如何举报违法建筑？",
        ),
        (
            GOOD.replace("拨打{hotline}。", "注意: 拨打{hotline}。"),
            "faq/b.yaml:6:15: YAML 格式错误：一行里有两个“: ”；值里含有冒号时，请给整个值加上引号\n"
            "    6 |     answer: 注意: 拨打{hotline}。",
        ),
        (
            GOOD + "    question: 又一个\n",
            "faq/b.yaml:7:5: YAML 格式错误：重复的键 'question'（第 4 行已经有了）\n"
            "    7 |     question: 又一个",
        ),
        (
            GOOD + "    links:\n      - {title: 留言, url: x\n",
            "faq/b.yaml:8:9: YAML 格式错误：花括号“{”没有闭合（缺少配对的“}”或逗号）\n"
            "    8 |       - {title: 留言, url: x",
        ),
        (
            GOOD + "    answer2: &a x\n    basis: *b\n",
            "faq/b.yaml:8:12: YAML syntax error: found undefined alias 'b'\n    8 |     basis: *b",
        ),
    ],
    ids=[
        "indent",
        "indent-deeper",
        "tab",
        "quote",
        "colon",
        "colon-in-value",
        "dup",
        "brace",
        "other",
    ],
)
def test_yaml_syntax_errors_in_plain_words(bank_dir: Path, text: str, expected: str) -> None:
    assert errors_of(bank_dir, "b.yaml", text) == [expected]


def test_a_broken_file_causes_no_false_related_errors_elsewhere(bank_dir: Path) -> None:
    (bank_dir / "a.yaml").write_text(OTHER + "    keywords: [摆摊]\n", encoding="utf-8")
    assert errors_of(bank_dir, "b.yaml", GOOD + "\tkeywords: [违建]\n") == [
        "faq/b.yaml:7:1: YAML 格式错误：这一行有制表符（Tab）；YAML 只能用空格缩进，"
        "请把 Tab 换成空格\n    7 | \tkeywords: [违建]",
        "faq: related ids were not checked, because faq/b.yaml could not be read; fix that first",
    ]


def test_no_note_when_nothing_was_left_unchecked(bank_dir: Path) -> None:
    (bank_dir / "a.yaml").write_text(OTHER.replace("    related: [b-1]\n", ""), encoding="utf-8")
    assert len(errors_of(bank_dir, "b.yaml", GOOD + "\tx: 1\n")) == 1


def test_a_broken_site_yaml_causes_no_false_placeholder_errors(bank_dir: Path) -> None:
    (bank_dir / "b.yaml").write_text(GOOD.replace("{hotline}", "{district_office}"), "utf-8")
    assert errors_of(bank_dir, "site.yaml", "district_office: '示例区\n") == [
        "faq/site.yaml:1:18: YAML 格式错误：引号没有闭合（这里开始的引号找不到配对的结束引号）\n"
        "    1 | district_office: '示例区",
        "faq: placeholders were not checked, because site.yaml could not be read; fix that first",
    ]


def test_related_ids_are_still_checked_when_every_file_parses(bank_dir: Path) -> None:
    (bank_dir / "a.yaml").write_text(OTHER.replace("[b-1]", "[b-1, building-x]"), "utf-8")
    assert errors_of(bank_dir, "b.yaml", GOOD) == [
        "faq/a.yaml:3: entry 'vendor-report': related id 'building-x' does not exist"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            OTHER.replace("[b-1]", "[vendor-reprot]"),
            "faq/b.yaml:3: entry 'vendor-report': related id 'vendor-reprot' does not exist "
            "(did you mean 'vendor-report'?)",
        ),
        (
            OTHER + "    keyword: [摆摊]\n",
            "faq/b.yaml:7: entry 'vendor-report': unknown key 'keyword' (did you mean 'keywords'?)",
        ),
        (
            OTHER + "    zzz: 1\n",
            "faq/b.yaml:7: entry 'vendor-report': unknown key 'zzz'",
        ),
        (
            "faq2:\n" + OTHER.split("faqs:\n")[1],
            "faq/b.yaml:1: unknown key 'faq2' (did you mean 'faqs'?)",
        ),
        (
            OTHER.replace("{hotline}", "{hotlin}"),
            "faq/b.yaml:5: entry 'vendor-report': unknown placeholder {hotlin} "
            "(not in site.yaml; did you mean {hotline}?)",
        ),
        (
            OTHER.replace("{hotline}", "{qqq}"),
            "faq/b.yaml:5: entry 'vendor-report': unknown placeholder {qqq} (not in site.yaml)",
        ),
    ],
    ids=["related", "key", "key-far", "file-key", "placeholder", "placeholder-far"],
)
def test_did_you_mean(bank_dir: Path, text: str, expected: str) -> None:
    (bank_dir / "a.yaml").write_text(GOOD, encoding="utf-8")
    assert expected in errors_of(bank_dir, "b.yaml", text)


def test_texts_are_validated_in_place_of_the_files(bank_dir: Path) -> None:
    (bank_dir / "b.yaml").write_text(GOOD, encoding="utf-8")
    new = GOOD.replace("如何举报违法建筑？", "新问题？")
    bank = load_bank(bank_dir, texts={"b.yaml": new, "c.yaml": OTHER})
    assert [f.id for f in bank.faqs] == ["b-1", "vendor-report"]
    assert bank.by_id["b-1"].question == "新问题？"
    assert (bank_dir / "b.yaml").read_text(encoding="utf-8") == GOOD
    assert not (bank_dir / "c.yaml").exists()
