"""Shared fixtures: a small fixture FAQ bank copied into a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
MINI_FAQ = DATA / "mini_faq"


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
