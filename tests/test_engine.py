"""bot.engine / bot.matcher / bot.hints on the small fixture bank."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot import Bot
from bot.match.matcher import Candidate, Evidence, Matcher, MatcherConfig

CONTRACT_KEYS = {"q", "type", "score", "faq", "suggestions", "candidates", "message", "channels"}


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Bot:
    faq = Path(__file__).parent / "data" / "mini_faq"
    return Bot.load(faq, cache_dir=tmp_path_factory.mktemp("jieba"))


@pytest.mark.parametrize(
    ("question", "faq_id"),
    [
        ("违章搭建怎么举报", "building-report"),  # an alternate, verbatim
        ("违张搭建咋举报", "building-report"),  # homophone typo
        ("違章建築怎麼舉報", "building-report"),  # traditional characters
        ("我家楼下有人搭违建，找谁举报", "building-report"),
        ("违建会不会被强拆", "building-demolish"),
        ("夜市晚上太吵了", "night-market"),
        ("门口有人摆地摊", "vendor-report"),
        ("你好", "smalltalk-hello"),
    ],
)
def test_answers(bot: Bot, question: str, faq_id: str) -> None:
    reply = bot.ask(question)
    assert (reply.type, reply.faq_id) == ("answer", faq_id)
    assert 0.0 <= reply.score <= 1.0


def test_answer_follows_the_contract(bot: Bot) -> None:
    data = bot.ask("违建怎么举报").to_dict()
    assert set(data) == CONTRACT_KEYS
    assert data["faq"] == {
        "id": "building-report",
        "question": "如何举报违法建筑？",
        "category": "违法建筑",
        "answer": "可拨打12345热线，或在网上留言栏目反映。",
        "basis": ["《中华人民共和国城乡规划法》"],
        "links": [{"title": "网上留言", "url": "https://example.test/liuyan"}],
    }
    assert data["suggestions"] == [
        {"id": "building-demolish", "question": "违法建筑会被强制拆除吗？"}
    ]
    assert data["candidates"][0]["id"] == "building-report"
    assert len(data["candidates"]) <= 5


def test_outside_the_remit_falls_back_with_the_route(bot: Bot) -> None:
    reply = bot.ask("社保怎么交")
    assert reply.type == "fallback" and reply.faq is None
    assert "人力资源和社会保障部门" in reply.message
    assert {"title": "拨打12345政务服务便民热线", "url": "tel:12345"} in reply.channels


def test_unrelated_question_falls_back_with_topics(bot: Bot) -> None:
    reply = bot.ask("明天会下雨吗")
    assert reply.type == "fallback"
    assert "违法建筑、市容秩序" in reply.message
    assert reply.channels[1] == {"title": "网上留言", "url": "https://example.test/liuyan"}


def test_fallback_hints_come_from_keywords(bot: Bot) -> None:
    hint = bot.hints.for_question(bot.pipeline.prepare("占道经营罚多少钱，能分期吗"), [])
    assert [bot.bank.faqs[p].id for p in hint.faq_positions] == ["vendor-report", "night-market"]
    assert hint.keywords == ("占道经营",)


@pytest.mark.parametrize(
    "odd",
    ["", "   ", "\x00\x1b[31m", "🙂" * 20, "城" * 10_000, "违建\n\t举报", "<img src=x>", "ǅ𝔘"],
)
def test_odd_questions_never_raise(bot: Bot, odd: str) -> None:
    reply = bot.ask(odd)
    assert reply.type in {"answer", "clarify", "fallback"}
    assert len(reply.q) <= 500 and "\x00" not in reply.q


def test_empty_question_asks_for_one(bot: Bot) -> None:
    reply = bot.ask("  ")
    assert (reply.type, reply.message) == (
        "fallback",
        "请输入您想咨询的问题，例如“违章搭建怎么举报”。",
    )


def test_answer_for_a_chosen_faq(bot: Bot) -> None:
    reply = bot.answer("night-market")
    assert reply is not None and (reply.type, reply.score, reply.q) == (
        "answer",
        1.0,
        "夜排档噪声扰民怎么办？",
    )
    assert bot.answer("no-such-faq") is None


def test_suggest_hot_and_faq_json(bot: Bot) -> None:
    assert bot.suggest("违法")[0]["id"] in {"building-report", "building-demolish"}
    assert bot.suggest("") == []
    assert all(s["id"] != "smalltalk-hello" for s in bot.suggest("你好"))
    hot = bot.hot()
    assert [q["id"] for q in hot["questions"]] == ["building-report", "vendor-report"]
    assert hot["greeting"].startswith("您好！我是智能小城，测试市城市管理行政执法局")
    assert bot.faq_json("building-demolish")["related"] == []
    assert bot.faq_json("nope") is None


def cand(pos: int, raw: float) -> Candidate:
    return Candidate(pos, raw, raw, raw, raw)


def test_decide_answer_clarify_fallback(bot: Bot) -> None:
    m = Matcher(bot.index, MatcherConfig(answer=0.6, clarify=0.3, clarify_window=0.1))
    p = bot.pipeline.prepare("违法建筑")
    clear = m.decide(p, [cand(0, 0.9), cand(1, 0.3)])
    assert clear.type == "answer"
    close = m.decide(p, [cand(0, 0.6), cand(1, 0.58), cand(2, 0.55), cand(3, 0.2)])
    assert close.type == "clarify" and [c.pos for c in close.choices] == [0, 1, 2]
    assert m.decide(p, [cand(0, 0.1)]).type == "fallback"
    assert m.decide(p, []).type == "fallback"
    assert m.decide(p, [cand(0, 0.85), cand(1, 0.1)], outside=True).type == "fallback"
    assert m.decide(p, [cand(0, 0.95), cand(1, 0.1)], outside=True).type == "answer"


def test_a_tie_is_offered_however_sure_the_best_is(bot: Bot) -> None:
    m = Matcher(bot.index, MatcherConfig(answer=0.6, clarify=0.3, tie_window=0.01))
    p = bot.pipeline.prepare("罚款怎么交")
    assert len(p.words) > 1
    tie = m.decide(p, [cand(0, 0.95), cand(1, 0.945), cand(2, 0.5)])
    assert m.calibrate(m.evidence(p, tie.candidates)) >= 0.6  # sure enough to answer alone
    assert tie.type == "clarify" and [c.pos for c in tie.choices] == [0, 1]
    assert m.decide(p, [cand(0, 0.95), cand(1, 0.93), cand(2, 0.5)]).type == "answer"
    # One word names a subject: the clarify window (default 0.12) is its tie window.
    bare = bot.pipeline.prepare("罚款")
    assert len(bare.words) == 1
    assert m.decide(bare, [cand(0, 0.95), cand(1, 0.93), cand(2, 0.5)]).type == "clarify"
    assert m.decide(bare, [cand(0, 0.95), cand(1, 0.8), cand(2, 0.5)]).type == "answer"


def test_evidence_coverage_and_unknown_words(bot: Bot) -> None:
    m = bot.matcher
    p = bot.pipeline.prepare("如何举报违法建筑")
    ev = m.evidence(p, m.rank(p))
    assert ev.coverage == pytest.approx(1.0) and ev.unknown == 0.0
    p = bot.pipeline.prepare("公积金怎么举报")
    ev = m.evidence(p, m.rank(p))
    assert ev.unknown == pytest.approx(0.5)  # 公积金 is no bank word; 举报 is
    assert 0.0 < ev.coverage < 1.0
    # jieba keeps 夜市场 whole: no bank word, but built on one (夜市), so not unknown.
    p = bot.pipeline.prepare("夜市场怎么举报")
    assert p.words == ("夜市场", "举报")
    assert m.evidence(p, m.rank(p)).unknown == 0.0


def test_calibrated_score_rises_with_each_kind_of_evidence(bot: Bot) -> None:
    config = MatcherConfig(
        coverage_coef=2.0, unknown_coef=-2.0, votes_coef=1.0, coverage_margin_coef=1.0
    )
    m = Matcher(bot.index, config)
    base = Evidence(0.5, 0.1, 0.5, 0.5, 0.5, 0.1)
    assert m.calibrate(base) < m.calibrate(Evidence(0.6, 0.1, 0.5, 0.5, 0.5, 0.1))
    assert m.calibrate(base) < m.calibrate(Evidence(0.5, 0.2, 0.5, 0.5, 0.5, 0.1))
    assert m.calibrate(base) < m.calibrate(Evidence(0.5, 0.1, 0.9, 0.5, 0.5, 0.1))
    assert m.calibrate(base) < m.calibrate(Evidence(0.5, 0.1, 0.5, 0.0, 0.5, 0.1))
    assert m.calibrate(base) < m.calibrate(Evidence(0.5, 0.1, 0.5, 0.5, 0.9, 0.1))
    assert m.calibrate(base) < m.calibrate(Evidence(0.5, 0.1, 0.5, 0.5, 0.5, 0.4)) <= 1.0


def test_votes_count_the_best_rows_of_each_faq(bot: Bot) -> None:
    ranked = bot.matcher.rank(bot.pipeline.prepare("违建怎么举报"))
    assert bot.bank.faqs[ranked[0].pos].id == "building-report"
    assert ranked[0].votes == max(c.votes for c in ranked) > 0
    assert sum(c.votes for c in ranked) == pytest.approx(1.0)


def test_thresholds_come_from_the_bank(faq_dir: Path, jieba_cache: Path) -> None:
    (faq_dir / "thresholds.yaml").write_text("answer: 0.999\nclarify: 0.998\nk: 3\n")
    bot = Bot.load(faq_dir, cache_dir=jieba_cache)
    assert (bot.matcher.config.answer, bot.matcher.config.k) == (0.999, 3)
    assert bot.ask("我家楼下有人搭违建").type == "fallback"


_FEES = """category: 收费
faqs:
  - id: fee-amount
    question: 垃圾清运费交多少钱
    answer: 按标准收取。
  - id: fee-where
    question: 垃圾清运费去哪里交
    answer: 到街道办交。
  - id: fee-refuse
    question: 不交垃圾清运费会怎样
    answer: 会被催缴。
