"""compose.yaml: two nodes, PostgreSQL, Redis and nginx, set with the service's real settings.

Docker is not run here; the file is parsed and its names are checked against
the settings the code reads, so a renamed setting cannot leave it behind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from bot.config import DEFAULTS, ENV_PREFIX, load_settings

ROOT = Path(__file__).resolve().parent.parent
# Read outside load_settings: gunicorn.conf.py and the instance folder's resolver.
OUTSIDE_SETTINGS = {"BIND", "WORKERS", "ACCESS_LOG", "LOG_LEVEL", "INSTANCE_PATH"}
DERIVED = {"DATABASE_URL", "INDEX_PATH"}  # defaults made from the instance folder
# Settings every node must give the same value (README, "Several nodes").
EQUAL = (
    "BANK_SHARED",
    "DATABASE_URL",
    "RATELIMIT_STORAGE_URI",
    "SECRET_KEY",
    "ADMIN_PASSWORD_HASH",
    "TRUST_PROXY",
)
NODES = ("node1", "node2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
    return data


def _environment(compose: dict[str, Any], service: str) -> dict[str, str]:
    env = compose["services"][service]["environment"]
    # ${NAME:?message} is filled in by compose from the operator's shell.
    return {k: re.sub(r"\$\{(\w+):\?[^}]*\}", r"value of \1", str(v)) for k, v in env.items()}


def test_it_starts_two_nodes_postgresql_redis_and_a_proxy(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {*NODES, "db", "redis", "proxy"}
    for node in NODES:
        assert compose["services"][node]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()
    assert compose["services"]["proxy"]["image"].startswith("nginx:")


def test_every_node_setting_is_one_the_service_reads(compose: dict[str, Any], tmp_path) -> None:
    known = set(DEFAULTS) | DERIVED | OUTSIDE_SETTINGS
    for node in NODES:
        env = _environment(compose, node)
        names = {k.removeprefix(ENV_PREFIX) for k in env if k.startswith(ENV_PREFIX)}
        assert names == {k.removeprefix(ENV_PREFIX) for k in env}, "only XIAOCHENG_* settings"
        assert names - known == set()
        # Each converts to its setting's type, and shared banks get what they need.
        settings = load_settings(tmp_path, environ=env)
        assert settings["BANK_SHARED"] is True and settings["TRUST_PROXY"] == 1
        assert sa.make_url(settings["DATABASE_URL"]).get_backend_name() == "postgresql"
        assert settings["RATELIMIT_STORAGE_URI"].startswith("redis://")


def test_the_settings_that_must_be_equal_are_equal(compose: dict[str, Any]) -> None:
    first, second = (_environment(compose, node) for node in NODES)
    for name in EQUAL:
        assert first[ENV_PREFIX + name] == second[ENV_PREFIX + name], name


def test_the_shared_services_are_the_ones_the_nodes_name(compose: dict[str, Any]) -> None:
    env = _environment(compose, "node1")
    url = sa.make_url(env["XIAOCHENG_DATABASE_URL"])
    db = compose["services"]["db"]["environment"]
    assert (url.host, url.database, url.username, url.password) == (
        "db",
        db["POSTGRES_DB"],
        db["POSTGRES_USER"],
        db["POSTGRES_PASSWORD"],
    )
    assert env["XIAOCHENG_RATELIMIT_STORAGE_URI"] == "redis://redis:6379"
    port = env["XIAOCHENG_BIND"].rsplit(":", 1)[1]

    # The proxy's configuration is mounted from the repository and reaches both nodes.
    mounts = [v.split(":") for v in compose["services"]["proxy"]["volumes"]]
    (conf,) = [ROOT / source for source, target, *_ in mounts if target.startswith("/etc/nginx")]
    text = conf.read_text("utf-8")
    assert {f"server {node}:{port}" for node in NODES} <= set(re.findall(r"server \S+", text))
    assert "X-Forwarded-For" in text and "X-Forwarded-Proto" in text
