"""bot.index: build, save, load; stale, foreign and damaged files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import Bot
from bot.errors import IndexArtifactError
from bot.match.index import MAGIC, Index
from bot.match.text import Prepared


@pytest.fixture
def saved(faq_dir: Path, tmp_path: Path, jieba_cache: Path) -> tuple[Bot, Path]:
    path = tmp_path / "instance" / "index.pkl"
    bot = Bot.load(faq_dir, index_path=path, cache_dir=jieba_cache)
    return bot, path


def test_saved_index_is_reused(saved: tuple[Bot, Path], faq_dir: Path, jieba_cache: Path) -> None:
    bot, path = saved
    assert path.read_bytes().startswith(MAGIC)
    again = Bot.load(faq_dir, index_path=path, cache_dir=jieba_cache, rebuild=False)
    assert again.index.meta == bot.index.meta
    assert again.ask("违建").faq_id == "building-report"


def test_one_row_per_question_and_alternate(saved: tuple[Bot, Path]) -> None:
    bot, _ = saved
    assert bot.index.n_rows == sum(len(f.texts) for f in bot.bank.faqs) == 20


def test_stale_index_is_reported_or_rebuilt(
    saved: tuple[Bot, Path], faq_dir: Path, jieba_cache: Path
) -> None:
    _, path = saved
    text = (faq_dir / "street.yaml").read_text(encoding="utf-8")
    (faq_dir / "street.yaml").write_text(text.replace("夜市太吵了", "夜市太闹了"), encoding="utf-8")
    with pytest.raises(IndexArtifactError) as info:
        Bot.load(faq_dir, index_path=path, cache_dir=jieba_cache, rebuild=False)
    assert str(info.value) == (
        f"{path} was built from a different version of the FAQ bank; "
        "run python train.py to rebuild it"
    )
    rebuilt = Bot.load(faq_dir, index_path=path, cache_dir=jieba_cache)
    assert Index.read_meta(path)["digest"] == rebuilt.bank.digest


def test_foreign_file_is_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "index.pkl"
    path.write_bytes(b"\x80\x04K\x01.")  # a pickle, but not ours
    with pytest.raises(IndexArtifactError, match="is not a 智能小城 index file"):
        Index.load(path, digest="x")


def test_damaged_payload_is_reported(saved: tuple[Bot, Path]) -> None:
    bot, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexArtifactError, match="is damaged"):
        Index.load(path, digest=bot.bank.digest)


def test_missing_index_without_rebuild(faq_dir: Path, tmp_path: Path, jieba_cache: Path) -> None:
    with pytest.raises(IndexArtifactError, match="does not exist; run python train.py"):
        Bot.load(faq_dir, index_path=tmp_path / "none.pkl", cache_dir=jieba_cache, rebuild=False)


def test_scores_are_weighted_cosines(saved: tuple[Bot, Path]) -> None:
    bot, _ = saved
    scores = bot.index.scores(bot.pipeline.prepare("如何举报违法建筑？"))
    assert scores.max() == pytest.approx(1.0)
    assert scores.min() >= 0.0
    assert bot.index.scores(bot.pipeline.prepare("")).sum() == 0.0


def test_common_features_can_be_skipped(saved: tuple[Bot, Path]) -> None:
    bot, _ = saved
    p = bot.pipeline.prepare("如何举报违法建筑？")
    full = bot.index.scores(p)
    rare_only = bot.index.scores(p, max_postings=1)
    assert rare_only.argmax() == full.argmax()
    assert rare_only.sum() < full.sum()  # the common characters no longer count
    common = bot.pipeline.prepare("怎么")  # only features found in many rows
    assert bot.index.scores(common, max_postings=1).sum() > 0  # kept when nothing rarer


def test_build_takes_the_feature_function(saved: tuple[Bot, Path]) -> None:
    bot, _ = saved
    seen: list[str] = []

    def words_only(p: Prepared) -> tuple[list[str], list[str], list[str]]:
        seen.append(p.text)
        return list(p.words), [], []

    rows = [(0, bot.pipeline.prepare("夜市太吵了")), (1, bot.pipeline.prepare("违建举报"))]
    index = Index.build(rows, digest="d", features=words_only)
    assert len(seen) == 2
    assert index.blocks[1].vocab == {"∅": 0}  # no character features were made
    query = bot.pipeline.prepare("夜市")
    assert index.scores(query).argmax() == 0
    assert seen[-1] == query.text  # queries go through the same function
