"""Quality checks of a bank: evaluation on labelled questions, threshold fitting and lint."""
