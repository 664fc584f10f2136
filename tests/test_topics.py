"""bot.match.topics: the learned topic model, its place in the index and ranking, and the fit."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from bot import Bot
from bot.match.index import Index
from bot.match.topics import MAX_FAQS, PRUNE, TopicModel
from bot.quality.fit import TIE_WINDOWS, TOPIC_WEIGHTS, VOTES_WEIGHTS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bot(faq_dir: Path, tmp_path: Path, jieba_cache: Path) -> Bot:
    return Bot.load(faq_dir, index_path=tmp_path / "index.pkl", cache_dir=jieba_cache)


def test_banks_it_cannot_learn_from_get_no_model() -> None:
    # Two wordings per FAQ: too few to learn which features decide an FAQ.
    thin = sp.identity(10, format="csr")
    assert TopicModel.train(thin, np.repeat(np.arange(5), 2)) is None
    # More FAQs than one binary problem each can be trained for at index build.
    n = MAX_FAQS + 1
    many = sp.csr_matrix((np.ones(3 * n), (np.arange(3 * n), np.arange(3 * n) % 7)))
    assert TopicModel.train(many, np.repeat(np.arange(n), 3)) is None


def test_the_model_reads_every_wording_as_its_own_faq(bot: Bot) -> None:
    model = bot.index.topics
    assert model is not None
    assert np.all(np.abs(model.weights.data) >= PRUNE)  # pruned weights are dropped
    for pos, faq in enumerate(bot.bank.faqs):
        for text in faq.texts:
            cols, vals = bot.index.vector(bot.pipeline.prepare(text))
            assert int(model.scores(cols, vals).argmax()) == pos, text


def test_an_empty_query_vector_scores_the_bias() -> None:
    rows = sp.csr_matrix(np.kron(np.eye(3), np.ones((3, 1))) + 0.01)
    model = TopicModel.train(rows, np.repeat(np.arange(3), 3))
    assert model is not None
    empty = np.zeros(0, dtype=np.int64), np.zeros(0)
    assert model.scores(*empty).tolist() == pytest.approx(model.bias.tolist())


def test_saved_index_keeps_the_model(bot: Bot, tmp_path: Path) -> None:
    path = tmp_path / "again.pkl"
    bot.index.save(path)
    loaded = Index.load(path, digest=bot.bank.digest)
    assert loaded.topics is not None
    vector = bot.index.vector(bot.pipeline.prepare("夜里大排档太吵"))
    assert loaded.topics.scores(*vector).tolist() == bot.index.topics.scores(*vector).tolist()


def test_topic_weight_adds_the_topic_score_to_the_raw_mix(bot: Bot) -> None:
    p = bot.pipeline.prepare("有人在小区门口乱搭乱建")
    bot.matcher.config = replace(bot.matcher.config, topic_weight=0.0)
    alone = {c.pos: c for c in bot.matcher.rank(p)}
    bot.matcher.config = replace(bot.matcher.config, topic_weight=0.5)
    mixed = {c.pos: c for c in bot.matcher.rank(p)}
    assert alone.keys() == mixed.keys()
    for pos, c in mixed.items():
        assert c.topic != 0.0
        assert c.raw == pytest.approx(alone[pos].raw + 0.5 * c.topic)
    every = bot.index.topics.scores(*bot.index.vector(p))
    for pos, c in mixed.items():
        assert c.topic_margin == pytest.approx(c.topic - np.delete(every, pos).max())


def _key(title: str) -> str:
    return hashlib.sha256(title.strip().encode("utf-8")).hexdigest()[:16]


def test_fit_reads_both_kinds_of_set_and_reports_each(faq_dir: Path, tmp_path: Path) -> None:
    questions = [
        ("违章搭建咋举报", "building-report"), ("有人私搭乱建找谁", "building-report"),
        ("违建会不会被拆掉", "building-demolish"), ("违法建筑强拆吗", "building-demolish"),
        ("马路上摆摊的怎么办", "vendor-report"), ("小贩占道卖菜", "vendor-report"),
        ("夜市大排档太吵了", "night-market"), ("晚上烧烤摊很吵", "night-market"),
        ("公积金怎么提取", "fallback"), ("医保卡丢了", "fallback"), ("社保怎么交", "fallback"),
        ("驾照怎么换", "fallback"), ("你好呀", "smalltalk-hello"), ("户口迁移", "fallback"),
    ]  # fmt: skip
    dev = tmp_path / "dev.yaml"
    dev.write_text(yaml.safe_dump([{"q": q, "id": i} for q, i in questions], allow_unicode=True))
    messages = [
        ("某某区某某小区门口有人违章搭建", "building-report"),
        ("强烈要求拆除某某村的违法建筑", "building-demolish"),
        ("某某路上流动摊贩占道经营严重", "vendor-report"),
        ("某某街夜市噪音扰民无法入睡", "night-market"),
        ("某某中学老师乱收补课费", "outside:education"),
        ("某某医院看病太贵", "outside:health"),
        ("某某公司拖欠工资", "outside:labour"),
        ("某某小区物业乱收费", "outside:housing"),
    ]
    (tmp_path / "messages.tsv").write_text(
        "title\tlabel\n" + "".join(f"{t}\t城乡建设\n" for t, _ in messages), encoding="utf-8"
    )
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.tsv").write_text(
        "key\tlabels\ttopic\n" + "".join(f"{_key(t)}\t{lab}\tx\n" for t, lab in messages),
        encoding="utf-8",
    )
    out = subprocess.run(
        [sys.executable, "-m", "bot", "fit", str(dev), str(labels), "--faq", str(faq_dir),
         "--messages", str(tmp_path / "messages.tsv")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
             "XIAOCHENG_INSTANCE_PATH": str(tmp_path / "inst")},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    values = yaml.safe_load((faq_dir / "thresholds.yaml").read_text(encoding="utf-8"))
    assert values["topic_weight"] in TOPIC_WEIGHTS
    assert values["votes_weight"] in VOTES_WEIGHTS
    assert {"topic_coef", "topic_margin_coef", "answer", "clarify", "clarify_message"} <= set(
        values
    )
    assert values["clarify"] <= values["answer"] and values["clarify_message"] <= values["answer"]
    assert values["tie_window"] in (0.0, *TIE_WINDOWS)
    assert values["remit_keyword"] == 0.0  # this bank has no out-of-remit model to go by
    held_out = [line for line in out.stdout.splitlines() if line.startswith("held-out half of")]
    assert [line.split(" (")[0] for line in held_out] == [
        f"held-out half of {dev}",
        f"held-out half of {labels}",
    ]


def test_messages_have_their_own_clarify_threshold(bot: Bot) -> None:
    short = bot.pipeline.prepare("私搭乱建")
    long = bot.pipeline.prepare("某某小区门口有人私搭乱建，严重影响通行，望有关部门尽快处理")
    assert (short.message, long.message) == (False, True)
    config = replace(bot.matcher.config, answer=1.01, clarify=1.0, clarify_message=0.0)
    bot.matcher.config = config
    assert bot.matcher.decide(short, bot.matcher.rank(short)).type == "fallback"
    assert bot.matcher.decide(long, bot.matcher.rank(long)).type == "clarify"
    bot.matcher.config = replace(config, clarify_message=-1.0)  # unset: as short questions
    assert bot.matcher.decide(long, bot.matcher.rank(long)).type == "fallback"
