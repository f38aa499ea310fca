"""Heatmap figures: Grad-CAM over the radiograph, SHAP as a diverging map, and the paper's Figure 6.

* Class-activation map (HiResCAM or Grad-CAM): the map, scaled to its maximum (1 = the
  strongest evidence in this image; the scale does not compare images), through
  ``turbo`` from blue (weak) to dark red (strongest): colours of high chroma that stand out
  on black air and on white bone alike (an earlier version ended in pale yellow, invisible
  on bone exactly where the map peaked). Every non-zero value is drawn with at least
  :data:`CAM_MIN_WEIGHT`, so weak evidence stays visible, and at most
  :data:`CAM_MAX_WEIGHT`, so the radiograph always shows through; where the map is 0
  the radiograph is unchanged. A signed map (evidence for and against) is drawn like
  SHAP: red for, blue against. A colour bar shows the scale.
* SHAP: a diverging colormap (``RdBu_r``) symmetric around zero: red pushes towards the
  explained class, blue against it. Regions whose value is within the simultaneous 95%
  band of zero (+-3.2 standard errors for 32 regions, Bonferroni: a statement about all
  of them at once) are drawn faded (their sign is not established); when every value is below
  numerical noise nothing is coloured and the panel says "no measurable effect". The
  panel states the model calls made and the largest standard error.
* Combined: image | Grad-CAM | SHAP, three maps of one size, with the predicted class
  and its probability in the title, like the paper's Figure 6.
* Every picture carries a stamp (drawn under it and in its PNG text fields): the model,
  the class and its probability, the out-of-distribution verdict (in red when the image is
  unlike the training images), and the map with its settings.

:func:`save_explanation` is the one writer of these files: ``minivgg explain``,
``minivgg predict --gradcam/--shap`` and the terminal app's save all call it. Every file
is written atomically.

The pictures are drawn with Pillow, as a few maps and lines of text put side by side and one
under another (:class:`Block`): a few tens of milliseconds a picture, where matplotlib's figures
took half a second for its import and a quarter of a second a picture, a third of a short
``minivgg explain``. Text is set in DejaVu Sans, the font matplotlib ships (it is a
dependency, and its font is on every machine that has minivgg), at :data:`DPI`.
"""

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from minivgg.atomic import atomic_write
from minivgg.files import write_json
from minivgg.text import format_probability

CAM_MIN_WEIGHT, CAM_MAX_WEIGHT = 0.25, 0.65   # a drawn map value's colour weight, weakest to strongest
CAM_FLOOR = 0.02             # values below this share of the maximum are left undrawn (rounding, not evidence)
CAM_COLOURS = (0.1, 0.92)    # the part of turbo used: blue to a saturated red (its darkest end is near black)
SHAP_WEIGHT, SHAP_FADED_WEIGHT = 0.6, 0.15
# zlib level of the PNG files. Level 1 writes a picture 2-3x as fast as PIL's default 6 (20-50 against
# 70-90 ms) for files 15% larger (about 200 kB): flat colours compress well.
PNG_COMPRESSION = 1
# RdBu, ColorBrewer's diverging scheme of 11 colours from dark red to dark blue (matplotlib's "RdBu").
RDBU = ("#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7", "#d1e5f0", "#92c5de", "#4393c3",
        "#2166ac", "#053061")

# Sizes. Text sizes are in points at DPI dots per inch, as a printed figure's; the rest in pixels.
DPI = 110
TITLE_PT, LABEL_PT, NOTE_PT, SMALL_PT = 14.4, 10, 11, 7    # titles, colour-bar values and label, a note on a map,
                                                           # captions and stamps
MAP_SIDE = 330               # a drawn map's longer side
BAR_WIDTH, BAR_GAP, TICK = 16, 9, 5   # the colour bar, its distance from the map, its tick marks
GAP, PANEL_GAP, MARGIN = 4, 40, 11    # between a map and its title, between panels, around the picture
STAMP_GREY, FLAG_RED = (64, 64, 64), (255, 0, 0)
FONTS = Path(importlib.util.find_spec("matplotlib").submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf"


def _colour_table(colours, levels=256):
    """(levels, 3) RGB in [0, 1]: ``colours`` ("#rrggbb", evenly spaced) interpolated linearly, as a matplotlib
    colormap made ``from_list`` does."""
    anchors = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours]) / 255
    at = np.linspace(0, 1, levels)
    return np.stack([np.interp(at, np.linspace(0, 1, len(anchors)), channel) for channel in anchors.T], axis=1)


