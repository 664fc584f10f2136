"""The analyst console in a real Chromium against the real server: log in, read the
dashboard's charts, open the clusters, copy a snippet, export CSV, and pass axe.

The server is the one the widget tests use (``serve_app`` in conftest.py), with
a console password. Today's questions go through ``POST /api/ask`` over HTTP; the four
weeks before are written into the same real SQLite store with their dates, so
the charts have a month to draw.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_audit import run_axe
from playwright.sync_api import Page, expect
from werkzeug.security import generate_password_hash

pytestmark = pytest.mark.browser

PASSWORD = "后台口令 correct horse"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

TODAY_QUESTIONS = [
    "小摊贩占道",
    "小摊贩占道",
    "渣土车运输要办理什么手续",
    "夜市太吵了",
    "占道经营罚款多少",
    "渣土",
    "今天天气怎么样",
    "今天天气怎么样",
    "今天天气怎么样",
    "共享单车乱停谁管",
    "共享单车乱停放",
    "我的手机13812345678丢了",
    "=1+1 办证大厅几点开门",
]
HISTORY_ANSWERS = ["小摊贩占道", "夜市太吵了", "渣土车撒漏", "占道经营罚款多少"]
WEATHER = "今天天气怎么样"


def history() -> list[tuple[int, int, str]]:
    """(days ago, minutes, question) written straight into the store: four weeks of
    answered questions, every fifth one about the weather (not answered)."""
    rows = []
    for days_ago in range(1, 29):
        for i in range(3 + (days_ago * 7) % 9):
            rows.append((days_ago, i, HISTORY_ANSWERS[i % 4] if i % 5 else WEATHER))
    return rows


WEATHER_COUNT = sum(q == WEATHER for _, _, q in history()) + TODAY_QUESTIONS.count(WEATHER)


def post_json(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def admin_server(serve_app: Callable[..., Any]) -> Any:
    """The live server (see conftest.serve) with a console password and a month of questions."""
    server = serve_app(
        ADMIN_PASSWORD_HASH=generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
    )
    service = server.app.extensions["xiaocheng"]
    bot, log = service.bot, service.querylog
    now = datetime.now(UTC)
    for days_ago, minutes, q in history():
        reply = bot.ask(q)
        query_id = log.log_query(
            reply.q,
            reply_type=reply.type,
            normalized=reply.normalized,
            faq_id=reply.faq_id,
            score=reply.score,
            candidates=reply.candidates,
            created_at=now - timedelta(days=days_ago, minutes=minutes),
        )
        if reply.faq_id and minutes % 3 == 0:
            log.log_feedback(query_id, helpful=minutes % 2 == 0)
    for q in TODAY_QUESTIONS:
        reply = post_json(server.url + "/api/ask", {"q": q})
        if reply["type"] == "answer":
            post_json(
                server.url + "/api/feedback",
                {"query_id": reply["query_id"], "helpful": q != "占道经营罚款多少"},
            )
    log.flush()
    return server


def choose_an_offered_answer(server: Any) -> None:
    """A visitor asks 渣土 (a clarify) and clicks the permit choice, as the widget sends it."""
    clarify = post_json(server.url + "/api/ask", {"q": "渣土"})
    choice = next(s for s in clarify["suggestions"] if s["id"] == "muck-permit")
    body = {"q": choice["question"], "faq_id": "muck-permit", "from_query_id": clarify["query_id"]}
    assert post_json(server.url + "/api/ask", body)["faq"]["id"] == "muck-permit"
    server.app.extensions["xiaocheng"].querylog.flush()


def login(page: Page, server: Any, path: str = "/admin/") -> None:
    page.goto(server.url + path)
    expect(page).to_have_url(server.url + "/admin/login?next=" + path)
    page.get_by_label("后台密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(server.url + path)


def shot(page: Page, artifacts: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(artifacts / f"admin-{name}.png"), full_page=full_page)


# What axe says of text inside an SVG chart: it cannot tell the background behind
# text drawn in an image. Those texts are checked below by their computed colours.
SVG_TEXT_UNDECIDED = {
    "Fix any of the following:\n  Element's background color could not be determined "
    "because element contains an image node",
    "Fix any of the following:\n  Element content is too short to determine if it is "
    "actual text content",
}


def undecided(result: dict) -> list:
    """The undecided results, less the contrast of chart text (checked by chart_colours)."""
    left = []
    for item in result["incomplete"]:
        nodes = [
            n
            for n in item["nodes"]
            if not (
                item["id"] == "color-contrast"
                and n["inChart"]
                and n["summary"] in SVG_TEXT_UNDECIDED
            )
        ]
        if nodes:
            left.append({**item, "nodes": nodes})
    return left


def contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    def luminance(rgb: tuple[int, ...]) -> float:
        c = [x / 255 for x in rgb]
        c = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def chart_text_contrasts(page: Page) -> list[float]:
    """Contrast of every chart text's fill against the white chart panel."""
    fills = page.locator("svg.chart text").evaluate_all(
        "all => all.map(t => getComputedStyle(t).fill)"
    )
    rgbs = {tuple(int(x) for x in f[f.index("(") + 1 : -1].split(",")) for f in fills}
    return [contrast(rgb, (255, 255, 255)) for rgb in rgbs]


