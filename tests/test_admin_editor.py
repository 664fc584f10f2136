"""The console's FAQ editor on the real app, a writable copy of the mini bank and a real
SQLite query log: preview, save, create, the bank's checks in Chinese, concurrent
edits, the workbook's download and upload, and the history of every change."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from test_admin import HASH, error_text, logged_in, token_of

from bot.curate import Draft
from bot.curate.explain import explain_edit, explain_message
from bot.errors import BankError
from bot.web import create_app
from bot.web.admin.auth import MSG_CSRF

FORM_FIELDS = ("question", "alternates", "answer", "category", "keywords", "related", "basis",
               "reviewed")  # fmt: skip
COMMENT = "# 违法建筑的问答：改答案前请核对条例原文。\n"


@pytest.fixture
def editor(faq_dir: Path, tmp_path: Path, jieba_cache: Path) -> Iterator[tuple[Flask, Path]]:
    """An app on a writable copy of the mini bank (a comment added), with its own index
    and query log."""
    path = faq_dir / "building.yaml"
    path.write_text(COMMENT + path.read_text(encoding="utf-8"), encoding="utf-8")
    config = {
        "TESTING": True,
        "FAQ_DIR": str(faq_dir),
        "CACHE_DIR": str(jieba_cache),
        "INDEX_PATH": str(tmp_path / "own-index" / "index.pkl"),
        "RATELIMIT_ENABLED": False,
        "ADMIN_PASSWORD_HASH": HASH,
    }
    app = create_app(config, instance_path=tmp_path / "instance")
    yield app, faq_dir
    app.extensions["xiaocheng"].close()


def form_of(page: str) -> dict[str, str]:
    """The values the editor's form holds, as a browser would post them."""
    form = {"csrf_token": token_of(page)}
    for name in (*FORM_FIELDS, "digest", "id"):
        m = re.search(rf'<input id="f-{name}" name="{name}" value="([^"]*)"', page) or re.search(
            rf'<textarea id="f-{name}" name="{name}"[^>]*>(.*?)</textarea>', page, re.S
        )
        if name == "digest":
            m = re.search(r'name="digest" value="([^"]*)"', page)
        if m:
            form[name] = html.unescape(m.group(1))
    for name, value in re.findall(r'<input type="hidden" name="(was-\w+)" value="([^"]*)"', page):
        form[name] = html.unescape(value)
    return form


def field_errors(page: str, name: str) -> list[str]:
    block = re.search(rf'<ul class="field-errors" id="err-{name}">(.*?)</ul>', page, re.S)
    return re.findall(r"<li>(.*?)</li>", block.group(1)) if block else []


def notice(page: str) -> str:
    m = re.search(r'id="editor-notice">(.*?)</div>', page, re.S)
    return re.sub(r"<[^>]+>", "", m.group(1)).strip() if m else ""


def history_rows(client: FlaskClient) -> list[list[str]]:
    page = client.get("/admin/history").text
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def answer_to(client: FlaskClient, q: str) -> tuple[str, str | None, str]:
    reply = client.post("/api/ask", json={"q": q}).get_json()
    faq = reply["faq"] or {}
    return reply["type"], faq.get("id"), faq.get("answer", "")


# --- the Chinese messages -------------------------------------------------------------


