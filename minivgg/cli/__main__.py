"""``python -m minivgg.cli``: the ``minivgg`` command."""

import sys

from minivgg.cli import main

sys.exit(main())
