"""Clusters of unanswered questions: grouping, nearest FAQ, YAML that the bank accepts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import Bot, load_bank
from bot.analysis.clusters import (
    CLUSTER_CSV_HEADER,
    Cluster,
    Nearest,
    cluster,
    csv_cell,
    render_text,
    to_csv_rows,
    yaml_scalar,
)
from bot.errors import BankError
from bot.querylog import QueryLog

T0 = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in China


def _rows(*questions: str, start: datetime = T0) -> list[dict[str, Any]]:
    """Rows as QueryLog.unanswered returns them, one hour apart."""
    return [
        {"question": q, "normalized": "", "created_at": start + timedelta(hours=i)}
        for i, q in enumerate(questions)
    ]


ASKED = _rows(
    "共享单车乱停谁管",
    "今天天气怎么样",
    "路边停车费怎么交",
    "共享单车乱停放怎么投诉",
    "今天天气怎么样",
    "小区门口共享单车乱停",
    "路边停车费在哪交",
    "今天天气如何",
    "共享单车乱停谁管",
    "共享单车乱停谁管",
)


def test_similar_questions_cluster_largest_first() -> None:
    clusters = cluster(ASKED)
    assert [(c.count, c.distinct, c.examples) for c in clusters] == [
        # Equally asked questions: the most recent first.
        (5, 3, ("共享单车乱停谁管", "小区门口共享单车乱停", "共享单车乱停放怎么投诉")),
        (3, 2, ("今天天气怎么样", "今天天气如何")),
        (2, 2, ("路边停车费怎么交", "路边停车费在哪交")),
    ]
    bikes = clusters[0]
    assert (bikes.first_seen, bikes.last_seen) == (T0, T0 + timedelta(hours=9))
    assert bikes.nearest is None and not bikes.suggest_alternates


def test_threshold_controls_merging() -> None:
    # Only questions identical but for filler words merge: 今天天气怎么样 = 今天天气如何.
    assert len(cluster(ASKED, threshold=0.99)) == 5
    assert len(cluster(ASKED, threshold=0.0)) == 1


def test_examples_are_capped_and_masked() -> None:
    rows = _rows(*[f"共享单车乱停{'谁管' * i}" for i in range(1, 8)], "共享单车乱停 13812345678")
    [only] = cluster(rows, threshold=0.3)
    assert only.count == 8 and only.distinct == 8
    assert len(only.examples) == 5
    assert "共享单车乱停 [手机号]" in cluster(rows[-1:])[0].examples


def test_identical_normalised_text_is_one_question_key() -> None:
    rows = [
        {"question": "今天天气怎么样？", "normalized": "今天天气怎么样", "created_at": T0},
        {"question": "今天天氣怎麼樣", "normalized": "今天天气怎么样", "created_at": T0},
    ]
    [only] = cluster(rows, threshold=0.99)
    assert (only.count, only.distinct) == (2, 2)


def test_leaders_from_an_earlier_chunk_still_gather_questions() -> None:
    """More distinct questions than one comparison chunk (256): a late look-alike joins."""
    rng = random.Random(5)
    pool = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    noise = ["".join(rng.choice(pool) for _ in range(10)) for _ in range(400)]
    leader = noise[0]
    rows = _rows(leader, leader, leader, *noise[1:])
    rows += _rows(leader + "呗吧", start=T0 - timedelta(days=30))  # oldest: compared last
    clusters = cluster(rows)
    assert clusters[0].count == 4
    assert clusters[0].examples == (leader, leader + "呗吧")
    assert len(clusters) == 400


def test_grouped_rows_cluster_as_the_rows_they_count() -> None:
    """Rows counted per text (QueryLog.unanswered_texts) make the clusters of the rows."""
    grouped: dict[str, dict[str, Any]] = {}
    for row in ASKED:
        first = {"question": row["question"], "normalized": "", "count": 0}
        g = grouped.setdefault(row["question"], {**first, "first_seen": row["created_at"]})
        g["count"] += 1
        g["last_seen"] = row["created_at"]
    assert cluster(list(grouped.values())) == cluster(ASKED)
    assert [c.count for c in cluster(list(grouped.values()))] == [5, 3, 2]


@pytest.mark.parametrize(
    "text",
    ["违章搭建怎么举报", "占道经营，找谁？", "好。", "、开头", "违建！", "true", "12345", "a: b"],
)
def test_yaml_scalar_is_what_safe_dump_writes(text: str) -> None:
    dumped = yaml.safe_dump({"k": text}, allow_unicode=True, width=10**6)[3:].rstrip("\n")
    assert yaml_scalar(text) == dumped
    assert yaml.safe_load(f"k: {yaml_scalar(text)}") == {"k": text}


def test_no_rows_no_clusters() -> None:
    assert cluster([]) == []
    assert cluster(_rows("", "   ")) == []
    assert render_text([]) == "未能很好回答的问题：0 类，共 0 次提问\n"
    assert to_csv_rows([])[0][0] == "序号"


# -- with the real engine ----------------------------------------------------------


@pytest.fixture
def bot(faq_dir: Path, tmp_path: Path, jieba_cache: Path) -> Bot:
    return Bot.load(faq_dir, index_path=tmp_path / "index.pkl", cache_dir=jieba_cache)


def _nearest(bot: Bot) -> Any:
    return lambda q: (bot.ask(q).candidates or [None])[0]


STREET_ROWS = _rows(
    "门口老有人摆地摊", "楼下老有人摆地摊", "门口老有人摆地摊", "今天天气怎么样", "今天天气如何"
)


def test_nearest_faq_comes_from_the_engine(bot: Bot) -> None:
    stalls, weather = cluster(STREET_ROWS, nearest=_nearest(bot))
    assert stalls.nearest is not None and stalls.nearest.id == "vendor-report"
    assert stalls.nearest.question == "路边有流动摊贩占道经营怎么办？"
    assert stalls.suggest_alternates
    assert weather.nearest is not None and not weather.suggest_alternates


def test_alternates_snippet_pastes_into_the_bank(bot: Bot, faq_dir: Path) -> None:
    stalls = cluster(STREET_ROWS, nearest=_nearest(bot))[0]
    snippet = stalls.yaml_snippet()
    assert snippet.startswith(
        "# 3 次提问，最接近条目 vendor-report「路边有流动摊贩占道经营怎么办？」"
    )
    street = faq_dir / "street.yaml"
    text = street.read_text(encoding="utf-8")
    flow = "    alternates: [小摊贩占道, 门口摆地摊有人管吗, 占道经营投诉]\n"
    block = (
        "    alternates:\n      - 小摊贩占道\n      - 门口摆地摊有人管吗\n      - 占道经营投诉\n"
    )
    assert flow in text
    street.write_text(text.replace(flow, block + snippet), encoding="utf-8")
    [faq] = [f for f in load_bank(faq_dir).faqs if f.id == "vendor-report"]
    assert faq.alternates == (
        "小摊贩占道",
        "门口摆地摊有人管吗",
        "占道经营投诉",
        "门口老有人摆地摊",
        "楼下老有人摆地摊",
    )


def test_new_entry_skeleton_is_refused_until_completed(bot: Bot, faq_dir: Path) -> None:
    weather = cluster(STREET_ROWS, nearest=_nearest(bot))[1]
    snippet = weather.yaml_snippet()
    assert snippet == (
        "# 2 次提问，题库里没有足够接近的条目。新条目草稿，加到 faqs: 下，\n"
        "# 补上 id 和 answer（必填）后保存：\n"
        "  - id: TODO\n"
        "    question: 今天天气怎么样\n"
        "    alternates:\n"
        "      - 今天天气如何\n"
        "    answer:\n"
        "    keywords: []\n"
    )
    street = faq_dir / "street.yaml"
    street.write_text(street.read_text(encoding="utf-8") + snippet, encoding="utf-8")
    with pytest.raises(BankError) as excinfo:
        load_bank(faq_dir)
    message = str(excinfo.value)
    assert "entry 'TODO': id must be lowercase a-z, 0-9 and '-'" in message
    assert "entry 'TODO': missing 'answer'" in message
    completed = snippet.replace("id: TODO", "id: weather").replace(
        "    answer:\n", "    answer: 天气请查询气象台。\n"
    )
    street.write_text(street.read_text(encoding="utf-8").replace(snippet, completed), "utf-8")
    assert "weather" in [f.id for f in load_bank(faq_dir).faqs]


def test_snippet_quotes_what_yaml_needs() -> None:
    odd = Cluster(
        count=2,
        distinct=2,
        examples=("罚款: 200元?", "- 开头的问题", "我的电话[手机号]"),
        first_seen=None,
        last_seen=None,
        nearest=Nearest("fine-pay", "罚款怎么交", 0.8),
        suggest_alternates=True,
    )
    lines = odd.yaml_snippet().splitlines()[2:]
    # Questions with a mask token are no use as alternates and are left out.
    assert yaml.safe_load("\n".join(lines)) == ["罚款: 200元?", "- 开头的问题"]


# -- reports ----------------------------------------------------------------------


def test_render_text() -> None:
    clusters = cluster(ASKED, nearest=lambda q: {"id": "x-1", "question": "问题一", "score": 0.5})
    text = render_text(clusters[1:2])
    assert text == (
        "未能很好回答的问题：1 类，共 3 次提问\n"
        "\n"
        "1. 3 次（2 种问法） 2024-03-01 11:00 ~ 2024-03-01 17:00 最接近 x-1「问题一」0.50\n"
        "   - 今天天气怎么样\n"
        "   - 今天天气如何\n"
    )
    with_yaml = render_text(clusters[1:2], snippets=True)
    assert with_yaml.endswith("         - 今天天气如何\n")


def test_csv_rows() -> None:
    clusters = cluster(_rows("=HYPERLINK(1)", "=HYPERLINK(1)", "@SUM(A1)"))
    assert to_csv_rows(clusters) == [
        list(CLUSTER_CSV_HEADER),
        ["1", "2", "1", "2024-03-01 10:00", "2024-03-01 11:00", "", "", "", "新建条目",
         "'=HYPERLINK(1)"],
        ["2", "1", "1", "2024-03-01 12:00", "2024-03-01 12:00", "", "", "", "新建条目",
         "'@SUM(A1)"],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+86", "'+86"),
        ("-2", "'-2"),
        ("@x", "'@x"),
        ("普通", "普通"),
        (None, ""),
    ],
)
def test_csv_cell(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_clusters_from_the_query_log(tmp_path: Path) -> None:
    with QueryLog(f"sqlite:///{tmp_path / 'q.db'}") as store:
        for row in ASKED:
            store.log_query(row["question"], reply_type="fallback", created_at=row["created_at"])
        store.log_query("共享单车乱停谁管", reply_type="answer", score=0.9)  # answered well
        store.flush()
        clusters = cluster(store.unanswered(threshold=0.5))
    assert [c.count for c in clusters] == [5, 3, 2]
    assert clusters[0].first_seen == T0


def test_asked_remembers_each_banks_replies(bot: Bot, faq_dir: Path, tmp_path: Path) -> None:
    """The analysis asks each served bank once per wording; a reloaded bank is asked anew."""
    from bot.analysis.report import asked

    first = asked(bot, "门口老有人摆地摊")
    assert first == bot.ask("门口老有人摆地摊")
    assert asked(bot, "门口老有人摆地摊") is first
    other = Bot.load(faq_dir, index_path=tmp_path / "other.pkl")
    assert asked(other, "门口老有人摆地摊") is not first
