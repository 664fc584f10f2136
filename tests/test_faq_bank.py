"""The shipped bank in faq/: complete entries, known placeholders, 100% self-retrieval."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot import Bot, load_bank
from bot.quality.evaluate import FALLBACK, load_labelled, self_retrieval
from bot.site import placeholders

ROOT = Path(__file__).resolve().parent.parent
FAQ = ROOT / "faq"
DEV = Path(__file__).parent / "data" / "dev_questions.yaml"
SMALLTALK = "闲聊"
# City-specific facts belong in faq/site.yaml, never in an answer.
PHONE = re.compile(r"(?<!\d)(?!12345(?!\d))(\d{3,4}-?\d{7,8}|1\d{10}|\d{5,})(?!\d)")


@pytest.fixture(scope="module")
def bank():
    return load_bank(FAQ)


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Bot:
    return Bot.load(FAQ, cache_dir=tmp_path_factory.mktemp("jieba"))


def test_the_bank_covers_the_remit(bank) -> None:
    assert len(bank.faqs) >= 150
    assert set(bank.categories) >= {
        "投诉举报", "市容秩序", "违法建筑", "噪声油烟扬尘", "渣土与建筑垃圾", "垃圾分类",
        "园林绿化与公共空间", "行政处罚", "政务公开", "关于本局", SMALLTALK,
    }  # fmt: skip


def test_every_entry_is_complete(bank) -> None:
    problems = []
    for faq in bank.faqs:
        where = f"{faq.path}:{faq.line} {faq.id}"
        if len(faq.alternates) < 3:
            problems.append(f"{where}: fewer than 3 alternates")
        if not faq.answer.strip() or not faq.category:
            problems.append(f"{where}: no answer or category")
        if faq.category != SMALLTALK and (not faq.keywords or faq.reviewed is None):
            problems.append(f"{where}: no keywords or reviewed date")
        if PHONE.search(faq.answer):
            problems.append(f"{where}: a phone-like number in the answer; use a site placeholder")
    assert problems == []


def test_every_placeholder_is_in_site_yaml(bank) -> None:
    site = yaml.safe_load((FAQ / "site.yaml").read_text(encoding="utf-8"))
    used = {name for faq in bank.faqs for name in placeholders(faq.answer)}
    used |= {name for faq in bank.faqs for link in faq.links for name in placeholders(link.url)}
    assert used and used <= set(site)


def test_self_retrieval_is_complete(bot: Bot) -> None:
    total, failures = self_retrieval(bot)
    assert total >= 1500
    assert failures == []


def test_dev_questions_are_labelled_and_not_copied(bank) -> None:
    items = load_labelled(DEV, known_ids=set(bank.by_id))
    texts = {t for faq in bank.faqs for t in faq.texts}
    assert sum(i.id != FALLBACK for i in items) >= 300
    assert sum(i.id == FALLBACK for i in items) >= 60
    assert [i.q for i in items if i.q in texts] == []


def _channel_mentions(reply_message: str, channel: dict[str, str]) -> bool:
    """Whether a message names a channel: its title, or the number or address it opens."""
    target = channel["url"].removeprefix("tel:")
    return channel["title"] in reply_message or target in reply_message


def test_no_reply_names_a_channel_twice(bot: Bot, bank) -> None:
    questions = [f"{kw}怎么办" for topic in bank.outside for kw in topic.keywords]
    questions += [faq.question for faq in bank.faqs]
    questions += ["明天会下雨吗", "占道经营罚多少钱，能分期吗", "", "啊"]
    replies = [bot.ask(q) for q in questions]
    outside = [r for r in replies if r.type == "fallback" and "职责范围" in r.message]
    assert len(outside) >= len(bank.outside)  # every out-of-remit topic was reached
    for reply in replies:
        titles = [c["title"] for c in reply.channels]
        urls = [c["url"] for c in reply.channels]
        assert len(set(titles)) == len(titles) and len(set(urls)) == len(urls), reply.q
        named = [c for c in reply.channels if _channel_mentions(reply.message, c)]
        assert not named, (reply.q, reply.message)


@pytest.mark.parametrize(
    ("q", "faq_id", "answered"),
    [
        # A complaint with a place in it, as citizens write them (the clerk takes the place out).
        ("洪山区桔园小区马路变成了菜市场", "vendor-report", True),
        ("小区门口马路变成了菜市场", "vendor-report", True),
        # A school named as the one who does it, not as the subject (outside.yaml: 幼儿园).
        ("幼儿园侵占小区绿地", "green-occupy", False),
        # Two or three words about how to reach the bureau.
        ("联系方式", "about-contact", True),
        ("城管电话多少啊", "about-contact", True),
        ("有联系电话吗", "about-contact", True),
        ("电话多少", "about-contact", False),  # at least offered
    ],
)
def test_visitor_wordings_reach_their_entry(bot: Bot, q: str, faq_id: str, answered: bool) -> None:
    reply = bot.ask(q)
    if answered:
        assert (reply.type, reply.faq_id) == ("answer", faq_id)
    else:
        offered = [s["id"] for s in reply.suggestions] if reply.type == "clarify" else []
        assert reply.faq_id == faq_id or faq_id in offered, (reply.type, reply.faq_id, offered)


@pytest.mark.parametrize("q", ["渣土", "垃圾", "投诉", "摆摊"])
def test_a_bare_topic_word_shared_by_several_entries_is_offered(bot: Bot, q: str) -> None:
    """One word names a subject; with close entries the visitor picks (Matcher.decide)."""
    reply = bot.ask(q)
    assert reply.type == "clarify", (reply.type, reply.faq_id)
    assert len(reply.suggestions) >= 2
