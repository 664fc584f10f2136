"""The 智能小城 widget in a real Chromium against the real server.

Playwright's CSS locators pierce the widget's open shadow root, so
``page.locator(".xc-input")`` finds the input inside it.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

GREETING = (
    "您好！我是智能小城，示例市城市管理行政执法局的智能问答助手。"
    "请问有什么可以帮您？您可以直接输入问题，也可以点击下面的常见问题。"
)
VENDOR_Q = "路边有流动摊贩占道经营怎么办？"
VENDOR_A = "可拨打12345政务服务便民热线反映，执法人员将到场处置。\n反映时请说明具体地点和时间。"
FINE_Q = "占道经营会被罚款多少钱？"
MUCK_PERMIT_Q = "渣土车运输要办理什么手续？"
MUCK_SPILL_Q = "渣土车沿路撒漏怎么处罚？"
HOTLINE = "拨打12345政务服务便民热线"
FALLBACK = "抱歉，这个问题我暂时回答不了。您可以换个说法再问一次，或通过下面的人工渠道咨询。"


# --- helpers -----------------------------------------------------------------


def open_widget(page: Page, server) -> None:
    """Load the demo portal, click the mascot and wait for the greeting."""
    page.goto(server.url + "/")
    page.locator(".xc-launcher").click()
    expect(page.locator(".xc-panel")).to_be_visible()
    expect(page.locator(".xc-kind-greeting .xc-chip").first).to_be_visible()


def ask(page: Page, question: str) -> Locator:
    """Type ``question``, press Enter and return the bot's reply to it."""
    replies = page.locator(".xc-msg.xc-bot:not(.xc-typing)")
    before = replies.count()
    page.locator(".xc-input").fill(question)
    page.locator(".xc-input").press("Enter")
    expect(replies).to_have_count(before + 1)
    return replies.last


def bubbles(page: Page, who: str) -> list[str]:
    """The text of every message bubble of ``who`` ("user" or "bot")."""
    return page.locator(f".xc-{who}:not(.xc-typing) .xc-bubble").evaluate_all(
        "els => els.map(e => e.textContent)"
    )


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"))


# --- asking and answering ------------------------------------------------------


def test_mascot_opens_a_greeting_with_popular_questions(page, live_server):
    page.goto(live_server.url + "/")
    launcher = page.locator(".xc-launcher")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(page.locator(".xc-panel")).to_be_hidden()

    launcher.click()

    panel = page.get_by_role("dialog", name="智能小城在线问答")
    expect(panel).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".xc-input")).to_be_focused()
    greeting = page.locator(".xc-kind-greeting")
    expect(greeting.locator(".xc-text")).to_have_text(GREETING)
    expect(greeting.locator(".xc-chip")).to_have_text(
        ["小城的回答会显示网页代码吗？", MUCK_PERMIT_Q, "夜排档噪声扰民怎么办？", VENDOR_Q]
    )
    expect(greeting.locator("a.xc-channel")).to_have_text([HOTLINE, "网上留言（在新窗口打开）"])


def test_question_gets_its_answer_with_basis_and_safe_links(page, live_server):
    open_widget(page, live_server)
    reply = ask(page, "小摊贩占道")

    expect(reply.locator(".xc-faq-q")).to_have_text(VENDOR_Q)
    assert reply.locator(".xc-answer").text_content() == VENDOR_A
    expect(reply.locator(".xc-basis")).to_have_text("依据：《城市市容和环境卫生管理条例》")
    # The bank's javascript: link is dropped; the message-board link opens safely.
    links = reply.locator("a.xc-link")
    expect(links).to_have_count(1)
    expect(links).to_have_text("网上留言（在新窗口打开）")
    expect(links).to_have_attribute("href", "https://example.test/liuyan")
    expect(links).to_have_attribute("target", "_blank")
    expect(links).to_have_attribute("rel", "noopener noreferrer")
    assert page.locator("a[href^='javascript']").count() == 0
    expect(reply.locator(".xc-chips-block .xc-label")).to_have_text("您可能还想问：")
    expect(reply.locator(".xc-chip")).to_have_text([FINE_Q, "夜排档噪声扰民怎么办？"])
    assert bubbles(page, "user") == ["您：小摊贩占道"]


def test_typing_indicator_shows_while_waiting(page, live_server):
    open_widget(page, live_server)
    page.locator(".xc-input").fill("小摊贩占道")
    page.locator(".xc-input").press("Enter")
    typing = page.locator(".xc-typing")
    expect(typing).to_be_visible()
    expect(typing).to_have_text(re.compile("小城正在查找答案"))
    expect(page.locator(".xc-kind-answer")).to_be_visible()
    expect(typing).to_be_hidden()


def test_related_chip_answers_that_exact_faq(page, live_server):
    open_widget(page, live_server)
    ask(page, "小摊贩占道")

    with page.expect_request("**/api/ask") as request:
        page.locator(".xc-kind-answer .xc-chip", has_text=FINE_Q).click()
    assert request.value.post_data_json["faq_id"] == "vendor-fine"
    assert request.value.post_data_json["q"] == FINE_Q

    answer = page.locator(".xc-kind-answer").last
    expect(answer.locator(".xc-faq-q")).to_have_text(FINE_Q)
    assert bubbles(page, "user") == ["您：小摊贩占道", f"您：{FINE_Q}"]
    expect(page.locator(".xc-input")).to_be_focused()


