"""The command line: ``python -m bot ask|lint|eval|fit|export|import|report|purge|reload``."""

from .main import main

__all__ = ["main"]
