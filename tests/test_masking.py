"""Personal data is masked exactly, and ordinary numbers are kept."""

from __future__ import annotations

import http.client
import json
import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import sqlalchemy as sa
import yaml
from gunicorn_server import gunicorn

from bot.match.text import normalize
from bot.querylog.masking import TOKENS, mask

_CORPUS = yaml.safe_load(
    (Path(__file__).parent / "data" / "masking_corpus.yaml").read_text(encoding="utf-8")
)
MASKED = [(case["in"], case["out"]) for case in _CORPUS["masked"]]
KEPT = list(_CORPUS["kept"])


def test_corpus_is_large_and_varied() -> None:
    assert len(MASKED) >= 50
    assert len(KEPT) >= 20
    outputs = "".join(out for _, out in MASKED)
    for token in TOKENS.values():
        assert outputs.count(token) >= 5, token
    inputs = "".join(text for text, _ in MASKED)
    assert "　" in inputs and "－" in inputs and "１" in inputs  # full-width forms
    assert " " in inputs and "-" in inputs


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masks_personal_data(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_keeps_ordinary_numbers(text: str) -> None:
    assert mask(text) == text


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masking_is_idempotent(text: str, expected: str) -> None:
    assert mask(mask(text)) == expected


def test_empty_text() -> None:
    assert mask("") == ""


def test_keeps_the_rest_of_the_text_as_typed() -> None:
    # Full-width letters and punctuation outside the masked span are not normalised.
    assert mask("ＡＢＣ，手机１３８１２３４５６７８！") == "ＡＢＣ，手机[手机号]！"


def test_long_digit_runs_are_not_partly_masked() -> None:
    # 20 digits: not a card, and no 11-digit mobile hidden inside it.
    assert mask("流水号13812345678123456789") == "流水号13812345678123456789"


# --- through the real pipeline: POST /api/ask -> the stored row, and the log lines --

# (what the visitor types, pieces of personal data that no stored column may hold).
# Each needle is compared with each column folded by bot.text.normalize, spaces
# removed, so a number survives however normalisation split or re-spelled it.
PERSONAL = [
    ("我叫张三，电话138.1234.5678，违章搭建怎么举报", ["张三", "13812345678"]),
    ("浙A12345的车停在路边摊旁边", ["a12345"]),
    ("请发到zhang.san@example.com 违建怎么拆", ["zhangsan", "example"]),
    ("身份证110101900307123，违法建筑", ["110101900307123"]),
    ("身份证110101199003071234，违法建筑", ["110101199003071234"]),
    ("QQ 123456789 微信 zhang_san88 地摊", ["123456789", "zhangsan88"]),
    ("护照E12345678 小摊贩", ["e12345678"]),
    ("幸福小区3号楼2单元501室楼上违建", ["501室", "2单元"]),
    ("我是李四，想问路边摊", ["李四"]),
    ("手机13812345678，拆违", ["13812345678", "热线"]),  # 12345 inside is not the hotline
]


def _fold(value: str) -> str:
    return normalize(value).replace(" ", "")


def _stored(app, table: str) -> list[dict]:
    """Every column of every row, read from the database itself, not the masking reader."""
    log = app.extensions["xiaocheng"].querylog
    assert log.flush(timeout=10)
    engine = sa.create_engine(app.config["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
    finally:
        engine.dispose()


def _texts(row: dict) -> list[str]:
    """The text a row holds: its string columns, and the strings inside its candidates."""
    texts = [value for value in row.values() if isinstance(value, str)]
    if "candidates" in row:
        texts.extend(
            v for c in json.loads(row["candidates"]) for v in c.values() if isinstance(v, str)
        )
    return texts


@pytest.fixture
def faq_dir(faq_dir: Path) -> Path:
    """The mini bank with the real bank's hotline synonym (12345 → 政务服务热线)."""
    with (faq_dir / "synonyms.yaml").open("a", encoding="utf-8") as fh:
        fh.write('政务服务热线: ["12345", 12345热线]\n')
    return faq_dir


@pytest.mark.parametrize(("typed", "needles"), PERSONAL)
def test_no_stored_column_holds_personal_data(app, client, typed: str, needles: list[str]) -> None:
    response = client.post("/api/ask", json={"q": typed, "session": "s-1"})
    assert response.status_code == 200
    assert response.get_json()["q"] == typed  # the visitor sees what they typed
    query_id = int(response.get_json()["query_id"])
    chip = client.post("/api/ask", json={"q": typed, "faq_id": "building-report"})
    assert chip.status_code == 200
    feedback = client.post(
        "/api/feedback", json={"query_id": str(query_id), "helpful": False, "comment": typed}
    )
    assert feedback.status_code == 200
    rows = _stored(app, "queries")
    assert len(rows) == 2
    [fb] = _stored(app, "feedback")
    pipeline = app.extensions["xiaocheng"].bot.pipeline
    for row in rows:
        assert row["question"] == mask(typed)
        # Normalised from the masked question, not masked after normalising.
        assert row["normalized"] == pipeline.prepare(mask(typed)).text
    for row in [*rows, fb]:
        for text in _texts(row):
            for needle in needles:
                assert needle not in _fold(text), (needle, text)


def test_ordinary_words_and_the_hotline_reach_the_index(app, client) -> None:
    for typed in ["我是商户，违章搭建怎么举报", "打12345热线能举报违建吗"]:
        assert client.post("/api/ask", json={"q": typed}).status_code == 200
    rows = {row["question"]: row for row in _stored(app, "queries")}
    assert "商户" in rows["我是商户，违章搭建怎么举报"]["normalized"]
    assert "政务服务热线" in rows["打12345热线能举报违建吗"]["normalized"]


def test_log_lines_hold_no_personal_data(app, client, caplog) -> None:
    """Including the query log's warnings while its database fails."""
    caplog.set_level(logging.DEBUG)
    assert client.post("/api/ask", json={"q": "违建"}).status_code == 200
    _stored(app, "queries")  # the table exists and the writer runs
    database = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    for typed, needles in PERSONAL:
        caplog.clear()
        with closing(sqlite3.connect(database)) as conn:
            conn.execute("ALTER TABLE queries RENAME TO queries_away")
        try:
            assert client.post("/api/ask", json={"q": typed}).status_code == 200
            assert client.get("/api/suggest", query_string={"q": typed}).status_code == 200
            deadline = time.monotonic() + 10
            while "rows wait" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            with closing(sqlite3.connect(database)) as conn:
                conn.execute("ALTER TABLE queries_away RENAME TO queries")
        _stored(app, "queries")  # written once the table is back
        lines = [_fold(record.getMessage()) for record in caplog.records]
        # The outbox's shipper warned (it names the backlog and the database error,
        # never a row), and no line holds what the visitor typed.
        assert "rows wait in the outbox" in caplog.text, caplog.text
        for needle in needles:
            assert not any(needle in line for line in lines), (needle, caplog.text)
    assert len(_stored(app, "queries")) == 1 + len(PERSONAL)


def test_gunicorn_logs_hold_no_personal_data(faq_dir: Path, tmp_path: Path, jieba_cache) -> None:
    """The access log of the real server names the path, never the typed query string."""
    settings = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "FAQ_DIR": str(faq_dir),
        "CACHE_DIR": str(jieba_cache),
        "RATELIMIT_ENABLED": "false",
        "ACCESS_LOG": str(tmp_path / "access.log"),
    }
    with gunicorn(tmp_path / "gunicorn.log", settings=settings, workers=1) as (port, _):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for typed, _ in PERSONAL:
                body = json.dumps({"q": typed}).encode()
                for method, path, data in [
                    ("GET", "/api/suggest?q=" + quote(typed), None),
                    ("POST", "/api/ask", body),
                ]:
                    conn.request(method, path, data, {"Content-Type": "application/json"})
                    response = conn.getresponse()
                    response.read()
                    assert response.status == 200
        finally:
            conn.close()
    access = (tmp_path / "access.log").read_text(encoding="utf-8")
    assert access.count('"GET /api/suggest HTTP/1.1" 200') == len(PERSONAL)
    assert access.count('"POST /api/ask HTTP/1.1" 200') == len(PERSONAL)
    for text in (access, (tmp_path / "gunicorn.log").read_text(encoding="utf-8")):
        folded = _fold(unquote(text))
        for _, needles in PERSONAL:
            for needle in needles:
                assert needle not in folded, needle
