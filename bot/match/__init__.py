"""Matching: text pipeline, TF-IDF index, matcher, hints and the engine (Bank → Bot.ask → Reply)."""

from .engine import Bot, Reply

__all__ = ["Bot", "Reply"]
