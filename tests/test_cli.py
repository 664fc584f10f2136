"""The command line: python -m bot ask / lint / eval / fit, and train.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(
    *args: str, cwd: Path, stdin: str = "", env_instance: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    if env_instance is not None:
        env["XIAOCHENG_INSTANCE_PATH"] = str(env_instance)
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_ask_jsonl_keeps_one_line_per_question(faq_dir: Path, tmp_path: Path) -> None:
    questions = "违建怎么举报\n\n社保怎么交\n" + "城" * 3000 + "\n"
    out = run(
        "-m",
        "bot",
        "ask",
        "--jsonl",
        "--faq",
        str(faq_dir),
        cwd=tmp_path,
        stdin=questions,
        env_instance=tmp_path / "inst",
    )
    assert out.returncode == 0, out.stderr
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["type"] for r in replies] == ["answer", "fallback", "fallback", "fallback"]
    assert replies[0]["faq"]["id"] == "building-report"
    assert all(
        {"q", "type", "score", "faq", "suggestions", "candidates"} <= set(r) for r in replies
    )
    assert (tmp_path / "inst" / "index.pkl").exists()


def test_ask_jsonl_reads_json_object_lines_with_context(faq_dir: Path, tmp_path: Path) -> None:
    lines = [
        "拆除吗",  # alone: a clarify
        json.dumps({"q": "拆除吗", "context": {"faq_id": "building-report"}}, ensure_ascii=False),
        json.dumps({"q": "拆除吗"}, ensure_ascii=False),  # no context: as alone
        json.dumps({"q": "拆除吗", "context": {"faq_id": "no-such-faq"}}, ensure_ascii=False),
        json.dumps({"q": "拆除吗", "context": "building-report"}, ensure_ascii=False),
        '{"q": 42}',  # not a string q: the line is the question
        "{违建怎么举报",  # not JSON: the line is the question
        '["拆除吗"]',
    ]
    out = run(
        "-m",
        "bot",
        "ask",
        "--jsonl",
        "--faq",
        str(faq_dir),
        cwd=tmp_path,
        stdin="\n".join(lines) + "\n",
        env_instance=tmp_path / "inst",
    )
    assert out.returncode == 0, out.stderr
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(replies) == len(lines)
    assert [r["q"] for r in replies[:5]] == ["拆除吗"] * 5
    assert [r["type"] for r in replies[:5]] == [
        "clarify",
        "answer",
        "clarify",
        "clarify",
        "clarify",
    ]
    assert replies[1]["faq"]["id"] == "building-demolish"
    assert [r["q"] for r in replies[5:]] == ['{"q": 42}', "{违建怎么举报", '["拆除吗"]']


def test_ask_one_question_as_json(faq_dir: Path, tmp_path: Path) -> None:
    out = run(
        "-m",
        "bot",
        "ask",
        "夜市太吵",
        "--json",
        "--faq",
        str(faq_dir),
        cwd=tmp_path,
        env_instance=tmp_path / "inst",
    )
    assert json.loads(out.stdout)["faq"]["id"] == "night-market"


def test_ask_with_a_stale_index_is_an_error(faq_dir: Path, tmp_path: Path) -> None:
    index = tmp_path / "idx.pkl"
    assert run("train.py", "--faq", str(faq_dir), "--index", str(index), cwd=ROOT).returncode == 0
    (faq_dir / "dict.txt").write_text("门前三包 2000 n\n", encoding="utf-8")
    out = run("-m", "bot", "ask", "违建", "--faq", str(faq_dir), "--index", str(index), cwd=ROOT)
    assert out.returncode == 1
    assert out.stderr == (
        f"Error: {index} was built from a different version of the FAQ bank; "
        "run python train.py to rebuild it\n"
    )


def test_bank_errors_exit_1_with_located_messages(faq_dir: Path, tmp_path: Path) -> None:
    street = faq_dir / "street.yaml"
    text = street.read_text(encoding="utf-8").replace("    answer: 请拨打", "    anwser: 请拨打")
    street.write_text(text, encoding="utf-8")
    out = run(str(ROOT / "train.py"), "--faq", "faq", "--index", "i.pkl", cwd=faq_dir.parent)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "Error: faq/street.yaml:11: entry 'night-market': unknown key 'anwser' "
        "(did you mean 'answer'?)",
        "Error: faq/street.yaml:8: entry 'night-market': missing 'answer'",
    ]


def test_train_reports_self_retrieval(faq_dir: Path, tmp_path: Path) -> None:
    out = run(
        str(ROOT / "train.py"),
        "--faq",
        str(faq_dir),
        "--index",
        str(tmp_path / "i.pkl"),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "self-retrieval: 20/20 = 100.0%" in out.stdout
    assert "bank: 5 FAQs, 20 questions and alternates, 3 categories" in out.stdout


def test_lint_clean_and_warnings(faq_dir: Path, tmp_path: Path) -> None:
    out = run("-m", "bot", "lint", "faq", cwd=faq_dir.parent, env_instance=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "Warning: faq/building.yaml:12: entry 'building-demolish': no 'reviewed' date",
        "Warning: faq/street.yaml:3: entry 'vendor-report': no 'reviewed' date",
        "Warning: faq/street.yaml:8: entry 'night-market': no 'reviewed' date",
        "Warning: faq/street.yaml:3: entry 'vendor-report': orphan, no related links in or out",
        "Warning: faq/street.yaml:8: entry 'night-market': orphan, no related links in or out",
        "OK: 5 entries in 2 files, 5 warnings",
    ]


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    path = tmp_path / "dev.yaml"
    path.write_text(
        "- {q: 违张搭建咋举报, id: building-report}\n"
        "- {q: 晚上夜市吵死了, id: night-market}\n"
        "- {q: 公积金怎么提取, id: fallback}\n"
        "- {q: 医保卡丢了, id: fallback}\n",
        encoding="utf-8",
    )
    return path


def test_eval_reports_rates_and_misses(faq_dir: Path, tmp_path: Path, labelled: Path) -> None:
    out = run(
        "-m",
        "bot",
        "eval",
        str(labelled),
        "--split",
        "all",
        "--json",
        "--faq",
        str(faq_dir),
        cwd=tmp_path,
        env_instance=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    rates = json.loads(out.stdout)
    assert rates["answered_correct"] == 1.0
    assert rates["wrong_answer"] == 0.0
    assert rates["out_of_domain_answered"] == 0.0


def test_eval_names_unknown_ids(faq_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {q: 问题, id: building-report}\n- {q: 问题二, id: nope}\n", encoding="utf-8")
    out = run(
        "-m", "bot", "eval", "bad.yaml", "--faq", str(faq_dir), cwd=tmp_path, env_instance=tmp_path
    )
    assert out.returncode == 1
    assert out.stderr == "Error: bad.yaml:2: id 'nope' is not in the FAQ bank\n"


def test_ask_needs_a_question_or_jsonl(tmp_path: Path) -> None:
    out = run("-m", "bot", "ask", cwd=tmp_path, env_instance=tmp_path)
    assert out.returncode == 2
    assert "give one question, or --jsonl" in out.stderr


def test_operator_commands_are_reached_through_python_m_bot(faq_dir: Path, tmp_path: Path) -> None:
    out = run("-m", "bot", "report", "--since", "7d", cwd=tmp_path, env_instance=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "未能很好回答的问题：0 类，共 0 次提问" in out.stdout
    street = faq_dir / "street.yaml"
    street.write_text(street.read_text(encoding="utf-8").replace("id: night-market", "id: Night"))
    out = run("-m", "bot", "reload", "--faq", "faq", cwd=faq_dir.parent, env_instance=tmp_path)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "Error: faq/street.yaml:8: entry 'Night': id must be lowercase a-z, 0-9 and '-'",
        "nothing was reloaded: the service keeps its previous bank",
    ]


def test_ask_index_without_faq_serves_the_bank_beside_it(faq_dir: Path, tmp_path: Path) -> None:
    index = faq_dir / "index.pkl"  # a bank folder with its index, as a reload snapshot has
    assert run("train.py", "--faq", str(faq_dir), "--index", str(index), cwd=ROOT).returncode == 0
    out = run("-m", "bot", "ask", "夜市太吵", "--json", "--index", str(index), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["faq"]["id"] == "night-market"


def test_ask_index_without_faq_serves_the_bank_it_was_built_from(
    faq_dir: Path, tmp_path: Path
) -> None:
    index = tmp_path / "elsewhere" / "idx.pkl"
    assert run("train.py", "--faq", str(faq_dir), "--index", str(index), cwd=ROOT).returncode == 0
    out = run("-m", "bot", "ask", "夜市太吵", "--json", "--index", str(index), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["faq"]["id"] == "night-market"

    # The folder changed since: the error names it and the command that rebuilds.
    street = faq_dir / "street.yaml"
    street.write_text(street.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    out = run("-m", "bot", "ask", "夜市太吵", "--index", str(index), cwd=tmp_path)
    assert out.returncode == 1
    folder = faq_dir.resolve()
    assert out.stderr == (
        f"Error: {index} was built from {folder}, which has changed since; "
        f"rebuild it: python train.py --faq {folder} --index {index}\n"
    )


def test_a_reader_that_stops_early_gets_no_traceback(faq_dir: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.txt"
    questions.write_text("夜市太吵了\n" * 2000, encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "XIAOCHENG_INSTANCE_PATH": str(tmp_path),
    }
    with questions.open("rb") as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "ask", "--jsonl", "--faq", str(faq_dir)],
            cwd=tmp_path,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # like head -1
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        proc.wait(timeout=120)
    assert json.loads(first)["faq"]["id"] == "night-market"
    assert stderr == ""
