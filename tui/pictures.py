"""Pictures in the terminal: which widget draws them, and arrays turned into images for it.

Pictures use coloured half-blocks, which work over any SSH connection; a terminal
graphics protocol (kitty, sixel) is used only when the terminal announces one.
"""

import logging
import warnings

import numpy as np
from PIL import Image as PILImage
from textual_image import _terminal
from textual_image.renderable import Image as AutoRenderable
from textual_image.renderable.halfcell import Image as HalfcellRenderable
from textual_image.renderable.unicode import Image as UnicodeRenderable

# textual-image 0.12 asks the terminal for its cell size when its widgets are imported, dividing
# the window's pixels by its columns and rows: a terminal that reports 0 x 0 (a serial console, some
# SSH sessions) raised ZeroDivisionError. Its own fallback (a VT340's 10 x 20 pixel cell) is cached first.
# A terminal that does not answer its query either (tmux, a pseudo-terminal) made it log a warning with
# a traceback on stderr, before the app started (or into ``2>log``): the fallback is fine, say nothing.
logging.getLogger("textual_image").addHandler(logging.NullHandler())
try:
    _terminal.get_cell_size()
except ZeroDivisionError:
    _terminal.get_cell_size._result = _terminal.CellSize(10, 20)

from textual_image.widget import HalfcellImage  # noqa: E402 - after the cell size is known
from textual_image.widget import Image as AutoImage  # noqa: E402

# textual-image 0.12 (the last for Python 3.11) calls Pillow's getdata(), deprecated in
# Pillow 13 and removed in 14 (pyproject bounds Pillow below 14).
warnings.filterwarnings("ignore", message=r".*getdata is deprecated", category=DeprecationWarning)


def picture_widget_class(graphics="auto"):
    """HalfcellImage unless the terminal speaks a graphics protocol (and ``graphics`` allows it)."""
    if graphics == "auto" and AutoRenderable not in (HalfcellRenderable, UnicodeRenderable):
        return AutoImage
    return HalfcellImage


def to_pil(rgb_or_gray):
    """Float image in [0, 1], (S, S) or (S, S, 3), to a PIL image."""
    a = (np.clip(rgb_or_gray, 0, 1) * 255 + 0.5).astype(np.uint8)
    return PILImage.fromarray(a)
