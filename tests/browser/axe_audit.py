"""The accessibility audit the console's browser tests share: axe-core run in the page."""

from __future__ import annotations

from playwright.sync_api import Page

__all__ = ["run_axe"]


def run_axe(page: Page) -> dict:
    """axe's violations and undecided results; contrast checks axe leaves undecided for
    chart text are set aside in ``chart_text`` (the nodes' text and colours)."""
    return page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                resultTypes: ['violations', 'incomplete'], elementRef: true});
            const node = n => ({target: n.target, summary: n.failureSummary,
                                inChart: !!n.element.closest('svg.chart')});
            const brief = list => list.map(v => ({
                id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(node)}));
            return {violations: brief(r.violations), incomplete: brief(r.incomplete),
                    passes: r.passes.length};
        }"""
    )
