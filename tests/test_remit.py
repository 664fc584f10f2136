"""bot.match.remit: the learned out-of-remit model, its file and its use by the bot."""

from __future__ import annotations

import json
from pathlib import Path

from bot.match.remit import N_BUCKETS, Remit, buckets

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
    assert buckets("🙂🙂") == {}
    assert all(0 <= b < N_BUCKETS for b in buckets("城" * 10_000 + "abc"))
