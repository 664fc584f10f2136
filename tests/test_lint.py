"""Staff lint findings that need a bank of their own."""

from __future__ import annotations

from pathlib import Path

from bot.quality.lint import lint


def test_same_wording_in_two_entries_is_reported(faq_dir: Path, tmp_path: Path) -> None:
    street = faq_dir / "street.yaml"
    # 地摊 is a synonym of 流动摊贩, so this reads like vendor-report's 小摊贩占道.
    text = street.read_text(encoding="utf-8").replace(
        "[夜市太吵了, 烧烤摊晚上吵, 夜排档扰民]", "[夜市太吵了, 烧烤摊晚上吵, 夜排档扰民, 地摊占道]"
    )
    street.write_text(text, encoding="utf-8")
    _, warnings = lint(faq_dir, cache_dir=tmp_path)
    same = [w for w in warnings if "reads the same" in w]
    assert same == [
        f"{faq_dir / 'street.yaml'}:8: entry 'night-market': '地摊占道' reads the same as "
        "'小摊贩占道' of entry 'vendor-report' (as '流动摊贩占道'); reword one of them"
    ]


def test_distinct_wordings_are_not_reported(faq_dir: Path, tmp_path: Path) -> None:
    _, warnings = lint(faq_dir, cache_dir=tmp_path)
    assert not [w for w in warnings if "reads the same" in w]
