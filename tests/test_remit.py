"""bot.match.remit: the learned out-of-remit model, its file and its use by the bot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot import Bot
from bot.match.remit import N_BUCKETS, REMIT_FILE, Remit, buckets
from bot.match.text import normalize
from bot.quality.evaluate import FALLBACK, Labelled
from bot.quality.fit import keyword_threshold
from bot.quality.remit_fit import MESSAGE_WEIGHTS, ROUTED_IN_COST, THRESHOLDS, choose

INSIDE = ["违章建筑怎么举报", "夜间施工噪音扰民", "占道经营摆摊", "油烟扰民找谁", "乱倒建筑垃圾"]
OUTSIDE = ["社保怎么补缴", "公积金提取条件", "驾驶证扣分查询", "医保报销比例", "户口迁移手续"]


def test_fit_separates_the_classes() -> None:
    model = Remit.fit(INSIDE * 3, OUTSIDE * 3, c=10.0)
    assert model.fitted
    assert model.outside("公积金怎么提取") > 0.5 > model.outside("违章建筑举报电话")


def test_save_load_round_trip_holds_no_text(tmp_path: Path) -> None:
    model = Remit.fit(INSIDE, OUTSIDE, c=10.0)
    path = tmp_path / "remit.json"
    model.save(path)
    raw = path.read_text(encoding="utf-8")
    assert "社保" not in raw and "违章" not in raw
    again = Remit.load(path)
    assert again.weights == model.weights
    assert again.outside("社保补缴") == model.outside("社保补缴")


def test_missing_or_foreign_file_gives_an_unfitted_model(tmp_path: Path) -> None:
    assert not Remit.load(tmp_path / "none.json").fitted
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"n_buckets": N_BUCKETS + 1, "weights": {"1": 1}}))
    assert not Remit.load(foreign).fitted
    foreign.write_text("not json")
    assert not Remit.load(foreign).fitted
    assert Remit().outside("社保") == 0.0


def test_buckets_of_odd_text() -> None:
    assert buckets("") == {}
    assert buckets("   ") == {}
    assert buckets(normalize("🙂🙂")) == {}  # the model reads normalised text
    long = buckets("城" * 10_000 + "abc")
    assert all(0 <= b < N_BUCKETS for b in long)
    assert long == buckets("城" * 500)  # cut as a prepared text is


def test_weights_decide_a_text_found_in_both_classes() -> None:
    both = "菜市场门口"
    inside, outside = [*INSIDE * 3, both], [*OUTSIDE * 3, both]
    n_in, n = len(inside), len(inside) + len(outside)
    inside_heavy = [20.0 if i == n_in - 1 else 1.0 for i in range(n)]
    outside_heavy = [20.0 if i == n - 1 else 1.0 for i in range(n)]
    assert Remit.fit(inside, outside, c=10.0, weights=inside_heavy).outside(both) < 0.5
    assert Remit.fit(inside, outside, c=10.0, weights=outside_heavy).outside(both) > 0.5
    with pytest.raises(ValueError, match="weights"):
        Remit.fit(inside, outside, weights=[1.0])


def test_threshold_is_saved_and_loaded(tmp_path: Path) -> None:
    model = Remit.fit(INSIDE, OUTSIDE, c=10.0, threshold=0.65)
    model.save(tmp_path / "remit.json")
    assert Remit.load(tmp_path / "remit.json").threshold == 0.65


def test_choose_trades_routed_messages_by_the_stated_rule() -> None:
    wordings = [*INSIDE * 4]
    messages = [(t, False) for t in OUTSIDE * 4] + [(t, True) for t in INSIDE * 2]
    weight, threshold, curve = choose(wordings, messages, c=10.0)
    assert weight in MESSAGE_WEIGHTS and threshold in THRESHOLDS
    assert set(curve) == {(w, t) for w in MESSAGE_WEIGHTS for t in THRESHOLDS}
    score = {k: r_out - ROUTED_IN_COST * r_in for k, (r_in, r_out) in curve.items()}
    assert score[(weight, threshold)] == max(score.values())


def test_the_bot_reads_a_message_without_its_places(tmp_path: Path) -> None:
    """Places only ever seen in other agencies' messages do not send ours away."""
    faq = tmp_path / "faq"
    shutil.copytree(Path(__file__).parent / "data" / "mini_faq", faq)
    places = ["洛阳市育才路", "沈阳市和平区", "洛阳市西工区", "沈阳市皇姑区"]
    outside = [f"{p}{t}" for p in places for t in OUTSIDE]
    Remit.fit(INSIDE * 4, outside, c=10.0, threshold=0.5).save(faq / REMIT_FILE)
    bot = Bot.load(faq, cache_dir=tmp_path / "jieba")
    message = "洛阳市育才路富源小区门口有人摆地摊"
    assert bot.remit is not None and bot.remit.outside(message) >= 0.5  # raw text: routed
    assert not bot.is_outside(message, bot.pipeline.prepare(message))
    assert bot.ask(message).faq_id == "vendor-report"
    other = "洛阳市育才路社保怎么补缴"
    assert bot.is_outside(other, bot.pipeline.prepare(other))