_DIVERGING = _colour_table(RDBU[::-1])       # blue (0) -> white (0.5) -> red (1): matplotlib's "RdBu_r"


def diverging_colours(t):
    """RGB (..., 3) in [0, 1] of RdBu_r at ``t`` (...) in [0, 1]: 0 dark blue, 0.5 white, 1 dark red.

    The colour of level ``floor(256 t)`` of 256, the ends for values beyond them: matplotlib's
    ``colormaps["RdBu_r"](t)`` without its import (0.1-0.2 s; the tests compare the two).
    """
    return _DIVERGING[np.clip((np.asarray(t, dtype=float) * len(_DIVERGING)).astype(int), 0, len(_DIVERGING) - 1)]


def _cam_colormap():
    """turbo, the part :data:`CAM_COLOURS` says, as a matplotlib colormap (a table of 256 colours that matplotlib
    holds; imported only when a class-activation map is drawn)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    return ListedColormap(colormaps["turbo"](np.linspace(*CAM_COLOURS, 256)), name="turbo_cam")


def _cam_colours(t):
    return _cam_colormap()(t)[..., :3]


def is_signed(cam):
    """True for a map that keeps its negative part (values in [-1, 1])."""
    return bool(np.min(cam) < 0)


def gradcam_overlay(gray, cam):
    """RGB (S, S, 3) float in [0, 1]: a class-activation map coloured over the gray radiograph (S, S).

    ``cam`` in [0, 1] goes through :func:`_cam_colormap`; a signed ``cam`` in [-1, 1] through
    ``RdBu_r`` (red for the class, blue against). Each non-zero pixel's colour weight grows
    from :data:`CAM_MIN_WEIGHT` to :data:`CAM_MAX_WEIGHT` with ``|cam|``; where the map is below
    :data:`CAM_FLOOR` of its maximum the radiograph is shown unchanged.
    """
    strength = np.clip(np.abs(cam), 0, 1)
    heat = diverging_colours((np.clip(cam, -1, 1) + 1) / 2) if is_signed(cam) else _cam_colours(strength)
    weight = np.where(strength > CAM_FLOOR, CAM_MIN_WEIGHT + (CAM_MAX_WEIGHT - CAM_MIN_WEIGHT) * strength, 0)[..., None]
    return (1 - weight) * np.repeat(gray[..., None], 3, axis=2) + weight * heat


def shap_limits(values):
    """Symmetric colour limits around zero: (-L, L), L = max |value| (1e-12 when all are zero)."""
    lim = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return -max(lim, 1e-12), max(lim, 1e-12)


def shap_overlay(gray, result):
    """RGB (S, S, 3) float in [0, 1]: the :class:`~.kernelshap.SHAPResult` in RdBu_r over ``gray``.

    Significant regions (|value| >= 2 standard errors) are mixed in with weight 0.6, the
    others with 0.15; when no value is measurable the radiograph is returned unchanged.
    """
    rgb_gray = np.repeat(gray[..., None], 3, axis=2)
    if not result.measurable:
        return rgb_gray
    lo, hi = shap_limits(result.values)
    colour = diverging_colours((result.pixel_map() - lo) / (hi - lo))
    weight = np.where(result.significant, SHAP_WEIGHT, SHAP_FADED_WEIGHT)[result.regions][..., None]
    return (1 - weight) * rgb_gray + weight * colour


def shap_caption(result):
    """Two lines under the SHAP panel: the values' frame (base value -> f(x)), the calls made and the error.

    The values add up from the base value (the model's output with every region hidden)
    to the output for the image; a reader needs both ends to read a region's share.
    """
    frame = f"f(all hidden) = {result.base_value:.3g} -> f(image) = {result.fx:.3g} ({result.output})"
    calls = f"{result.n_evaluations} model calls"
    if result.exact:
        return f"{frame}\n{calls}, exact"
    faded = int(np.sum(~result.significant))
    return (f"{frame}\n{calls}, largest stderr {result.max_stderr:.2g}; faded: {faded} regions whose sign is not "
            f"established\n(95% band for all {result.n_regions} regions at once, +-{result.band_z:.1f} SE)")


# Layout ---------------------------------------------------------------------------------------------------------

@dataclass
class Block:
    """A laid-out part of a picture: its pixels, where its maps lie in them, and the text drawn in it.

    ``maps`` are ``(left, top, right, bottom)`` pixel boxes; ``texts`` let a reader (or a test)
    ask what a picture says without reading pixels. ``origin`` is where the point (0, 0) of the
    parts it was made of (:func:`_place`) lies in its pixels: a colour bar's top-left corner,
    which its values' labels may overhang.
    """
    image: Image.Image
    maps: list = field(default_factory=list)
    texts: list = field(default_factory=list)
    origin: tuple = (0, 0)


def _place(parts):
    """One :class:`Block` of ``(block, x, y)`` parts, each with its top-left corner at (x, y) (None parts are
    skipped). Coordinates may be negative or fractional: the picture grows to hold every part."""
    parts = [(b, round(x), round(y)) for b, x, y in parts if b is not None]
    left, top = min(x for _, x, _ in parts), min(y for _, _, y in parts)
    right = max(x + b.image.width for b, x, _ in parts)
    bottom = max(y + b.image.height for b, _, y in parts)
    canvas = Image.new("RGB", (right - left, bottom - top), "white")
    maps, texts = [], []
    for b, x, y in parts:
        x, y = x - left, y - top
        canvas.paste(b.image, (x, y))
        maps += [(x0 + x, y0 + y, x1 + x, y1 + y) for x0, y0, x1, y1 in b.maps]
        texts += b.texts
    return Block(canvas, maps, texts, origin=(-left, -top))


def _column(blocks, gap=GAP, align="center"):
    """``blocks`` one under the other, centred on one vertical line (or with their left edges on it)."""
    parts, y = [], 0
    for b in filter(None, blocks):
        parts.append((b, -b.image.width / 2 if align == "center" else 0, y))
        y += b.image.height + gap
    return _place(parts)


def _row(blocks, gap=PANEL_GAP):
    """``blocks`` side by side, their tops aligned."""
    parts, x = [], 0
    for b in blocks:
        parts.append((b, x, 0))
        x += b.image.width + gap
    return _place(parts)


def _font(points, bold=False):
    """DejaVu Sans at ``points``. A new object each time (0.1 ms): a FreeType face is not shared between the
    threads that may save pictures at once."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONTS / name), round(points * DPI / 72))


def _wrap(text, points, width):
    """``text`` with its spaces turned into line breaks where a line would be wider than ``width`` pixels."""
    font, lines = _font(points), []
    for word in text.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def _text(text, points, colour="black", bold=False, align="center"):
    """A :class:`Block` of ``text``'s lines, centred or left-aligned. Names come from files: drawn as they are
    (:func:`minivgg.text.printable` has made them printable)."""
    font = _font(points, bold)
    lines = text.split("\n")
    ascent, descent = font.getmetrics()
    height = ascent + descent
    width = max(1, math.ceil(max(font.getlength(line) for line in lines)))
    image = Image.new("RGB", (width, height * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        x = (width - font.getlength(line)) / 2 if align == "center" else 0
        draw.text((x, i * height), line, font=font, fill=colour)
    return Block(image, texts=[text])


def _map(rgb, side=MAP_SIDE):
    """A :class:`Block` of an RGB picture (H, W, 3) in [0, 1], scaled so that its longer side is ``side`` pixels.

    As matplotlib shows an image: enlarged 3 times or more, pixel by pixel (each pixel a
    square of 3 or more of equal size, give or take one: a map's regions keep sharp edges);
    less than that, or reduced, through a Lanczos filter (pixel by pixel, 2.6 times would
    draw pixels 2 and 3 wide by turns).
    """
    image = Image.fromarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 3 else Image.Resampling.LANCZOS
    return Block(image.resize(size, resample), maps=[(0, 0, *size)])


def _ticks(lo, hi, most=7):
    """The colour bar's ticks in [lo, hi], ``(value, label)``: the multiples of the smallest step of 1, 2, 2.5 or 5
    x 10^k that gives at most ``most`` of them, labelled with as many decimals as the step needs.

    >>> [label for _, label in _ticks(-0.13, 0.13)]
    ['\u22120.10', '\u22120.05', '0.00', '0.05', '0.10']
    """
    span, power = hi - lo, math.floor(math.log10((hi - lo) / most))
    mantissa, power = next((m, k) for k in range(power, power + 3) for m in (1, 2, 2.5, 5)
                           if span / (m * 10.0 ** k) <= most - 1)
    step, decimals = mantissa * 10.0 ** power, max(0, -power + (mantissa == 2.5))
    values = [i * step for i in range(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1)]
    if power >= -3:
        shown = [f"{v:.{decimals}f}" for v in values]
    else:               # steps below 0.001 in scientific notation ("5e-05"), where fixed decimals would run long
        digits = max(0, math.floor(math.log10(max(abs(lo), abs(hi)))) - power + (mantissa == 2.5))
        shown = [f"{v:.{digits}e}" if v else "0" for v in values]
    return [(v, text.replace("-", "\u2212")) for v, text in zip(values, shown)]


def _colour_bar(colours, lo, hi, label, height=MAP_SIDE):
    """A :class:`Block`: a vertical bar of ``colours(t)`` for values from ``lo`` (bottom, t = 0) to ``hi`` (top,
    t = 1), its ticks and their values to its right and ``label`` along them, read upwards."""
    t = np.repeat(np.linspace(1, 0, height)[:, None], BAR_WIDTH, axis=1)
    bar = Image.fromarray(np.round(colours(t) * 255).astype(np.uint8))
    ImageDraw.Draw(bar).rectangle((0, 0, BAR_WIDTH - 1, height - 1), outline="black")
    parts, widest = [(Block(bar), 0, 0)], 0
    for value, text in _ticks(lo, hi):
        y = (hi - value) / (hi - lo) * (height - 1)
        mark = Block(Image.new("RGB", (TICK, 1), "black"))
        number = _text(text, LABEL_PT)
        parts += [(mark, BAR_WIDTH, y), (number, BAR_WIDTH + TICK + 3, y - number.image.height / 2)]
        widest = max(widest, number.image.width)
    turned = _text(_wrap(label, LABEL_PT, height), LABEL_PT)
    turned = Block(turned.image.rotate(90, expand=True), texts=[label])
    parts.append((turned, BAR_WIDTH + TICK + 3 + widest + 6, (height - turned.image.height) / 2))
    return _place(parts)


def _panel(title, picture, bar=None, caption=None):
    """One map with its title centred above it, its colour bar beside it (the bar's top level with the map's) and
    its caption centred below it."""
    width, height = picture.image.size
    return _place([(title, (width - title.image.width) / 2, -GAP - title.image.height), (picture, 0, 0),
                   (bar, width + BAR_GAP - bar.origin[0], -bar.origin[1]) if bar else (None, 0, 0),
                   (caption, (width - caption.image.width) / 2 if caption else 0, height + GAP)])


def _with_note(picture, text):
    """``picture`` with ``text`` in the middle of its map, on a white, slightly transparent box."""
    image = picture.image.copy()
    draw = ImageDraw.Draw(image, "RGBA")
    font = _font(NOTE_PT)
    x0, y0, x1, y1 = picture.maps[0]
    middle = ((x0 + x1) / 2, (y0 + y1) / 2)
    left, top, right, bottom = draw.textbbox(middle, text, font=font, anchor="mm")
    draw.rectangle((left - 4, top - 4, right + 4, bottom + 4), fill=(255, 255, 255, 204))
    draw.text(middle, text, font=font, fill="black", anchor="mm")
    return Block(image, picture.maps, picture.texts + [text])


def _dashed_box(picture, box, colour=(0, 255, 0), dash=6, gap=4, width=2):
    """``picture`` with the rectangle ``box`` (left, top, right, bottom, in its map's pixels) drawn dashed."""
    image = picture.image.copy()
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = box
    for (xa, ya), (xb, yb) in (((left, top), (right, top)), ((right, top), (right, bottom)),
                               ((right, bottom), (left, bottom)), ((left, bottom), (left, top))):
        length = math.hypot(xb - xa, yb - ya)
        for s in np.arange(0, length, dash + gap):
            e = min(s + dash, length)
            draw.line((xa + (xb - xa) * s / length, ya + (yb - ya) * s / length,
                       xa + (xb - xa) * e / length, ya + (yb - ya) * e / length), fill=colour, width=width)
    return Block(image, picture.maps, picture.texts)


# Pictures -------------------------------------------------------------------------------------------------------

def _stamp(stamp):
    """The stamp's fields as small lines, the out-of-distribution verdict first, in red when the image is unlike
    the training images; None when no field has a value to draw."""
    fields = {key: value for key, value in stamp.items() if value and key != "Software"}
    verdict = fields.pop("In distribution", None)
    lines = ([f"in distribution: {verdict}"] if verdict else []) + [f"{k.lower()}: {v}" for k, v in fields.items()]
    flagged = bool(verdict) and verdict.startswith("NO")
    if not lines:
        return None
    return _column([_text(line, SMALL_PT, FLAG_RED if flagged and i == 0 else STAMP_GREY, flagged and i == 0,
                          align="left") for i, line in enumerate(lines)], gap=0, align="left")


def _save(picture, path, stamp=None):
    """Write the :class:`Block` ``picture`` as a PNG, atomically, with a margin; ``stamp`` ({field: text}) is drawn
    under it and stored as the PNG's text fields."""
    lines = _stamp(stamp) if stamp else None
    if lines:
        picture = _column([picture, lines], gap=3 * GAP, align="left")
    framed = Image.new("RGB", (picture.image.width + 2 * MARGIN, picture.image.height + 2 * MARGIN), "white")
    framed.paste(picture.image, (MARGIN, MARGIN))
    info = PngInfo()
    for key, value in (stamp or {}).items():
        if value is not None:
            info.add_text(key, str(value))
    with atomic_write(path) as f:
        framed.save(f, format="png", pnginfo=info, dpi=(DPI, DPI), compress_level=PNG_COMPRESSION)


def radiograph_panel(gray):
    """The model's input as a panel: the gray crop (S, S), titled with its size."""
    return _panel(_text(f"model input ({gray.shape[1]}x{gray.shape[0]} crop)", TITLE_PT),
                  _map(np.repeat(gray[..., None], 3, axis=2)))


def cam_panel(gray, cam, name="Grad-CAM", title=None):
    """A class-activation map over ``gray`` as a panel, with its colour bar (0 to 1, or -1 to 1 for a signed map)."""
    if is_signed(cam):
        bar = _colour_bar(diverging_colours, -1, 1,
                          f"{name}: against (blue) / for (red), scaled to its largest |value|")
    else:
        bar = _colour_bar(_cam_colours, 0, 1, f"{name}, scaled to its maximum")
    return _panel(_text(title or name, TITLE_PT), _map(gradcam_overlay(gray, cam)), bar)


def shap_panel(gray, result, title):
    """A :class:`~.kernelshap.SHAPResult` over ``gray`` as a panel: its colour bar, symmetric around 0, and the
    caption of :func:`shap_caption`; "no measurable effect" across the map when no value is measurable."""
    picture = _map(shap_overlay(gray, result))
    scale = "probability" if result.output == "probability" else "log-odds"
    if result.measurable:
        lo, hi = shap_limits(result.values)
        bar = _colour_bar(diverging_colours, lo, hi, f"contribution to {scale}")
    else:
        picture, bar = _with_note(picture, "no measurable effect"), None
    return _panel(_text(title, TITLE_PT), picture, bar, _text(shap_caption(result), SMALL_PT))


def combined_figure(gray, cam=None, shap=None, class_name="", probability=None, title="", cam_name="Grad-CAM"):
    """Figure 6 as a :class:`Block`: image | Grad-CAM | SHAP (either map may be None: left out), the maps of one
    size, under one heading with the predicted class and its probability; ``cam_name`` names the
    class-activation map ("HiResCAM")."""
    panels = [radiograph_panel(gray)]
    if cam is not None:
        panels.append(cam_panel(gray, cam, cam_name))
    if shap is not None:
        panels.append(shap_panel(gray, shap, f"SHAP (red: towards {class_name})"))
    head = f"predicted: {class_name}" + (f" (p = {format_probability(probability)})" if probability is not None else "")
    return _column([_text(f"{title}  {head}".strip(), TITLE_PT), _row(panels)], gap=4 * GAP)


def save_explanation(out, stem, gray, class_name, probability=None, cam=None, shap=None, combined=True,
                     raw=False, title="", cam_name="Grad-CAM", stamp=None, original=None):
    """Write the heatmap files of one image; returns the paths written.

    Parameters
    ----------
    out : folder (created if needed)
    stem : str, the file-name stem (``<stem>_gradcam.png`` ...), distinct per input
        (see :func:`minivgg.files.distinct_stems`)
    gray : (S, S) the radiograph as the model saw it, in [0, 1]
    class_name : str, the explained class
    probability : float, the model's probability of that class (shown in the combined figure)
    cam : (S, S) normalised Grad-CAM map, or None
    shap : :class:`~.kernelshap.SHAPResult`, or None
    combined : bool, also write ``<stem>_explain.png`` (radiograph | Grad-CAM | SHAP)
    raw : bool, also write the maps as ``<stem>_gradcam.npy`` / ``<stem>_shap.npy`` (float32),
        the SHAP standard errors as ``<stem>_shap_stderr.npy`` and every region's value and
        standard error, with the settings, as ``<stem>_shap.json``
    title : str, shown above the combined figure (e.g. the file name)
    cam_name : str, what the ``cam`` map is called in the pictures ("Grad-CAM" or "HiResCAM"; the
        file keeps its name, ``<stem>_gradcam.png``)
    original : ``(gray (H, W), preprocessing settings)``, optional: with ``raw``, each map is also
        written in the original image's coordinates (``<stem>_<map>_original.npy``, NaN outside
        the model's crop) and drawn over the original with the crop's outline
        (``<stem>_original.png``)
    stamp : dict, optional, ``{field: text}`` drawn under every picture and stored in its PNG
        text fields (:meth:`minivgg.deploy.Classifier.stamp`: model, class, probability,
        out-of-distribution verdict, map and settings)
    """
    out = Path(out)
    written = []
    if cam is not None:
        _save(cam_panel(gray, cam, cam_name, f"{cam_name} for {class_name}"), out / f"{stem}_gradcam.png", stamp)
        written.append(out / f"{stem}_gradcam.png")
    if shap is not None:
        _save(shap_panel(gray, shap, f"SHAP for {class_name}"), out / f"{stem}_shap.png", stamp)
        written.append(out / f"{stem}_shap.png")
    if combined:
        _save(combined_figure(gray, cam, shap, class_name, probability, title=title, cam_name=cam_name),
              out / f"{stem}_explain.png", stamp)
        written.append(out / f"{stem}_explain.png")
    if raw:
        maps = [("gradcam", cam)] + ([("shap", shap.pixel_map()), ("shap_stderr", shap.stderr_map())] if shap else [])
        for kind, m in maps:
            if m is not None:
                with atomic_write(out / f"{stem}_{kind}.npy") as f:
                    np.save(f, np.asarray(m, dtype=np.float32))
                written.append(out / f"{stem}_{kind}.npy")
        if shap is not None:
            write_json(out / f"{stem}_shap.json", {"class": class_name, **shap.summary()})
            written.append(out / f"{stem}_shap.json")
        if original is not None:
            written += save_on_original(out, stem, *original, cam=cam, shap=shap, cam_name=cam_name, stamp=stamp)
    return written


def save_on_original(out, stem, image, settings, cam=None, shap=None, cam_name="Grad-CAM", stamp=None):
    """The maps carried back onto the original image (H, W): ``.npy`` files and one picture with the crop outlined.

    The model saw a resized, centre-cropped copy; these say where on the file's own pixels
    each value belongs (:func:`minivgg.imaging.preprocess.to_original`).
    """
    from minivgg.imaging.preprocess import crop_box, to_original
    out, written = Path(out), []
    maps = [(kind, m) for kind, m in (("gradcam", cam), ("shap", None if shap is None else shap.pixel_map()))
            if m is not None]
    for kind, m in maps:
        with atomic_write(out / f"{stem}_{kind}_original.npy") as f:
            np.save(f, to_original(m, image.shape, settings))
        written.append(out / f"{stem}_{kind}_original.npy")
    top, left, bottom, right = crop_box(image.shape, settings)
    panels = []
    for kind, m in maps:
        heat = np.nan_to_num(to_original(m, image.shape, settings))
        picture = _map(gradcam_overlay(image, heat) if kind == "gradcam" else _diverging_overlay(image, heat))
        scale = picture.image.width / image.shape[1]
        picture = _dashed_box(picture, (left * scale, top * scale, right * scale - 1, bottom * scale - 1))
        title = (f"{cam_name if kind == 'gradcam' else 'SHAP'} on the original ({image.shape[1]}x{image.shape[0]})\n"
                 "dashed: the model's crop")
        panels.append(_panel(_text(title, LABEL_PT - 1), picture))
    _save(_row(panels), out / f"{stem}_original.png", stamp)
    return written + [out / f"{stem}_original.png"]


def _diverging_overlay(gray, values):
    """RdBu_r over ``gray`` scaled to the largest |value| (a SHAP map on the original's pixels)."""
    lo, hi = shap_limits(values)
    colour = diverging_colours((values - lo) / (hi - lo))
    weight = np.where(values != 0, SHAP_WEIGHT, 0)[..., None]
    return (1 - weight) * np.repeat(gray[..., None], 3, axis=2) + weight * colour
