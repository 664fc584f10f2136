"""The operators' commands: the clusters report, the retention purge and the console
password hash — on a real instance folder whose log the real web app filled."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.security import check_password_hash

from bot.analysis.report import parse_since
from bot.cli.main import purge_main, report_main
from bot.querylog import QueryLog
from bot.web import create_app

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def instance(tmp_path: Path, faq_dir: Path, jieba_cache: Path, monkeypatch) -> Path:
    """An instance folder the commands find through the environment, as operators run them."""
    folder = tmp_path / "instance"
    monkeypatch.setenv("XIAOCHENG_INSTANCE_PATH", str(folder))
    monkeypatch.setenv("XIAOCHENG_FAQ_DIR", str(faq_dir))
    monkeypatch.setenv("XIAOCHENG_CACHE_DIR", str(jieba_cache))
    return folder


def ask_through_the_app(instance: Path, *questions: str) -> None:
    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False}, instance_path=instance)
    try:
        client = app.test_client()
        for q in questions:
            assert client.post("/api/ask", json={"q": q}).status_code == 200
    finally:
        app.extensions["xiaocheng"].close()


ASKED = ("今天天气怎么样", "今天天气怎么样", "今天天气如何", "摊贩", "违建", "社保 13812345678")


def test_report_prints_the_clusters_largest_first(instance, capsys):
    ask_through_the_app(instance, *ASKED)
    assert report_main(["--since", "7d"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("自 ") and lines[0].endswith(" 起（中国时间）")
    assert lines[1] == "未能很好回答的问题：3 类，共 5 次提问"
    assert lines[3].startswith("1. 3 次（2 种问法） ")
    assert lines[4:6] == ["   - 今天天气怎么样", "   - 今天天气如何"]
    stall = next(line for line in lines if "vendor-report" in line)
    assert "最接近 vendor-report「路边有流动摊贩占道经营怎么办？」" in stall
    assert "社保 [手机号]" in out
    assert "13812345678" not in out
    assert "违建" not in out  # answered


def test_report_limit_and_snippets(instance, capsys):
    ask_through_the_app(instance, *ASKED)
    assert report_main(["--limit", "1", "--snippets"]) == 0
    out = capsys.readouterr().out
    assert "共 3 类；下面是最大的 1 类，其余 2 次提问未列出。" in out
    assert "未能很好回答的问题：1 类，共 3 次提问" in out
    assert "     - id: TODO" in out


def test_report_since_a_date_and_bad_values(instance, capsys):
    ask_through_the_app(instance, "今天天气怎么样")
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert report_main(["--since", tomorrow]) == 0
    assert "未能很好回答的问题：0 类，共 0 次提问" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        report_main(["--since", "last week"])
    assert exit_info.value.code == 2
    assert (
        "--since 'last week': use a number of days, hours or weeks (7d, 24h, 2w) "
        "or a date (2024-03-01)" in capsys.readouterr().err
    )


def test_report_names_an_unusable_database(instance, monkeypatch, capsys):
    monkeypatch.setenv("XIAOCHENG_DATABASE_URL", "sqlite:///:memory:")
    assert report_main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "Error: the query log needs an SQLite file that its writer thread can share, not "
    )
    assert err.count("\n") == 1


def test_parse_since():
    now = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("24h", now=now) == now - timedelta(hours=24)
    assert parse_since("2w", now=now) == now - timedelta(weeks=2)
    # A date starts at midnight China time.
    assert parse_since("2024-03-01", now=now) == datetime(2024, 2, 29, 16, 0, tzinfo=UTC)
    for bad in ["7", "d", "-1d", "7 days", "2024-02-30"]:
        with pytest.raises(ValueError):
            parse_since(bad, now=now)


# --- purge ---------------------------------------------------------------------


def old_row(instance: Path, days: int) -> None:
    """A question logged ``days`` ago, written through the real store."""
    with QueryLog(f"sqlite:///{instance / 'querylog.db'}", background=False) as log:
        log.log_query(
            "很久以前的提问",
            reply_type="fallback",
            created_at=datetime.now(UTC) - timedelta(days=days),
        )


def count(instance: Path) -> int:
    with QueryLog(f"sqlite:///{instance / 'querylog.db'}", background=False) as log:
        return log.count()


def test_purge_deletes_what_is_older_than_the_days(instance, capsys):
    ask_through_the_app(instance, "违建", "今天天气怎么样")
    old_row(instance, 40)
    assert purge_main(["--days", "30", "--dry-run"]) == 0
    assert capsys.readouterr().out == (
        "Would delete 1 queries older than 30 days (and their feedback).\n"
    )
    assert count(instance) == 3
    assert purge_main(["--days", "30"]) == 0
    assert capsys.readouterr().out == "Deleted 1 queries older than 30 days (and their feedback).\n"
    assert count(instance) == 2
    assert purge_main(["--days", "0"]) == 0
    assert capsys.readouterr().out == "Deleted 2 queries older than 0 days (and their feedback).\n"
    assert count(instance) == 0


def test_purge_defaults_to_the_configured_retention(instance, capsys):
    ask_through_the_app(instance, "违建")
    old_row(instance, 200)
    old_row(instance, 20)
    assert purge_main([]) == 0  # LOG_RETENTION_DAYS defaults to 180
    assert capsys.readouterr().out == (
        "Deleted 1 queries older than 180 days (and their feedback).\n"
    )
    (instance / "config.toml").write_text("LOG_RETENTION_DAYS = 10\n", encoding="utf-8")
    assert purge_main([]) == 0
    assert capsys.readouterr().out == "Deleted 1 queries older than 10 days (and their feedback).\n"
    assert count(instance) == 1


def test_purge_refuses_bad_days(instance, capsys):
    with pytest.raises(SystemExit) as exit_info:
        purge_main(["--days", "-1"])
    assert exit_info.value.code == 2
    assert "the number of days must be 0 or more" in capsys.readouterr().err
    (instance).mkdir(parents=True, exist_ok=True)
    (instance / "config.toml").write_text('LOG_RETENTION_DAYS = "forever"\n', encoding="utf-8")
    assert purge_main([]) == 1
    assert capsys.readouterr().err == (
        f"Error: {instance / 'config.toml'}: LOG_RETENTION_DAYS should be an integer, not str\n"
    )


# --- the console password ------------------------------------------------------


def run_password_tool(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.admin_password", "--stdin"],
        input=text,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_admin_password_prints_a_config_line_with_a_working_hash():
    done = run_password_tool("正确的后台密码 horse\n")
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith('ADMIN_PASSWORD_HASH = "scrypt:')
    value = tomllib.loads(line)["ADMIN_PASSWORD_HASH"]
    assert check_password_hash(value, "正确的后台密码 horse")
    assert not check_password_hash(value, "正确的后台密码")
    assert "horse" not in done.stdout


def test_admin_password_refuses_a_short_password():
    done = run_password_tool("short\n")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "Error: the password needs at least 10 characters\n"


def choose_through_the_app(instance: Path, *questions: str) -> list[str]:
    """Ask each question as a visitor and click the first offered choice; the chosen ids."""
    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False}, instance_path=instance)
    chosen = []
    try:
        client = app.test_client()
        for q in questions:
            reply = client.post("/api/ask", json={"q": q}).get_json()
            choice = reply["suggestions"][0]
            body = {"q": choice["question"], "faq_id": choice["id"]}
            assert client.post("/api/ask", json={**body, "from_query_id": reply["query_id"]})
            chosen.append(choice["id"])
    finally:
        app.extensions["xiaocheng"].close()
    return chosen


def test_report_lists_the_wordings_visitors_chose_an_answer_for(instance, capsys):
    chosen = choose_through_the_app(instance, "拆除吗", "拆除吗", "拆除吗 13812345678")
    assert report_main(["--snippets"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("访客自己选出答案的问法") :].splitlines()
    assert section[0] == "访客自己选出答案的问法（可加为相似问法）：1 个条目"
    assert section[2].startswith(f"1. {chosen[0]}「") and section[2].endswith("」2 次")
    assert section[3] == "   - 拆除吗（点选 2 次，有用反馈 0 次）"
    # The masked wording is no use as an alternate and is left out; the snippet pastes.
    assert "[手机号]" not in "\n".join(section) and "13812345678" not in out
    assert f"   # 把下面几行加到条目 {chosen[0]} 的 alternates: 下：" in section
    assert "         - 拆除吗" in section


def test_a_wording_the_faq_already_has_is_not_proposed_again(instance, faq_dir, capsys):
    [chosen] = choose_through_the_app(instance, "拆除吗")
    # A curator adds the wording to the chosen entry; the report stops proposing it.
    path = faq_dir / "building.yaml"
    text = path.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("  - id: ") and chosen in x)
    after = text.index(line) + len(line)
    after = text.index("alternates: [", after) + len("alternates: [")
    path.write_text(text[:after] + "拆除吗, " + text[after:], encoding="utf-8")
    assert report_main([]) == 0
    out = capsys.readouterr().out
    assert "访客自己选出答案的问法（可加为相似问法）：0 个条目" in out


def test_report_names_todays_spikes_first(instance, capsys):
    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False}, instance_path=instance)
    try:
        log = app.extensions["xiaocheng"].querylog
        for _ in range(10):  # now: today in China time
            log.log_query("违建", reply_type="answer", faq_id="building-report")
        log.flush()
    finally:
        app.extensions["xiaocheng"].close()
    assert report_main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "今天提问明显增多的问答（与前 4 周同一天同一时段相比）："
    assert lines[2] == "  building-report「如何举报违法建筑？」今天 10 次，平时约 0.0 次"