def test_a_keyword_routes_only_what_the_model_is_less_sure_of_than_the_fit_halves(
    tmp_path: Path,
) -> None:
    """remit_keyword: half the lowest probability of the fit halves' out-of-remit
    questions with a keyword; under it a keyword (社保 here) no longer routes."""
    faq = tmp_path / "faq"
    shutil.copytree(Path(__file__).parent / "data" / "mini_faq", faq)
    inside = "社保局门口摆摊"  # short: the clerk does not read it
    Remit.fit([*INSIDE, inside] * 4, OUTSIDE * 2, c=10.0, threshold=0.99).save(faq / REMIT_FILE)
    bot = Bot.load(faq, cache_dir=tmp_path / "jieba")
    assert bot.remit is not None and bot.remit_keyword == 0.0
    routed = "社保卡丢了怎么补办"
    read = {q: bot.pipeline.prepare(q) for q in (routed, inside)}
    probs = {q: bot.remit.outside(p.text, p.words) for q, p in read.items()}
    assert probs[inside] < probs[routed] / 2 and probs[routed] < bot.remit_outside
    items = [
        Labelled(routed, FALLBACK, 0),
        Labelled(inside, "vendor-report", 0),  # in the remit: never sets the threshold
        Labelled("天气怎么样", FALLBACK, 0),  # no keyword
    ]
    threshold = keyword_threshold(bot, [items])
    assert threshold == pytest.approx(probs[routed] / 2, abs=1e-4)
    assert all(bot.is_outside(q, bot.pipeline.prepare(q)) for q in (routed, inside))
    bot.remit_keyword = threshold
    assert bot.is_outside(routed, bot.pipeline.prepare(routed))
    assert not bot.is_outside(inside, bot.pipeline.prepare(inside))
    assert keyword_threshold(bot, [[items[1]]]) == 0.0  # nothing out of the remit to go by


def test_words_are_features_apart_from_the_characters() -> None:
    chars = buckets("违章建筑")
    both = buckets("违章建筑", ["违章", "建筑"])
    assert set(chars) < set(both) and len(both) == len(chars) + 2


def test_a_keyword_alone_does_not_send_away_what_the_content_would_answer(
    tmp_path: Path,
) -> None:
    """Routed only by a keyword (社保), a question whose content matches an entry well is
    offered that entry; one whose content matches nothing is still sent away."""
    faq = tmp_path / "faq"
    shutil.copytree(Path(__file__).parent / "data" / "mini_faq", faq)
    Remit.fit(INSIDE * 4, OUTSIDE * 2, c=10.0, threshold=0.99).save(faq / REMIT_FILE)
    bot = Bot.load(faq, cache_dir=tmp_path / "jieba")
    ours, theirs = "社保局门口小摊贩占道", "社保卡丢了怎么补办"  # short: the clerk leaves 社保 in
    for q in (ours, theirs):
        assert bot.routing(q, bot.pipeline.prepare(q)) == "keyword"
    content = bot.matcher.decide(p := bot.pipeline.prepare(ours), bot.matcher.rank(p))
    assert content.type == "answer"
    reply = bot.ask(ours)
    assert reply.type == "clarify" and reply.suggestions[0]["id"] == "vendor-report"
    other = bot.ask(theirs)
    assert other.type == "fallback" and not other.suggestions and "不属于" in other.message
