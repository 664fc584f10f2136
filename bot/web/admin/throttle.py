"""Failed console logins, counted where every worker and node sees them: :class:`LoginThrottle`.

The counts live in the limiter's storage (``RATELIMIT_STORAGE_URI``, through
the ``limits`` library): with Redis they are shared by all workers and nodes;
with ``memory://`` each worker process counts on its own. While a shared
storage is unreachable, each process counts in its own memory meanwhile and
says so in the log; the next call tries the shared storage again.

The rule, for the client address and for the account (the console has one
password, so one account, whatever address the attempts come from):

- a failed login counts against both; ``ADMIN_LOGIN_FAILURES_PER_ADDRESS``
  failures from one address, or ``ADMIN_LOGIN_FAILURES_PER_ACCOUNT`` from any
  addresses, within ``ADMIN_LOGIN_FAILURE_WINDOW_S`` seconds of the first one
  lock that address, or the account, out (0 turns that count off);
- a lockout lasts ``ADMIN_LOGIN_LOCKOUT_S`` seconds; each further lockout that
  starts less than a window after the previous one ended lasts twice as long
  as the one before, at most ``ADMIN_LOGIN_LOCKOUT_MAX_S``;
- during a lockout every login attempt is refused at once, without looking
  at the password; when it ends the failures are forgotten and the right
  password works again. Nothing locks anyone out for longer than the maximum.

A successful login forgets the failures of its address (not the account's).
Nothing here sleeps: a refusal is an answer, never a wait in a worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from limits.storage import MemoryStorage, Storage, storage_from_string

from bot.config import ConfigError

__all__ = ["ACCOUNT", "LoginThrottle"]

#: The one console account the failures of all addresses count against.
ACCOUNT = "admin"

_log = logging.getLogger(__name__)
T = TypeVar("T")


class LoginThrottle:
    """Failure counts and lockouts per client address and for the account."""

    def __init__(
        self,
        storage_uri: str,
        *,
        per_address: int,
        per_account: int,
        window_s: int,
        lockout_s: int,
        lockout_max_s: int,
        key_prefix: str = "",
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        shared = storage_from_string(storage_uri, **dict(storage_options or {}))
        if not isinstance(shared, Storage):
            raise ConfigError(f"RATELIMIT_STORAGE_URI {storage_uri!r} is an asynchronous storage")
        self._shared = shared
        self._errors: type[Exception] | tuple[type[Exception], ...] = self._shared.base_exceptions
        self._memory = MemoryStorage()
        self._down = False
        self._limits = {"address": per_address, "account": per_account}
        self._window_s = max(1, int(window_s))
        self._lockout_s = max(1, int(lockout_s))
        self._lockout_max_s = max(self._lockout_s, int(lockout_max_s))
        self._prefix = f"{key_prefix}xiaocheng-door"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LoginThrottle:
        """The throttle the app's settings describe."""
        return cls(
            config["RATELIMIT_STORAGE_URI"],
            per_address=config["ADMIN_LOGIN_FAILURES_PER_ADDRESS"],
            per_account=config["ADMIN_LOGIN_FAILURES_PER_ACCOUNT"],
            window_s=config["ADMIN_LOGIN_FAILURE_WINDOW_S"],
            lockout_s=config["ADMIN_LOGIN_LOCKOUT_S"],
            lockout_max_s=config["ADMIN_LOGIN_LOCKOUT_MAX_S"],
            key_prefix=config.get("RATELIMIT_KEY_PREFIX") or "",
            storage_options=config.get("RATELIMIT_STORAGE_OPTIONS"),
        )

    def locked_for(self, address: str | None) -> float:
        """Seconds left of a lockout on ``address`` or on the account; 0 when none."""
        left = 0.0
        for who in self._counted(address):
            lock = self._key("lock", who)
            if self._get(lock) > 0:
                left = max(left, self._expiry(lock) - time.time(), 1.0)
        return left

    def failed(self, address: str | None) -> float:
        """Count a failed login; return the seconds of the lockout it starts (0: none)."""
        started = 0.0
        for who in self._counted(address):
            count = self._incr(self._key("fail", who), self._window_s)
            # Exactly one request reaches the limit (the increment is atomic), so
            # concurrent failures start one lockout, not several.
            if count == self._limits[who.partition(":")[0]]:
                started = max(started, self._lock(who))
        return started

    def succeeded(self, address: str | None) -> None:
        """Forget the failures of ``address`` after a successful login."""
        self._clear(self._key("fail", f"address:{address}"))

    # -- inside --------------------------------------------------------------

    def _counted(self, address: str | None) -> list[str]:
        """Who a login attempt from ``address`` counts against, among the counts turned on."""
        who = [f"address:{address}", f"account:{ACCOUNT}"]
        return [w for w in who if self._limits[w.partition(":")[0]] > 0]

    def _lock(self, who: str) -> float:
        """Lock ``who`` out for the next lockout of its series; return its length."""
        level_key = self._key("level", who)
        level = self._get(level_key) + 1
        seconds = min(self._lockout_s * 2 ** min(level - 1, 30), self._lockout_max_s)
        self._incr(self._key("lock", who), seconds)
        # The series is remembered until a window has passed after this lockout.
        self._clear(level_key)
        self._incr(level_key, seconds + self._window_s, amount=level)
        self._clear(self._key("fail", who))
        _log.warning("admin: %s locked out of the console for %d s", who, seconds)
        return float(seconds)

    def _key(self, kind: str, who: str) -> str:
        return f"{self._prefix}/{kind}/{who}"

    def _get(self, key: str) -> int:
        return self._call(lambda storage: storage.get(key))

    def _expiry(self, key: str) -> float:
        return self._call(lambda storage: storage.get_expiry(key))

    def _incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._call(lambda storage: storage.incr(key, expiry, amount))

    def _clear(self, key: str) -> None:
        self._call(lambda storage: storage.clear(key))

    def _call(self, op: Callable[[Storage], T]) -> T:
        """``op`` on the shared storage; on this process's memory while that is unreachable."""
        try:
            result = op(self._shared)
        except self._errors as e:
            if not self._down:
                _log.warning(
                    "admin: the login throttle's storage is unreachable (%s); "
                    "counting failed logins in this process meanwhile",
                    e,
                )
            self._down = True
            return op(self._memory)
        if self._down:
            _log.warning("admin: the login throttle's storage answers again")
            self._down = False
        return result
