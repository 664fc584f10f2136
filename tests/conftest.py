"""Shared fixtures: a small fixture FAQ bank copied into a temporary folder."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
MINI_FAQ = DATA / "mini_faq"
# Database 5 of the local Redis; each test's keys carry a prefix of its own.
REDIS_URL = os.environ.get("XIAOCHENG_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


@pytest.fixture
def faq_dir(tmp_path: Path) -> Path:
    """A writable copy of tests/data/mini_faq (5 entries, site, dict, synonyms, outside)."""
    target = tmp_path / "faq"
    shutil.copytree(MINI_FAQ, target)
    return target


@pytest.fixture(scope="session")
def jieba_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One jieba cache folder for the whole session, so each Bot starts fast."""
    return tmp_path_factory.mktemp("jieba")


@pytest.fixture
def app(faq_dir: Path, tmp_path: Path, jieba_cache: Path):
    """The real web app on the mini bank, its instance folder (query log) in tmp_path.

    Rate limiting is off here; tests of the limiter build their own app.
    """
    from bot.web import create_app

    app = create_app(
        {
            "TESTING": True,
            "FAQ_DIR": str(faq_dir),
            "CACHE_DIR": str(jieba_cache),
            "RATELIMIT_ENABLED": False,
        },
        instance_path=tmp_path / "instance",
    )
    yield app
    app.extensions["xiaocheng"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def shared_limits() -> Iterator[dict[str, Any]]:
    """Settings that keep the rate limits and the login lockout in the test Redis, under
    a key prefix of this test's own (apps given them count as one service, like the
    workers and nodes of a deployment); the prefix's keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as e:
        client.close()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({e}). The shared-limit tests need it: "
            "start redis-server (.ci/run does) or point XIAOCHENG_TEST_REDIS_URL at one.",
            pytrace=False,
        )
    prefix = f"test-{uuid.uuid4().hex[:12]}-"
    yield {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_KEY_PREFIX": prefix}
    keys = list(client.scan_iter(match=f"*{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