def test_clarify_offers_choices_and_a_choice_answers(page, live_server):
    open_widget(page, live_server)
    reply = ask(page, "渣土")

    expect(reply).to_have_class(re.compile("xc-kind-clarify"))
    expect(reply.locator(".xc-text")).to_have_text("您是不是想问：")
    expect(reply.locator(".xc-chip")).to_have_text([MUCK_PERMIT_Q, MUCK_SPILL_Q, "都不是"])
    reply.locator(".xc-chip", has_text=MUCK_PERMIT_Q).click()

    answer = page.locator(".xc-kind-answer").last
    expect(answer.locator(".xc-faq-q")).to_have_text(MUCK_PERMIT_Q)
    expect(answer.locator(".xc-answer")).to_have_text(
        "运输建筑垃圾（渣土）须依法办理处置核准手续，车辆应密闭运输。"
    )


def test_fallback_offers_the_hotline_and_the_message_board(page, live_server):
    open_widget(page, live_server)
    reply = ask(page, "今天天气怎么样")

    expect(reply).to_have_class(re.compile("xc-kind-fallback"))
    expect(reply.locator(".xc-text")).to_contain_text(FALLBACK)
    hotline = reply.locator("a.xc-channel", has_text=HOTLINE)
    expect(hotline).to_have_attribute("href", "tel:12345")
    assert hotline.get_attribute("target") is None
    board = reply.locator("a.xc-channel", has_text="网上留言")
    expect(board).to_have_attribute("href", "https://example.test/liuyan")
    expect(board).to_have_attribute("rel", "noopener noreferrer")
    expect(reply.locator(".xc-feedback")).to_have_count(0)


def test_feedback_is_recorded_in_the_query_log(page, live_server):
    open_widget(page, live_server)
    with page.expect_response("**/api/ask") as first:
        reply = ask(page, "小摊贩占道")
    up_id = first.value.json()["query_id"]
    reply.get_by_role("button", name="有帮助").click()

    expect(reply.locator(".xc-thanks")).to_have_text("感谢您的反馈！")
    expect(reply.get_by_role("button", name="有帮助")).to_be_disabled()
    expect(reply.get_by_role("button", name="没帮助")).to_be_disabled()
    expect(reply.get_by_role("button", name="有帮助")).to_have_attribute("aria-pressed", "true")

    with page.expect_response("**/api/ask") as second:
        other = ask(page, "渣土车撒漏罚款")
    down_id = second.value.json()["query_id"]
    other.get_by_role("button", name="没帮助").click()
    expect(other.locator(".xc-thanks")).to_have_text("感谢您的反馈，我们会继续改进。")

    querylog = live_server.app.extensions["xiaocheng"].querylog
    assert querylog.flush(timeout=10)
    verdicts = {str(r["query_id"]): (r["helpful"], r["faq_id"]) for r in querylog.feedback()}
    assert verdicts[str(up_id)] == (True, "vendor-report")
    assert verdicts[str(down_id)] == (False, "muck-spill")


# --- keyboard, phone, large text ------------------------------------------------


def test_keyboard_only_flow(page, live_server):
    page.goto(live_server.url + "/")
    launcher = page.locator(".xc-launcher")
    for _ in range(80):
        page.keyboard.press("Tab")
        if launcher.evaluate("el => el.getRootNode().activeElement === el"):
            break
    else:
        pytest.fail("Tab never reached the mascot button")
    page.keyboard.press("Enter")
    expect(page.locator(".xc-input")).to_be_focused()
    expect(page.locator(".xc-kind-greeting")).to_be_visible()

    # Type-ahead: a listbox the arrow keys move through, Enter picks.
    page.keyboard.type("占道")
    listbox = page.get_by_role("listbox", name="推荐问题")
    expect(listbox).to_be_visible()
    expect(page.locator(".xc-input")).to_have_attribute("aria-expanded", "true")
    expect(listbox.get_by_role("option")).to_have_text([FINE_Q, VENDOR_Q])
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator(".xc-input")).to_have_attribute("aria-activedescendant", "xc-opt-1")
    expect(listbox.get_by_role("option").nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page.locator(".xc-kind-answer .xc-faq-q")).to_have_text(VENDOR_Q)
    expect(listbox).to_be_hidden()

    # Esc closes the list first, then the panel, and focus returns to the mascot.
    page.keyboard.type("渣土")
    expect(listbox).to_be_visible()
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()
    expect(page.locator(".xc-panel")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(".xc-panel")).to_be_hidden()
    assert launcher.evaluate("el => el.getRootNode().activeElement === el")
    expect(launcher).to_have_attribute("aria-expanded", "false")

    # Reopen with the keyboard; Shift+Tab walks back from the input through the
    # conversation to the header's buttons.
    page.keyboard.press("Enter")
    expect(page.locator(".xc-input")).to_be_focused()
    expect(page.locator(".xc-kind-answer")).to_be_visible()
    order = []
    for _ in range(14):
        page.keyboard.press("Shift+Tab")
        order.append(
            page.evaluate(
                "() => { const a = document.activeElement.shadowRoot?.activeElement;"
                " return a ? (a.getAttribute('aria-label') || a.textContent.trim()) : null }"
            )
        )
    board = "网上留言（在新窗口打开）"
    assert order == [
        *["夜排档噪声扰民怎么办？", FINE_Q, "没帮助", "有帮助", board],  # the answer
        *[board, HOTLINE, VENDOR_Q, "夜排档噪声扰民怎么办？", MUCK_PERMIT_Q],  # the greeting
        *["小城的回答会显示网页代码吗？", "对话记录", "关闭在线问答", "大字模式"],
    ]


