"""The console's FAQ editor in a real Chromium against a real gunicorn with two workers:
edit an answer and see the live bot give it, create an entry, a validation error in
Chinese, a conflicting save refused, the Excel workbook downloaded and uploaded, and
axe on every page of the editor.

The server is the repository's gunicorn configuration (tests/gunicorn_server.py) on
a writable copy of the browser tests' fixture bank, with a SQLite query log and a
console password; the bot is asked over HTTP, so a reply may come from either
worker: the one that saved serves the new bank at once, the other within the reload
check (RELOAD_CHECK_INTERVAL_S, 1 s) and the rebuild.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_audit import run_axe
from gunicorn_server import gunicorn
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from werkzeug.security import generate_password_hash

pytestmark = pytest.mark.browser

PASSWORD = "后台口令 correct horse"
FIXTURE_FAQ = Path(__file__).resolve().parent / "faq"
SHOTS = Path("/tmp/editor-shots")
PHONE = {"width": 390, "height": 844}
#: How long the other worker may take to serve a published bank: its next check
#: (1 s) and the rebuild of the small fixture bank, with room for a loaded machine.
RELOAD_WAIT_S = 20


class Server:
    """The running gunicorn: its base URL and the bank folder it serves."""

    def __init__(self, url: str, faq: Path) -> None:
        self.url, self.faq = url, faq

    def ask(self, q: str) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + "/api/ask",
            data=json.dumps({"q": q}).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def answers(self, q: str, faq_id: str, text: str | None = None) -> bool:
        """Whether ``q`` is answered with ``faq_id`` (and ``text``) by every worker: asked
        until it is so four times running (connections go to either worker), at most
        RELOAD_WAIT_S."""
        deadline, running = time.monotonic() + RELOAD_WAIT_S, 0
        while time.monotonic() < deadline:
            reply = self.ask(q)
            faq = reply.get("faq") or {}
            ok = faq.get("id") == faq_id and (text is None or faq.get("answer") == text)
            running = running + 1 if ok else 0
            if running >= 4:
                return True
            time.sleep(0.2)
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("editor")
    faq = root / "faq"
    shutil.copytree(FIXTURE_FAQ, faq)
    settings = {
        "INSTANCE_PATH": str(root / "instance"),
        "FAQ_DIR": str(faq),
        "INDEX_PATH": str(root / "instance" / "index.pkl"),
        "DATABASE_URL": f"sqlite:///{root / 'querylog.db'}",
        "ADMIN_PASSWORD_HASH": generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
        "SECRET_KEY": "editor-test-secret-key-0123456789",
        "ADMIN_LOGIN_RATELIMIT": "100/minute",
        "RATELIMIT_ASK": "1000/minute",
        "RATELIMIT_READ": "1000/minute",
    }
    with gunicorn(root / "gunicorn.log", settings=settings, workers=2) as (port, _proc):
        yield Server(f"http://127.0.0.1:{port}", faq)


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def login(page: Page, server: Server, path: str = "/admin/faqs") -> None:
    page.goto(server.url + path)
    page.get_by_label("后台密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(server.url + path)


def assert_axe_clean(page: Page, name: str, results: dict[str, dict]) -> None:
    result = run_axe(page)
    results[name] = result
    dump = json.dumps(result, ensure_ascii=False, indent=1)
    assert result["violations"] == [], f"{name}: {dump}"
    assert result["incomplete"] == [], f"{name}: {dump}"
    assert result["passes"] >= 10, name


def no_sideways_scroll(page: Page) -> int:
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


# --- tests -----------------------------------------------------------------------------


def test_edit_an_answer_preview_it_save_it_and_the_bot_answers_with_it(page, server, shots):
    assert server.answers("小摊贩占道", "vendor-report")
    login(page, server)
    expect(page.get_by_role("heading", name="问答管理", level=1)).to_be_visible()
    page.get_by_role("link", name="vendor-report").click()
    expect(page).to_have_url(server.url + "/admin/faq/vendor-report")
    expect(page.get_by_label("相似问法")).to_have_value(
        "小摊贩占道\n门口摆地摊有人管吗\n占道经营投诉"
    )
    answer = page.get_by_label("答案", exact=True)
    answer.fill("请拨打{hotline}反映摊贩占道，城管队员会尽快到场。\n请说明路段和时间。")
    page.get_by_role("button", name="预览").click()
    preview = page.get_by_role("region", name="预览：访客得到的回答（尚未保存）")
    expect(preview.locator(".bubble-answer")).to_have_text(
        "请拨打12345反映摊贩占道，城管队员会尽快到场。\n请说明路段和时间。"
    )
    expect(preview).to_contain_text("依据：《城市市容和环境卫生管理条例》")
    expect(preview).to_contain_text("网上留言：https://example.test/liuyan")
    expect(preview.locator(".bubble-related li")).to_have_count(2)
    expect(answer).to_have_value(
        "请拨打{hotline}反映摊贩占道，城管队员会尽快到场。\n请说明路段和时间。"
    )
    assert "城管队员" not in (server.faq / "street.yaml").read_text(encoding="utf-8")
    page.screenshot(path=str(shots / "editor-preview.png"), full_page=True)

    page.get_by_role("button", name="保存").click()
    expect(page.locator("#editor-notice")).to_contain_text("已保存，题库已重新加载")
    text = (server.faq / "street.yaml").read_text(encoding="utf-8")
    assert "# The widget must drop links that are not http(s), tel or relative." in text
    assert server.answers(
        "小摊贩占道",
        "vendor-report",
        "请拨打12345反映摊贩占道，城管队员会尽快到场。\n请说明路段和时间。",
    )
    page.screenshot(path=str(shots / "editor-saved.png"), full_page=False)

    page.get_by_role("link", name="修改记录", exact=True).click()
    row = page.get_by_role("region", name="修改记录（表格）").locator("tbody tr").first
    expect(row).to_contain_text("修改条目")
    expect(row).to_contain_text("vendor-report")
    expect(row.locator("ins")).to_contain_text("城管队员会尽快到场")
    expect(row.locator("del")).to_contain_text("执法人员将到场处置")
    page.screenshot(path=str(shots / "history.png"), full_page=False)


def test_markup_in_an_answer_is_previewed_as_text(page, server):
    login(page, server, "/admin/faq/markup-sample")
    page.get_by_role("button", name="预览").click()
    bubble = page.locator("#preview .bubble-answer")
    expect(bubble).to_contain_text("<script>window.__xss=3</script>")
    assert page.evaluate("() => window.__xss") is None
    expect(page.locator("#preview img")).to_have_count(0)


def test_create_an_entry_and_the_bot_answers_it(page, server, shots):
    login(page, server)
    page.get_by_role("link", name="新建问答").click()
    expect(page.get_by_role("heading", name="新建问答", level=1)).to_be_visible()
    page.get_by_label("编号").fill("dog-leash")
    page.get_by_label("写入文件").select_option("street.yaml")
    page.get_by_label("标准问").fill("遛狗不牵绳有人管吗？")
    page.get_by_label("相似问法").fill("遛狗不拴绳\n大狗不牵绳吓到小孩")
    page.get_by_label("答案", exact=True).fill("可拨打{hotline}反映，由属地相关部门处理。")
    page.get_by_label("关键词").fill("遛狗\n牵绳")
    page.get_by_role("button", name="预览").click()
    expect(page.locator("#preview .bubble-answer")).to_have_text(
        "可拨打12345反映，由属地相关部门处理。"
    )
    page.screenshot(path=str(shots / "editor-new.png"), full_page=True)
    page.get_by_role("button", name="保存").click()
    expect(page).to_have_url(
        server.url + "/admin/faq/dog-leash?saved=" + page.url.split("saved=")[1]
    )
    expect(page.locator("#editor-notice")).to_contain_text("已新建条目")
    assert "  - id: dog-leash\n" in (server.faq / "street.yaml").read_text(encoding="utf-8")
    assert server.answers("遛狗不拴绳", "dog-leash")
    page.get_by_role("link", name="修改记录", exact=True).click()
    expect(page.locator("#history-table tbody tr").first).to_contain_text("新建条目")


def test_a_validation_error_is_shown_in_chinese_at_its_field(page, console, server, shots):
    console.expected.append("status of 422")  # the refused save, on purpose
    login(page, server, "/admin/faq/vendor-fine")
    before = (server.faq / "street.yaml").read_bytes()
    page.get_by_label("相关问题").fill("vendor-reprt")
    page.get_by_label("复核日期").fill("2026-12-01")
    page.get_by_role("button", name="保存").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("题库检查未通过，本次没有写入。")
    message = "【相关问题】编号“vendor-reprt”的条目不存在，是不是“vendor-report”？"
    expect(alert).to_contain_text(message)
    related = page.get_by_label("相关问题")
    expect(related).to_have_attribute("aria-invalid", "true")
    expect(related).to_have_value("vendor-reprt")
    expect(page.locator("#err-related")).to_contain_text(message)
    assert (server.faq / "street.yaml").read_bytes() == before
    page.screenshot(path=str(shots / "editor-error.png"), full_page=True)


def test_a_conflicting_save_is_refused_and_the_text_is_kept(new_page, console, server, shots):
    console.expected.append("status of 409")  # the refused save, on purpose
    mine, theirs = new_page(), new_page()
    login(mine, server, "/admin/faq/night-market")
    login(theirs, server, "/admin/faq/night-market")
    theirs.get_by_label("答案", exact=True).fill("同事：请拨打{hotline}，说明摊点位置。")
    theirs.get_by_role("button", name="保存").click()
    expect(theirs.locator("#editor-notice")).to_contain_text("已保存")

    mine.get_by_label("相似问法").fill("夜市太吵了\n烧烤摊晚上吵\n夜排档扰民\n半夜烧烤太吵")
    mine.get_by_role("button", name="保存").click()
    alert = mine.get_by_role("alert")
    expect(alert).to_contain_text("没有保存：您打开本页之后，noise.yaml 已被修改")
    expect(alert).to_contain_text("修改了条目 night-market")
    expect(mine.get_by_role("region", name="现在文件中的这一条")).to_contain_text(
        "同事：请拨打{hotline}，说明摊点位置。"
    )
    expect(mine.get_by_label("相似问法")).to_have_value(
        "夜市太吵了\n烧烤摊晚上吵\n夜排档扰民\n半夜烧烤太吵"
    )
    # The colleague's answer is in the form now; the curator's wordings are kept.
    expect(alert).to_contain_text("您没有改动、而别人改过的项已换成文件中现在的内容：答案。")
    expect(mine.get_by_label("答案", exact=True)).to_have_value(
        "同事：请拨打{hotline}，说明摊点位置。"
    )
    text = (server.faq / "noise.yaml").read_text(encoding="utf-8")
    assert "同事：" in text and "半夜烧烤太吵" not in text
    mine.screenshot(path=str(shots / "editor-conflict.png"), full_page=True)

    # Having seen the colleague's version, the curator saves again: both changes are kept.
    mine.get_by_role("button", name="保存").click()
    expect(mine.locator("#editor-notice")).to_contain_text("已保存")
    text = (server.faq / "noise.yaml").read_text(encoding="utf-8")
    assert "同事：" in text and "半夜烧烤太吵" in text


def test_the_workbook_downloads_and_uploads_in_the_console(page, console, server, shots, tmp_path):
    console.expected.append("status of 422")  # the refused workbook, on purpose
    login(page, server)
    with page.expect_download() as info:
        page.get_by_role("link", name="导出 Excel 表格").click()
    book = tmp_path / info.value.suggested_filename
    assert book.name.startswith("题库_") and book.suffix == ".xlsx"
    info.value.save_as(book)

    # A workbook with a bad cell changes nothing and names the cell.
    wb = load_workbook(book)
    ws = wb["问答"]
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == "muck-spill")
    ws.cell(row, 10).value = "明天"  # 审核日期
    wb.save(tmp_path / "bad.xlsx")
    before = {p.name: p.read_bytes() for p in server.faq.glob("*.yaml")}
    page.get_by_label("选择要导入的表格（.xlsx）").set_input_files(tmp_path / "bad.xlsx")
    page.get_by_role("button", name="检查并导入").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("表格有 1 处问题，没有导入")
    expect(alert).to_contain_text(
        f"问答!J{row}，条目 muck-spill：审核日期“明天”要写成 2026-11-20 这样的格式"
    )
    assert {p.name: p.read_bytes() for p in server.faq.glob("*.yaml")} == before
    page.screenshot(path=str(shots / "faqs-import-error.png"), full_page=False)

    ws.cell(row, 10).value = "2026-12-01"
    ws.cell(row, 4).value = ws.cell(row, 4).value + "\n渣土车一路掉泥"
    wb.save(tmp_path / "good.xlsx")
    page.get_by_label("选择要导入的表格（.xlsx）").set_input_files(tmp_path / "good.xlsx")
    page.get_by_role("button", name="检查并导入").click()
    expect(page.locator("#import-notice")).to_contain_text(
        "已导入表格：修改 1 条、新增 0 条，写入 muck.yaml"
    )
    assert server.answers("渣土车一路掉泥", "muck-spill")
    page.screenshot(path=str(shots / "faqs-imported.png"), full_page=False)


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_axe_finds_nothing_on_the_editor_pages(
    new_page: Callable[..., Page], console, server, axe_source, shots, viewport
):
    page = new_page(**({"viewport": viewport} if viewport else {}))
    page.context.add_init_script(path=str(axe_source))  # not subject to the page's CSP
    login(page, server)
    results: dict[str, dict] = {}
    suffix = "-phone" if viewport else ""
    assert_axe_clean(page, "faqs", results)
    page.screenshot(path=str(shots / f"faqs{suffix}.png"), full_page=not viewport)
    page.goto(server.url + "/admin/faq/muck-permit")
    assert_axe_clean(page, "edit", results)
    page.get_by_role("button", name="预览").click()
    # The preview is a posted form: the audit waits for the new page, not the old one.
    expect(page.get_by_role("region", name="预览：访客得到的回答（尚未保存）")).to_be_visible()
    assert_axe_clean(page, "preview", results)
    page.get_by_label("复核日期").fill("不是日期")
    page.get_by_label("相关问题").fill("no-such-entry")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_axe_clean(page, "errors", results)
    page.screenshot(path=str(shots / f"editor-errors{suffix}.png"), full_page=True)
    page.goto(server.url + "/admin/faqs/new")
    assert_axe_clean(page, "new", results)
    page.goto(server.url + "/admin/history")
    assert_axe_clean(page, "history", results)
    assert no_sideways_scroll(page) <= 0
    for path in ("/admin/faqs", "/admin/faq/vendor-report", "/admin/faqs/new"):
        page.goto(server.url + path)
        assert no_sideways_scroll(page) <= 0, path
    console.errors.clear()  # axe probes with inline styles, which the CSP rightly refuses
