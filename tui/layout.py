"""How the window is shared: the pictures as large as the window allows, the verdict always on screen.

Two arrangements, chosen from the window's size by :func:`arrange`:

* **row** (a wide, tall window: 120x40, 200x60): the three pictures side by side across the
  top, and under them a band with the file list, the verdict (probabilities, label,
  out-of-distribution warning, model, status) and the SHAP table.
* **beside** (a small window: 80x24): one picture at a time (``v`` shows the next; a new map
  shows itself), and the verdict, SHAP table and file list in a column to its right, so
  that nothing the user must see is pushed off screen.

A picture keeps its aspect ratio: the images are square and a half-block cell holds two
pixels one above the other, so a picture ``cells`` wide is ``cells / 2`` rows high.
"""

from dataclasses import dataclass

CHROME = 2             # the header and footer rows
BORDER = 2             # a panel's frame: one cell on each side
PANELS = 3             # radiograph, class-activation map, SHAP
SIDE_WIDTH = 40        # the column beside a single picture
BAND_HEIGHT = 10       # the rows the band under a row of pictures needs: verdict, model, status, progress
MIN_ROW_CELLS = 28     # pictures narrower than this in a row: one larger picture beside the column instead


@dataclass(frozen=True)
class Arrangement:
    """Where things go in a window.

    Attributes
    ----------
    beside : bool, one picture at a time with the column to its right (else three in a row over a band)
    cells : int, a picture's width in cells (even); its height is ``cells // 2`` rows
    """
    beside: bool
    cells: int

    @property
    def rows(self):
        return self.cells // 2


def arrange(width, height):
    """The :class:`Arrangement` for a window of ``width`` x ``height`` cells."""
    free = height - CHROME
    in_row = min((width - PANELS * BORDER) // PANELS, 2 * (free - BORDER - BAND_HEIGHT))
    if in_row >= MIN_ROW_CELLS:
        return Arrangement(False, in_row // 2 * 2)
    alone = min(width - SIDE_WIDTH - BORDER, 2 * (free - BORDER))
    return Arrangement(True, max(alone, 2) // 2 * 2)