def test_enter_on_empty_input_sends_nothing(page, live_server):
    open_widget(page, live_server)
    page.locator(".xc-input").fill("   ")
    page.locator(".xc-input").press("Enter")
    expect(page.locator(".xc-hint")).to_have_text("请先输入您的问题。")
    assert bubbles(page, "user") == []


def test_phone_panel_fills_the_screen(new_page, live_server, artifacts):
    page = new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.goto(live_server.url + "/")
    launcher = page.locator(".xc-launcher")
    box = launcher.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"] and box["y"] + box["height"] <= PHONE["height"]
    assert box["x"] > PHONE["width"] / 2 and box["y"] > PHONE["height"] / 2  # bottom-right
    shot(page, artifacts, "phone-closed")

    launcher.tap()
    expect(page.locator(".xc-kind-greeting .xc-chip").first).to_be_visible()
    page.locator(".xc-kind-greeting .xc-chip", has_text=VENDOR_Q).tap()
    expect(page.locator(".xc-kind-answer")).to_be_visible()
    # The on-screen keyboard stays down so that it does not hide the answer.
    expect(page.locator(".xc-input")).not_to_be_focused()

    panel = page.locator(".xc-panel").bounding_box()
    assert panel == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
    expect(launcher).to_be_hidden()
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, artifacts, "phone-answer")


def test_large_text_mode_is_a_persisted_toggle(page, live_server, artifacts):
    open_widget(page, live_server)
    ask(page, "小摊贩占道")
    toggle = page.get_by_role("button", name="大字模式")
    answer = page.locator(".xc-answer")
    assert answer.evaluate("el => getComputedStyle(el).fontSize") == "16px"
    expect(toggle).to_have_attribute("aria-pressed", "false")

    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert answer.evaluate("el => getComputedStyle(el).fontSize") == "20px"
    shot(page, artifacts, "desktop-large-text")

    page.reload()
    expect(page.locator(".xc-answer")).to_be_visible()
    expect(page.get_by_role("button", name="大字模式")).to_have_attribute("aria-pressed", "true")
    assert page.locator(".xc-answer").evaluate("el => getComputedStyle(el).fontSize") == "20px"


# --- safety ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    ["<img src=x onerror=window.__xss=1>", "<script>window.__xss=1</script>"],
)
def test_script_injection_shows_as_text_and_runs_nothing(new_page, live_server, payload):
    # Without the CSP, so that this checks the widget itself and not only the header.
    page = new_page(bypass_csp=True)
    open_widget(page, live_server)
    ask(page, payload)
    # Bank text that looks like markup is shown as text too.
    reply = ask(page, "回答里有尖括号")
    expect(reply.locator(".xc-answer")).to_have_text(
        "不会执行。例如 <img src=x onerror=window.__xss=2> 和 "
        "<script>window.__xss=3</script> 只会原样显示为文字。"
    )
    page.wait_for_timeout(300)  # give an injected onerror handler time to fire

    assert bubbles(page, "user")[0] == f"您：{payload}"
    assert page.evaluate("() => window.__xss") is None
    shadow_tags = page.locator("#xiaocheng-widget").evaluate(
        "host => [...host.shadowRoot.querySelectorAll('*')].map(e => e.localName)"
    )
    assert "script" not in shadow_tags
    foreign_images = page.locator("#xiaocheng-widget").evaluate(
        "host => [...host.shadowRoot.querySelectorAll('img')]"
        ".map(e => e.getAttribute('src')).filter(s => !s.endsWith('/widget/mascot.svg'))"
    )
    assert foreign_images == []


def test_conversation_survives_navigation_and_reload(page, live_server):
    open_widget(page, live_server)
    ask(page, "小摊贩占道")
    page.locator(".xc-kind-answer").get_by_role("button", name="有帮助").click()
    expect(page.locator(".xc-thanks")).to_have_text("感谢您的反馈！")
    before = bubbles(page, "bot")

    page.get_by_role("link", name="机构概况").click()
    page.wait_for_url("**/?lanmu=jggk")
    expect(page.locator(".xc-panel")).to_be_visible()
    assert bubbles(page, "bot") == before
    assert bubbles(page, "user") == ["您：小摊贩占道"]
    # The feedback already given stays given.
    expect(page.get_by_role("button", name="有帮助")).to_be_disabled()
    # Reopening after navigation does not steal focus from the new page.
    assert page.evaluate("() => document.activeElement === document.body")

    page.locator(".xc-close").click()
    page.reload()
    expect(page.locator(".xc-launcher")).to_have_attribute("aria-expanded", "false")
    expect(page.locator(".xc-panel")).to_be_hidden()
    page.locator(".xc-launcher").click()
    assert bubbles(page, "bot") == before  # no second greeting

    # A new tab is a new session: it starts afresh.
    other = page.context.new_page()
    other.goto(live_server.url + "/")
    other.locator(".xc-launcher").click()
    expect(other.locator(".xc-kind-greeting")).to_have_count(1)
    assert bubbles(other, "user") == []


