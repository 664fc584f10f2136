"""Personal data is masked exactly, and ordinary numbers are kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.querylog.masking import TOKENS, mask

_CORPUS = yaml.safe_load(
    (Path(__file__).parent / "data" / "masking_corpus.yaml").read_text(encoding="utf-8")
)
MASKED = [(case["in"], case["out"]) for case in _CORPUS["masked"]]
KEPT = list(_CORPUS["kept"])


def test_corpus_is_large_and_varied() -> None:
    assert len(MASKED) >= 50
    assert len(KEPT) >= 20
    outputs = "".join(out for _, out in MASKED)
    for token in TOKENS.values():
        assert outputs.count(token) >= 5, token
    inputs = "".join(text for text, _ in MASKED)
    assert "　" in inputs and "－" in inputs and "１" in inputs  # full-width forms
    assert " " in inputs and "-" in inputs


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masks_personal_data(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_keeps_ordinary_numbers(text: str) -> None:
    assert mask(text) == text


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masking_is_idempotent(text: str, expected: str) -> None:
    assert mask(mask(text)) == expected


def test_empty_text() -> None:
    assert mask("") == ""


def test_keeps_the_rest_of_the_text_as_typed() -> None:
    # Full-width letters and punctuation outside the masked span are not normalised.
    assert mask("ＡＢＣ，手机１３８１２３４５６７８！") == "ＡＢＣ，手机[手机号]！"


def test_long_digit_runs_are_not_partly_masked() -> None:
    # 20 digits: not a card, and no 11-digit mobile hidden inside it.
    assert mask("流水号13812345678123456789") == "流水号13812345678123456789"
