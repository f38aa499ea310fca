"""The picture panels: the radiograph, the class-activation map and SHAP, sized to the window, zoomed together.

The panels keep what they show as full-resolution arrays (the gray radiograph and each
map's colour overlay) and draw them at their own size whenever something changes: the
window (:mod:`minivgg.tui.layout`), the zoom window, the maps' opacity (:mod:`minivgg.tui.view`),
or the SHAP region chosen in the table, which is outlined on every panel. The arrow keys
pan while the panels have focus.
"""

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical

from minivgg.tui.layout import BORDER, Arrangement
from minivgg.tui.pictures import to_pil
from minivgg.tui.view import View, blend, outline, resample, sample, sign_pattern, xterm256

KEYS = ("image", "gradcam", "shap")
FLAG = "OUT OF DISTRIBUTION"
NO_COLOR_LEGEND = "grid: for, lines: against"


class PicturePanels(Horizontal, can_focus=True):
    """Three picture panels (``#panel-image``, ``#panel-gradcam``, ``#panel-shap``), one window on the image.

    Parameters
    ----------
    picture_class : the picture widget (:func:`minivgg.tui.pictures.picture_widget_class`)
    titles : {key: panel title}
    """

    BINDINGS = [
        Binding("left", "pan(-1, 0)", "Pan", show=False, tooltip="pan left (when zoomed in)"),
        Binding("right", "pan(1, 0)", "Pan", show=False, tooltip="pan right"),
        Binding("up", "pan(0, -1)", "Pan", show=False, tooltip="pan up"),
        Binding("down", "pan(0, 1)", "Pan", show=False, tooltip="pan down"),
    ]

    def __init__(self, picture_class, titles, **kwargs):
        super().__init__(**kwargs)
        self.picture_class, self.titles = picture_class, titles
        self.view = View()
        self.arrangement = Arrangement(False, 36)
        self.active = "image"           # the one panel shown in the beside arrangement
        self.flagged = False
        self.gray = None                # (S, S) the radiograph, or None
        self.overlays = {}              # {key: (S, S, 3)} each map's colours over the radiograph
        self.regions = None             # (S, S) SHAP's region labels, or None
        self.signs = None               # (M,) -1, 0, +1: the regions whose sign is established
        self.selected = None            # the SHAP region outlined, or None
        self.dither = False             # to the 256 xterm colours (a terminal without true colour)

    def compose(self) -> ComposeResult:
        for key in KEYS:
            with Vertical(classes="panel", id=f"panel-{key}") as panel:
                panel.border_title = self.titles[key]
                yield self.picture_class(None, id=f"pic-{key}", classes="picture")

    # ------------------------------------------------------------------ what is shown

    def show_image(self, gray):
        """A new radiograph: its maps and regions are gone; the zoom window stays (to compare images)."""
        self.gray, self.overlays, self.regions, self.signs, self.selected = gray, {}, None, None, None
        self.active = "image"
        self.redraw()

    def show_map(self, key, overlay):
        """``overlay`` (S, S, 3) for panel ``key`` ("gradcam" or "shap"); when beside, it comes to the front."""
        self.overlays[key] = overlay
        if self.arrangement.beside:
            self.active = key
        self.redraw()

    def show_regions(self, regions, signs):
        """SHAP's region labels (S, S) and each region's established sign (M,) (a pattern without colour)."""
        self.regions, self.signs = regions, signs
        if self.selected is not None and self.selected >= len(signs):
            self.selected = None
        self.redraw()

    def select_region(self, region):
        """Outline SHAP region ``region`` on every panel (None: no outline)."""
        if region != self.selected:
            self.selected = region
            self.redraw()

    def flag(self, flagged):
        """Frame the panels in red, titled, while the image is out of distribution."""
        self.flagged = flagged
        self.set_class(flagged, "flagged")
        self.redraw()

    # ------------------------------------------------------------------ the window and the view

    def fit(self, arrangement):
        """Size the panels for ``arrangement`` (a picture ``cells`` x ``rows``; one panel when beside)."""
        self.arrangement = arrangement
        for key in KEYS:
            panel = self.query_one(f"#panel-{key}")
            panel.styles.width, panel.styles.height = arrangement.cells + BORDER, arrangement.rows + BORDER
            picture = self.query_one(f"#pic-{key}")
            picture.styles.width, picture.styles.height = arrangement.cells, arrangement.rows
        self.redraw()

    def change_view(self, view):
        self.view = view
        self.redraw()

    def next_panel(self):
        """Bring the next panel that has something to show to the front (the beside arrangement)."""
        shown = [k for k in KEYS if k == "image" or k in self.overlays]
        self.active = shown[(shown.index(self.active) + 1) % len(shown)]
        self.redraw()

    def action_pan(self, dx, dy):
        self.change_view(self.view.panned(dx, dy))

    # ------------------------------------------------------------------ drawing

    def redraw(self):
        """Draw every visible panel at its size, and write the panels' frames."""
        beside = self.arrangement.beside
        for key in KEYS:
            panel = self.query_one(f"#panel-{key}")
            panel.display = not beside or key == self.active
            notes = [FLAG] if self.flagged and (beside or key == "image") else []
            if key == "shap" and self.app.no_color and "shap" in self.overlays:
                notes.append(NO_COLOR_LEGEND)
            panel.border_subtitle = " · ".join([*notes, self.view.describe()]).strip(" ·")
            if panel.display:
                self.query_one(f"#pic-{key}").image = self.picture(key)

    def picture(self, key):
        """Panel ``key``'s picture at its size in pixels, or None when there is nothing to show."""
        source = self.gray if key == "image" else self.overlays.get(key)
        if source is None:
            return None
        rgb = (np.repeat(source[..., None], 3, axis=2) if key == "image"
               else blend(self.gray, source, self.view.opacity))
        rows, cols = 2 * self.arrangement.rows, self.arrangement.cells
        window = self.view.window(len(self.gray))
        out = resample(rgb, window, rows, cols)
        if self.regions is not None:
            labels = sample(self.regions, window, rows, cols)
            if key == "shap" and self.app.no_color:
                out = sign_pattern(out, self.signs[labels])
            if self.selected is not None:
                out = outline(out, labels == self.selected)
        if self.dither and not self.app.no_color:
            out = xterm256(out)
        return to_pil(out)
