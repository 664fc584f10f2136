"""Hot reload: rebuild refuses a broken bank, workers switch to a good one, none fails a request."""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import test_admin as admin_tests
from flask import Flask
from gunicorn_server import children, gunicorn, wait_for

import bot.reload.snapshot as reload_module
from bot.bank import load_bank, shown_path
from bot.cli.main import reload_main
from bot.match.index import Index
from bot.reload import (
    KEEP_SNAPSHOTS,
    bank_version,
    marker_path,
    read_marker,
    rebuild,
)
from bot.web import create_app
from bot.web.reload import init_app, reload_bank, watcher

DOG_Q = "遛狗不拴绳有人管吗"
DOGS_YAML = """\
category: 养犬管理
faqs:
  - id: dog-leash
    question: 遛狗不拴绳有人管吗？
    alternates: [遛狗不牵绳, 狗不拴绳怎么办]
    answer: 可拨打{hotline}反映，执法人员将依法处理。
"""
# street.yaml of the mini bank with night-market's answer removed and a bad id.
BROKEN = {
    "    answer: 请拨打{hotline}反映具体地点和时间。\n": "",
    "id: smalltalk-hello": "id: Smalltalk_hello",
}
BROKEN_ERRORS = (
    "faq/street.yaml:8: entry 'night-market': missing 'answer'",
    "faq/street.yaml:12: entry 'Smalltalk_hello': id must be lowercase a-z, 0-9 and '-'",
)


def _break(faq_dir: Path) -> str:
    """Break street.yaml as BROKEN says; return its good text."""
    path = faq_dir / "street.yaml"
    good = path.read_text("utf-8")
    bad = good
    for old, new in BROKEN.items():
        assert old in bad
        bad = bad.replace(old, new)
    path.write_text(bad, "utf-8")
    return good


def _faq_id(client, q: str = DOG_Q) -> str | None:
    response = client.post("/api/ask", json={"q": q})
    assert response.status_code == 200
    return response.get_json()["faq"] and response.get_json()["faq"]["id"]


@pytest.fixture
def make_app(tmp_path: Path, faq_dir: Path, jieba_cache: Path) -> Iterator:
    """Apps on the writable mini bank, sharing one instance folder like a server's workers."""
    apps: list[Flask] = []

    def make(**config) -> Flask:
        settings = {
            "TESTING": True,
            "FAQ_DIR": str(faq_dir),
            "CACHE_DIR": str(jieba_cache),
            "RATELIMIT_ENABLED": False,
            "RELOAD_CHECK_INTERVAL_S": 0.2,
            **config,
        }
        app = create_app(settings, instance_path=tmp_path / "instance")
        init_app(app)
        apps.append(app)
        return app

    yield make
    for app in apps:
        watcher(app).wait(60)
        app.extensions["xiaocheng"].close()


# --- rebuild -------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_rebuild_refuses_a_broken_bank_and_writes_nothing(
    faq_dir: Path, tmp_path: Path, jieba_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # errors name files as the curator types them: faq/...
    index = tmp_path / "instance" / "index.pkl"
    assert rebuild(faq_dir, index, cache_dir=jieba_cache).ok
    before = _files(index.parent)
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    _break(faq_dir)

    result = rebuild(faq_dir, index, cache_dir=jieba_cache)

    assert not result.ok
    assert result.errors == BROKEN_ERRORS
    assert result.bot is None
    assert _files(index.parent) == before  # index, marker and snapshots byte for byte


def test_rebuild_snapshots_indexes_and_publishes_a_changed_bank(
    faq_dir: Path, tmp_path: Path, jieba_cache: Path
) -> None:
    index = tmp_path / "instance" / "index.pkl"
    first = rebuild(faq_dir, index, cache_dir=jieba_cache)
    assert (first.ok, first.built, first.previous, first.faqs) == (True, True, None, 5)
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")

    second = rebuild(faq_dir, index, cache_dir=jieba_cache)

    bank = load_bank(faq_dir)
    assert (second.built, second.previous, second.faqs) == (True, first.version, 6)
    assert second.version == bank_version(bank) != first.version
    marker = read_marker(index)
    assert marker is not None and marker.version == second.version
    assert marker.snapshot == second.snapshot == index.parent / "reloads" / second.version[:16]
    snapshot = _files(marker.snapshot)
    assert {name: snapshot[name] for name in _files(faq_dir)} == _files(faq_dir)
    assert set(snapshot) - set(_files(faq_dir)) == {"index.pkl", "MANIFEST.json"}
    assert Index.read_meta(marker.index_path)["digest"] == bank.digest
    assert index.read_bytes() == snapshot["index.pkl"]  # a restart finds the index current
    assert second.bot is not None and second.bot.ask(DOG_Q).faq_id == "dog-leash"


