"""Make the analyst console's password hash: ``python -m bot admin-password``
(``python -m bot.admin_password`` too).

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
from typing import Any

from werkzeug.security import generate_password_hash

from ..errors import XiaochengError

__all__ = ["MIN_LENGTH", "hash_line", "register"]

MIN_LENGTH = 10


def hash_line(password: str) -> str:
    """The ``config.toml`` line holding a hash of ``password``."""
    return f'ADMIN_PASSWORD_HASH = "{generate_password_hash(password)}"'


def cmd_admin_password(args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("后台密码 / password: ")
        again = getpass.getpass("再输入一次 / again: ")
        if password != again:
            raise XiaochengError("the two passwords differ")
    if len(password) < MIN_LENGTH:
        raise XiaochengError(f"the password needs at least {MIN_LENGTH} characters")
    print(hash_line(password))
    return 0


def register(sub: Any) -> None:
    """Add admin-password to the subcommands ``sub``."""
    p = sub.add_parser(
        "admin-password",
        help="print the analyst console's ADMIN_PASSWORD_HASH line",
        description="Print the ADMIN_PASSWORD_HASH line for instance/config.toml.",
    )
    p.add_argument(
        "--stdin", action="store_true", help="read the password from the first line of stdin"
    )
    p.set_defaults(func=cmd_admin_password)
