"""Settings are layered: defaults, instance file, XIAOCHENG_* variables, overrides."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bot.config import DEFAULT_INSTANCE_PATH, DEFAULTS, ConfigError, instance_path, load_settings


def _write_config(instance: Path, text: str) -> None:
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "config.toml").write_text(text, encoding="utf-8")


def test_defaults(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings["MAX_QUESTION_CHARS"] == 200
    assert settings["MAX_CONTENT_LENGTH"] == 4096
    assert settings["RATELIMIT_ENABLED"] is True
    assert settings["RATELIMIT_STORAGE_URI"] == "memory://"
    assert settings["RATELIMIT_ASK"] == "30/minute;600/hour"
    assert settings["CORS_ORIGINS"] == []
    assert settings["TRUST_PROXY"] == 0
    assert settings["ADMIN_PASSWORD_HASH"] is None
    assert settings["INDEX_PATH"] == str(tmp_path / "index.pkl")
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'querylog.db'}"
    assert Path(settings["FAQ_DIR"]) == Path(__file__).resolve().parent.parent / "faq"


def test_defaults_are_not_shared_between_calls(tmp_path):
    first = load_settings(tmp_path, environ={})
    first["CORS_ORIGINS"].append("https://evil.example")
    assert load_settings(tmp_path, environ={})["CORS_ORIGINS"] == []
    assert DEFAULTS["CORS_ORIGINS"] == []


def test_layers_override_in_order(tmp_path):
    _write_config(
        tmp_path,
        'max_question_chars = 150\nRATELIMIT_ASK = "5/minute"\n'
        'cors_origins = ["https://file.example"]\nfaq_dir = "/from/file"\n',
    )
    environ = {
        "XIAOCHENG_RATELIMIT_ASK": "7/minute",
        "XIAOCHENG_CORS_ORIGINS": "https://a.example, https://b.example,",
        "XIAOCHENG_FAQ_DIR": "/from/env",
        "OTHER_MAX_QUESTION_CHARS": "1",
    }
    settings = load_settings(tmp_path, {"faq_dir": "/from/mapping"}, environ=environ)
    assert settings["MAX_QUESTION_CHARS"] == 150  # file over default
    assert settings["RATELIMIT_ASK"] == "7/minute"  # environment over file
    assert settings["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert settings["FAQ_DIR"] == "/from/mapping"  # mapping over environment


def test_environment_values_are_typed(tmp_path):
    environ = {
        "XIAOCHENG_MAX_QUESTION_CHARS": " 120 ",
        "XIAOCHENG_RATELIMIT_ENABLED": "off",
        "XIAOCHENG_TRUST_PROXY": "1",
        "XIAOCHENG_ADMIN_PASSWORD_HASH": "scrypt:32768:8:1$abc$def",
        "XIAOCHENG_SOMETHING_NEW": "text",
    }
    settings = load_settings(tmp_path, environ=environ)
    assert settings["MAX_QUESTION_CHARS"] == 120
    assert settings["RATELIMIT_ENABLED"] is False
    assert settings["TRUST_PROXY"] == 1
    assert settings["ADMIN_PASSWORD_HASH"] == "scrypt:32768:8:1$abc$def"
    assert settings["SOMETHING_NEW"] == "text"


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        (
            "XIAOCHENG_MAX_QUESTION_CHARS",
            "lots",
            "environment variable XIAOCHENG_MAX_QUESTION_CHARS: 'lots' is not an integer",
        ),
        (
            "XIAOCHENG_RATELIMIT_ENABLED",
            "maybe",
            "environment variable XIAOCHENG_RATELIMIT_ENABLED: "
            "'maybe' is not a boolean (use true or false)",
        ),
    ],
)
def test_bad_environment_value(tmp_path, var, value, message):
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path, environ={var: value})
    assert str(excinfo.value) == message


def test_bad_file_value_type(tmp_path):
    _write_config(tmp_path, 'max_content_length = "big"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path, environ={})
    assert str(excinfo.value) == (
        f"{tmp_path / 'config.toml'}: max_content_length should be an integer, not str"
    )


def test_bad_file_syntax(tmp_path):
    _write_config(tmp_path, "max_content_length = \n")
    with pytest.raises(ConfigError, match=r"config\.toml: .*line 1"):
        load_settings(tmp_path, environ={})


def test_secret_key_generated_once_and_kept_private(tmp_path):
    instance = tmp_path / "instance"
    first = load_settings(instance, environ={})["SECRET_KEY"]
    assert len(first) == 64
    assert load_settings(instance, environ={})["SECRET_KEY"] == first
    key_file = instance / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in instance.iterdir()) == ["secret_key"]


def test_secret_key_from_environment_is_not_stored(tmp_path):
    settings = load_settings(tmp_path, environ={"XIAOCHENG_SECRET_KEY": "from-env"})
    assert settings["SECRET_KEY"] == "from-env"
    assert not (tmp_path / "secret_key").exists()


def test_secret_key_same_for_concurrent_workers(tmp_path):
    instance = tmp_path / "instance"
    keys: list[str] = []
    barrier = threading.Barrier(8)

    def start_worker() -> None:
        barrier.wait()
        keys.append(load_settings(instance, environ={})["SECRET_KEY"])

    threads = [threading.Thread(target=start_worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1


def test_empty_secret_key_file(tmp_path):
    (tmp_path / "secret_key").write_text("\n", encoding="ascii")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path, environ={})
    assert str(excinfo.value) == (
        f"{tmp_path / 'secret_key'} is empty; delete it to generate a new secret key"
    )


def test_instance_folder_unusable(tmp_path):
    instance = tmp_path / "instance"
    instance.write_text("not a folder", encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(instance, environ={})
    assert str(excinfo.value) == f"{instance / 'config.toml'}: Not a directory"


def test_secret_key_cannot_be_kept(tmp_path):
    (tmp_path / "secret_key").mkdir()
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path, environ={})
    assert str(excinfo.value) == (
        f"cannot keep a generated secret key in {tmp_path / 'secret_key'} (Is a directory); "
        "set XIAOCHENG_SECRET_KEY instead"
    )


def test_reads_process_environment_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XIAOCHENG_SUGGEST_LIMIT", "3")
    assert load_settings(tmp_path)["SUGGEST_LIMIT"] == 3


def test_instance_path(tmp_path):
    assert DEFAULT_INSTANCE_PATH == Path(__file__).resolve().parent.parent / "instance"
    assert instance_path(environ={}) == DEFAULT_INSTANCE_PATH
    environ = {"XIAOCHENG_INSTANCE_PATH": str(tmp_path / "env")}
    assert instance_path(environ=environ) == tmp_path / "env"
    assert instance_path(tmp_path / "given", environ=environ) == tmp_path / "given"
