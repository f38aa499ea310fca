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
* Combined: image | Grad-CAM | SHAP, three panels of one size, with the predicted class
  and its probability in the title, like the paper's Figure 6.
* Every picture carries a stamp (drawn under it and in its PNG text fields): the model,
  the class and its probability, the out-of-distribution verdict (in red when the image is
  unlike the training images), and the map with its settings.

:func:`save_explanation` is the one writer of these files: ``minivgg explain``,
``minivgg predict --gradcam/--shap`` and the terminal app's save all call it. Every file
is written atomically. Matplotlib runs on its Agg back end: no display needed.
"""

from pathlib import Path

import numpy as np

from minivgg.atomic import atomic_write
from minivgg.files import write_json
from minivgg.text import format_probability

CAM_MIN_WEIGHT, CAM_MAX_WEIGHT = 0.25, 0.65   # a drawn map value's colour weight, weakest to strongest
CAM_FLOOR = 0.02             # values below this share of the maximum are left undrawn (rounding, not evidence)
CAM_COLOURS = (0.1, 0.92)    # the part of turbo used: blue to a saturated red (its darkest end is near black)
SHAP_WEIGHT, SHAP_FADED_WEIGHT = 0.6, 0.15
# zlib level of the PNG files. Level 1 writes a picture 2-3x as fast as PIL's default 6 (20-50 against
# 70-90 ms, a sixth of saving a picture) for files 15% larger (about 200 kB): flat colours compress well.
PNG_COMPRESSION = 1


def _figure(width, height):
    """A new matplotlib figure drawn by the Agg back end, without pyplot.

    pyplot keeps every open figure in one global registry (not thread-safe, and its import
    alone costs 0.3-0.4 s of a command that saves one picture); a bare ``Figure`` is an
    object like any other, freed when it is no longer used.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _cam_colormap():
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    return ListedColormap(colormaps["turbo"](np.linspace(*CAM_COLOURS, 256)), name="turbo_cam")


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
    from matplotlib import colormaps
    strength = np.clip(np.abs(cam), 0, 1)
    if is_signed(cam):
        heat = colormaps["RdBu_r"]((np.clip(cam, -1, 1) + 1) / 2)[..., :3]
    else:
        heat = _cam_colormap()(strength)[..., :3]
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
    from matplotlib import colormaps
    rgb_gray = np.repeat(gray[..., None], 3, axis=2)
    if not result.measurable:
        return rgb_gray
    lo, hi = shap_limits(result.values)
    colour = colormaps["RdBu_r"]((result.pixel_map() - lo) / (hi - lo))[..., :3]
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


def _save(fig, path, stamp=None):
    """Write ``fig`` as a PNG, atomically; ``stamp`` ({field: text}) is drawn under it and stored as PNG text."""
    if stamp:
        _draw_stamp(fig, stamp)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight", metadata=dict(stamp or {}),
                    pil_kwargs={"compress_level": PNG_COMPRESSION})


def _title(ax, text, **style):
    """``text`` above the axes ``ax``, as plain text (names come from files: never mathtext).

    Placed at the top of the axes (y = 1), where matplotlib's automatic placement puts it
    over axes without tick labels, as every axes here is; said outright, it spares each
    draw the search for tick labels to clear, on every axis of the figure (a tenth of a
    picture's drawing time).
    """
    ax.set_title(text, y=1.0, parse_math=False, **style)


def _draw_stamp(fig, stamp):
    """The stamp's fields as small lines under the figure, the out-of-distribution verdict first, in red when
    the image is unlike the training images.

    Names come from files and model files: drawn as plain text, never as mathtext.
    """
    from matplotlib.transforms import offset_copy
    fields = {key: value for key, value in stamp.items() if value and key != "Software"}
    verdict = fields.pop("In distribution", None)
    lines = ([f"in distribution: {verdict}"] if verdict else []) + [f"{k.lower()}: {v}" for k, v in fields.items()]
    flagged = bool(verdict) and verdict.startswith("NO")
    for i, line in enumerate(lines):
        red = flagged and i == 0
        where = offset_copy(fig.transFigure, fig=fig, x=4, y=-2 - 10 * i, units="points")
        fig.text(0, 0, line, transform=where, ha="left", va="top", fontsize=7, parse_math=False,
                 color="red" if red else "0.25", fontweight="bold" if red else "normal")


