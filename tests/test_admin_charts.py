"""The console's SVG charts: one shape per data point, names for screen readers,
escaped text, and nothing the Content-Security-Policy would refuse."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from bot.web.admin.charts import bar_chart, hbar_chart, nice_ticks, stacked_share_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def rects(root: ET.Element, cls: str) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if r.get("class", "").split()[0:1] == [cls]]


def assert_named(root: ET.Element) -> None:
    """role=img, and every id in aria-labelledby names a title or desc with text."""
    assert root.get("role") == "img"
    ids = root.get("aria-labelledby", "").split()
    assert ids
    texts = {el.get("id"): el.text for el in root if el.tag in (f"{SVG}title", f"{SVG}desc")}
    for ref in ids:
        assert texts.get(ref), ref


def test_bar_chart_has_a_column_per_point_zero_included():
    points = [("2024-03-01", 3), ("2024-03-02", 0), ("2024-03-03", 17)]
    svg = bar_chart(
        points,
        chart_id="daily",
        title="每日提问数",
        desc="3 天",
        tip=lambda label, value: f"{label}：{value} 次",
    )
    root = parse(svg)
    assert_named(root)
    bars = rects(root, "bar")
    assert [(b.get("data-label"), b.get("data-value")) for b in bars] == [
        ("2024-03-01", "3"),
        ("2024-03-02", "0"),
        ("2024-03-03", "17"),
    ]
    assert [b.find(f"{SVG}title").text for b in bars] == [
        "2024-03-01：3 次",
        "2024-03-02：0 次",
        "2024-03-03：17 次",
    ]
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] == 0
    # The axis goes up to 20 (ticks 0, 5, ... 20): 17 fills 85 % of the plot.
    assert heights[2] / heights[0] == pytest.approx(17 / 3, rel=1e-3)
    axis = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert axis == ["0", "5", "10", "15", "20"]


def test_bar_chart_writes_at_most_ten_day_labels():
    points = [(f"2024-03-{d:02d}", d) for d in range(1, 31)]
    root = parse(bar_chart(points, chart_id="c", title="t", short_label=lambda s: s[5:]))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert labels == ["03-01", "03-04", "03-07", "03-10", "03-13", "03-16", "03-19", "03-22",
                      "03-25", "03-28"]  # fmt: skip
    assert len(rects(root, "bar")) == 30


def test_text_is_escaped():
    evil = '<script>alert("x")</script> & "quotes"'
    for svg in [
        bar_chart([(evil, 1)], chart_id="a", title=evil, desc=evil),
        hbar_chart([(evil, 1)], chart_id="b", title=evil),
        stacked_share_chart([(evil, {"k": 1})], series=[("k", evil)], chart_id="c", title=evil),
    ]:
        assert "<script>" not in svg
        root = parse(svg)  # still well-formed XML
        assert root.find(f"{SVG}title").text == evil


def test_charts_carry_no_inline_style_or_script():
    svgs = [
        bar_chart([("a", 1)], chart_id="a", title="t"),
        hbar_chart([("a", 1)], chart_id="b", title="t"),
        stacked_share_chart([("a", {"k": 1})], series=[("k", "K")], chart_id="c", title="t"),
    ]
    for svg in svgs:
        assert not re.search(r"\sstyle=|<style|<script|\son\w+=", svg)


def test_stacked_share_chart_segments_and_legend():
    rows = [
        ("2024-03-01", {"answer": 6, "clarify": 1, "fallback": 3}),
        ("2024-03-02", {"answer": 0, "clarify": 0, "fallback": 0}),
    ]
    series = [("answer", "直接回答"), ("clarify", "反问澄清"), ("fallback", "未能回答")]
    root = parse(stacked_share_chart(rows, series=series, chart_id="s", title="占比", desc="三类"))
    assert_named(root)
    segments = [r for r in root.iter(f"{SVG}rect") if r.get("data-series")]
    assert [(r.get("data-series"), r.get("data-value")) for r in segments] == [
        ("answer", "6"),
        ("clarify", "1"),
        ("fallback", "3"),
    ]
    heights = [float(r.get("height")) for r in segments]
    assert heights[0] / sum(heights) == pytest.approx(0.6)
    # Bottom to top: each segment sits on the one before.
    ys = [float(r.get("y")) for r in segments]
    assert ys[1] + heights[1] == pytest.approx(ys[0])
    assert segments[0].find(f"{SVG}title").text == "2024-03-01 直接回答：6（60%）"
    empty = rects(root, "empty")
    assert [(r.get("data-label"), r.find(f"{SVG}title").text) for r in empty] == [
        ("2024-03-02", "2024-03-02：没有提问")
    ]
    legend = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "legend"]
    assert legend == ["直接回答 60%（6）", "反问澄清 10%（1）", "未能回答 30%（3）"]


def test_hbar_chart_cuts_long_labels_but_keeps_them_in_the_tooltip():
    long = "路边有流动摊贩占道经营，晚上还有烧烤摊油烟很大，噪声也很吵，请问应该找哪个部门反映？"
    root = parse(
        hbar_chart(
            [(long, 0.5), ("短问题", 1.0)],
            chart_id="h",
            title="有帮助率",
            max_value=1.0,
            value_text=lambda v: f"{v * 100:.0f}%",
            label_width=200,
        )
    )
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert labels[0].endswith("…") and long.startswith(labels[0][:-1])
    assert len(labels[0]) <= 200 // 12
    assert labels[1] == "短问题"
    bars = rects(root, "bar")
    assert bars[0].find(f"{SVG}title").text == f"{long}：50%"
    assert float(bars[1].get("width")) == pytest.approx(2 * float(bars[0].get("width")))
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["50%", "100%"]


def test_empty_charts_still_draw():
    assert "暂无数据" in hbar_chart([], chart_id="h", title="t")
    root = parse(bar_chart([], chart_id="b", title="t"))
    assert rects(root, "bar") == []


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (3, [0, 1, 2, 3]),
        (8, [0, 2, 4, 6, 8]),
        (17, [0, 5, 10, 15, 20]),
        (100, [0, 50, 100]),
        (1234, [0, 500, 1000, 1500]),
    ],
)
def test_nice_ticks(maximum, ticks):
    assert nice_ticks(maximum) == ticks
