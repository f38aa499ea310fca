"""Train VGG8: ``python train.py --data DIR [--preset small|paper] ...`` (the same as ``minivgg train``)."""

import sys

from minivgg.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