def test_rebuild_of_an_unchanged_bank_reuses_its_snapshot(
    faq_dir: Path, tmp_path: Path, jieba_cache: Path
) -> None:
    index = tmp_path / "instance" / "index.pkl"
    first = rebuild(faq_dir, index, cache_dir=jieba_cache)
    files, marker = _files(index.parent), read_marker(index)

    again = rebuild(faq_dir, index, cache_dir=jieba_cache)

    assert (again.ok, again.built, again.bot) == (True, False, None)
    assert again.version == again.previous == first.version
    renewed = read_marker(index)
    assert marker is not None and renewed is not None
    assert renewed.version == marker.version and renewed.generation != marker.generation
    changed = {k for k, v in _files(index.parent).items() if files.get(k) != v}
    assert changed == {"index.pkl.version"}


def test_thresholds_change_the_version_but_not_the_index(
    faq_dir: Path, tmp_path: Path, jieba_cache: Path
) -> None:
    index = tmp_path / "instance" / "index.pkl"
    first = rebuild(faq_dir, index, cache_dir=jieba_cache)
    index_bytes = index.read_bytes()
    (faq_dir / "thresholds.yaml").write_text("answer: 0.6\n", "utf-8")

    second = rebuild(faq_dir, index, cache_dir=jieba_cache)

    assert second.ok, second.errors
    assert second.version != first.version and second.snapshot != first.snapshot
    assert index.read_bytes() == index_bytes  # the index digest leaves thresholds out
    assert second.bot is not None and second.bot.bank.thresholds == {"answer": 0.6}


def test_only_the_newest_snapshots_are_kept(
    faq_dir: Path, tmp_path: Path, jieba_cache: Path
) -> None:
    index = tmp_path / "instance" / "index.pkl"
    versions = []
    for n in range(KEEP_SNAPSHOTS + 1):
        if n == KEEP_SNAPSHOTS:  # what a rebuild killed half-way leaves behind
            (index.parent / "reloads" / ".new-x4bq" / "faq.yaml").mkdir(parents=True)
        (faq_dir / "dict.txt").write_text(f"门前三包{n} 2000 n\n", "utf-8")
        versions.append(rebuild(faq_dir, index, cache_dir=jieba_cache).version)

    kept = {p.name for p in (index.parent / "reloads").iterdir()}
    assert kept == {v[:16] for v in versions[-KEEP_SNAPSHOTS:]}


# --- the command for operators -------------------------------------------------------


@pytest.fixture
def operator_env(faq_dir: Path, tmp_path: Path, jieba_cache: Path, monkeypatch) -> Path:
    """The environment an operator's shell has: the service's instance folder and bank."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XIAOCHENG_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("XIAOCHENG_FAQ_DIR", str(faq_dir))
    monkeypatch.setenv("XIAOCHENG_CACHE_DIR", str(jieba_cache))
    return tmp_path / "instance" / "index.pkl"


def test_reload_command_reports_what_it_built(operator_env: Path, capsys) -> None:
    assert reload_main([]) == 0
    first = read_marker(operator_env)
    assert first is not None
    snapshot = f"instance/reloads/{first.version[:16]}"
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"bank: 5 FAQs, 20 questions and alternates (version {first.version[:12]}, was none)"
    )
    assert out[1].startswith("index: built in ") and out[1].endswith(f" s into {snapshot}")
    assert out[2] == "running workers switch to it on their next request (checked every 1 s)"

    assert reload_main([]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"bank: 5 FAQs, 20 questions and alternates (version {first.version[:12]}, unchanged)",
        f"index: {snapshot} is current, reused",
    ]


def test_reload_command_prints_every_error_and_exits_1(
    operator_env: Path, faq_dir: Path, capsys
) -> None:
    _break(faq_dir)

    assert reload_main(["--faq", "faq"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "".join(f"Error: {line}\n" for line in BROKEN_ERRORS)
        + "nothing was reloaded: the service keeps its previous bank\n"
    )
    assert not operator_env.exists() and not marker_path(operator_env).exists()


# --- damaged snapshots ---------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _zero(path: Path) -> None:
    """Zero 64 bytes in the middle: same size, header intact."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


