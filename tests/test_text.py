"""bot.text: normalisation and the one prepare() used for bank and queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.match.text import TextPipeline, normalize


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> TextPipeline:
    return TextPipeline(
        dict_path=Path(__file__).parent / "data" / "mini_faq" / "dict.txt",
        synonyms={"违章搭建": "违法建筑", "违建": "违法建筑", "路边摊": "流动摊贩"},
        cache_dir=tmp_path_factory.mktemp("jieba"),
        extra_words=("城管", "双随机一公开", "停机"),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("违章搭建怎么举报？", "违章搭建怎么举报"),
        ("ＡＢＣ１２３", "abc123"),  # full width → half width, case folded
        ("違章建築", "违章建筑"),  # traditional → simplified
        ("  hello   world ", "hello world"),
        ("城管😀！！", "城管"),
        ("a\x00b\x07c", "a b c"),
        ("", ""),
        ("🙂🙂🙂", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_caps_length() -> None:
    assert len(normalize("城" * 10_000)) == 500


def test_domain_words_stay_whole(pipeline: TextPipeline) -> None:
    assert "夜排档" in pipeline.prepare("夜排档太吵了").words
    assert "双随机一公开" in pipeline.prepare("什么是双随机一公开").words


def test_synonyms_map_to_the_canonical_word(pipeline: TextPipeline) -> None:
    assert pipeline.prepare("违章搭建").text == pipeline.prepare("违建").text == "违法建筑"
    assert pipeline.prepare("路边摊").words == ("流动摊贩",)


def test_homophone_typo_is_fixed(pipeline: TextPipeline) -> None:
    assert pipeline.prepare("违张搭建咋整").text.startswith("违法建筑")
    assert pipeline.fix_homophones("站道经营") == "占道经营"


def test_homophone_fix_leaves_real_words_alone(pipeline: TextPipeline) -> None:
    assert pipeline.fix_homophones("停几天") == "停几天"  # 停机 sounds alike, but 几天 is a word
    assert pipeline.fix_homophones("城关") == "城关"  # a word (a place name) in its own right


def test_a_stretch_that_shares_too_few_characters_is_left_alone(pipeline: TextPipeline) -> None:
    assert pipeline.fix_homophones("成冠") == "成冠"  # cheng guan, but no character agrees


def test_stop_words_are_dropped_from_words_only(pipeline: TextPipeline) -> None:
    p = pipeline.prepare("请问我怎么举报")
    assert p.words == ("举报",)
    assert p.text == "请问我怎么举报"


def test_pinyin_is_toneless_one_syllable_per_character(pipeline: TextPipeline) -> None:
    assert pipeline.prepare("城管").pinyin == ("cheng", "guan")


@pytest.mark.parametrize("odd", ["", "   ", "\x00\x01", "🙂" * 50, "a" * 10_000, "ǅ𝔘ⅻ"])
def test_odd_input_never_raises(pipeline: TextPipeline, odd: str) -> None:
    p = pipeline.prepare(odd)
    assert len(p.text) <= 500
