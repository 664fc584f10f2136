"""Load the service settings in layers, without any web framework.

The layers, each overriding the one before:

1. the defaults below (``DEFAULTS`` plus paths derived from the instance folder);
2. ``<instance>/config.toml`` if it exists (top-level keys, any case);
3. ``XIAOCHENG_<KEY>`` environment variables, converted to the type of the
   default: integers, numbers, booleans (``1/true/yes/on`` or ``0/false/no/off``) and
   lists (comma-separated);
4. the ``overrides`` mapping (tests pass theirs here), taken as is.

A ``SECRET_KEY`` that no layer sets is generated once and kept in
``<instance>/secret_key`` (git-ignored with the rest of the instance folder),
except with ``BANK_SHARED`` on: several nodes need one key, so it must be set
(a :class:`ConfigError` otherwise). Both the web app and the command line call
:func:`load_settings`.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from bot.errors import XiaochengError

__all__ = [
    "CHINA_TIME",
    "CHINA_UTC_OFFSET_MINUTES",
    "DEFAULTS",
    "DEFAULT_INSTANCE_PATH",
    "ENV_PREFIX",
    "ConfigError",
    "instance_path",
    "load_settings",
]

ENV_PREFIX = "XIAOCHENG_"
#: The bureau's time zone: days in the console and the report are China-time days.
CHINA_UTC_OFFSET_MINUTES = 480
CHINA_TIME = timezone(timedelta(minutes=CHINA_UTC_OFFSET_MINUTES), "CST")
_REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_PATH = _REPO_ROOT / "instance"
_CONFIG_FILE = "config.toml"
_SECRET_FILE = "secret_key"

#: Settings whose default does not depend on the instance folder.
DEFAULTS: dict[str, Any] = {
    "FAQ_DIR": str(_REPO_ROOT / "faq"),
    # The widget's files: widget.js, its styles and images, and the demo page.
    "WIDGET_DIR": str(_REPO_ROOT / "widget"),
    # Origins (scheme://host[:port]) of portals allowed to call the API from a browser.
    "CORS_ORIGINS": [],
    "RATELIMIT_ENABLED": True,
    # memory:// counts per worker process; use e.g. redis://127.0.0.1:6379 to share
    # the counts between workers and nodes.
    "RATELIMIT_STORAGE_URI": "memory://",
    # When that storage is unreachable, count in memory per process meanwhile
    # rather than fail the request (Flask-Limiter's own settings).
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_SWALLOW_ERRORS": True,
    "RATELIMIT_ASK": "30/minute;600/hour",
    "RATELIMIT_FEEDBACK": "20/minute;200/hour",
    # Number of reverse proxies in front of the service whose X-Forwarded-* headers
    # are trusted (0: use the socket's address as the client address).
    "TRUST_PROXY": 0,
    # Internal traffic (tests, monitoring probes): questions from these address ranges
    # (CIDR, e.g. 10.0.0.0/8), or with the header INTERNAL_HEADER names (any value;
    # empty: none), are answered as usual but logged as internal and left out of every
    # chart, list, cluster, suggestion, spike, report and CSV export of the console.
    "INTERNAL_NETWORKS": [],
    "INTERNAL_HEADER": "",
    "MAX_QUESTION_CHARS": 200,
    "MAX_COMMENT_CHARS": 500,
    "MAX_CONTENT_LENGTH": 4096,
    "SUGGEST_LIMIT": 8,
    # How often (seconds) each worker looks for a bank published by a reload.
    "RELOAD_CHECK_INTERVAL_S": 1.0,
    # Several nodes: a reload on any node publishes the bank through DATABASE_URL
    # (PostgreSQL, shared by all nodes) and every node serves it; each node's FAQ
    # folder is read only by its own reloads. Needs the same SECRET_KEY on every node.
    "BANK_SHARED": False,
    # python -m bot fit: the highest wrong-answer rate and rate of out-of-remit
    # questions answered the fitted thresholds may give on the 'fit' half.
    "FIT_MAX_WRONG": 0.02,
    "FIT_MAX_OUT_ANSWERED": 0.03,
    # The same caps for real citizen messages (a folder or .tsv of message labels):
    # their targets allow more wrong answers than bank-style questions do.
    "FIT_MAX_WRONG_MESSAGES": 0.04,
    "FIT_MAX_OUT_ANSWERED_MESSAGES": 0.03,
    "HOT_LIMIT": 6,
    # Seconds browsers may cache the widget's static files and the read-only API.
    "STATIC_MAX_AGE": 300,
    "API_MAX_AGE": 60,
    # jieba's dictionary cache (default: the instance folder).
    "CACHE_DIR": None,
    # How long feedback waits for its question to reach the database from another
    # worker's query-log queue before the query id is declared unknown.
    "QUERYLOG_FEEDBACK_GRACE_S": 0.5,
    # Days a logged question is kept; ``python -m bot purge`` deletes older ones.
    "LOG_RETENTION_DAYS": 180,
    # Folder of the query log's outbox files, where each worker keeps its rows until
    # the database has them (default: outbox/ in the instance folder; keep it on a
    # local disk, one folder per node).
    "QUERYLOG_OUTBOX_DIR": None,
    # Unanswered-question clusters (console and ``python -m bot report``): an answer
    # scoring below CLUSTER_LOW_SCORE counts as low-confidence; the CLUSTER_MAX_ROWS
    # distinct questions asked most often are clustered, each with its count (2,000
    # texts cluster in about 0.1 s, 5,000 in 0.3 s); a question joins a cluster from cosine
    # CLUSTER_THRESHOLD to its leader; from CLUSTER_ALTERNATE_MIN_SCORE the nearest FAQ
    # is proposed for the cluster's questions as alternates, below it a new entry.
    "CLUSTER_LOW_SCORE": 0.5,
    "CLUSTER_MAX_ROWS": 2000,
    "CLUSTER_THRESHOLD": 0.4,
    "CLUSTER_ALTERNATE_MIN_SCORE": 0.4,
    # GET /api/hot, /api/suggest, /api/faq/<id> and /api/openapi.json, per client
    # address and route (/healthz is not limited). Every RATELIMIT_* limit is shared
    # by all workers and nodes with a Redis storage, and counted per worker with
    # memory://. RATELIMIT_KEY_PREFIX starts every key the limits and the login
    # lockout keep in that storage (Flask-Limiter's setting; tests use their own).
    "RATELIMIT_READ": "120/minute",
    "RATELIMIT_KEY_PREFIX": "",
    # Analyst console: login lifetime, login throttling, page sizes, longest date range.
    "ADMIN_SESSION_HOURS": 8,
    # Login attempts (right or wrong) per client address, in the limiter's storage.
    "ADMIN_LOGIN_RATELIMIT": "5/minute;30/hour",
    # Lockout after failed logins (bot/web/admin/throttle.py), counted in the
    # limiter's storage: this many failures per client address, or for the account
    # from any addresses, within the window lock it out for ADMIN_LOGIN_LOCKOUT_S,
    # doubling for each lockout that follows within a window, at most
    # ADMIN_LOGIN_LOCKOUT_MAX_S; then the failures are forgotten (0: no such count).
    "ADMIN_LOGIN_FAILURES_PER_ADDRESS": 5,
    "ADMIN_LOGIN_FAILURES_PER_ACCOUNT": 20,
    "ADMIN_LOGIN_FAILURE_WINDOW_S": 900,
    "ADMIN_LOGIN_LOCKOUT_S": 60,
    "ADMIN_LOGIN_LOCKOUT_MAX_S": 3600,
    "ADMIN_PAGE_SIZE": 50,
    "ADMIN_CLUSTERS_SHOWN": 50,
    "ADMIN_MAX_DAYS": 366,
    # A worker's first console request prepares the dashboard's year and the
    # suggestions in the background (bot/web/admin/warm.py); false: the pages do it.
    "ADMIN_WARM": True,
    # Largest body of the FAQ editor's forms and of an uploaded workbook (bytes).
    "ADMIN_MAX_FORM_BYTES": 2_000_000,
    # Send the console's session cookie over HTTPS only (set true behind TLS).
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # Hash (werkzeug.security.generate_password_hash) of the analyst console password.
    "ADMIN_PASSWORD_HASH": None,
    "SECRET_KEY": None,
}


class ConfigError(XiaochengError):
    """A setting has a value that cannot be used (raised at start-up, never per request)."""


def instance_path(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Path:
    """Return the instance folder: ``path``, else ``$XIAOCHENG_INSTANCE_PATH``, else
    ``instance/`` in the repository; absolute, not necessarily existing."""
    env = os.environ if environ is None else environ
    return Path(path or env.get(f"{ENV_PREFIX}INSTANCE_PATH") or DEFAULT_INSTANCE_PATH).resolve()


def load_settings(
    instance_path: str | os.PathLike[str],
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the settings for the instance folder ``instance_path``, layered as above.

    ``environ`` defaults to ``os.environ``. The instance folder is created when
    the secret key has to be generated.
    """
    instance = Path(instance_path)
    settings = _defaults(instance)
    settings.update(_from_file(instance / _CONFIG_FILE, settings))
    settings.update(_from_env(os.environ if environ is None else environ, settings))
    settings.update({key.upper(): value for key, value in (overrides or {}).items()})
    if not settings.get("SECRET_KEY"):
        if settings.get("BANK_SHARED"):
            raise ConfigError(
                f"BANK_SHARED is on: set {ENV_PREFIX}SECRET_KEY (or SECRET_KEY in "
                f"{instance / _CONFIG_FILE}) to the same value on every node"
            )
        settings["SECRET_KEY"] = _stored_secret_key(instance)
    return settings


