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
