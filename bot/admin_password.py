"""``python -m bot.admin_password``: the same as ``python -m bot admin-password``."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main(["admin-password", *sys.argv[1:]]))
