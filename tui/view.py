"""What a picture panel draws: the zoom window, the picture at the panel's resolution, and terminal colour.

Every panel shows the same window of the image (:class:`View`: zoom and centre), so
the radiograph and its maps stay aligned while zooming and panning. A picture is drawn
at exactly the panel's pixel size (``cells`` x ``2 * rows``: a half-block cell holds two
pixels), resampled here rather than by the terminal widget: area-averaged when shrinking,
nearest-neighbour when enlarging (a zoomed pixel stays one visible square: what the model
saw, not a smoothed guess).

Terminal colour degrades with care:

* Without ``COLORTERM=truecolor`` (most SSH sessions) Textual draws with the 256 xterm
  colours, and rounding a smooth heatmap to the 6 x 6 x 6 colour cube bands it.
  :func:`xterm256` dithers to the cube instead (an ordered 4 x 4 Bayer matrix), so areas
  keep their mean colour; the terminal's own rounding then leaves the picture as it is.
* With ``NO_COLOR`` Textual draws in shades of gray, and SHAP's red and blue (its sign)
  would look alike: :func:`sign_pattern` marks the regions instead, a grid (``+``) where a
  region pushes towards the class and horizontal lines (``-``) where it pushes against it.
"""

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image as PILImage

ZOOMS = (1, 1.5, 2, 3, 4, 6, 8)
PAN_STEP = 0.25                 # of the window's side, per arrow key
OPACITIES = (1.0, 0.5, 0.0, 1.5)  # of the maps over the radiograph; 1 is the saved pictures' weight
OUTLINE = (1.0, 0.0, 1.0)       # magenta: in neither the class-activation colours nor SHAP's red and blue
# The levels of the xterm colour cube (colours 16-231), per channel.
CUBE = np.array([0, 95, 135, 175, 215, 255], dtype=np.float64) / 255
BAYER4 = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]) + 0.5) / 16
GRAY_SATURATION = 0.15          # below this the terminal uses its 24-step gray ramp instead of the cube


@dataclass(frozen=True)
class View:
    """The part of the image every panel shows, and how strongly the maps cover the radiograph.

    Attributes
    ----------
    zoom : one of :data:`ZOOMS` (2: half the image's side is shown)
    cx, cy : the window's centre, as fractions of the image's width and height
    opacity : one of :data:`OPACITIES`
    """
    zoom: float = 1
    cx: float = 0.5
    cy: float = 0.5
    opacity: float = 1.0

    def window(self, size):
        """``(top, left, side)`` in pixels of the square window on an image ``size`` pixels wide."""
        side = max(1, round(size / self.zoom))
        top, left = (min(max(round(c * size - side / 2), 0), size - side) for c in (self.cy, self.cx))
        return top, left, side

    def zoomed(self, steps):
        """This view zoomed in (``steps`` > 0) or out along :data:`ZOOMS`, around the same centre."""
        i = min(max(ZOOMS.index(self.zoom) + steps, 0), len(ZOOMS) - 1)
        return replace(self, zoom=ZOOMS[i]).panned(0, 0)

    def panned(self, dx, dy):
        """The window moved by ``dx``, ``dy`` steps of :data:`PAN_STEP` of its side, kept inside the image."""
        half = 0.5 / self.zoom
        move = PAN_STEP / self.zoom
        cx, cy = (min(max(c + d * move, half), 1 - half) for c, d in ((self.cx, dx), (self.cy, dy)))
        return replace(self, cx=cx, cy=cy)

    def next_opacity(self):
        return replace(self, opacity=OPACITIES[(OPACITIES.index(self.opacity) + 1) % len(OPACITIES)])

    def describe(self):
        """A few words for the panel frame ("zoom 2x, maps 50%"), empty for the default view."""
        words = [f"zoom {self.zoom:g}x"] if self.zoom != 1 else []
        if self.opacity != 1:
            words.append(f"maps {self.opacity:.0%}")
        return ", ".join(words)


def blend(gray, overlay, opacity):
    """``overlay`` (S, S, 3) over the gray radiograph (S, S) at ``opacity`` of its own weight, clipped to [0, 1]."""
    base = np.repeat(gray[..., None], 3, axis=2)
    return np.clip(base + opacity * (overlay - base), 0, 1)


def sample(labels, window, rows, cols):
    """Nearest-neighbour samples of ``labels`` (S, S) in ``window`` at ``rows`` x ``cols`` pixels."""
    top, left, side = window
    r = top + ((np.arange(rows) + 0.5) * side / rows).astype(int)
    c = left + ((np.arange(cols) + 0.5) * side / cols).astype(int)
    return labels[np.ix_(r, c)]


def resample(rgb, window, rows, cols):
    """``rgb`` (S, S, 3) in [0, 1], cut to ``window``, as (rows, cols, 3) in [0, 1]."""
    top, left, side = window
    crop = (np.clip(rgb[top:top + side, left:left + side], 0, 1) * 255 + 0.5).astype(np.uint8)
    how = PILImage.Resampling.BOX if cols < side else PILImage.Resampling.NEAREST
    return np.asarray(PILImage.fromarray(crop).resize((cols, rows), how), dtype=np.float64) / 255


def outline(rgb, mask):
    """``rgb`` with the border pixels of ``mask`` (a region, at the same resolution) drawn in :data:`OUTLINE`."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    out = rgb.copy()
    out[mask & ~inner] = OUTLINE
    return out


def sign_pattern(rgb, signs):
    """``rgb`` with a grid where ``signs`` is +1 and horizontal lines where it is -1, in the contrasting shade.

    For a monochrome terminal: the pattern carries SHAP's sign, which its colours carry
    otherwise. A line pixel is black on light image and white on dark image.
    """
    rows, cols = signs.shape
    y, x = np.mgrid[:rows, :cols]
    lines = y % 4 == 0
    marked = ((signs > 0) & (lines | (x % 4 == 0))) | ((signs < 0) & lines)
    out = rgb.copy()
    light = rgb.mean(axis=2) > 0.5
    out[marked & light] = 0.0
    out[marked & ~light] = 1.0
    return out


def xterm256(rgb):
    """``rgb`` (H, W, 3) in [0, 1] dithered to colours the 256-colour terminal shows as they are.

    Coloured pixels are dithered per channel between the two nearest levels of the xterm
    colour cube, with an ordered 4 x 4 Bayer threshold, so that a smooth gradient becomes
    a fine pattern of the cube's colours with the right local mean instead of bands. Gray
    pixels (the terminal draws them from its 24-step gray ramp, which does not band badly)
    are left alone.
    """
    hi, lo = rgb.max(axis=2), rgb.min(axis=2)
    light = (hi + lo) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        saturation = np.where(hi > lo, (hi - lo) / np.where(light <= 0.5, hi + lo, 2 - hi - lo), 0)
    rows, cols = rgb.shape[:2]
    threshold = np.tile(BAYER4, (rows // 4 + 1, cols // 4 + 1))[:rows, :cols, None]
    k = np.clip(np.searchsorted(CUBE, rgb, side="right") - 1, 0, len(CUBE) - 2)
    low, high = CUBE[k], CUBE[k + 1]
    dithered = np.where((rgb - low) / (high - low) > threshold, high, low)
    return np.where((saturation >= GRAY_SATURATION)[..., None], dithered, rgb)


def to_image(rgb):
    """(H, W, 3) floats in [0, 1] as an 8-bit PIL image."""
    return PILImage.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
