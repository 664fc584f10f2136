"""bot.curate.edit: round-trip edits keep every other byte, validate the whole bank, never race."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from bot.bank import load_bank
from bot.curate import Draft, EditConflict, EditError
from bot.errors import BankError

SHIPPED = Path(__file__).resolve().parents[1] / "faq"


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the shipped bank; messages name it faq/…"""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SHIPPED, tmp_path / "faq")
    return tmp_path / "faq"


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_add_alternate_adds_exactly_one_line(shipped: Path) -> None:
    before = (shipped / "street-order.yaml").read_text(encoding="utf-8")
    draft = Draft(shipped)
    draft.add_alternate("vendor-report", "门口摆摊的怎么办")
    assert draft.write() == ["street-order.yaml"]
    after = (shipped / "street-order.yaml").read_text(encoding="utf-8")
    assert changed_lines(before, after) == ["+      - 门口摆摊的怎么办"]
    assert load_bank(shipped).by_id["vendor-report"].alternates[-1] == "门口摆摊的怎么办"
    assert [c.entry for c in draft.changes] == ["vendor-report"]
    assert draft.changes[0].after["alternates"][-1] == "门口摆摊的怎么办"


def test_update_entry_changes_only_its_fields(shipped: Path) -> None:
    before = (shipped / "street-order.yaml").read_text(encoding="utf-8")
    draft = Draft(shipped)
    draft.update_entry(
        "vendor-report",
        {
            "keywords": ["流动摊贩", "占道经营"],
            "reviewed": "2026-12-01",
            "answer": "新答案。\n第二句。",
        },
    )
    draft.write()
    after = (shipped / "street-order.yaml").read_text(encoding="utf-8")
    lines = changed_lines(before, after)
    assert "+    keywords: [流动摊贩, 占道经营]" in lines
    assert "+    reviewed: 2026-12-01" in lines
    assert "+      新答案。" in lines and "+      第二句。" in lines
    assert len([x for x in lines if x.startswith("+")]) == 4
    faq = load_bank(shipped).by_id["vendor-report"]
    assert faq.answer == "新答案。\n第二句。" and faq.keywords == ("流动摊贩", "占道经营")
    assert after.startswith("# 市容秩序：")  # the file's comments stay


def test_add_entry_appends_after_a_blank_line(shipped: Path) -> None:
    before = (shipped / "street-order.yaml").read_text(encoding="utf-8")
    draft = Draft(shipped)
    draft.add_entry(
        "street-order.yaml",
        {
            "id": "street-new",
            "question": "门前堆放杂物谁来管？",
            "alternates": ["店门口堆东西"],
            "answer": "可拨打{hotline}反映。",
            "keywords": ["堆放"],
            "links": [{"title": "网上留言", "url": "{message_board_url}"}],
        },
    )
    draft.write()
    after = (shipped / "street-order.yaml").read_text(encoding="utf-8")
    assert after.startswith(before)
    assert after[len(before) :] == (
        "\n"
        "  - id: street-new\n"
        "    question: 门前堆放杂物谁来管？\n"
        "    alternates:\n"
        "      - 店门口堆东西\n"
        "    answer: |\n"
        "      可拨打{hotline}反映。\n"
        "    keywords: [堆放]\n"
        "    links:\n"
        '      - {title: 网上留言, url: "{message_board_url}"}\n'
    )
    assert load_bank(shipped).by_id["street-new"].category == "市容秩序"


def test_a_new_entry_may_start_a_new_file(faq_dir: Path) -> None:
    draft = Draft(faq_dir)
    fields = {"id": "new-1", "question": "新问？", "alternates": ["新"], "answer": "答。"}
    draft.add_entry("new.yaml", {**fields, "category": "新分类"})
    draft.write()
    assert load_bank(faq_dir).by_id["new-1"].category == "新分类"


