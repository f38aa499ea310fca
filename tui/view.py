"""What a picture panel draws: the zoom window, the picture at the panel's resolution, and terminal colour.

Every panel shows the same window of the image (:class:`View`: zoom and centre), so
the radiograph and its maps stay aligned while zooming and panning. A picture is drawn
at exactly the panel's pixel size (``cells`` x ``2 * rows``: a half-block cell holds two
pixels), resampled here rather than by the terminal widget: area-averaged when shrinking,
nearest-neighbour when enlarging (a zoomed pixel stays one visible square: what the model
saw, not a smoothed guess).

Terminal colour degrades with care:

* Without ``COLORTERM=truecolor`` (most SSH sessions) Textual draws with the 256 xterm
  colours, and rounding a smooth heatmap to the 6 x 6 x 6 colour cube bands it (the cube's
  darkest step alone is 0 -> 95 of 255). :func:`xterm256` chooses among the colours the
  terminal has (the cube and the 24-step gray ramp) by error diffusion (Floyd-Steinberg),
  so areas keep their mean colour, and writes each as the colour that Rich's rounding
  leaves as it is.
* With ``NO_COLOR`` Textual draws in shades of gray, and SHAP's red and blue (its sign)
  would look alike: :func:`sign_pattern` marks the regions instead, a grid (``+``) where a
  region pushes towards the class and horizontal lines (``-``) where it pushes against it.
"""

import functools
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image as PILImage

ZOOMS = (1, 1.5, 2, 3, 4, 6, 8)
PAN_STEP = 0.25                 # of the window's side, per arrow key
OPACITIES = (1.0, 0.5, 0.0, 1.5)  # of the maps over the radiograph; 1 is the saved pictures' weight
OUTLINE = (1.0, 0.0, 1.0)       # magenta: in neither the class-activation colours nor SHAP's red and blue
# The levels of the xterm colour cube (colours 16-231), per channel.
CUBE = np.array([0, 95, 135, 175, 215, 255], dtype=np.float64) / 255
FLOYD_STEINBERG = ((0, 1, 7 / 16), (1, -1, 3 / 16), (1, 0, 5 / 16), (1, 1, 1 / 16))   # (down, right, share)
LUT_LEVELS = 32                 # per channel, of the table of nearest terminal colours
GRAY_SATURATION = 0.15          # below this Rich draws a colour from the terminal's gray ramp


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


def saturation(rgb):
    """(H, W) the HLS saturation of ``rgb`` (H, W, 3), as Rich computes it to tell gray from colour."""
    hi, lo = rgb.max(axis=2), rgb.min(axis=2)
    light = (hi + lo) / 2
    spread = np.where(light <= 0.5, hi + lo, 2 - hi - lo)
    return np.divide(hi - lo, spread, out=np.zeros_like(hi), where=spread > 0)


def xterm_palette():
    """``(written, shown)``: (N, 3) the colours to write for a 256-colour terminal, and the colours it shows.

    The 6 x 6 x 6 cube (its grays left to the ramp) and 26 grays: black, the 24-step ramp,
    white. Rich turns a colour whose saturation is below 0.15 into gray ``round(25 *
    lightness)`` of the ramp, so the grays are written at lightness ``k / 25``; every other
    colour written is a cube colour, which Rich keeps.
    """
    cube = np.stack(np.meshgrid(CUBE, CUBE, CUBE, indexing="ij"), axis=-1).reshape(-1, 3)
    cube = cube[np.ptp(cube, axis=1) > 0]
    k = np.arange(26)
    ramp = np.where(k == 0, 0, np.where(k == 25, 255, 8 + 10 * (k - 1))) / 255
    return (np.concatenate([cube, np.repeat(k[:, None] / 25, 3, axis=1)]),
            np.concatenate([cube, np.repeat(ramp[:, None], 3, axis=1)]))


@functools.cache
def _nearest():
    """The palette, and the index of the nearest colour shown for each cell of a 32-level RGB grid."""
    written, shown = xterm_palette()
    levels = (np.arange(LUT_LEVELS) + 0.5) / LUT_LEVELS
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    index = np.concatenate([np.argmin(((part[:, None] - shown[None]) ** 2).sum(-1), axis=1)
                            for part in np.array_split(grid, 64)])
    return written.tolist(), shown.tolist(), index.tolist()


def xterm256(rgb):
    """``rgb`` (H, W, 3) in [0, 1] as colours a 256-colour terminal shows as they are, dithered.

    Floyd-Steinberg error diffusion over :func:`xterm_palette`: each coloured pixel takes
    the shown colour nearest to it plus the error its neighbours left, and passes its own
    error on to the right and below, so every area keeps its mean colour instead of
    snapping to the nearest level (a band). Gray pixels (saturation below 0.15) are left as
    they are: the terminal draws them from its 24-step ramp, which does not band badly,
    and diffusing into them would sprinkle coloured dots over the radiograph and the
    faded background. A panel is a few thousand pixels: plain Python lists do it in about
    10 ms.
    """
    written, shown, index = _nearest()
    rows, cols = rgb.shape[:2]
    rgb = np.clip(rgb, 0, 1)
    gray = saturation(rgb) < GRAY_SATURATION
    work = rgb.tolist()
    out = rgb.copy()
    top = LUT_LEVELS - 1
    for y in range(rows):
        row, below = work[y], work[y + 1] if y + 1 < rows else None
        for x in range(cols):
            if gray[y, x]:
                continue
            r, g, b = (min(max(v, 0.0), 1.0) for v in row[x])
            i = index[(min(int(r * LUT_LEVELS), top) * LUT_LEVELS + min(int(g * LUT_LEVELS), top)) * LUT_LEVELS
                      + min(int(b * LUT_LEVELS), top)]
            out[y, x] = written[i]
            error = (r - shown[i][0], g - shown[i][1], b - shown[i][2])
            for dy, dx, share in FLOYD_STEINBERG:
                if 0 <= x + dx < cols and (dy == 0 or below is not None):
                    target = (below if dy else row)[x + dx]
                    for c in range(3):
                        target[c] += error[c] * share
    return out
