"""Validate the FAQ bank, build the index, save it and report self-retrieval.

python train.py [--faq DIR] [--index PATH]   (the same as: python -m bot train)
"""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
