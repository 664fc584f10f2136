"""Quality checks of a bank: evaluation on labelled questions, threshold fitting and lint."""

__all__: list[str] = []
