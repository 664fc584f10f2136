"""Staff lint findings that need a bank of their own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.bank import load_bank
from bot.errors import BankError
from bot.quality.lint import due_for_review, lint


def test_same_wording_in_two_entries_is_reported(faq_dir: Path, tmp_path: Path) -> None:
    street = faq_dir / "street.yaml"
    # 地摊 is a synonym of 流动摊贩, so this reads like vendor-report's 小摊贩占道.
    text = street.read_text(encoding="utf-8").replace(
        "[夜市太吵了, 烧烤摊晚上吵, 夜排档扰民]", "[夜市太吵了, 烧烤摊晚上吵, 夜排档扰民, 地摊占道]"
    )
    street.write_text(text, encoding="utf-8")
    _, warnings = lint(faq_dir, cache_dir=tmp_path)
    same = [w for w in warnings if "reads the same" in w]
    assert same == [
        f"{faq_dir / 'street.yaml'}:8: entry 'night-market': '地摊占道' reads the same as "
        "'小摊贩占道' of entry 'vendor-report' (as '流动摊贩占道'); reword one of them"
    ]


def test_distinct_wordings_are_not_reported(faq_dir: Path, tmp_path: Path) -> None:
    _, warnings = lint(faq_dir, cache_dir=tmp_path)
    assert not [w for w in warnings if "reads the same" in w]


def test_a_superseded_law_is_reported_with_what_to_cite(faq_dir: Path, tmp_path: Path) -> None:
    (faq_dir / "review.yaml").write_text(
        "superseded:\n  - law: 《中华人民共和国城乡规划法》\n    use: 《新的规划法》\n",
        encoding="utf-8",
    )
    _, warnings = lint(faq_dir, cache_dir=tmp_path, today=dt.date(2026, 12, 1))
    assert [w for w in warnings if "which was superseded" in w] == [
        f"{faq_dir / 'building.yaml'}:3: entry 'building-report': basis cite "
        "《中华人民共和国城乡规划法》, which was superseded; cite 《新的规划法》 instead "
        "(faq/review.yaml)"
    ]


def test_no_superseded_law_without_the_list(faq_dir: Path, tmp_path: Path) -> None:
    _, warnings = lint(faq_dir, cache_dir=tmp_path, today=dt.date(2026, 12, 1))
    assert not [w for w in warnings if "which was superseded" in w]


def test_an_overdue_review_is_reported_after_the_configured_age(
    faq_dir: Path, tmp_path: Path
) -> None:
    (faq_dir / "review.yaml").write_text("max_age_days: 30\n", encoding="utf-8")
    _, on_time = lint(faq_dir, cache_dir=tmp_path, today=dt.date(2026, 12, 1))
    _, late = lint(faq_dir, cache_dir=tmp_path, today=dt.date(2026, 12, 2))
    overdue = f"{faq_dir / 'building.yaml'}:3: entry 'building-report': last reviewed 2026-11-01"
    assert not [w for w in on_time if w.startswith(overdue)]
    assert [w for w in late if w.startswith(overdue)] == [overdue + ", more than 30 days ago"]


def test_a_malformed_review_file_names_itself(faq_dir: Path, tmp_path: Path) -> None:
    (faq_dir / "review.yaml").write_text("max_age_days: soon\n", encoding="utf-8")
    with pytest.raises(BankError) as e:
        lint(faq_dir, cache_dir=tmp_path)
    assert [str(i) for i in e.value.issues] == [
        f"{faq_dir / 'review.yaml'}: 'max_age_days' must be a positive number"
    ]


def test_reviewer_is_read_and_entries_due_are_oldest_first(faq_dir: Path) -> None:
    building = faq_dir / "building.yaml"
    text = building.read_text(encoding="utf-8").replace(
        "    reviewed: 2026-11-01\n", "    reviewed: 2026-11-01\n    reviewer: 法制科\n"
    )
    building.write_text(text, encoding="utf-8")
    bank = load_bank(faq_dir)
    assert bank.by_id["building-report"].reviewer == "法制科"
    due = due_for_review(bank, review_days=10, today=dt.date(2026, 12, 1))
    assert due[-1].id == "building-report"  # the only reviewed one comes last
    assert all(f.reviewed is None for f in due[:-1]) and len(due) >= 2