def dump(results: list) -> str:
    return json.dumps(results, ensure_ascii=False, indent=1)


# --- tests -----------------------------------------------------------------------


def test_login_page_then_the_dashboard_charts(page, console, admin_server, artifacts):
    page.goto(admin_server.url + "/admin/queries")
    expect(page).to_have_url(admin_server.url + "/admin/login?next=/admin/queries")
    expect(page.get_by_role("heading", name="登录咨询分析后台")).to_be_visible()
    shot(page, artifacts, "login", full_page=False)

    console.expected.append("status of 401")  # the wrong password, on purpose
    page.get_by_label("后台密码").fill("wrong password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text("密码不正确，请重新输入。")

    page.get_by_label("后台密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(admin_server.url + "/admin/queries")
    page.get_by_role("link", name="数据概览").click()

    expect(page.get_by_role("heading", name="数据概览", level=1)).to_be_visible()
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(4)
    for name in ["每日提问数", "每日回复类型占比", "回答次数最多的", "各问答的有帮助率"]:
        expect(page.get_by_role("img", name=name)).to_be_visible()
    expect(page.locator("#chart-daily rect.bar")).to_have_count(30)
    assert page.locator("#chart-daily rect.bar").last.get_attribute("data-value") == str(
        len(TODAY_QUESTIONS)
    )
    expect(page.locator("#stat-total")).not_to_have_text("0")
    # Every bar has a tooltip.
    titles = page.locator("#chart-daily rect.bar title").all_text_contents()
    assert len(titles) == 30 and all(t.endswith(" 次") for t in titles)
    # No chart is cut off or spills out of its panel.
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    shot(page, artifacts, "dashboard")

    page.get_by_label("回复类型", exact=True).select_option("fallback")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_role("heading", name="每日未能回答的提问数")).to_be_visible()


def test_clusters_with_copyable_yaml(new_page, admin_server, artifacts):
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=admin_server.url)
    login(page, admin_server)
    page.get_by_role("link", name="未答问题聚类").click()
    expect(page.get_by_role("heading", name="未答问题聚类", level=1)).to_be_visible()
    first = page.locator("li.cluster").first
    expect(first.locator(".count")).to_have_text(f"{WEATHER_COUNT} 次提问")
    expect(first.locator(".examples li").first).to_have_text(WEATHER)
    expect(page.get_by_text("我的手机[手机号]丢了", exact=True)).to_be_visible()
    assert "13812345678" not in page.content()

    button = first.get_by_role("button", name="复制")
    expect(button).to_be_visible()
    button.click()
    expect(button).to_have_text("已复制")
    expect(page.locator("#copy-status")).to_have_text("已复制到剪贴板")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == first.locator("pre").text_content()
    assert "  - id: TODO\n    question: 今天天气怎么样\n" in copied
    shot(page, artifacts, "clusters")

    # A choice among offered answers shows up as a wording for the chosen entry.
    choose_an_offered_answer(admin_server)
    page.reload()
    learned = page.get_by_role("region", name="访客自己选出答案的问法（表格）")
    expect(learned.locator("tbody tr").first.locator("td")).to_have_text(
        ["muck-permit 渣土车运输要办理什么手续？", "渣土", "1", "0"]
    )
    page.get_by_role("heading", name="访客自己选出答案的问法").scroll_into_view_if_needed()
    shot(page, artifacts, "clusters-learned", full_page=False)