def bank_problems(faq_dir: Path, entry: str, **fields) -> list[str]:
    """What the bank check says of an edit, explained for the console."""
    draft = Draft(faq_dir)
    draft.update_entry(entry, fields)
    with pytest.raises(BankError) as info:
        draft.check()
    return [explain_message(i.message).text for i in info.value.issues]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"related": ["building-demolsh"]},
         "【相关问题】编号“building-demolsh”的条目不存在，是不是“building-demolish”？"),
        ({"related": ["zzz"]}, "【相关问题】编号“zzz”的条目不存在"),
        ({"answer": "请拨打{hotlin}。"},
         "【答案】用了 site.yaml 里没有的占位符 {hotlin}，是不是 {hotline}？"),
        ({"answer": "请看{zzz}。"}, "【答案】用了 site.yaml 里没有的占位符 {zzz}"),
        ({"alternates": ["违建强拆的程序"]},
         "问法“违建强拆的程序”已经是条目 building-report 的标准问或相似问法"),
    ],
)  # fmt: skip
def test_each_check_of_the_bank_reads_in_chinese_naming_the_field(faq_dir, fields, expected):
    [text] = bank_problems(faq_dir, "building-report", **fields)
    assert text.startswith(expected), text


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"question": ""}, ("question", "条目 building-report：【标准问】不能为空")),
        ({"reviewed": "11月1日"},
         ("reviewed", "条目 building-report：【复核日期】“11月1日”不是日期，"
                      "要写成 2026-11-20 这样的格式")),
        ({"id": "other"}, ("id", "条目 building-report：【编号】已有条目的编号不能改")),
    ],
)  # fmt: skip
def test_a_refused_edit_reads_in_chinese_naming_the_field(faq_dir, fields, expected):
    from bot.curate import EditError

    with pytest.raises(EditError) as info:
        Draft(faq_dir).update_entry("building-report", fields)
    said = explain_edit(str(info.value))
    assert (said.field, said.text) == expected


def test_a_message_no_rule_knows_is_shown_as_written():
    assert explain_message("something new").text == "something new"


# --- editing -------------------------------------------------------------------------


