"""Heatmap figures: Grad-CAM over the radiograph, SHAP as a diverging map, and the paper's Figure 6.

* Grad-CAM: the normalised map through a perceptual colormap (``inferno``: brightness
  rises monotonically with the value, and it reads in grey-scale print), blended
  over the gray radiograph where the map is strong.
* SHAP: a diverging colormap (``RdBu_r``) symmetric around zero: red pushes towards
  the explained class, blue against it, white is no effect; with a colour bar.
* Combined: image | Grad-CAM | SHAP, with the predicted class and its probability
  in the title, like the paper's Figure 6.

:func:`save_explanation` is the one writer of these files: ``minivgg explain``,
``minivgg predict --gradcam/--shap`` and the terminal app's save all call it. Every PNG
is written atomically. Matplotlib runs on its Agg back end: no display needed.
"""

from pathlib import Path

import numpy as np

from minivgg.atomic import atomic_write
from minivgg.predict import format_probability


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def gradcam_overlay(gray, cam, alpha=0.5):
    """RGB (S, S, 3) float in [0, 1]: ``cam`` (in [0, 1]) coloured with inferno over ``gray``.

    The colour's weight grows with the map value, so weak evidence leaves the
    radiograph visible.
    """
    from matplotlib import colormaps
    heat = colormaps["inferno"](np.clip(cam, 0, 1))[..., :3]
    weight = alpha * np.clip(cam, 0, 1)[..., None]
    return (1 - weight) * np.repeat(gray[..., None], 3, axis=2) + weight * heat


def shap_overlay(gray, shap_map, alpha=0.6):
    """RGB (S, S, 3) float in [0, 1]: ``shap_map`` in RdBu_r, symmetric around zero, over ``gray``."""
    from matplotlib import colormaps
    lo, hi = shap_limits(shap_map)
    colour = colormaps["RdBu_r"]((np.asarray(shap_map) - lo) / (hi - lo))[..., :3]
    return (1 - alpha) * np.repeat(gray[..., None], 3, axis=2) + alpha * colour


def shap_limits(values):
    """Symmetric colour limits around zero: (-L, L), L = max |value| (1e-12 when all are zero)."""
    lim = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return -max(lim, 1e-12), max(lim, 1e-12)


def _save(fig, path):
    plt = _plt()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _draw_gradcam(ax, gray, cam):
    ax.imshow(gradcam_overlay(gray, cam))
    ax.set_title("Grad-CAM")
    ax.axis("off")


def _draw_shap(fig, ax, gray, shap_map, class_name):
    plt = _plt()
    lo, hi = shap_limits(shap_map)
    ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
    im = ax.imshow(shap_map, cmap="RdBu_r", vmin=lo, vmax=hi, alpha=0.6)
    ax.set_title(f"SHAP (red: towards {class_name})")
    ax.axis("off")
    bar = plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("contribution to probability")


def save_gradcam(path, gray, cam, title=""):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 4))
    _draw_gradcam(ax, gray, cam)
    if title:
        ax.set_title(title)
    _save(fig, path)


def save_shap(path, gray, shap_map, class_name, title=""):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4))
    _draw_shap(fig, ax, gray, shap_map, class_name)
    if title:
        ax.set_title(title)
    _save(fig, path)


def save_combined(path, gray, cam=None, shap_map=None, class_name="", probability=None, title="", warning=None):
    """Figure 6: image | Grad-CAM | SHAP (either map may be None and is then left out), ``warning`` in red below."""
    plt = _plt()
    panels = 1 + (cam is not None) + (shap_map is not None)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 4.2), squeeze=False)
    axes = list(axes[0])
    axes[0].imshow(gray, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("radiograph")
    axes[0].axis("off")
    if cam is not None:
        _draw_gradcam(axes[1], gray, cam)
    if shap_map is not None:
        _draw_shap(fig, axes[-1], gray, shap_map, class_name)
    head = f"predicted: {class_name}" + (f" (p = {format_probability(probability)})" if probability is not None else "")
    fig.suptitle(f"{title}  {head}".strip())
    if warning:
        fig.text(0.5, -0.02, warning, ha="center", va="top", color="red", fontsize=11, wrap=True)
    _save(fig, path)


def save_explanation(out, stem, gray, class_name, probability=None, cam=None, shap_map=None, combined=True,
                     raw=False, title="", warning=None):
    """Write the heatmap files of one image; returns the paths written.

    Parameters
    ----------
    out : folder (created if needed)
    stem : str, the file-name stem (``<stem>_gradcam.png`` ...), distinct per input
        (see :func:`minivgg.outputs.distinct_stems`)
    gray : (S, S) the radiograph as the model saw it, in [0, 1]
    class_name : str, the explained class
    probability : float, the model's probability of that class (shown in the combined figure)
    cam : (S, S) normalised Grad-CAM map, or None
    shap_map : (S, S) Kernel-SHAP pixel map, or None
    combined : bool, also write ``<stem>_explain.png`` (radiograph | Grad-CAM | SHAP)
    raw : bool, also write the maps as ``<stem>_gradcam.npy`` / ``<stem>_shap.npy`` (float32)
    title : str, shown above the combined figure (e.g. the file name)
    warning : str, optional, shown in red below the combined figure (e.g. that the image is
        out of distribution), so that the figure carries it when it is passed on
    """
    out = Path(out)
    written = []
    if cam is not None:
        save_gradcam(out / f"{stem}_gradcam.png", gray, cam, title=f"Grad-CAM for {class_name}")
        written.append(out / f"{stem}_gradcam.png")
    if shap_map is not None:
        save_shap(out / f"{stem}_shap.png", gray, shap_map, class_name, title=f"SHAP for {class_name}")
        written.append(out / f"{stem}_shap.png")
    if combined:
        save_combined(out / f"{stem}_explain.png", gray, cam, shap_map, class_name, probability, title=title,
                      warning=warning)
        written.append(out / f"{stem}_explain.png")
    if raw:
        for kind, m in (("gradcam", cam), ("shap", shap_map)):
            if m is not None:
                with atomic_write(out / f"{stem}_{kind}.npy") as f:
                    np.save(f, np.asarray(m, dtype=np.float32))
                written.append(out / f"{stem}_{kind}.npy")
    return written
