"""Make the analyst console's password hash: ``python -m bot.admin_password``.

Asks for the password twice (without echo) and prints the line to put in
``instance/config.toml``::

    ADMIN_PASSWORD_HASH = "scrypt:32768:8:1$..."

``--stdin`` reads the password from the first line of standard input instead,
for scripts. The password itself is never stored or printed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from werkzeug.security import generate_password_hash

__all__ = ["MIN_LENGTH", "hash_line", "main"]

MIN_LENGTH = 10


def hash_line(password: str) -> str:
    """The ``config.toml`` line holding a hash of ``password``."""
    return f'ADMIN_PASSWORD_HASH = "{generate_password_hash(password)}"'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.admin_password",
        description="Print the ADMIN_PASSWORD_HASH line for instance/config.toml.",
    )
    parser.add_argument(
        "--stdin", action="store_true", help="read the password from the first line of stdin"
    )
    args = parser.parse_args(argv)
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("后台密码 / password: ")
        again = getpass.getpass("再输入一次 / again: ")
        if password != again:
            print("Error: the two passwords differ", file=sys.stderr)
            return 1
    if len(password) < MIN_LENGTH:
        print(f"Error: the password needs at least {MIN_LENGTH} characters", file=sys.stderr)
        return 1
    print(hash_line(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