def test_one_tag_embeds_the_widget_in_a_portal_on_another_origin(page, serve_app):
    # The portal is someone else's plain page on another origin, holding only the tag.
    pages: dict[str, bytes] = {}

    def portal_app(environ, start_response):
        if environ["PATH_INFO"] not in pages:
            start_response("204 No Content", [])  # e.g. the browser's favicon request
            return []
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [pages[environ["PATH_INFO"]]]

    portal = make_server("127.0.0.1", 0, portal_app)
    origin = f"http://127.0.0.1:{portal.server_port}"
    server = serve_app(CORS_ORIGINS=[origin])
    pages["/"] = (
        '<!DOCTYPE html><html lang="zh-CN"><title>门户</title><main><h1>门户</h1></main>'
        f'<script src="{server.url}/widget.js" data-endpoint="{server.url}" defer></script>'
    ).encode()
    thread = threading.Thread(target=portal.serve_forever, daemon=True)
    thread.start()
    try:
        page.goto(f"{origin}/")
        page.locator(".xc-launcher").click()
        expect(page.locator(".xc-kind-greeting .xc-chip").first).to_be_visible()
        reply = ask(page, "小摊贩占道")
        expect(reply.locator(".xc-faq-q")).to_have_text(VENDOR_Q)
        reply.get_by_role("button", name="有帮助").click()
        expect(reply.locator(".xc-thanks")).to_have_text("感谢您的反馈！")
        # Styles and mascot came from beside the script, on the service's origin.
        assert page.locator(".xc-panel").evaluate("el => getComputedStyle(el).position") == "fixed"
        mascot = page.locator(".xc-launcher-img")
        expect(mascot).to_have_attribute("src", f"{server.url}/widget/mascot.svg")
        assert mascot.evaluate("img => img.naturalWidth") > 0
    finally:
        portal.shutdown()
        portal.server_close()
        thread.join(timeout=10)


# --- errors --------------------------------------------------------------------


def test_rate_limit_shows_the_services_chinese_message(page, console, serve_app):
    server = serve_app(RATELIMIT_ENABLED=True, RATELIMIT_ASK="2/minute")
    console.expected.append("status of 429")  # the browser logs the refused request itself
    open_widget(page, server)
    ask(page, "小摊贩占道")
    ask(page, "渣土")
    with page.expect_response("**/api/ask") as third:
        reply = ask(page, "夜市太吵了")
    assert third.value.status == 429
    expect(reply.locator(".xc-error")).to_have_text("您的提问太频繁了，请稍等一会儿再试。")
    expect(reply.locator("a.xc-channel", has_text=HOTLINE)).to_have_attribute("href", "tel:12345")


# --- accessibility audit and screenshots --------------------------------------------