"""


@pytest.fixture(scope="module")
def fee_bot(tmp_path_factory: pytest.TempPathFactory) -> Bot:
    faq = tmp_path_factory.mktemp("fees") / "faq"
    shutil.copytree(Path(__file__).parent / "data" / "mini_faq", faq)
    (faq / "fees.yaml").write_text(_FEES, encoding="utf-8")
    return Bot.load(faq, cache_dir=tmp_path_factory.mktemp("jieba"))


def _raws(bot: Bot, q: str, **config: float) -> dict[str, float]:
    base = MatcherConfig(kind_penalty=0.0, negation_penalty=0.0)
    m = Matcher(bot.index, replace(base, **config))
    return {bot.bank.faqs[c.pos].id: c.raw for c in m.rank(bot.pipeline.prepare(q))}


def test_another_question_kind_lowers_a_candidate(fee_bot: Bot) -> None:
    off = _raws(fee_bot, "垃圾清运费在哪里交")
    on = _raws(fee_bot, "垃圾清运费在哪里交", kind_penalty=0.5)
    assert on["fee-amount"] == pytest.approx(off["fee-amount"] - 0.5)  # 多少 against 哪里
    assert on["fee-where"] == pytest.approx(off["fee-where"])  # 哪里 against 哪里
    # A question that asks nothing in particular is no mismatch.
    assert _raws(fee_bot, "垃圾清运费", kind_penalty=0.5) == _raws(fee_bot, "垃圾清运费")


def test_a_negation_mismatch_lowers_a_candidate(fee_bot: Bot) -> None:
    off = _raws(fee_bot, "垃圾清运费不交会怎样")
    on = _raws(fee_bot, "垃圾清运费不交会怎样", negation_penalty=0.5)
    assert on["fee-amount"] == pytest.approx(off["fee-amount"] - 0.5)
    assert on["fee-refuse"] == pytest.approx(off["fee-refuse"])  # both negated
    # 能不能 asks a question; it negates nothing.
    q = "垃圾清运费能不能少交"
    assert _raws(fee_bot, q, negation_penalty=0.5)["fee-amount"] == pytest.approx(
        _raws(fee_bot, q)["fee-amount"]
    )


def test_bm25_is_one_for_a_wording_and_less_for_others(fee_bot: Bot) -> None:
    ranked = fee_bot.matcher.rank(fee_bot.pipeline.prepare("垃圾清运费去哪里交"))
    by_id = {fee_bot.bank.faqs[c.pos].id: c for c in ranked}
    assert by_id["fee-where"].bm25 == pytest.approx(1.0)
    assert 0.0 < by_id["fee-amount"].bm25 < 1.0
    assert ranked[0] is by_id["fee-where"]


def test_a_single_grazed_wording_does_not_get_every_vote(bot: Bot) -> None:
    # Only one wording of the small bank shares anything with this question (如何).
    ranked = bot.matcher.rank(bot.pipeline.prepare("今天天气如何"))
    assert len(ranked) == 1
    assert ranked[0].votes <= 0.2
    assert bot.ask("今天天气如何").type != "answer"