def test_csv_exports_download(page, admin_server, tmp_path):
    login(page, admin_server, "/admin/queries")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="导出 CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("queries_")
    assert download.suggested_filename.endswith(".csv")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    data = target.read_bytes()
    assert data.decode("utf-8").startswith(
        "\ufeff时间（北京时间）,问题,回复类型,问答编号,匹配的问答,得分"
    )
    text = data.decode("utf-8-sig")
    assert "'=1+1 办证大厅几点开门" in text
    assert "我的手机[手机号]丢了" in text and "13812345678" not in text

    page.get_by_role("link", name="未答问题聚类").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="导出聚类 CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("clusters_")
    download.save_as(tmp_path / "clusters.csv")
    text = (tmp_path / "clusters.csv").read_bytes().decode("utf-8-sig")
    assert text.startswith("序号,提问次数,问法数,首次提问（北京时间）,最近提问（北京时间）")
    assert f"\r\n1,{WEATHER_COUNT},1," in text


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_no_violations(new_page, console, admin_server, axe_source, artifacts, viewport):
    page = new_page(viewport=viewport)
    choose_an_offered_answer(admin_server)  # so that the clusters page has every section
    # An init script is not subject to the page's CSP, unlike an injected <script>.
    page.context.add_init_script(path=str(axe_source))
    phone = viewport == PHONE
    page.goto(admin_server.url + "/admin/login")
    results = {"login": run_axe(page)}
    if phone:
        shot(page, artifacts, "phone-login", full_page=False)
    login(page, admin_server)
    for name, path in [
        ("dashboard", "/admin/"),
        ("clusters", "/admin/clusters"),
        ("queries", "/admin/queries"),
        ("bank", "/admin/bank"),
    ]:
        page.goto(admin_server.url + path)
        if phone and name in ("dashboard", "clusters"):
            shot(page, artifacts, f"phone-{name}")
        if not phone and name in ("queries", "bank"):
            shot(page, artifacts, name)
        # Open the data tables too, so that axe checks them.
        page.locator("details.data").evaluate_all("all => all.forEach(d => { d.open = true; })")
        results[name] = run_axe(page)
        if name == "dashboard":
            contrasts = chart_text_contrasts(page)
            assert contrasts and min(contrasts) >= 4.5, contrasts
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px"
    console.errors.clear()  # axe probes with inline styles, which the CSP rightly refuses
    for name, result in results.items():
        assert result["violations"] == [], f"{name}: {dump(result['violations'])}"
        assert undecided(result) == [], f"{name}: {dump(undecided(result))}"
        assert result["passes"] >= 10, name


def test_accept_and_reject_suggestions_in_the_browser(
    new_page, console, serve_app, axe_source, artifacts, tmp_path
):
    # A writable copy of the bank, and an index of its own: accepting writes both.
    faq = tmp_path / "faq"
    shutil.copytree(Path(__file__).resolve().parent / "faq", faq)
    server = serve_app(
        FAQ_DIR=str(faq),
        INDEX_PATH=str(tmp_path / "own-index" / "index.pkl"),
        ADMIN_PASSWORD_HASH=generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
    )
    choose_an_offered_answer(server)  # 渣土 → muck-permit, by the visitor's own choice
    post_json(server.url + "/api/ask", {"q": "罚款"})  # a clarify: a cluster proposal
    server.app.extensions["xiaocheng"].querylog.flush()

    page = new_page()
    page.context.add_init_script(path=str(axe_source))
    login(page, server)
    page.get_by_role("link", name="问法建议").click()
    expect(page.get_by_role("heading", name="问法建议", level=1)).to_be_visible()
    table = page.get_by_role("region", name="问法建议（表格）")
    # 渣土 only for the entry the visitor chose, not also for the cluster's nearest one.
    expect(table.locator("td.wording")).to_have_text(["渣土", "罚款"])
    expect(table.locator("tbody tr").first).to_contain_text("muck-permit")
    shot(page, artifacts, "suggestions")
    result = run_axe(page)
    assert result["violations"] == [], dump(result["violations"])
    assert undecided(result) == [], dump(undecided(result))
    console.errors.clear()  # axe probes with inline styles, which the CSP rightly refuses

    page.get_by_role("button", name="采纳：把“渣土”加给 muck-permit").click()
    expect(page.locator("#suggestion-notice")).to_contain_text(
        "已把“渣土”加为条目 muck-permit 的相似问法，题库已重新加载"
    )
    assert "渣土" in (faq / "muck.yaml").read_text(encoding="utf-8")
    reply = post_json(server.url + "/api/ask", {"q": "渣土"})
    assert (reply["type"], reply["faq"]["id"]) == ("answer", "muck-permit")

    # 罚款 is still open; not taking it hides it for good.
    expect(page.locator("#suggestion-table td.wording")).to_have_text(["罚款"])
    page.locator("#suggestion-table tbody tr").first.get_by_role("button", name="不采纳").click()
    expect(page.locator("#suggestion-notice")).to_contain_text("已记下：不再建议把“罚款”")
    expect(page.get_by_text("这段时间没有待处理的问法建议。")).to_be_visible()

    page.get_by_role("link", name="修改记录").click()
    history = page.get_by_role("region", name="修改记录（表格）")
    expect(history.locator("tbody tr").first).to_contain_text("不采纳")
    expect(history.locator("tbody tr").last).to_contain_text("采纳建议")
    expect(history.locator("tbody tr").last).to_contain_text("+ 渣土")
    shot(page, artifacts, "history")
    result = run_axe(page)
    assert result["violations"] == [], dump(result["violations"])
    console.errors.clear()
