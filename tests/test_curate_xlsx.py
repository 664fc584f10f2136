"""bot.curate.xlsx: the Excel/WPS round trip; every import error names its cell."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from bot.bank import load_bank
from bot.cli import main
from bot.curate.xlsx import COLUMNS, WorkbookError, export_xlsx, import_xlsx

SHIPPED = Path(__file__).resolve().parents[1] / "faq"


@pytest.fixture
def bank(faq_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(faq_dir.parent)
    return faq_dir


@pytest.fixture
def book(bank: Path) -> Path:
    """The mini bank exported: rows 2-6 are building-report, building-demolish,
    vendor-report, night-market, smalltalk-hello."""
    path = bank.parent / "bank.xlsx"
    export_xlsx(bank, path)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def edit(path: Path, change: Callable) -> None:
    wb = load_workbook(path)
    change(wb["问答"])
    wb.save(path)


def import_errors(bank: Path, path: Path) -> list[str]:
    before = snapshot(bank)
    with pytest.raises(WorkbookError) as info:
        import_xlsx(bank, path)
    assert snapshot(bank) == before  # nothing written
    return [str(i) for i in info.value.issues]


def test_export_layout(bank: Path, book: Path) -> None:
    wb = load_workbook(book)
    assert wb.sheetnames == ["问答", "说明", "版本"]
    assert wb["版本"].sheet_state == "hidden"
    ws = wb["问答"]
    assert [c.value for c in ws[1]] == [
        "编号",
        "分类",
        "标准问",
        "扩展问",
        "答案",
        "关键词",
        "相关问题",
        "依据",
        "链接",
        "审核日期",
        "文件",
    ]
    assert [c.value for c in ws[2]] == [
        "building-report",
        "违法建筑",
        "如何举报违法建筑？",
        "违章搭建怎么举报\n邻居私搭乱建找谁\n违建",
        "可拨打{hotline}热线，或在网上留言栏目反映。",
        "违法建筑\n举报",
        "building-demolish",
        "《中华人民共和国城乡规划法》",
        "网上留言：{message_board_url}",
        "2026-11-01",
        "building.yaml",
    ]
    assert ws.max_row == 6 and ws["D2"].alignment.wrap_text
    assert ws.column_dimensions["E"].width == 60 and ws.freeze_panes == "A2"
    help_rows = [r for r in wb["说明"].iter_rows(values_only=True) if r[0]]
    assert [r[0] for r in help_rows[1:]] == [c[0] for c in COLUMNS]


def test_round_trip_of_the_shipped_bank_is_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "faq"
    shutil.copytree(SHIPPED, folder)
    before = snapshot(folder)
    assert export_xlsx(folder, tmp_path / "b.xlsx") == len(load_bank(folder).faqs)
    result = import_xlsx(folder, tmp_path / "b.xlsx")
    assert (result.files, result.changed, result.added) == ([], [], [])
    assert snapshot(folder) == before


def test_a_changed_cell_changes_only_its_lines(bank: Path, book: Path) -> None:
    before = (bank / "street.yaml").read_text(encoding="utf-8")
    edit(book, lambda ws: ws.__setitem__("F4", "流动摊贩\n占道经营\n摆摊"))
    result = import_xlsx(bank, book)
    assert (result.files, result.changed) == (["street.yaml"], ["vendor-report"])
    after = (bank / "street.yaml").read_text(encoding="utf-8")
    assert after == before.replace("[流动摊贩, 占道经营]", "[流动摊贩, 占道经营, 摆摊]", 1)


def test_a_new_row_becomes_a_new_entry_in_its_file(bank: Path, book: Path) -> None:
    row = [
        "street-new",
        "市容秩序",
        "门前堆物谁管？",
        "店门口堆东西\n门口堆杂物",
        "拨打{hotline}。",
    ]
    row += ["", "vendor-report", "", "", "2026-12-01", "street.yaml"]
    edit(book, lambda ws: ws.append(row))
    result = import_xlsx(bank, book)
    assert result.added == ["street-new"]
    faq = load_bank(bank).by_id["street-new"]
    assert (faq.path, faq.alternates, faq.related) == (
        "faq/street.yaml",
        ("店门口堆东西", "门口堆杂物"),
        ("vendor-report",),
    )
    assert (
        "category" not in (bank / "street.yaml").read_text(encoding="utf-8").split("street-new")[1]
    )


def test_a_date_cell_from_excel_is_accepted(bank: Path, book: Path) -> None:
    edit(book, lambda ws: ws.__setitem__("J2", dt.datetime(2026, 12, 1)))
    import_xlsx(bank, book)
    assert load_bank(bank).by_id["building-report"].reviewed == dt.date(2026, 12, 1)


def test_a_category_back_to_the_files_own_drops_the_entry_key(bank: Path, book: Path) -> None:
    edit(book, lambda ws: ws.__setitem__("B6", "市容秩序"))
    import_xlsx(bank, book)
    assert "闲聊" not in (bank / "street.yaml").read_text(encoding="utf-8")
    assert load_bank(bank).by_id["smalltalk-hello"].category == "市容秩序"


@pytest.mark.parametrize(
    ("cell", "value", "expected"),
    [
        ("A4", None, "问答!A4: 编号不能为空"),
        ("B4", None, "问答!B4: entry 'vendor-report': 分类不能为空"),
        ("C4", " ", "问答!C4: entry 'vendor-report': 标准问不能为空"),
        ("D4", "\n", "问答!D4: entry 'vendor-report': 扩展问不能为空"),
        ("E4", None, "问答!E4: entry 'vendor-report': 答案不能为空"),
        ("K4", None, "问答!K4: entry 'vendor-report': 文件不能为空"),
        ("A4", "Vendor_Report", "问答!A4: entry 'Vendor_Report': 编号只能用小写字母、数字和“-”"),
        ("A4", "night-market", "问答!A5: entry 'night-market': 编号与第 4 行重复"),
        (
            "K4",
            "street.txt",
            "问答!K4: entry 'vendor-report': 文件“street.txt”不是问答文件名"
            "（应像 street-order.yaml 这样）",
        ),
        (
            "K4",
            "building.yaml",
            "问答!K4: entry 'vendor-report': 这个条目在 street.yaml 里，文件列不能改"
            "（要移动条目请直接编辑 YAML）",
        ),
        (
            "J4",
            "2026/12/01",
            "问答!J4: entry 'vendor-report': 审核日期“2026/12/01”要写成 2026-11-20 这样的格式",
        ),
        ("I4", "网上留言", "问答!I4: entry 'vendor-report': 链接第 1 行要写成“标题：网址”"),
        ("I4", "a：b\nhttps://x", "问答!I4: entry 'vendor-report': 链接第 2 行要写成“标题：网址”"),
        (
            "G4",
            "night-markte",
            "问答!G4: entry 'vendor-report': related id 'night-markte' does not exist "
            "(did you mean 'night-market'?)",
        ),
        (
            "E4",
            "拨打{hotlin}。",
            "问答!E4: entry 'vendor-report': unknown placeholder {hotlin} "
            "(not in site.yaml; did you mean {hotline}?)",
        ),
        (
            "C4",
            "夜排档噪声扰民怎么办？",
            "问答!C5: entry 'night-market': question '夜排档噪声扰民怎么办？' is also in "
            "entry 'vendor-report' (faq/street.yaml:3)",
        ),
    ],
)
def test_each_import_error_names_its_cell(
    bank: Path, book: Path, cell: str, value: object, expected: str
) -> None:
    edit(book, lambda ws: ws.__setitem__(cell, value))
    assert import_errors(bank, book) == [expected]


def test_every_bad_cell_is_listed_at_once(bank: Path, book: Path) -> None:
    def spoil(ws) -> None:
        ws["D2"], ws["E3"], ws["J6"] = None, None, "soon"

    edit(book, spoil)
    assert import_errors(bank, book) == [
        "问答!D2: entry 'building-report': 扩展问不能为空",
        "问答!E3: entry 'building-demolish': 答案不能为空",
        "问答!J6: entry 'smalltalk-hello': 审核日期“soon”要写成 2026-11-20 这样的格式",
    ]


def test_headers_and_sheet_are_checked(bank: Path, book: Path) -> None:
    edit(book, lambda ws: ws.__setitem__("C1", "问题"))
    assert import_errors(bank, book) == ["问答!C1: 表头应为“标准问”，现在是“问题”"]
    other = bank.parent / "other.xlsx"
    Workbook().save(other)
    assert import_errors(bank, other) == ["问答: 找不到工作表“问答”"]


def test_a_file_that_is_not_a_workbook(bank: Path) -> None:
    path = bank.parent / "x.xlsx"
    path.write_text("not a workbook", encoding="utf-8")
    (message,) = import_errors(bank, path)
    assert message.startswith(f"{path}: 不是可以读取的 .xlsx 文件（")


def test_cli_export_and_import(bank: Path, book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = bank.parent / "cli.xlsx"
    assert main(["export", "--xlsx", str(out), "--faq", str(bank)]) == 0
    assert capsys.readouterr().out == f"wrote {out}: 5 entries\n"
    assert main(["import", str(out), "--faq", str(bank)]) == 0
    assert capsys.readouterr().out == f"imported {out}: 0 entries changed, 0 added\n"
    edit(out, lambda ws: ws.__setitem__("D4", None))
    before = snapshot(bank)
    assert main(["import", str(out), "--faq", str(bank)]) == 1
    assert capsys.readouterr().err == "Error: 问答!D4: entry 'vendor-report': 扩展问不能为空\n"
    assert snapshot(bank) == before


def test_a_file_changed_after_the_export_is_not_overwritten(bank: Path, book: Path) -> None:
    theirs = (bank / "street.yaml").read_text(encoding="utf-8") + "# 别人刚改过\n"
    (bank / "street.yaml").write_text(theirs, encoding="utf-8")
    edit(book, lambda ws: ws.__setitem__("F4", "流动摊贩"))
    assert import_errors(bank, book) == [
        "问答: street.yaml 在导出这个表格之后被改过；为免覆盖别人的修改，什么都没有写。"
        "请重新导出，再把修改填进新表格"
    ]
    edit(book, lambda ws: ws.__setitem__("F2", "违法建筑"))  # a row of another file alone is fine
    edit(book, lambda ws: ws.__setitem__("F4", "流动摊贩\n占道经营"))
    assert import_xlsx(bank, book).files == ["building.yaml"]
    assert (bank / "street.yaml").read_text(encoding="utf-8") == theirs


def test_text_starting_with_an_equals_sign_stays_text(bank: Path, book: Path) -> None:
    edit(book, lambda ws: ws.__setitem__("D2", "违建\n=违法建筑怎么办"))
    import_xlsx(bank, book)
    again = bank.parent / "again.xlsx"
    export_xlsx(bank, again)
    assert load_workbook(again)["问答"]["D2"].data_type == "s"
    assert import_xlsx(bank, again).changed == []
    assert load_bank(bank).by_id["building-report"].alternates == ("违建", "=违法建筑怎么办")
