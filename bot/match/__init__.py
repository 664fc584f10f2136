"""Matching: text pipeline, TF-IDF index, matcher, hints and the engine (Bank → Bot.ask → Reply)."""