DAMAGES = [
    ("index.pkl", _truncate, "应为 {size} 字节，实为 {half} 字节"),
    ("index.pkl", _zero, "sha256 校验和不符"),
    ("street.yaml", _zero, "sha256 校验和不符"),
]


@pytest.mark.parametrize(
    ("name", "damage", "why"), DAMAGES, ids=["truncated-index", "zeroed-index", "zeroed-yaml"]
)
def test_rebuild_refuses_a_damaged_snapshot_and_keeps_the_live_index(
    faq_dir: Path,
    tmp_path: Path,
    jieba_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    name,
    damage,
    why,
) -> None:
    monkeypatch.chdir(tmp_path)
    index = Path("instance") / "index.pkl"
    first = rebuild(faq_dir, index, cache_dir=jieba_cache)
    assert first.ok and first.snapshot is not None
    live, marker = index.read_bytes(), marker_path(index).read_bytes()
    damaged = first.snapshot / name
    size = damaged.stat().st_size
    damage(damaged)

    result = rebuild(faq_dir, index, cache_dir=jieba_cache)  # the same bank: its snapshot

    assert not result.ok and result.damaged and result.bot is None
    shown = f"instance/reloads/{first.version[:16]}/{name}"
    assert result.errors[0].startswith(
        f"{shown}: 快照文件已损坏（{why.format(size=size, half=size // 2)}），不能使用；"
        "本次重新加载未发布，服务继续使用原题库。已把该快照移到 instance/reloads/.damaged-"
    )
    assert index.read_bytes() == live  # never copied over the live index
    assert marker_path(index).read_bytes() == marker  # nothing published
    assert not first.snapshot.exists()
    assert len(list(first.snapshot.parent.glob(f".damaged-{first.snapshot.name}-*"))) == 1

    again = rebuild(faq_dir, index, cache_dir=jieba_cache)  # builds the snapshot anew
    assert again.ok and again.built and again.snapshot == first.snapshot
    assert index.read_bytes() == (first.snapshot / "index.pkl").read_bytes()


