"""bot.match.followup and Bot.ask(context=...) on the shipped bank and tests/data/followups.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import Bot
from bot.bank import SMALLTALK
from bot.match.followup import is_marked
from bot.quality.evaluate import split_of

ROOT = Path(__file__).resolve().parent.parent
PAIRS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "followups.yaml").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Bot:
    return Bot.load(ROOT / "faq", cache_dir=tmp_path_factory.mktemp("jieba"))


def _answered(bot: Bot, q: str, context: str | None = None) -> str | None:
    reply = bot.ask(q, context=context)
    return reply.faq_id if reply.type == "answer" else None


@pytest.mark.parametrize(
    ("prev", "q", "faq_id"),
    [
        ("vendor-report", "罚多少", "vendor-consequence"),  # alone: the general fine standard
        ("vendor-report", "垃圾分类怎么分", "sort-categories"),  # another topic, as if alone
        ("vendor-report", "好的谢谢你", "smalltalk-thanks"),  # smalltalk is never replaced
        ("green-tree-danger", "找谁", "green-tree-danger"),  # alone: street lights
        ("disclosure-apply-how", "申请书写什么", "disclosure-apply-materials"),  # alone: clarify
        ("vendor-report", "那广场舞音乐太吵谁来管", "noise-square-dance"),  # 那…, still a switch
        # a related entry (follow-up prompt) the previous topic makes the reading of
        ("vendor-report", "那罚多少钱？", "vendor-consequence"),  # alone: the fine standard
        ("channel-anonymous", "那举报人信息会泄露吗", "channel-confidential"),
        # a turn with its own topic is not sent back to the answer just read
        ("green-streetlight", "那路上积水了找谁", "waterlogging"),
        ("fume-restaurant", "那工地晚上施工太吵呢", "noise-night-construction"),
    ],
)
def test_fixed_pairs(bot: Bot, prev: str, q: str, faq_id: str) -> None:
    assert _answered(bot, q, prev) == faq_id


def test_context_changes_what_a_thin_turn_means(bot: Bot) -> None:
    assert _answered(bot, "罚多少") == "penalty-discretion-standard"
    assert _answered(bot, "罚多少", "vendor-report") == "vendor-consequence"


@pytest.mark.parametrize("context", [None, "no-such-faq", "", 42, ["vendor-report"]])
@pytest.mark.parametrize("q", ["罚多少", "那周末呢", "垃圾分类怎么分", "", "🙂🙂"])
def test_unknown_or_no_context_is_the_reply_alone(bot: Bot, q: str, context: Any) -> None:
    assert bot.ask(q, context=context).to_dict() == bot.ask(q).to_dict()


def test_reply_with_context_keeps_the_contract(bot: Bot) -> None:
    data = bot.ask("能分期吗", context="penalty-fine-payment").to_dict()
    assert set(data) == {
        "q",
        "type",
        "score",
        "faq",
        "suggestions",
        "candidates",
        "message",
        "channels",
    }
    assert data["q"] == "能分期吗"
    assert data["faq"]["id"] == "penalty-installment"
    assert 0.0 <= data["score"] <= 1.0


def _count_ranks(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    rank = bot.matcher.rank

    def counted(p: Any) -> Any:
        calls.append(1)
        return rank(p)

    monkeypatch.setattr(bot.matcher, "rank", counted)
    return calls


def test_a_full_question_costs_no_extra_search(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_ranks(bot, monkeypatch)
    bot.ask("小区门口共享单车堆成山没人管", context="vendor-report")
    assert len(calls) == 1


def test_an_elliptic_turn_costs_one_extra_search(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_ranks(bot, monkeypatch)
    bot.ask("那周末呢", context="noise-renovation")
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("text", "marked"),
    [
        ("那罚多少钱？", True),
        ("如果是居民楼呢", True),
        ("要是不拆", True),
        ("还有闯红灯的", True),
        ("夜市呢？", True),
        ("另外，车轮带泥", True),
        ("垃圾分类怎么分", False),
        ("哪里能摆摊", False),  # 哪, not 那
        ("呢子大衣能回收吗", False),
    ],
)
def test_is_marked(text: str, marked: bool) -> None:
    assert is_marked(text) is marked


# --- the whole set -------------------------------------------------------------------


def test_the_set_covers_the_bank(bot: Bot) -> None:
    ids = {f.id for f in bot.bank.faqs}
    assert len(PAIRS) >= 70
    assert sum(p["kind"] == "switch" for p in PAIRS) >= 20
    assert {p["kind"] for p in PAIRS} == {"followup", "switch"}
    assert all(p["prev"] in ids and p["id"] in ids for p in PAIRS)
    used = {bot.bank.faqs[bot._pos[p[k]]].category for p in PAIRS for k in ("prev", "id")}
    assert used == set(bot.bank.categories)
    assert len({p["q"] for p in PAIRS}) == len(PAIRS)
    assert {split_of(p["q"]) for p in PAIRS} == {"fit", "test"}


def test_held_out_half(bot: Bot) -> None:
    """On the test half (never tuned on): context helps, stays above 80 %, pulls no switch."""
    test = [p for p in PAIRS if split_of(p["q"]) == "test"]
    with_context = [_answered(bot, p["q"], p["prev"]) for p in test]
    alone = [_answered(bot, p["q"]) for p in test]
    right = sum(got == p["id"] for got, p in zip(with_context, test, strict=True))
    right_alone = sum(got == p["id"] for got, p in zip(alone, test, strict=True))
    assert right > right_alone
    assert right >= 0.80 * len(test)
    for got, p in zip(with_context, test, strict=True):
        if p["kind"] == "switch" and got != p["id"]:
            prev = bot.bank.faqs[bot._pos[p["prev"]]]
            assert got not in {prev.id, *prev.related}, p["q"]


def test_switches_are_answered_as_if_alone(bot: Bot) -> None:
    """A switch answered alone keeps that reply; one not answered alone is never pulled back."""
    for p in PAIRS:
        if p["kind"] != "switch":
            continue
        alone, with_context = bot.ask(p["q"]), bot.ask(p["q"], context=p["prev"])
        if alone.type == "answer":
            assert with_context.to_dict() == alone.to_dict(), p
        else:
            prev = bot.bank.faqs[bot._pos[p["prev"]]]
            assert with_context.faq_id not in {prev.id, *prev.related}, p


def test_smalltalk_answers_stay(bot: Bot) -> None:
    for faq in bot.bank.faqs:
        if faq.category == SMALLTALK:
            assert _answered(bot, faq.question, "vendor-report") == faq.id
