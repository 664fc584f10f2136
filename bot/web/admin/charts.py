"""Draw the analyst console's charts as inline SVG, on the server, without any library.

Each builder returns one ``<svg>`` element as text, ready to be placed in a page:
every text that came from data is escaped here, so the caller may mark the
result safe. The charts carry no ``style`` attributes and no scripts (the
console's Content-Security-Policy forbids inline styles); colours come from
class names that the console's stylesheet fills:

``bar``                           the bars of :func:`bar_chart` and :func:`hbar_chart`
``seg seg-<key>``                 the segments of :func:`stacked_share_chart`
``grid``, ``axis``, ``label``,    grid lines, axis lines, axis labels,
``value``, ``empty``              value labels and placeholders for empty columns

Every chart is an image with a name: ``role="img"`` and ``aria-labelledby``
pointing at its ``<title>`` and ``<desc>``; each bar or segment has a
``<title>`` too (the browser shows it as a tooltip) and ``data-label`` /
``data-value`` attributes. Pages should also offer the numbers as a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

__all__ = ["bar_chart", "hbar_chart", "nice_ticks", "stacked_share_chart"]

_FONT = 12  # px in the chart's own coordinates
_MAX_X_LABELS = 10


def bar_chart(
    points: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    desc: str = "",
    tip: Callable[[str, float], str] | None = None,
    short_label: Callable[[str], str] | None = None,
    width: int = 760,
    height: int = 260,
) -> str:
    """A column per point (``(label, value)``), with a value axis from zero.

    Every point gets its column, zero included, so there are exactly
    ``len(points)`` ``rect.bar`` elements. ``tip(label, value)`` is the text of
    a column's tooltip; ``short_label`` shortens the labels written under the
    columns (at most ten, evenly spaced, are written).
    """
    tip = tip or _default_tip
    short_label = short_label or str
    left, right, top, bottom = 44, 12, 16, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max((v for _, v in points), default=0))
    top_value = ticks[-1]
    parts = _open(chart_id, title, desc, width, height)
    parts += _value_grid(ticks, left, width - right, top, plot_h)
    n = len(points)
    if n:
        step = plot_w / n
        bar_w = max(step * 0.72, 1.0)
        for i, (label, value) in enumerate(points):
            h = plot_h * value / top_value if top_value else 0.0
            x = left + i * step + (step - bar_w) / 2
            y = top + plot_h - h
            parts.append(
                f'<rect class="bar" x="{_n(x)}" y="{_n(y)}" width="{_n(bar_w)}" '
                f'height="{_n(h)}" data-label="{_e(label)}" data-value="{_n(value)}">'
                f"<title>{_e(tip(label, value))}</title></rect>"
            )
    parts += _x_labels([label for label, _ in points], left, plot_w, height - 10, short_label)
    return _close(parts, left, top + plot_h, width - right)


def _x_labels(
    labels: Sequence[str], left: float, plot_w: float, y: float, short: Callable[[str], str]
) -> list[str]:
    """Labels under the columns: at most ``_MAX_X_LABELS``, evenly spaced."""
    if not labels:
        return []
    step = plot_w / len(labels)
    every = max(1, math.ceil(len(labels) / _MAX_X_LABELS))
    return [
        f'<text class="label" x="{_n(left + i * step + step / 2)}" y="{_n(y)}" '
        f'text-anchor="middle">{_e(short(label))}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def _close(parts: list[str], left: float, base: float, right: float) -> str:
    parts.append(_axis_line(left, base, right, base))
    parts.append("</svg>")
    return "".join(parts)


def stacked_share_chart(
    rows: Sequence[tuple[str, Mapping[str, float]]],
    *,
    series: Sequence[tuple[str, str]],
    chart_id: str,
    title: str,
    desc: str = "",
    short_label: Callable[[str], str] | None = None,
    width: int = 760,
    height: int = 280,
) -> str:
    """A 100 % column per row (``(label, {key: count})``), one segment per series.

    ``series`` lists ``(key, name)`` bottom to top; the legend above the plot
    names each series with its share of the whole range. A row whose counts
    are all zero gets an outlined ``rect.empty`` instead of segments.
    """
    short_label = short_label or str
    left, right, top, bottom = 44, 12, 40, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = _open(chart_id, title, desc, width, height)
    totals = {key: sum(counts.get(key, 0) for _, counts in rows) for key, _ in series}
    grand = sum(totals.values())
    x = float(left)
    for key, name in series:
        share = totals[key] / grand if grand else 0.0
        text = f"{name} {_percent(share)}（{_n(totals[key])}）"
        parts.append(
            f'<rect class="seg seg-{_e(key)}" x="{_n(x)}" y="10" width="12" height="12"/>'
            f'<text class="legend" x="{_n(x + 17)}" y="21">{_e(text)}</text>'
        )
        x += 17 + _text_width(text) + 22
    parts += _value_grid([0, 0.25, 0.5, 0.75, 1.0], left, width - right, top, plot_h, _percent)
    n = len(rows)
    if n:
        step = plot_w / n
        bar_w = max(step * 0.72, 1.0)
        for i, (label, counts) in enumerate(rows):
            bx = left + i * step + (step - bar_w) / 2
            total = sum(counts.get(key, 0) for key, _ in series)
            if not total:
                parts.append(
                    f'<rect class="empty" x="{_n(bx)}" y="{top}" width="{_n(bar_w)}" '
                    f'height="{plot_h}" data-label="{_e(label)}" data-value="0">'
                    f"<title>{_e(label)}：没有提问</title></rect>"
                )
            else:
                y = float(top + plot_h)
                for key, name in series:
                    value = counts.get(key, 0)
                    h = plot_h * value / total
                    y -= h
                    parts.append(
                        f'<rect class="seg seg-{_e(key)}" x="{_n(bx)}" y="{_n(y)}" '
                        f'width="{_n(bar_w)}" height="{_n(h)}" data-label="{_e(label)}" '
                        f'data-series="{_e(key)}" data-value="{_n(value)}">'
                        f"<title>{_e(label)} {_e(name)}：{_n(value)}（{_percent(value / total)}）"
                        "</title></rect>"
                    )
    parts += _x_labels([label for label, _ in rows], left, plot_w, height - 10, short_label)
    return _close(parts, left, top + plot_h, width - right)


def hbar_chart(
    items: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    desc: str = "",
    max_value: float | None = None,
    value_text: Callable[[float], str] | None = None,
    width: int = 760,
    label_width: int = 330,
    row_height: int = 28,
) -> str:
    """A horizontal bar per item (``(label, value)``), top to bottom, labels on the left.

    Labels too long for ``label_width`` are cut with "…" (the tooltip keeps
    them whole); ``value_text`` writes the value after each bar; bars are
    scaled to ``max_value`` (default: the largest value).
    """
    value_text = value_text or _n
    top, bottom, right, value_room = 8, 8, 12, 76
    height = top + bottom + max(len(items), 1) * row_height
    parts = _open(chart_id, title, desc, width, height)
    scale_max = max_value if max_value is not None else max((v for _, v in items), default=0)
    plot_left = label_width + 8
    plot_w = width - plot_left - right - value_room
    parts.append(_axis_line(plot_left, top, plot_left, height - bottom))
    for i, (label, value) in enumerate(items):
        y = top + i * row_height
        w = plot_w * value / scale_max if scale_max else 0.0
        text = value_text(value)
        parts.append(
            f'<text class="label" x="{label_width}" y="{_n(y + row_height / 2 + 4)}" '
            f'text-anchor="end">{_e(_fit(label, label_width))}</text>'
            f'<rect class="bar" x="{plot_left}" y="{_n(y + 5)}" width="{_n(w)}" '
            f'height="{row_height - 10}" data-label="{_e(label)}" data-value="{_n(value)}">'
            f"<title>{_e(label)}：{_e(text)}</title></rect>"
            f'<text class="value" x="{_n(plot_left + w + 6)}" '
            f'y="{_n(y + row_height / 2 + 4)}">{_e(text)}</text>'
        )
    if not items:
        baseline = top + row_height / 2 + 4
        parts.append(f'<text class="label" x="{plot_left + 8}" y="{_n(baseline)}">暂无数据</text>')
    parts.append("</svg>")
    return "".join(parts)


def nice_ticks(maximum: float, *, count: int = 4) -> list[float]:
    """Round axis values from 0 up to at least ``maximum``: ``[0, 5, 10, 15, 20]`` for 17.

    Steps are 1, 2 or 5 times a power of ten, and at least 1 (counts are whole).
    """
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1)
    n = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _open(chart_id: str, title: str, desc: str, width: int, height: int) -> list[str]:
    cid = _e(chart_id)
    labelled = f"{cid}-title {cid}-desc" if desc else f"{cid}-title"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="{labelled}" focusable="false" '
        f'preserveAspectRatio="xMinYMin meet">',
        f'<title id="{cid}-title">{_e(title)}</title>',
    ]
    if desc:
        parts.append(f'<desc id="{cid}-desc">{_e(desc)}</desc>')
    return parts


def _value_grid(
    ticks: Sequence[float],
    x0: float,
    x1: float,
    top: float,
    plot_h: float,
    fmt: Callable[[float], str] | None = None,
) -> list[str]:
    fmt = fmt or _n
    top_value = ticks[-1] or 1
    parts = []
    for t in ticks:
        y = top + plot_h - plot_h * t / top_value
        parts.append(
            f'<line class="grid" x1="{_n(x0)}" y1="{_n(y)}" x2="{_n(x1)}" y2="{_n(y)}"/>'
            f'<text class="label" x="{_n(x0 - 6)}" y="{_n(y + 4)}" '
            f'text-anchor="end">{_e(fmt(t))}</text>'
        )
    return parts


def _axis_line(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line class="axis" x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}"/>'


def _default_tip(label: str, value: float) -> str:
    return f"{label}：{_n(value)}"


def _percent(share: float) -> str:
    """``0.6`` as ``60%``, ``1/3`` as ``33.3%``."""
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


def _n(value: float) -> str:
    """A number as SVG wants it: no exponent, at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _e(text: str) -> str:
    return escape(str(text), quote=True)


def _char_width(ch: str) -> float:
    # Chinese characters and full-width forms take a full em; Latin about half.
    return _FONT if ord(ch) > 0x2E80 else _FONT * 0.58


def _text_width(text: str) -> float:
    return sum(_char_width(ch) for ch in text)


def _fit(text: str, width: float) -> str:
    """Cut ``text`` with "…" so that it fits ``width``."""
    if _text_width(text) <= width:
        return text
    room = width - _FONT
    out = []
    for ch in text:
        room -= _char_width(ch)
        if room < 0:
            break
        out.append(ch)
    return "".join(out) + "…"