def run_axe(page: Page) -> dict:
    return page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations', 'incomplete']});
            const brief = list => list.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary}))}));
            return {violations: brief(r.violations), incomplete: brief(r.incomplete),
                    shadowPasses: r.passes.flatMap(p => p.nodes)
                        .filter(n => Array.isArray(n.target[0])).length};
        }"""
    )


def dump(results: list) -> str:
    return json.dumps(results, ensure_ascii=False, indent=1)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_no_violations_with_the_panel_open(
    new_page, console, live_server, axe_source, artifacts, viewport
):
    page = new_page(viewport=viewport)
    # An init script is not subject to the page's CSP, unlike an injected <script>.
    page.context.add_init_script(path=str(axe_source))
    page.goto(live_server.url + "/")
    name = "desktop" if viewport == DESKTOP else "phone"
    if viewport == DESKTOP:
        shot(page, artifacts, "desktop-closed")
    open_widget(page, live_server)
    shot(page, artifacts, f"{name}-greeting")
    ask(page, "渣土")
    reply = ask(page, "小摊贩占道")
    reply.get_by_role("button", name="有帮助").click()
    expect(reply.locator(".xc-thanks")).to_have_text("感谢您的反馈！")
    ask(page, "今天天气怎么样")
    page.locator(".xc-input").fill("占道")
    expect(page.get_by_role("listbox")).to_be_visible()
    page.locator(".xc-input").press("ArrowDown")
    page.wait_for_timeout(400)  # let the panel's entrance animation finish
    shot(page, artifacts, f"{name}-conversation")
    assert console.errors == []

    result = run_axe(page)
    console.errors.clear()  # axe probes with inline styles, which the CSP rightly refuses

    assert result["violations"] == [], dump(result["violations"])
    assert result["incomplete"] == [], dump(result["incomplete"])
    # The audit did look inside the widget's shadow root.
    assert result["shadowPasses"] >= 10

    # ... and would have caught a fault there.
    page.locator("#xiaocheng-widget").evaluate(
        "host => host.shadowRoot.querySelector('.xc-compose')"
        ".append(document.createElement('button'))"
    )
    broken = run_axe(page)
    console.errors.clear()
    assert [v["id"] for v in broken["violations"]] == ["button-name"]


# --- every visitor: zoom, keyboard, failures, long questions, speech (issue 11) -------

DISCLAIMER = "答复仅供参考，具体以法律法规和本局公告为准。"
UNREACHABLE = (
    "抱歉，小城的服务暂时连接不上，问题出在我们这边。请稍后点“重试”，或通过下面的人工渠道咨询。"
)
REPHRASE = (
    "没关系，请换个说法再问一次：说清楚发生了什么事、在什么地方，一次只问一件事。"
    "例如“小区门口有人占道摆摊，怎么反映？”"
)
# Browser zoom shrinks the CSS viewport and raises the device pixel ratio: a
# 1366×768 window at 200% is a 683×384 CSS-pixel viewport at ratio 2, at 400%
# 341×192 at ratio 4. 320 CSS pixels wide is the reflow width of WCAG 1.4.10.
ZOOMS = {
    "zoom200": ({"width": 683, "height": 384}, 2),
    "zoom400": ({"width": 341, "height": 192}, 4),
    "width320": ({"width": 320, "height": 568}, 1),
    "phone375": ({"width": 375, "height": 667}, 2),
}


def axe_page(new_page, axe_source: Path, **options) -> Page:
    page = new_page(**options)
    # An init script is not subject to the page's CSP, unlike an injected <script>.
    page.context.add_init_script(path=str(axe_source))
    return page


def assert_axe_clean(page: Page, console) -> None:
    result = run_axe(page)
    console.errors.clear()  # axe probes with inline styles, which the CSP rightly refuses
    assert result["violations"] == [], dump(result["violations"])
    assert result["incomplete"] == [], dump(result["incomplete"])
    assert result["shadowPasses"] >= 10  # it did look inside the shadow root


def ask_bodies(page: Page) -> list[dict]:
    """Start recording the JSON bodies the page posts to /api/ask."""
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/ask") else None,
    )
    return bodies


def focused_name(page: Page) -> str | None:
    """The accessible name (or text) of the focused element inside the widget, else None."""
    return page.evaluate(
        "() => { const host = document.activeElement;"
        " if (!host || host.id !== 'xiaocheng-widget') return null;"
        " const a = host.shadowRoot.activeElement;"
        " return a ? (a.getAttribute('aria-label') || a.textContent.trim()"
        " || a.getAttribute('placeholder')) : null }"
    )


def box(page: Page, selector: str) -> dict:
    found = page.locator(selector).bounding_box()
    assert found is not None, selector
    return found


@pytest.mark.parametrize("name", list(ZOOMS))
def test_zoom_and_narrow_screens_keep_the_answer_readable(
    new_page, console, live_server, axe_source, artifacts, name
):
    viewport, ratio = ZOOMS[name]
    page = axe_page(new_page, axe_source, viewport=viewport, device_scale_factor=ratio)
    open_widget(page, live_server)
    reply = ask(page, "小摊贩占道")
    expect(reply.locator(".xc-answer")).to_have_text(VENDOR_A)
    page.wait_for_timeout(300)  # the panel's entrance animation
    shot(page, artifacts, f"{name}-answer")

    panel = box(page, ".xc-panel")
    head, scroll, compose = box(page, ".xc-head"), box(page, ".xc-scroll"), box(page, ".xc-compose")
    # The panel is inside the window; its parts are stacked, none over another.
    assert panel["x"] >= 0 and panel["y"] >= 0
    assert panel["x"] + panel["width"] <= viewport["width"]
    assert panel["y"] + panel["height"] <= viewport["height"]
    assert head["y"] + head["height"] <= scroll["y"] + 0.5
    assert scroll["y"] + scroll["height"] <= compose["y"] + 0.5
    assert compose["y"] + compose["height"] <= panel["y"] + panel["height"] + 0.5
    # The conversation keeps most of the panel.
    share = scroll["height"] / panel["height"]
    assert share >= (0.55 if name == "zoom400" else 0.7), share
    # No sideways scrolling: not the page, not the panel, not the conversation.
    widths = page.locator("#xiaocheng-widget").evaluate(
        """host => ['.xc-panel', '.xc-scroll', '.xc-compose', '.xc-head'].map(s => {
            const el = host.shadowRoot.querySelector(s);
            return [s, el.scrollWidth, el.clientWidth]; })"""
    )
    for selector, scroll_width, client_width in widths:
        assert scroll_width <= client_width, selector
    assert page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    # Every control is wholly on screen, and the send button does not sit on the input.
    for selector in [".xc-input", ".xc-send", ".xc-close", ".xc-large-btn"]:
        b = box(page, selector)
        assert b["x"] >= 0 and b["x"] + b["width"] <= viewport["width"], selector
    field, send = box(page, ".xc-input"), box(page, ".xc-send")
    assert field["x"] + field["width"] <= send["x"]
    # The disclaimer is still there to read, in the conversation if not below it.
    expect(page.locator(".xc-foot:visible")).to_have_text(DISCLAIMER)
    assert_axe_clean(page, console)


def test_tab_and_shift_tab_stay_in_the_dialog(page, live_server):
    open_widget(page, live_server)
    ask(page, "小摊贩占道")
    page.locator(".xc-input").focus()
    expect(page.get_by_role("dialog")).to_have_attribute("aria-modal", "true")

    forward = []
    for _ in range(40):
        page.keyboard.press("Tab")
        forward.append(focused_name(page))
        if forward[-1] == "请在这里输入您的问题":
            break
    board = "网上留言（在新窗口打开）"
    greeting = ["小城的回答会显示网页代码吗？", MUCK_PERMIT_Q, "夜排档噪声扰民怎么办？"]
    assert forward == [
        "发送",
        *["大字模式", "关闭在线问答", "对话记录"],  # wrapped round to the top
        *greeting,
        VENDOR_Q,
        HOTLINE,
        board,  # the greeting: chips, channels
        board,
        "有帮助",
        "没帮助",
        FINE_Q,
        "夜排档噪声扰民怎么办？",  # the answer
        "请在这里输入您的问题",
    ]

    backward = []
    for _ in range(len(forward)):
        page.keyboard.press("Shift+Tab")
        backward.append(focused_name(page))
    assert backward == [*reversed(forward[:-1]), "请在这里输入您的问题"]

    page.keyboard.press("Escape")
    expect(page.locator(".xc-panel")).to_be_hidden()
    assert page.locator(".xc-launcher").evaluate("el => el.getRootNode().activeElement === el")


def test_unreachable_service_offers_retry_and_the_human_channels(
    new_page, console, serve_app, axe_source, artifacts
):
    server = serve_app()
    console.expected.append("ERR_CONNECTION_REFUSED")
    page = axe_page(new_page, axe_source)
    open_widget(page, server)
    bodies = ask_bodies(page)
    port = server.port
    server.stop()

    reply = ask(page, "小摊贩占道")
    expect(reply.locator(".xc-error")).to_have_text(UNREACHABLE)
    assert "检查网络" not in reply.text_content()
    retry = reply.get_by_role("button", name="重试：重新发送“小摊贩占道”")
    expect(retry).to_have_text("重试")
    expect(reply.locator("a.xc-channel")).to_have_text([HOTLINE, "网上留言（在新窗口打开）"])
    expect(reply.locator("a.xc-channel", has_text=HOTLINE)).to_have_attribute("href", "tel:12345")
    page.wait_for_timeout(300)
    shot(page, artifacts, "retry-state")
    assert_axe_clean(page, console)

    # Still down: the retry fails the same way, and says so again.
    retry.click()
    expect(page.locator(".xc-kind-error")).to_have_count(1)
    expect(page.locator(".xc-kind-error .xc-retry")).to_be_visible()
    assert len(bodies) == 2

    serve_app(port=port)  # the service is back, on the same address
    page.locator(".xc-kind-error .xc-retry").click()
    answer = page.locator(".xc-kind-answer")
    expect(answer.locator(".xc-faq-q")).to_have_text(VENDOR_Q)
    expect(page.locator(".xc-kind-error")).to_have_count(0)
    # The same question went again, and the visitor's bubble is not repeated.
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]
    assert bodies[2]["q"] == "小摊贩占道"
    assert bubbles(page, "user") == ["您：小摊贩占道"]


def test_counter_near_the_limit_and_a_clear_message_past_it(
    new_page, console, live_server, axe_source, artifacts
):
    page = axe_page(new_page, axe_source)
    open_widget(page, live_server)
    bodies = ask_bodies(page)
    field = page.locator(".xc-input")
    counter = page.locator(".xc-counter")
    assert field.get_attribute("maxlength") is None  # the browser would cut silently

    field.fill("摊" * 169)
    expect(counter).to_be_hidden()
    field.fill("摊" * 185)
    expect(counter).to_have_text("还可以输入15字（185/200）")
    expect(field).not_to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "xc-counter")

    field.fill("摊" * 207)
    expect(counter).to_have_text("已超出7字（207/200）")
    expect(field).to_have_attribute("aria-invalid", "true")
    field.press("Enter")
    expect(page.locator(".xc-hint")).to_have_text(
        "问题最多200字，现在超出了7字。请删减后再发送，例如只保留发生了什么、在什么地方。"
    )
    # Nothing was sent and nothing was cut: the whole text is still there to edit.
    assert bodies == []
    assert bubbles(page, "user") == []
    assert field.input_value() == "摊" * 207
    shot(page, artifacts, "counter-over-limit")
    assert_axe_clean(page, console)

    field.fill("摊" * 200)
    expect(counter).to_have_text("还可以输入0字（200/200）")
    page.locator(".xc-send").click()
    expect(page.locator(".xc-msg.xc-bot:not(.xc-typing)")).to_have_count(2)
    assert bodies[0]["q"] == "摊" * 200
    expect(counter).to_be_hidden()


ZH_VOICE = """
  (() => {
    window.__spoken = [];
    const voices = %s;
    const synth = window.speechSynthesis;
    synth.getVoices = () => voices;
    synth.speak = u => { window.__spoken.push({text: u.text, lang: u.lang}); };
    synth.cancel = () => { window.__spoken.push('cancel'); };
  })();
