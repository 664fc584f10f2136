"""bot.match.clerk: place names, addresses and request frames leave, the matter stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.match.text import TextPipeline


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> TextPipeline:
    return TextPipeline(
        dict_path=Path(__file__).parent / "data" / "mini_faq" / "dict.txt",
        cache_dir=tmp_path_factory.mktemp("jieba"),
        bank_texts=("小区里烧烤油烟扰民怎么办", "夜间施工噪音扰民向谁投诉"),
    )


def test_places_and_addresses_leave(pipeline: TextPipeline) -> None:
    text = pipeline.prepare("武昌区和平路58号3栋楼下烧烤店油烟扰民").text
    assert "油烟" in text and "扰民" in text
    for gone in ("武昌区", "和平路", "58", "3栋"):
        assert gone not in text


def test_request_frames_leave(pipeline: TextPipeline) -> None:
    text = pipeline.prepare("强烈要求有关部门尽快处理夜间施工噪音，迟迟得不到解决！").text
    assert "夜间施工" in text
    for gone in ("强烈", "有关部门", "尽快", "迟迟", "得不到"):
        assert gone not in text


def test_bank_words_stay(pipeline: TextPipeline) -> None:
    assert "小区" in pipeline.prepare("幸福家园小区里烧烤油烟扰民").text


def test_clerk_can_be_turned_off(tmp_path: Path) -> None:
    plain = TextPipeline(cache_dir=tmp_path, clerk=False)
    assert "武昌区" in plain.prepare("武昌区油烟扰民").text


@pytest.mark.parametrize(
    "odd",
    ["", "   ", "\x00\x1b[31m", "🙂" * 20, "城" * 10_000, "a,b;c。d！", "ǅ𝔘 mixed 混合 текст"],
)
def test_odd_input_never_raises(pipeline: TextPipeline, odd: str) -> None:
    p = pipeline.prepare(odd)
    assert len(p.text) <= 500


def test_an_address_alone_is_kept_whole(pipeline: TextPipeline) -> None:
    """Nothing would be left: the text is matched as written, never emptied."""
    assert pipeline.prepare("武昌区和平路58号").text != ""
