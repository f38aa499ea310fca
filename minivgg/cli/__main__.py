"""``python -m minivgg.cli``: the ``minivgg`` command."""

import sys

from minivgg.cli import command

sys.exit(command())
