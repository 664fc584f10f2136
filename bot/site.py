"""Site configuration: the city-specific facts behind the {placeholders} of the bank."""

from __future__ import annotations

import re

# Defaults for a bank folder that ships no site.yaml. A real deployment sets
# every one of these in faq/site.yaml.
__all__ = ["DEFAULT_SITE", "placeholders", "render"]


DEFAULT_SITE: dict[str, str] = {
    "city_name": "本市",
    "bureau_name": "城市管理行政执法局",
    "bot_name": "智能小城",
    "hotline": "12345",
    "gov_app_name": "本市政务服务App",
    "website_url": "/",
    "message_board_url": "/",
    "disclosure_url": "/",
    "penalty_disclosure_url": "/",
    "fine_payment_url": "/",
    "policy_url": "/",
    "office_address": "请见本局网站“机构概况”栏目",
    "office_hours": "工作日办公时间（以本局公告为准）",
    "disclosure_office": "本局政府信息公开受理窗口",
}

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def placeholders(text: str) -> list[str]:
    """Return the placeholder names used in ``text`` (``{{``/``}}`` are literal braces)."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) is not None]


def render(text: str, site: dict[str, str]) -> str:
    """Fill ``{name}`` placeholders from ``site``; unknown names are left as written."""

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return site.get(m.group(1), token)

    return _PLACEHOLDER.sub(sub, text)