def _defaults(instance: Path) -> dict[str, Any]:
    settings = {
        key: list(value) if isinstance(value, list) else value for key, value in DEFAULTS.items()
    }
    settings["INDEX_PATH"] = str(instance / "index.pkl")
    settings["DATABASE_URL"] = f"sqlite:///{instance.resolve() / 'querylog.db'}"
    return settings


def _from_file(path: Path, current: Mapping[str, Any]) -> dict[str, Any]:
    """Read the instance TOML file; values must already have the right type."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    settings = {}
    for key, value in data.items():
        name = key.upper()
        expected = current.get(name)
        if expected is not None and not _same_kind(expected, value):
            raise ConfigError(
                f"{path}: {key} should be {_kind(expected)}, not {type(value).__name__}"
            )
        settings[name] = value
    return settings


def _from_env(environ: Mapping[str, str], current: Mapping[str, Any]) -> dict[str, Any]:
    settings = {}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var == ENV_PREFIX:
            continue
        name = var[len(ENV_PREFIX) :].upper()
        try:
            settings[name] = _convert(raw, current.get(name))
        except ValueError as e:
            raise ConfigError(f"environment variable {var}: {e}") from None
    return settings


def _convert(raw: str, default: Any) -> Any:
    """Convert the text ``raw`` to the type of ``default`` (text when it has none)."""
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word in {"1", "true", "yes", "on"}:
            return True
        if word in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"{raw!r} is not a boolean (use true or false)")
    if isinstance(default, int):
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not an integer") from None
    if isinstance(default, float):
        try:
            return float(raw.strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _same_kind(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool)
    if isinstance(expected, int):
        return isinstance(value, int)
    if isinstance(expected, float):
        return isinstance(value, int | float)
    if isinstance(expected, list):
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, str)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, list):
        return "a list of strings"
    return "a string"


def _stored_secret_key(instance: Path) -> str:
    """Return the key kept in the instance folder, creating it on first use.

    Several worker processes may start at once: the key is written to a private
    temporary file and linked into place, so exactly one of them wins and the
    others read the winner's key.
    """
    path = instance / _SECRET_FILE
    try:
        try:
            return _read_secret(path)
        except FileNotFoundError:
            pass
        instance.mkdir(parents=True, exist_ok=True)
        tmp = instance / f".{_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return _read_secret(path)
    except OSError as e:
        raise ConfigError(
            f"cannot keep a generated secret key in {path} ({e.strerror}); "
            f"set {ENV_PREFIX}SECRET_KEY instead"
        ) from None


def _read_secret(path: Path) -> str:
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise ConfigError(f"{path} is empty; delete it to generate a new secret key")
    return key
