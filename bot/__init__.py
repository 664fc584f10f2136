"""智能小城: a rule-based FAQ chatbot for a city urban-management bureau portal.

The engine (bank, text pipeline, index, matcher) never imports Flask; the web
layer lives in ``bot.web``.
"""

from .bank import Bank, Faq, load_bank
from .errors import BankError, IndexArtifactError, QueryLogError, UnknownQuery, XiaochengError
from .match.engine import Bot, Reply

__all__ = [
    "Bank",
    "BankError",
    "Bot",
    "Faq",
    "IndexArtifactError",
    "QueryLogError",
    "Reply",
    "UnknownQuery",
    "XiaochengError",
    "load_bank",
]
