"""``python -m bot.admin_password``: see :mod:`bot.cli.admin_password`."""

from bot.cli.admin_password import main

if __name__ == "__main__":
    raise SystemExit(main())