def test_preview_shows_the_reply_with_placeholders_filled_and_writes_nothing(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    before = (faq_dir / "building.yaml").read_bytes()
    form = form_of(analyst.get("/admin/faq/building-report").text)
    assert form["alternates"] == "违章搭建怎么举报\n邻居私搭乱建找谁\n违建"
    assert form["reviewed"] == "2026-11-01"
    form.update(do="preview", answer="请拨打{hotline}，<b>或</b>网上留言。\n第二行。")
    response = analyst.post("/admin/faq/building-report", data=form)
    assert response.status_code == 200
    preview = re.search(r'<section class="panel preview".*?</section>', response.text, re.S)
    assert preview, response.text
    shown = preview.group(0)
    # The bot's own rendering; the curator's markup is text, never HTML.
    said = "请拨打12345，&lt;b&gt;或&lt;/b&gt;网上留言。\n第二行。"
    assert f'<p class="bubble-answer">{said}</p>' in shown
    assert "依据：《中华人民共和国城乡规划法》" in shown
    assert "网上留言：<code>https://example.test/liuyan</code>" in shown
    assert "<li>违法建筑会被强制拆除吗？</li>" in shown  # the related question
    assert (faq_dir / "building.yaml").read_bytes() == before
    assert form_of(response.text)["answer"] == "请拨打{hotline}，<b>或</b>网上留言。\n第二行。"


def test_saving_an_answer_writes_only_it_reloads_and_is_recorded(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    path = faq_dir / "building.yaml"
    before = path.read_text(encoding="utf-8")
    form = form_of(analyst.get("/admin/faq/building-report").text)
    form.update(do="save", answer="请拨打{hotline}举报，执法队员会到现场核查。")
    response = analyst.post("/admin/faq/building-report", data=form)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/admin/faq/building-report?saved=")
    after = path.read_text(encoding="utf-8")
    assert after.startswith(COMMENT)  # the comment is kept
    assert after == before.replace(
        "可拨打{hotline}热线，或在网上留言栏目反映。\n",
        "|\n      请拨打{hotline}举报，执法队员会到现场核查。\n",
    )
    # The live bot answers with it at once, without a restart.
    assert answer_to(analyst, "违章搭建怎么举报") == (
        "answer", "building-report", "请拨打12345举报，执法队员会到现场核查。"
    )  # fmt: skip
    page = analyst.get(response.headers["Location"]).text
    assert notice(page).startswith("已保存，题库已重新加载（版本")
    [row] = history_rows(analyst)
    assert row[1:3] == ["修改条目", "building-report"]
    assert row[4] == (
        "答案：原文：可拨打{hotline}热线，或在网上留言栏目反映。 "
        "新文：请拨打{hotline}举报，执法队员会到现场核查。"
    )
    assert row[5:] == ["building.yaml", "分析后台（127.0.0.1）"]
    record = app.extensions["xiaocheng"].querylog.curation()[0]
    assert record["before"]["answer"] == "可拨打{hotline}热线，或在网上留言栏目反映。"
    assert record["after"]["alternates"] == ["违章搭建怎么举报", "邻居私搭乱建找谁", "违建"]


def test_lists_are_one_item_per_line_and_an_emptied_field_is_removed(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    form = form_of(analyst.get("/admin/faq/building-report").text)
    form.update(do="save", alternates="违章搭建怎么举报\r\n\r\n 违建 \r\n有人乱盖房子", basis="",
                reviewed="2026-12-01")  # fmt: skip
    assert analyst.post("/admin/faq/building-report", data=form).status_code == 303
    text = (faq_dir / "building.yaml").read_text(encoding="utf-8")
    assert "    alternates: [违章搭建怎么举报, 违建, 有人乱盖房子]\n" in text
    assert "basis" not in text and "    reviewed: 2026-12-01\n" in text
    [row] = history_rows(analyst)
    assert row[4] == (
        "相似问法：+ 有人乱盖房子 − 邻居私搭乱建找谁 依据：− 《中华人民共和国城乡规划法》"
        " 复核日期：原文：2026-11-01 新文：2026-12-01"
    )


def test_a_save_that_changes_nothing_writes_nothing(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    before = (faq_dir / "building.yaml").read_bytes()
    form = form_of(analyst.get("/admin/faq/building-report").text)
    response = analyst.post("/admin/faq/building-report", data={**form, "do": "save"})
    assert notice(response.text) == "表单与文件中的内容相同，没有需要保存的修改。"
    assert (faq_dir / "building.yaml").read_bytes() == before
    assert "还没有在后台修改过题库。" in analyst.get("/admin/history").text


def test_errors_are_shown_in_chinese_under_their_field_and_nothing_is_written(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    before = {p.name: p.read_bytes() for p in faq_dir.glob("*.yaml")}
    form = form_of(analyst.get("/admin/faq/building-report").text)
    form.update(do="save", related="building-demolsh", answer="请拨打{hotlin}。")
    response = analyst.post("/admin/faq/building-report", data=form)
    assert response.status_code == 422
    assert notice(response.text).startswith("题库检查未通过，本次没有写入。")
    assert field_errors(response.text, "related") == [
        f"{faq_dir}/building.yaml 第 4 行，条目 building-report："
        "【相关问题】编号“building-demolsh”的条目不存在，是不是“building-demolish”？"
    ]
    assert field_errors(response.text, "answer") == [
        f"{faq_dir}/building.yaml 第 7 行，条目 building-report："
        "【答案】用了 site.yaml 里没有的占位符 {hotlin}，是不是 {hotline}？"
    ]
    assert 'id="f-related" name="related" rows="3" aria-describedby="hint-related err-related" ' \
        'aria-invalid="true"' in response.text  # fmt: skip
    assert form_of(response.text)["answer"] == "请拨打{hotlin}。"  # the text is kept
    assert {p.name: p.read_bytes() for p in faq_dir.glob("*.yaml")} == before

    form.update(related="building-demolish", answer="请拨打{hotline}。", question="  ")
    response = analyst.post("/admin/faq/building-report", data=form)
    assert response.status_code == 422
    assert field_errors(response.text, "question") == ["条目 building-report：【标准问】不能为空"]


def test_a_save_after_someone_else_changed_the_file_is_refused_and_loses_nothing(editor):
    app, faq_dir = editor
    analyst, colleague = logged_in(app), logged_in(app)
    mine = form_of(analyst.get("/admin/faq/building-report").text)
    theirs = form_of(colleague.get("/admin/faq/building-report").text)
    theirs.update(
        do="save", answer="同事改的答案：请拨打{hotline}。", keywords="违法建筑\n举报\n违建"
    )
    assert colleague.post("/admin/faq/building-report", data=theirs).status_code == 303

    mine.update(do="save", answer="我改的答案。", alternates=mine["alternates"] + "\n我加的问法")
    response = analyst.post("/admin/faq/building-report", data=mine)
    assert response.status_code == 409
    said = notice(response.text)
    assert said.startswith("没有保存：您打开本页之后，building.yaml 已被修改（")
    assert "分析后台（127.0.0.1） 修改了条目 building-report" in said
    assert "为免覆盖别人的修改，本次什么都没有写入。您改动的内容仍在下面的表单里" in said
    assert "您没有改动、而别人改过的项已换成文件中现在的内容：关键词。" in said
    assert field_errors(response.text, "answer") == [
        "【答案】您和别人都改了这一项：表单中是您的版本，请对照上面文件中现在的内容再决定。"
    ]
    other = re.search(
        r'<section class="panel" aria-labelledby="h-other".*?</section>', response.text, re.S
    ).group(0)
    assert "同事改的答案：请拨打{hotline}。" in other
    kept = form_of(response.text)
    assert kept["answer"] == "我改的答案。"  # both changed it: the curator's text
    assert kept["alternates"].split("\n")[-1] == "我加的问法"  # only the curator changed it
    assert kept["keywords"] == "违法建筑\n举报\n违建"  # only the colleague changed it
    text = (faq_dir / "building.yaml").read_text(encoding="utf-8")
    assert "同事改的答案" in text and "我改的答案" not in text

    # The form now carries the file as it is: saving again is a deliberate choice.
    assert kept["digest"] != mine["digest"]
    again = analyst.post("/admin/faq/building-report", data={**kept, "do": "save"})
    assert again.status_code == 303
    fields = Draft(faq_dir).fields("building-report")
    assert (fields["answer"], fields["alternates"][-1]) == ("我改的答案。", "我加的问法")
    assert fields["keywords"] == ["违法建筑", "举报", "违建"]


def test_a_change_on_disk_is_a_conflict_too(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    form = form_of(analyst.get("/admin/faq/building-demolish").text)
    draft = Draft(faq_dir)  # a curator in the terminal, another entry of the same file
    draft.add_alternate("building-report", "私自加盖")
    draft.write()
    response = analyst.post(
        "/admin/faq/building-demolish", data={**form, "do": "save", "answer": "新答案。"}
    )
    assert response.status_code == 409
    assert "building.yaml 已被修改（有人直接改了服务器上的文件）" in notice(response.text)


def test_create_an_entry_in_a_chosen_file(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    page = analyst.get("/admin/faqs/new").text
    files = re.findall(r'<option value="([^"]+)"', page)
    assert files == ["building.yaml", "street.yaml"]
    form = {"csrf_token": token_of(page), "id": "dog-walking", "file": "street.yaml",
            "question": "遛狗不牵绳谁管？", "alternates": "遛狗不拴绳\n狗不牵绳",
            "answer": "可拨打{hotline}反映。", "category": "", "keywords": "遛狗", "related": "",
            "basis": "", "reviewed": "", "do": "preview"}  # fmt: skip
    response = analyst.post("/admin/faqs/new", data=form)
    assert response.status_code == 200
    assert '<p class="bubble-answer">可拨打12345反映。</p>' in response.text
    assert "dog-walking" not in (faq_dir / "street.yaml").read_text(encoding="utf-8")

    response = analyst.post("/admin/faqs/new", data={**form, "do": "save"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/admin/faq/dog-walking?saved=")
    assert "created=1" in response.headers["Location"]
    text = (faq_dir / "street.yaml").read_text(encoding="utf-8")
    assert text.endswith(
        "\n\n  - id: dog-walking\n    question: 遛狗不牵绳谁管？\n"
        "    alternates:\n      - 遛狗不拴绳\n      - 狗不牵绳\n"
        "    answer: |\n      可拨打{hotline}反映。\n    keywords: [遛狗]\n"
    )
    assert answer_to(analyst, "遛狗不拴绳")[:2] == ("answer", "dog-walking")
    assert notice(analyst.get(response.headers["Location"]).text).startswith("已新建条目")
    [row] = history_rows(analyst)
    assert row[1:3] == ["新建条目", "dog-walking"]
    assert row[4].startswith("标准问：新文：遛狗不牵绳谁管？相似问法：+ 遛狗不拴绳 + 狗不牵绳")


def test_a_new_entry_is_refused_in_chinese_for_a_taken_id_or_no_file(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    form = {"csrf_token": token_of(analyst.get("/admin/faqs/new").text), "id": "vendor-report",
            "file": "building.yaml", "question": "新问题？", "alternates": "", "answer": "答。",
            "category": "", "keywords": "", "related": "", "basis": "", "reviewed": "",
            "do": "save"}  # fmt: skip
    response = analyst.post("/admin/faqs/new", data=form)
    assert response.status_code == 422
    taken = "【编号】编号“vendor-report”已经被 street.yaml 里的条目用了"
    assert field_errors(response.text, "id") == [taken]
    response = analyst.post("/admin/faqs/new", data={**form, "id": "x-new", "file": ""})
    no_file = "“”不是问答文件名（应像 street-order.yaml 这样）"
    assert field_errors(response.text, "file") == [no_file]
    response = analyst.post("/admin/faqs/new", data={**form, "id": "X New"})
    assert field_errors(response.text, "id")[0].endswith("【编号】只能用小写字母、数字和“-”")
    assert "x-new" not in "".join(p.read_text(encoding="utf-8") for p in faq_dir.glob("*.yaml"))


def test_the_editor_needs_its_csrf_token_and_a_real_entry(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    before = (faq_dir / "building.yaml").read_bytes()
    form = form_of(analyst.get("/admin/faq/building-report").text)
    del form["csrf_token"]
    response = analyst.post("/admin/faq/building-report", data={**form, "do": "save",
                                                                "answer": "改。"})  # fmt: skip
    assert response.status_code == 400 and error_text(response.text) == [MSG_CSRF]
    assert (faq_dir / "building.yaml").read_bytes() == before
    response = analyst.get("/admin/faq/no-such-entry")
    assert response.status_code == 404
    assert "题库里没有这个条目（可能已被删除或改名）。" in response.text


def test_a_long_answer_is_more_than_the_apis_body_limit_and_still_saved(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    form = form_of(analyst.get("/admin/faq/building-report").text)
    long = "请拨打{hotline}反映。" + "执法人员会依法处理。" * 200
    assert len(long.encode("utf-8")) > app.config["MAX_CONTENT_LENGTH"]
    response = analyst.post(
        "/admin/faq/building-report", data={**form, "do": "save", "answer": long}
    )
    assert response.status_code == 303
    assert Draft(faq_dir).fields("building-report")["answer"] == long


def test_the_entry_pages_are_linked_from_the_list_and_the_bank(editor):
    app, _ = editor
    analyst = logged_in(app)
    page = analyst.get("/admin/faqs").text
    assert page.count('href="/admin/faq/') == 5
    assert '<a href="/admin/faq/building-report"><code>building-report</code></a>' in page
    assert "共 5 条问答，分布在 2 个文件中。" in page


# --- the workbook in the console --------------------------------------------------------


def test_workbook_download_then_upload_unchanged_writes_nothing(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    before = {p.name: p.read_bytes() for p in faq_dir.glob("*.yaml")}
    response = analyst.get("/admin/faqs/export.xlsx")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; filename=faq_")
    book = response.data
    token = token_of(analyst.get("/admin/faqs").text)
    response = analyst.post(
        "/admin/faqs/import",
        data={"csrf_token": token, "workbook": (io.BytesIO(book), "题库.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "表格与题库相同，没有写入任何文件。" in response.text
    assert {p.name: p.read_bytes() for p in faq_dir.glob("*.yaml")} == before


def _changed_book(book: bytes, **cells: str) -> bytes:
    wb = load_workbook(io.BytesIO(book))
    for cell, value in cells.items():
        wb["问答"][cell] = value
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_workbook_upload_with_errors_names_every_cell_and_writes_nothing(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    before = {p.name: p.read_bytes() for p in faq_dir.glob("*.yaml")}
    book = _changed_book(analyst.get("/admin/faqs/export.xlsx").data, D2="", G3="no-such-faq")
    token = token_of(analyst.get("/admin/faqs").text)
    response = analyst.post(
        "/admin/faqs/import",
        data={"csrf_token": token, "workbook": (io.BytesIO(book), "题库.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    items = re.findall(r"<li>(.*?)</li>", response.text.split('id="import-notice"')[1])
    assert items[:1] == ["问答!D2，条目 building-report：扩展问不能为空"]
    assert {p.name: p.read_bytes() for p in faq_dir.glob("*.yaml")} == before

    book = _changed_book(analyst.get("/admin/faqs/export.xlsx").data, G3="no-such-faq")
    response = analyst.post(
        "/admin/faqs/import",
        data={"csrf_token": token, "workbook": (io.BytesIO(book), "题库.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "问答!G3，条目 building-demolish：【相关问题】编号“no-such-faq”的条目不存在" in (
        html.unescape(response.text)
    )
    response = analyst.post(
        "/admin/faqs/import",
        data={"csrf_token": token, "workbook": (io.BytesIO(b"not a workbook"), "我的表.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and "我的表.xlsx：不是可以读取的 .xlsx 文件" in response.text
    assert {p.name: p.read_bytes() for p in faq_dir.glob("*.yaml")} == before


def test_workbook_upload_writes_the_change_reloads_and_is_recorded(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    book = _changed_book(analyst.get("/admin/faqs/export.xlsx").data, E3="表格里改的答案。")
    token = token_of(analyst.get("/admin/faqs").text)
    response = analyst.post(
        "/admin/faqs/import",
        data={"csrf_token": token, "workbook": (io.BytesIO(book), "题库.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "已导入表格：修改 1 条、新增 0 条，写入 building.yaml，题库已重新加载" in response.text
    replied = answer_to(analyst, "违建强拆的程序")
    assert replied == ("answer", "building-demolish", "表格里改的答案。")
    [row] = history_rows(analyst)
    assert row[1:3] == ["修改条目", "building-demolish"]
    assert row[4].startswith("答案：原文：依照《中华人民共和国行政强制法》规定的程序办理。")


def test_every_problem_of_a_form_is_shown_at_once(editor):
    app, faq_dir = editor
    analyst = logged_in(app)
    form = form_of(analyst.get("/admin/faq/building-report").text)
    form.update(do="save", reviewed="11月1日", related="zzz", question="")
    response = analyst.post("/admin/faq/building-report", data=form)
    assert response.status_code == 422
    assert field_errors(response.text, "question") == ["条目 building-report：【标准问】不能为空"]
    assert field_errors(response.text, "reviewed") == [
        "条目 building-report：【复核日期】“11月1日”不是日期，要写成 2026-11-20 这样的格式"
    ]
    assert field_errors(response.text, "related")[0].endswith("【相关问题】编号“zzz”的条目不存在")
    assert "还没有在后台修改过题库。" in analyst.get("/admin/history").text
