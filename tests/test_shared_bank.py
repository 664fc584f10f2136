"""Banks published through the shared database (bot/reload/shared.py), on a real PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pg_database import fresh_database
from test_reload import DOG_Q, DOGS_YAML

from bot.config import ConfigError, load_settings
from bot.errors import IndexArtifactError
from bot.reload import Follower, SharedBanks, read_marker, rebuild, verify_snapshot
from bot.web import create_app

UNREACHABLE = "postgresql+psycopg://@127.0.0.1:1/nowhere"


@pytest.fixture
def database() -> Iterator[tuple[str, sa.Engine]]:
    with fresh_database("shared_bank") as (url, _admin, _name):
        engine = sa.create_engine(url)
        yield url, engine
        engine.dispose()


def _published(url: str, faq_dir: Path, instance: Path, jieba_cache: Path):
    banks = SharedBanks(url)
    try:
        return rebuild(faq_dir, instance / "index.pkl", cache_dir=jieba_cache, shared=banks)
    finally:
        banks.close()


def _follow(url: str, instance: Path):
    banks = SharedBanks(url)
    try:
        return Follower(banks, instance / "index.pkl", check_interval=0).follow()
    finally:
        banks.close()


def test_another_node_takes_the_published_bank(database, faq_dir, tmp_path, jieba_cache):
    url, _ = database
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    result = _published(url, faq_dir, tmp_path / "node1", jieba_cache)
    assert result.ok and result.seq == 1

    taken = _follow(url, tmp_path / "node2")
    assert taken is not None and (taken.seq, taken.version) == (1, result.version)
    marker = read_marker(tmp_path / "node2" / "index.pkl")
    assert marker is not None and marker.version == result.version
    files = verify_snapshot(marker.snapshot)
    assert (marker.snapshot / "dogs.yaml").read_text("utf-8") == DOGS_YAML
    assert (tmp_path / "node2" / "index.pkl").read_bytes() == files["index.pkl"]


def test_a_damaged_publication_is_refused_and_nothing_is_written(
    database, faq_dir, tmp_path, jieba_cache
):
    url, engine = database
    assert _published(url, faq_dir, tmp_path / "node1", jieba_cache).ok
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE bank_files SET data = substring(data from 1 for 100) WHERE name = 'index.pkl'"
        )
    node2 = tmp_path / "node2"
    with pytest.raises(IndexArtifactError) as refused:
        _follow(url, node2)
    assert str(refused.value).startswith(
        "bank_files（第 1 版）/index.pkl: 共享数据库中的题库已损坏（应为 "
    )
    assert str(refused.value).endswith(" 字节，实为 100 字节），不能使用")
    assert read_marker(node2 / "index.pkl") is None
    assert not (node2 / "index.pkl").exists()
    assert not (node2 / "reloads").exists()  # not even a half-written snapshot


def test_an_unreachable_database_fails_the_reload_and_changes_nothing(
    faq_dir, tmp_path, jieba_cache
):
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    result = _published(UNREACHABLE, faq_dir, tmp_path / "node1", jieba_cache)
    assert not result.ok and result.damaged
    (error,) = result.errors
    assert error.startswith(f"{UNREACHABLE}: 共享数据库发布题库失败（")
    assert read_marker(tmp_path / "node1" / "index.pkl") is None


def test_only_the_newest_publications_are_kept(database, faq_dir, tmp_path, jieba_cache):
    url, engine = database
    for n in range(5):
        (faq_dir / "dogs.yaml").write_text(DOGS_YAML.replace("可拨打", f"可拨打{n}"), "utf-8")
        assert _published(url, faq_dir, tmp_path / "node1", jieba_cache).seq == n + 1
    with engine.connect() as conn:
        seqs = conn.exec_driver_sql("SELECT DISTINCT seq FROM bank_files ORDER BY seq").all()
        assert [s for (s,) in seqs] == [3, 4, 5]
        assert conn.exec_driver_sql("SELECT count(*) FROM bank_versions").scalar_one() == 3


def test_an_app_started_later_serves_the_newest_published_bank(
    database, faq_dir, tmp_path, jieba_cache
):
    url, _ = database
    own_faq = tmp_path / "faq2"
    shutil.copytree(faq_dir, own_faq)  # without the change
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    assert _published(url, faq_dir, tmp_path / "node1", jieba_cache).ok
    config = {
        "FAQ_DIR": str(own_faq),
        "CACHE_DIR": str(jieba_cache),
        "DATABASE_URL": url,
        "BANK_SHARED": True,
        "SECRET_KEY": "one key",
        "RATELIMIT_ENABLED": False,
    }
    app = create_app(config, instance_path=tmp_path / "node2")
    try:
        client = app.test_client()
        reply = client.post("/api/ask", json={"q": DOG_Q}).get_json()
        assert reply["type"] == "answer" and reply["faq"]["id"] == "dog-leash"
        health = client.get("/healthz").get_json()
        assert health["bank_version"] == read_marker(tmp_path / "node1" / "index.pkl").version
    finally:
        app.extensions["xiaocheng"].close()


def test_shared_banks_need_a_secret_key(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path, environ={"XIAOCHENG_BANK_SHARED": "true"})
    assert str(refused.value) == (
        "BANK_SHARED is on: set XIAOCHENG_SECRET_KEY (or SECRET_KEY in "
        f"{tmp_path / 'config.toml'}) to the same value on every node"
    )
    assert not (tmp_path / "secret_key").exists()
