"""``python -m bot``: see :mod:`bot.cli.main`."""

from .cli import main

raise SystemExit(main())