"""


def test_read_aloud_button_speaks_the_answer_with_a_chinese_voice(
    new_page, console, live_server, axe_source, artifacts
):
    page = axe_page(new_page, axe_source)
    page.context.add_init_script(
        ZH_VOICE % '[{name: "Xiaoxiao", lang: "zh-CN", localService: true, default: false}]'
    )
    open_widget(page, live_server)
    reply = ask(page, "小摊贩占道")
    speak = reply.get_by_role("button", name="朗读这条回答")
    expect(speak).to_have_text("朗读")
    speak.click()
    stop = reply.get_by_role("button", name="停止朗读")
    expect(stop).to_have_attribute("aria-pressed", "true")
    spoken = page.evaluate("() => window.__spoken")
    assert spoken == ["cancel", {"text": f"{VENDOR_Q}。{VENDOR_A}", "lang": "zh-CN"}]
    page.wait_for_timeout(300)
    shot(page, artifacts, "read-aloud")
    assert_axe_clean(page, console)
    stop.click()
    expect(reply.get_by_role("button", name="朗读这条回答")).to_have_attribute(
        "aria-pressed", "false"
    )

    # Smalltalk and clarifications are not answers: nothing to read aloud there.
    expect(ask(page, "你好").locator(".xc-speak")).to_have_count(0)
    expect(ask(page, "渣土").locator(".xc-speak")).to_have_count(0)


@pytest.mark.parametrize(
    "voices", ['[{name: "Samantha", lang: "en-US"}, {name: "Anna", lang: "de-DE"}]', "[]"]
)
def test_no_read_aloud_button_without_a_chinese_voice(page, live_server, voices):
    page.context.add_init_script(ZH_VOICE % voices)
    open_widget(page, live_server)
    reply = ask(page, "小摊贩占道")
    expect(reply.locator(".xc-answer")).to_have_text(VENDOR_A)
    expect(reply.locator(".xc-speak")).to_have_count(0)


def test_smalltalk_reads_as_conversation(page, live_server):
    open_widget(page, live_server)
    reply = ask(page, "你好")
    expect(reply).to_have_class(re.compile("xc-smalltalk"))
    expect(reply.locator(".xc-answer")).to_have_text("您好！我是智能小城，请问有什么可以帮您？")
    expect(reply.locator(".xc-faq-q")).to_have_count(0)
    expect(reply.locator(".xc-feedback")).to_have_count(0)
    # A real answer keeps its heading and the helpful row.
    answer = ask(page, "小摊贩占道")
    expect(answer.locator(".xc-faq-q")).to_have_text(VENDOR_Q)
    expect(answer.locator(".xc-feedback")).to_have_count(1)


@pytest.mark.parametrize("marker", [{"smalltalk": True}, {"type": "smalltalk"}])
def test_smalltalk_is_also_known_by_the_reply_field(page, live_server, marker):
    # The service will mark smalltalk itself: take its real reply and add the mark.
    def mark(route):
        reply = route.fetch().json()
        reply["faq"]["category"] = "关于小城"
        route.fulfill(json={**reply, **marker})

    page.route("**/api/ask", mark)
    open_widget(page, live_server)
    reply = ask(page, "你好")
    expect(reply).to_have_class(re.compile("xc-smalltalk"))
    expect(reply.locator(".xc-answer")).to_have_text("您好！我是智能小城，请问有什么可以帮您？")
    expect(reply.locator(".xc-faq-q")).to_have_count(0)
    expect(reply.locator(".xc-feedback")).to_have_count(0)


def test_no_message_repeats_a_channel(page, live_server):
    # A reply listing a channel twice (as the same number and the same name) shows it once.
    def repeat(route):
        reply = route.fetch().json()
        hotline = reply["channels"][0]
        reply["channels"] = [hotline, *reply["channels"], {**hotline, "url": "tel:12345"}]
        route.fulfill(json=reply)

    page.route("**/api/ask", repeat)
    open_widget(page, live_server)
    reply = ask(page, "今天天气怎么样")
    expect(reply).to_have_class(re.compile("xc-kind-fallback"))
    expect(reply.locator("a.xc-channel")).to_have_text([HOTLINE, "网上留言（在新窗口打开）"])


# --- a conversation: context, choices, 都不是 (issue 11, items 1-3) -------------------


def test_follow_ups_carry_the_last_answer_for_two_turns(page, live_server):
    open_widget(page, live_server)
    bodies = ask_bodies(page)
    ask(page, "小摊贩占道")
    ask(page, "你好")  # smalltalk: no new context, a turn used
    ask(page, "在吗")
    ask(page, "您好")
    assert [b.get("context") for b in bodies] == [
        None,
        {"faq_id": "vendor-report"},
        {"faq_id": "vendor-report"},
        None,  # two turns after the answer, the context is over
    ]

    # A new answer starts it again; a clarify the visitor leaves unresolved ends it.
    # (Bare 渣土 would be read as a follow-up of the muck answer; 怎么办 stays a clarify.)
    ask(page, "渣土车撒漏罚款")
    expect(ask(page, "怎么办")).to_have_class(re.compile("xc-kind-clarify"))
    ask(page, "夜市太吵了")
    assert [b.get("context") for b in bodies[4:]] == [None, {"faq_id": "muck-spill"}, None]
    # ... and so does a fallback.
    ask(page, "今天天气怎么样")
    ask(page, "渣土车准运证")
    assert bodies[7]["context"] == {"faq_id": "night-market"}
    assert "context" not in bodies[8]


def test_chosen_questions_name_the_reply_they_came_from(page, live_server):
    open_widget(page, live_server)
    bodies = ask_bodies(page)
    with page.expect_response("**/api/ask") as first:
        ask(page, "小摊贩占道")
    answer_id = first.value.json()["query_id"]
    with page.expect_response("**/api/ask") as chip:
        page.locator(".xc-kind-answer .xc-chip", has_text=FINE_Q).click()
    expect(page.locator(".xc-kind-answer")).to_have_count(2)
    with page.expect_response("**/api/ask") as clarify:
        ask(page, "渣土")
    clarify_id = clarify.value.json()["query_id"]
    assert clarify.value.json()["type"] == "clarify"
    page.locator(".xc-kind-clarify .xc-chip", has_text=MUCK_PERMIT_Q).click()
    expect(page.locator(".xc-kind-answer .xc-faq-q").last).to_have_text(MUCK_PERMIT_Q)
    # A hot question of the greeting: the greeting has no query id today, so none is sent.
    page.locator(".xc-kind-greeting .xc-chip", has_text=VENDOR_Q).click()
    expect(page.locator(".xc-kind-answer")).to_have_count(4)

    assert chip.value.status == 200
    assert bodies[1]["from_query_id"] == answer_id
    assert bodies[1]["faq_id"] == "vendor-fine"
    assert bodies[3]["from_query_id"] == clarify_id
    assert bodies[3]["faq_id"] == "muck-permit"
    assert "from_query_id" not in bodies[0] and "from_query_id" not in bodies[2]
    assert "from_query_id" not in bodies[4] and bodies[4]["faq_id"] == "vendor-report"
    # Typed questions name no reply.
    assert isinstance(answer_id, str) and answer_id != clarify_id
    # The query log links the choice to the question: 渣土 is a wording for muck-permit.
    querylog = live_server.app.extensions["xiaocheng"].querylog
    assert querylog.flush(timeout=10)
    learned = {(r["faq_id"], r["question"]): r["chosen"] for r in querylog.learned_wordings()}
    assert learned[("muck-permit", "渣土")] >= 1
    # A related question clicked after a sure answer asks for more; it re-words nothing.
    assert ("vendor-fine", "小摊贩占道") not in learned


def test_a_follow_up_is_answered_in_the_context_of_the_last_answer(page, live_server):
    open_widget(page, live_server)
    # Alone, 那罚款呢 is a clarify between the vending and the muck fines...
    expect(ask(page, "那罚款呢")).to_have_class(re.compile("xc-kind-clarify"))
    # ...after the vending answer it asks for the vending fine.
    ask(page, "小摊贩占道")
    reply = ask(page, "那罚款呢")
    expect(reply).to_have_class(re.compile("xc-kind-answer"))
    expect(reply.locator(".xc-faq-q")).to_have_text(FINE_Q)


def test_none_of_these_is_logged_and_helps_to_rephrase(
    new_page, console, live_server, axe_source, artifacts
):
    page = axe_page(new_page, axe_source)
    open_widget(page, live_server)
    with page.expect_response("**/api/ask") as response:
        reply = ask(page, "渣土")
    clarify_id = response.value.json()["query_id"]
    none = page.locator(".xc-kind-clarify").get_by_role("button", name="都不是")
    expect(reply.locator(".xc-chips li").last.locator("button")).to_have_text("都不是")
    page.wait_for_timeout(300)
    shot(page, artifacts, "clarify-none-of-these")
    assert_axe_clean(page, console)

    with page.expect_request("**/api/feedback") as request:
        none.click()
    assert request.value.post_data_json == {
        "query_id": clarify_id,
        "helpful": False,
        "reason": "none_of_these",
    }
    advice = page.locator(".xc-kind-rephrase")
    expect(advice.locator(".xc-text")).to_have_text(REPHRASE)
    expect(advice.locator("a.xc-channel")).to_have_text([HOTLINE, "网上留言（在新窗口打开）"])
    expect(none).to_be_disabled()
    expect(none).to_have_attribute("aria-pressed", "true")
    assert bubbles(page, "user") == ["您：渣土", "您：都不是"]
    page.wait_for_timeout(300)
    shot(page, artifacts, "clarify-none-of-these-reply")
    assert_axe_clean(page, console)

    querylog = live_server.app.extensions["xiaocheng"].querylog
    assert querylog.flush(timeout=10)
    verdicts = {str(r["query_id"]): r["helpful"] for r in querylog.feedback()}
    assert verdicts[str(clarify_id)] is False

    # The next question goes without the context of an earlier answer.
    bodies = ask_bodies(page)
    ask(page, "渣土车准运证")
    assert "context" not in bodies[0]


def test_desktop_screenshot_of_a_conversation(page, live_server, artifacts):
    open_widget(page, live_server)
    ask(page, "小摊贩占道")
    ask(page, "你好")
    ask(page, "渣土")
    page.wait_for_timeout(300)
    shot(page, artifacts, "desktop-issue11")
    expect(page.locator(".xc-kind-clarify .xc-none")).to_be_visible()