def test_a_snapshot_damaged_before_the_copy_never_reaches_the_live_index(
    faq_dir: Path, tmp_path: Path, jieba_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes copied to the live index are the verified ones, whatever the moment."""
    index = tmp_path / "instance" / "index.pkl"
    assert rebuild(faq_dir, index, cache_dir=jieba_cache).ok
    live = index.read_bytes()
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    real_write_manifest = reload_module._write_manifest

    def write_then_damage(snapshot: Path) -> None:
        real_write_manifest(snapshot)
        _truncate(snapshot / "index.pkl")  # a disk fault between the build and the copy

    monkeypatch.setattr(reload_module, "_write_manifest", write_then_damage)
    result = rebuild(faq_dir, index, cache_dir=jieba_cache)
    assert not result.ok and result.damaged
    assert "index.pkl: 快照文件已损坏（应为" in result.errors[0]
    assert index.read_bytes() == live
    assert read_marker(index) is not None and read_marker(index).version != bank_version(
        load_bank(faq_dir)
    )


def test_reload_command_names_the_damaged_file_and_exits_1(operator_env: Path, capsys) -> None:
    assert reload_main([]) == 0
    marker = read_marker(operator_env)
    assert marker is not None
    live = operator_env.read_bytes()
    _zero(marker.index_path)
    capsys.readouterr()

    assert reload_main([]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0].startswith(
        f"Error: instance/reloads/{marker.version[:16]}/index.pkl: "
        "快照文件已损坏（sha256 校验和不符），不能使用；本次重新加载未发布"
    )
    assert lines[1:] == ["nothing was reloaded: the service keeps its previous bank"]
    assert operator_env.read_bytes() == live


def test_console_reload_of_a_damaged_snapshot_is_a_500_naming_the_file(
    make_app, faq_dir: Path
) -> None:
    app = make_app(ADMIN_PASSWORD_HASH=admin_tests.HASH)
    client = admin_tests.logged_in(app)
    token = admin_tests.token_of(client.get("/admin/bank").text)
    first = rebuild(faq_dir, app.config["INDEX_PATH"], cache_dir=app.config["CACHE_DIR"])
    assert first.snapshot is not None
    _truncate(first.snapshot / "index.pkl")

    response = client.post(
        "/admin/reload", headers={"X-CSRF-Token": token, "Accept": "application/json"}
    )
    assert response.status_code == 500
    body = response.get_json()
    assert body["ok"] is False and len(body["errors"]) == 1
    assert f"{first.snapshot.name}/index.pkl: 快照文件已损坏（应为" in body["errors"][0]
    response = client.post("/admin/reload", data={"csrf_token": token})
    assert response.status_code == 200  # moved aside the first time: built anew
    assert "题库已重新加载：5 条问答" in response.text


def test_a_worker_seeing_a_damaged_snapshot_keeps_its_bank_and_says_so_once(
    make_app, faq_dir: Path, caplog
) -> None:
    app = make_app()
    client = app.test_client()
    serving = app.extensions["xiaocheng"].bot
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    with watcher(app)._check_lock:  # no check while the reload publishes and the disk fails
        published = rebuild(faq_dir, app.config["INDEX_PATH"], cache_dir=app.config["CACHE_DIR"])
        assert published.snapshot is not None
        _zero(published.snapshot / "index.pkl")

    with caplog.at_level(logging.WARNING, logger="bot.reload"):
        for _ in range(6):  # over 1 s: several checks of the marker
            assert _faq_id(client) != "dog-leash"
            watcher(app).wait(60)
            time.sleep(0.25)
    assert app.extensions["xiaocheng"].bot is serving
    assert [r.getMessage() for r in caplog.records if r.name == "bot.reload"] == [
        f"hot reload: process {os.getpid()} keeps its current bank, cannot switch to version "
        f"{published.version[:12]}: {shown_path(published.snapshot / 'index.pkl')}: "
        "快照文件已损坏（sha256 校验和不符），不能使用"
    ]


# --- one app: the watcher -------------------------------------------------------------


def test_init_app_is_idempotent(make_app) -> None:
    app = make_app()
    hooks = list(app.before_request_funcs[None])
    init_app(app)
    assert app.before_request_funcs[None] == hooks


def test_app_switches_to_a_good_change_within_the_interval(make_app, faq_dir: Path) -> None:
    app = make_app()
    client = app.test_client()
    assert _faq_id(client) != "dog-leash"
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")

    result = rebuild(faq_dir, app.config["INDEX_PATH"], cache_dir=app.config["CACHE_DIR"])
    assert result.ok
    time.sleep(0.2)  # one check interval
    response = client.post("/api/ask", json={"q": DOG_Q})  # starts the load, is not held up
    assert response.status_code == 200
    assert watcher(app).loading or _faq_id(client) == "dog-leash"
    watcher(app).wait(60)

    assert _faq_id(client) == "dog-leash"
    assert _faq_id(client, "违章搭建怎么举报") == "building-report"


def test_workers_load_the_validated_bank_whatever_the_folder_holds_now(
    make_app, faq_dir: Path, caplog
) -> None:
    app = make_app()
    client = app.test_client()
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    assert rebuild(faq_dir, app.config["INDEX_PATH"], cache_dir=app.config["CACHE_DIR"]).ok
    _break(faq_dir)  # a curator saves a broken file before this worker loads
    (faq_dir / "dogs.yaml").unlink()

    time.sleep(0.2)
    client.get("/api/hot")
    watcher(app).wait(60)

    assert _faq_id(client) == "dog-leash"
    assert [r for r in caplog.records if r.name == "bot.reload"] == []


def test_reload_bank_serves_the_new_bank_in_the_calling_process_at_once(
    make_app, faq_dir: Path
) -> None:
    app = make_app(RELOAD_CHECK_INTERVAL_S=3600.0)
    client = app.test_client()
    assert _faq_id(client) != "dog-leash"  # the first request checks once; nothing to do
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")

    result = reload_bank(app)

    assert result.ok and result.built
    assert _faq_id(client) == "dog-leash"
    assert not watcher(app).loading


def test_reload_bank_after_an_undo_serves_the_earlier_snapshot_at_once(
    make_app, faq_dir: Path
) -> None:
    app = make_app(RELOAD_CHECK_INTERVAL_S=3600.0)
    client = app.test_client()
    assert reload_bank(app).built
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    assert reload_bank(app).built
    assert _faq_id(client) == "dog-leash"
    (faq_dir / "dogs.yaml").unlink()

    result = reload_bank(app)

    assert result.ok and not result.built
    assert _faq_id(client) != "dog-leash"


def test_a_broken_bank_changes_nothing_in_a_running_app(
    make_app, faq_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app()
    client = app.test_client()
    serving = app.extensions["xiaocheng"].bot
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    _break(faq_dir)

    result = reload_bank(app)

    assert result.errors == BROKEN_ERRORS
    time.sleep(0.2)
    assert _faq_id(client) != "dog-leash"
    assert not watcher(app).loading
    assert app.extensions["xiaocheng"].bot is serving


def test_a_failed_load_keeps_the_old_bank_until_the_next_reload(
    make_app, faq_dir: Path, caplog
) -> None:
    app = make_app()
    client = app.test_client()
    serving = app.extensions["xiaocheng"].bot
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    published = rebuild(faq_dir, app.config["INDEX_PATH"], cache_dir=app.config["CACHE_DIR"])
    assert published.snapshot is not None
    shutil.rmtree(published.snapshot)  # say, someone cleaning the instance folder

    time.sleep(0.2)
    with caplog.at_level(logging.ERROR, logger="bot.reload"):
        assert _faq_id(client) != "dog-leash"
        watcher(app).wait(60)
    assert app.extensions["xiaocheng"].bot is serving
    assert [r.getMessage() for r in caplog.records if r.name == "bot.reload"] == [
        f"hot reload: process {os.getpid()} keeps its current bank, cannot switch to "
        f"version {published.version[:12]}: {published.snapshot}: 快照文件夹不存在，不能使用"
    ]
    time.sleep(0.2)
    assert _faq_id(client) != "dog-leash"
    assert not watcher(app).loading  # that generation is not retried every second

    assert rebuild(faq_dir, app.config["INDEX_PATH"], cache_dir=app.config["CACHE_DIR"]).built
    time.sleep(0.2)
    client.get("/api/hot")
    watcher(app).wait(60)
    assert _faq_id(client) == "dog-leash"


def test_a_marker_older_than_the_app_is_ignored(make_app, faq_dir: Path, caplog) -> None:
    """The service restarted on a changed bank: the last reload's marker names an older one."""
    first = make_app()
    rebuild(faq_dir, first.config["INDEX_PATH"], cache_dir=first.config["CACHE_DIR"])
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    restarted = make_app()
    client = restarted.test_client()

    with caplog.at_level(logging.INFO, logger="bot.reload"):
        assert _faq_id(client) == "dog-leash"
        time.sleep(0.2)
        assert _faq_id(client) == "dog-leash"
        assert not watcher(restarted).loading
    assert [r for r in caplog.records if r.name == "bot.reload"] == []


# --- real gunicorn under load ----------------------------------------------------------


def tagged_app() -> Flask:
    """gunicorn's app for the test below: the real app, each reply naming its worker's pid."""
    app = create_app()
    inner = app.wsgi_app

    def wsgi_app(environ, start_response):
        pid = str(os.getpid())

        def start(status, headers, exc_info=None):
            return start_response(status, [*headers, ("X-Worker-Pid", pid)], exc_info)

        return inner(environ, start)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]
    return app