def test_an_invalid_bank_is_refused_and_nothing_is_written(
    faq_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(faq_dir.parent)
    before = (faq_dir / "street.yaml").read_bytes()
    draft = Draft(faq_dir)
    draft.update_entry("vendor-report", {"related": ["night-markte"]})
    with pytest.raises(BankError) as info:
        draft.write()
    assert [str(i) for i in info.value.issues] == [
        "faq/street.yaml:3: entry 'vendor-report': related id 'night-markte' does not exist "
        "(did you mean 'night-market'?)"
    ]
    assert (faq_dir / "street.yaml").read_bytes() == before


def test_a_file_changed_meanwhile_is_not_overwritten(
    faq_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(faq_dir.parent)
    draft = Draft(faq_dir)
    draft.add_alternate("vendor-report", "摆摊的")
    theirs = (faq_dir / "street.yaml").read_text(encoding="utf-8") + "# someone else\n"
    (faq_dir / "street.yaml").write_text(theirs, encoding="utf-8")
    with pytest.raises(EditConflict) as info:
        draft.write()
    assert str(info.value) == (
        "faq/street.yaml: changed on disk since it was read; nothing was written "
        "(open it again and redo the change)"
    )
    assert (faq_dir / "street.yaml").read_text(encoding="utf-8") == theirs


def test_the_digest_the_caller_saw_is_checked(faq_dir: Path) -> None:
    draft = Draft(faq_dir)
    seen = draft.digest("street.yaml")
    draft.add_alternate("vendor-report", "摆摊的")
    assert draft.write(expected={"street.yaml": seen}) == ["street.yaml"]
    later = Draft(faq_dir)
    later.add_alternate("vendor-report", "又一个")
    with pytest.raises(EditConflict):
        later.write(expected={"street.yaml": seen})  # the form was opened before the first write


def test_an_unchanged_edit_writes_nothing(faq_dir: Path) -> None:
    draft = Draft(faq_dir)
    draft.update_entry("vendor-report", {"keywords": ["流动摊贩", "占道经营"]})
    assert draft.write() == [] and draft.changes == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: d.add_alternate("nope", "x"), "entry 'nope' does not exist"),
        (
            lambda d: d.add_alternate("vendor-report", " "),
            "entry 'vendor-report': an alternate cannot be empty",
        ),
        (
            lambda d: d.update_entry("vendor-report", {"id": "x"}),
            "entry 'vendor-report': the id cannot be changed",
        ),
        (
            lambda d: d.update_entry("vendor-report", {"anwser": "x"}),
            "entry 'vendor-report': unknown field 'anwser'",
        ),
        (
            lambda d: d.update_entry("vendor-report", {"answer": ""}),
            "entry 'vendor-report': 'answer' cannot be empty",
        ),
        (
            lambda d: d.add_entry("street.yaml", {"id": "night-market"}),
            "entry 'night-market' already exists in street.yaml",
        ),
        (
            lambda d: d.add_entry("site.yaml", {"id": "n-1"}),
            "'site.yaml' is not a FAQ file name (like street-order.yaml)",
        ),
        (lambda d: d.add_entry("street.yaml", {}), "a new entry needs an 'id'"),
        (
            lambda d: d.update_entry("vendor-report", {"reviewed": "soon"}),
            "entry 'vendor-report': 'reviewed' is not a date YYYY-MM-DD: 'soon'",
        ),
        (
            lambda d: d.update_entry("vendor-report", {"keywords": "摆摊"}),
            "entry 'vendor-report': 'keywords' must be a list",
        ),
        (
            lambda d: d.update_entry("vendor-report", {"links": [{"title": "x"}]}),
            "entry 'vendor-report': each link needs exactly 'title' and 'url'",
        ),
    ],
    ids=[
        "unknown",
        "empty-alt",
        "id",
        "field",
        "empty-answer",
        "exists",
        "extra-file",
        "no-id",
        "date",
        "not-list",
        "link",
    ],
)
def test_edit_errors(faq_dir: Path, call, message: str) -> None:
    with pytest.raises(EditError) as info:
        call(Draft(faq_dir))
    assert str(info.value) == message


def test_a_file_indented_another_way_keeps_its_indentation(bank_dir_flat: Path) -> None:
    path = bank_dir_flat / "flat.yaml"
    before = path.read_text(encoding="utf-8")
    draft = Draft(bank_dir_flat)
    draft.add_alternate("flat-1", "又一种问法")
    draft.add_entry("flat.yaml", {"id": "flat-2", "question": "第二问？", "answer": "答。"})
    draft.write()
    assert (
        path.read_text(encoding="utf-8")
        == before.replace("  - 另一种问法\n", "  - 另一种问法\n  - 又一种问法\n")
        + "\n- id: flat-2\n  question: 第二问？\n  answer: |\n    答。\n"
    )


@pytest.fixture
def bank_dir_flat(tmp_path: Path) -> Path:
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "flat.yaml").write_text(
        "# 列表不缩进的写法\ncategory: 测试\nfaqs:\n- id: flat-1\n  question: 问？\n"
        "  alternates:\n  - 另一种问法\n  answer: 答。\n",
        encoding="utf-8",
    )
    return folder