def _colour_bar_axes(ax):
    """A slot for a colour bar beside ``ax``, the same for every panel so that panels keep one size."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable
    return make_axes_locatable(ax).append_axes("right", size="5%", pad=0.08)


def _draw_radiograph(ax, gray):
    ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
    _title(ax, f"model input ({gray.shape[1]}x{gray.shape[0]} crop)")
    ax.axis("off")
    _colour_bar_axes(ax).axis("off")                  # an empty slot: same width as the others


def _draw_gradcam(ax, gray, cam, name="Grad-CAM"):
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    ax.imshow(gradcam_overlay(gray, cam))
    _title(ax, name)
    ax.axis("off")
    if is_signed(cam):
        bar = ax.figure.colorbar(ScalarMappable(Normalize(-1, 1), colormaps["RdBu_r"]), cax=_colour_bar_axes(ax))
        bar.set_label(f"{name}: against (blue) / for (red), scaled to its largest |value|")
    else:
        bar = ax.figure.colorbar(ScalarMappable(Normalize(0, 1), _cam_colormap()), cax=_colour_bar_axes(ax))
        bar.set_label(f"{name}, scaled to its maximum")


def _draw_shap(ax, gray, result, class_name):
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    ax.imshow(shap_overlay(gray, result))
    _title(ax, f"SHAP (red: towards {class_name})")
    ax.axis("off")
    cax = _colour_bar_axes(ax)
    scale = "probability" if result.output == "probability" else "log-odds"
    if result.measurable:
        bar = ax.figure.colorbar(ScalarMappable(Normalize(*shap_limits(result.values)), colormaps["RdBu_r"]),
                                 cax=cax)
        bar.set_label(f"contribution to {scale}")
    else:
        cax.axis("off")
        ax.text(0.5, 0.5, "no measurable effect", transform=ax.transAxes, ha="center", va="center",
                fontsize=11, bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))
    ax.text(0.5, -0.03, shap_caption(result), transform=ax.transAxes, ha="center", va="top", fontsize=7)


def save_panel(path, draw, title, stamp=None, height=4.0):
    """One map as a picture of its own: ``draw(ax)`` draws it, ``title`` goes above it (as plain text)."""
    fig = _figure(4.6, height)
    ax = fig.subplots()
    draw(ax)
    _title(ax, title)
    _save(fig, path, stamp)


def combined_figure(gray, cam=None, shap=None, class_name="", probability=None, title="", cam_name="Grad-CAM"):
    """Figure 6 as a matplotlib figure: image | Grad-CAM | SHAP (either map may be None: left out);
    ``cam_name`` names the class-activation map ("HiResCAM")."""
    panels = 1 + (cam is not None) + (shap is not None)
    fig = _figure(4.6 * panels, 4.4)
    axes = fig.subplots(1, panels, squeeze=False)
    axes = list(axes[0])
    _draw_radiograph(axes[0], gray)
    if cam is not None:
        _draw_gradcam(axes[1], gray, cam, cam_name)
    if shap is not None:
        _draw_shap(axes[-1], gray, shap, class_name)
    head = f"predicted: {class_name}" + (f" (p = {format_probability(probability)})" if probability is not None else "")
    fig.suptitle(f"{title}  {head}".strip(), parse_math=False)
    return fig


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
        save_panel(out / f"{stem}_gradcam.png", lambda ax: _draw_gradcam(ax, gray, cam, cam_name),
                   f"{cam_name} for {class_name}", stamp)
        written.append(out / f"{stem}_gradcam.png")
    if shap is not None:
        save_panel(out / f"{stem}_shap.png", lambda ax: _draw_shap(ax, gray, shap, class_name),
                   f"SHAP for {class_name}", stamp, height=4.2)
        written.append(out / f"{stem}_shap.png")
    if combined:
        fig = combined_figure(gray, cam, shap, class_name, probability, title=title, cam_name=cam_name)
        _save(fig, out / f"{stem}_explain.png", stamp)
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
    from matplotlib.patches import Rectangle

    from minivgg.imaging.preprocess import crop_box, to_original
    out, written = Path(out), []
    maps = [(kind, m) for kind, m in (("gradcam", cam), ("shap", None if shap is None else shap.pixel_map()))
            if m is not None]
    for kind, m in maps:
        with atomic_write(out / f"{stem}_{kind}_original.npy") as f:
            np.save(f, to_original(m, image.shape, settings))
        written.append(out / f"{stem}_{kind}_original.npy")
    fig = _figure(4.6 * len(maps), 4.4)
    axes = fig.subplots(1, len(maps), squeeze=False)
    top, left, bottom, right = crop_box(image.shape, settings)
    for ax, (kind, m) in zip(axes[0], maps):
        heat = np.nan_to_num(to_original(m, image.shape, settings))
        overlay = gradcam_overlay(image, heat) if kind == "gradcam" else _diverging_overlay(image, heat)
        ax.imshow(overlay)
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, color="lime",
                               linewidth=1.2, linestyle="--"))
        _title(ax, f"{cam_name if kind == 'gradcam' else 'SHAP'} on the original ({image.shape[1]}x"
                   f"{image.shape[0]})\ndashed: the model's crop", fontsize=9)
        ax.axis("off")
    _save(fig, out / f"{stem}_original.png", stamp)
    return written + [out / f"{stem}_original.png"]


def _diverging_overlay(gray, values):
    """RdBu_r over ``gray`` scaled to the largest |value| (a SHAP map on the original's pixels)."""
    from matplotlib import colormaps
    lo, hi = shap_limits(values)
    colour = colormaps["RdBu_r"]((values - lo) / (hi - lo))[..., :3]
    weight = np.where(values != 0, SHAP_WEIGHT, 0)[..., None]
    return (1 - weight) * np.repeat(gray[..., None], 3, axis=2) + weight * colour