@dataclass(frozen=True)
class _Reply:
    at: float
    q: str
    pid: int
    faq_id: str | None


class _Load:
    """Threads asking questions on fresh loopback connections until stopped."""

    def __init__(self, port: int, *, threads: int, max_requests: int) -> None:
        self.port = port
        self.replies: list[_Reply] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._budget = max_requests
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def __enter__(self) -> _Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _run(self, n: int) -> None:
        questions = (DOG_Q, "违章搭建怎么举报")
        i = n
        while not self._stop.is_set():
            with self._lock:
                if self._budget <= 0:
                    return
                self._budget -= 1
            q = questions[i % 2]
            i += 1
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            try:
                body = json.dumps({"q": q, "session": "reload-test"})
                conn.request("POST", "/api/ask", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                if response.status != 200:
                    raise ValueError(f"status {response.status}: {data[:200]!r}")
                reply = json.loads(data)
                faq = reply["faq"]
                got = _Reply(
                    time.monotonic(),
                    q,
                    int(response.getheader("X-Worker-Pid", "0")),
                    faq["id"] if faq else None,
                )
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                with self._lock:
                    self.failures.append(f"{q}: {exc!r}")
                continue
            finally:
                conn.close()
            with self._lock:
                self.replies.append(got)

    def snapshot(self) -> list[_Reply]:
        with self._lock:
            return list(self.replies)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_reload_under_load_fails_no_request_and_reaches_every_worker(
    faq_dir: Path, tmp_path: Path, jieba_cache: Path
) -> None:
    instance = tmp_path / "instance"
    settings = {
        "INSTANCE_PATH": str(instance),
        "FAQ_DIR": str(faq_dir),
        "CACHE_DIR": str(jieba_cache),
        "RATELIMIT_ENABLED": "false",
    }
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(log_path, settings=settings, app="test_reload:tagged_app()") as (port, proc):
        workers = children(proc.pid)
        with _Load(port, threads=4, max_requests=20_000) as load:
            wait_for(
                lambda: {r.pid for r in load.snapshot()} >= workers, 15, "every worker to answer"
            )
            (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
            result = rebuild(faq_dir, instance / "index.pkl", cache_dir=jieba_cache)
            assert result.ok and result.built
            published = time.monotonic()

            def switched() -> set[int]:
                return {
                    r.pid for r in load.snapshot() if r.at > published and r.faq_id == "dog-leash"
                }

            wait_for(lambda: switched() >= workers, 25, "every worker to switch")
            time.sleep(0.5)  # a little more load on the new bank
        assert children(proc.pid) == workers  # no worker died or was replaced
    output = log_path.read_text("utf-8", "replace")

    replies = load.snapshot()
    assert load.failures == []
    assert len(replies) > 100
    assert "hot reload" not in output and "Traceback" not in output, output
    # Each worker answered from the old bank before the reload and only from the
    # new one soon after its first new answer (client threads record replies a
    # moment after reading them, hence the margin).
    for pid in workers:
        mine = [r for r in replies if r.pid == pid and r.q == DOG_Q]
        assert {r.faq_id for r in mine if r.at < published} - {"dog-leash"}
        first_new = min(r.at for r in mine if r.faq_id == "dog-leash")
        assert {r.faq_id for r in mine if r.at > first_new + 0.2} == {"dog-leash"}


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_gunicorn_workers_refuse_a_damaged_snapshot_once_and_keep_answering(
    faq_dir: Path, tmp_path: Path, jieba_cache: Path
) -> None:
    instance = tmp_path / "instance"
    settings = {
        "INSTANCE_PATH": str(instance),
        "FAQ_DIR": str(faq_dir),
        "CACHE_DIR": str(jieba_cache),
        "RATELIMIT_ENABLED": "false",
        "RELOAD_CHECK_INTERVAL_S": "0.2",
    }
    # The damaged snapshot is made elsewhere and published whole: no worker can load it first.
    (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
    elsewhere = tmp_path / "elsewhere" / "index.pkl"
    made = rebuild(faq_dir, elsewhere, cache_dir=jieba_cache)
    assert made.ok and made.snapshot is not None
    (faq_dir / "dogs.yaml").unlink()
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(log_path, settings=settings, app="test_reload:tagged_app()") as (port, proc):
        workers = children(proc.pid)
        live = (instance / "index.pkl").read_bytes()
        snapshot = instance / "reloads" / made.snapshot.name
        shutil.copytree(made.snapshot, snapshot)
        _truncate(snapshot / "index.pkl")
        shutil.copyfile(marker_path(elsewhere), marker_path(instance / "index.pkl"))
        with _Load(port, threads=3, max_requests=600) as load:
            wait_for(lambda: len(load.snapshot()) + len(load.failures) >= 600, 60, "600 replies")
        replies = load.snapshot()
        assert load.failures == []
        assert {r.pid for r in replies} == workers
        assert {r.faq_id for r in replies if r.q == DOG_Q} - {"dog-leash"}
        assert "dog-leash" not in {r.faq_id for r in replies}
        assert (instance / "index.pkl").read_bytes() == live

        # An operator's reload of that bank is refused and names the file; the next one works.
        (faq_dir / "dogs.yaml").write_text(DOGS_YAML, "utf-8")
        refused = rebuild(faq_dir, instance / "index.pkl", cache_dir=jieba_cache)
        assert not refused.ok and refused.damaged
        assert f"{snapshot}/index.pkl: 快照文件已损坏（应为" in refused.errors[0]
        assert (instance / "index.pkl").read_bytes() == live
        assert rebuild(faq_dir, instance / "index.pkl", cache_dir=jieba_cache).built
        with _Load(port, threads=3, max_requests=10_000) as load:
            wait_for(
                lambda: {r.pid for r in load.snapshot() if r.faq_id == "dog-leash"} >= workers,
                25,
                "every worker to switch",
            )
        assert load.failures == []
        assert children(proc.pid) == workers
    output = log_path.read_text("utf-8", "replace")
    refusals = [line for line in output.splitlines() if "keeps its current bank" in line]
    assert len(refusals) == len(workers), output  # once per worker, not per request
    assert all("index.pkl: 快照文件已损坏（应为" in line for line in refusals)
    assert "Traceback" not in output
    print(
        f"damaged snapshot under gunicorn: {len(replies)} asks, all 200; {len(refusals)} log lines"
    )
