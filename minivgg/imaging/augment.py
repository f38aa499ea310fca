"""Training-time augmentation as in the paper's Figure 2.

Three strategies, one drawn at random for each training sample:

* rotation only: a uniform angle in [-45, +45] degrees about the image centre
  (bilinear, corners filled with black, the radiograph background);
* brightness only: pixel values times a factor uniform in [0.6, 1.4], clipped to the
  valid range (the paper: 0-255 clipping; here [0, 1]);
* both: the rotation, then the brightness change.

``strategy="none"`` skips all three (for use with ``orientation`` alone).

With ``orientation=True`` the image is first turned into one of its eight
orientations (the identity, three quarter-turns, and the four mirror images: the
symmetries of a square, the dihedral group D4), drawn uniformly. Then no orientation is
more typical of one class than of another, so the frame's orientation cannot become a
class cue (a model trained on upright hands alone may call a transposed healthy hand
"RA": nothing in training told it otherwise).

With ``sharpness=p``, with probability ``p`` the image is then blurred (Gaussian, sigma
uniform in [0, 2.5] pixels of the resized image) or sharpened (an unsharp mask of up to
100%), half of the time each. A radiograph from a softer or a harder detector differs in
just this way, and without it a model may take blur itself for disease: the second
bundled model, trained without it, called 9 of 10 healthy phantoms "RA" once they were
blurred by 2 pixels (sigma), although nothing about their joints had changed.

With ``occlusion=p``, with probability ``p`` the image is then cut into 20-80 random
cells (the Voronoi cells of random points: irregular regions, like Kernel-SHAP's
superpixels) and a random share of them, uniform in [0, 1], is painted with ``fill``:
what Kernel-SHAP does to the regions it hides, with the same fill as its baseline
(``"air"``, the image's darkest value, the default; or ``"mean"``). Without it a model may
learn that anything unusual is disease; then every hidden region looks like a lesion to
it, and SHAP, which asks what the model says when regions are hidden, cannot find the
lesions. With it, hiding is seen in both classes and carries no class information.

Augmentation is applied to the resized image before the centre crop (so rotated
corners are mostly cropped away), and only during training. Every draw comes from the
``numpy.random.Generator`` passed in, so a seeded run repeats exactly.
"""

import numpy as np
from scipy import ndimage

STRATEGIES = ("rotation", "brightness", "both")
FILLS = ("air", "mean")          # what occlusion paints hidden cells with (Kernel-SHAP's baselines of the same names)
MAX_BLUR_SIGMA = 2.5             # pixels of the resized image


def rotate(gray, angle_degrees):
    """Rotate about the centre, keeping the shape; outside pixels become 0."""
    return ndimage.rotate(gray, angle_degrees, reshape=False, order=1, mode="constant", cval=0.0)


def adjust_brightness(gray, factor):
    """Multiply by ``factor`` and clip to [0, 1]."""
    return np.clip(gray * np.float32(factor), 0.0, 1.0)


def orient(gray, k, mirror):
    """One of the eight orientations of a square image: ``k`` quarter-turns, then a left-right mirror."""
    out = np.rot90(gray, k)
    return out[:, ::-1] if mirror else out


def fill_value(gray, fill):
    """What a hidden region becomes: ``"air"``, the image's darkest value (the background around the hand),
    or ``"mean"``, its mean."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    return gray.min() if fill == "air" else gray.mean()


def occlude(gray, rng, cells=(20, 80), fill="air"):
    """Paint a random share of random Voronoi cells with :func:`fill_value`; returns (image, share hidden)."""
    h, w = gray.shape
    seeds = rng.random((rng.integers(cells[0], cells[1] + 1), 2)) * (h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    cell = np.argmin((yy.ravel()[:, None] - seeds[:, 0]) ** 2 + (xx.ravel()[:, None] - seeds[:, 1]) ** 2, axis=1)
    hidden = (rng.random(len(seeds)) < rng.random())[cell].reshape(h, w)
    return np.where(hidden, fill_value(gray, fill), gray), float(hidden.mean())


def change_sharpness(gray, rng, max_sigma=MAX_BLUR_SIGMA):
    """Blur (sigma uniform in [0, max_sigma]) or sharpen (unsharp mask, amount uniform in [0, 1]), half and half.

    Returns ``(image, info)``: ``{"blur": sigma}`` or ``{"sharpen": amount}``.
    """
    if rng.random() < 0.5:
        sigma = float(rng.uniform(0, max_sigma))
        return ndimage.gaussian_filter(gray, sigma), {"blur": sigma}
    amount = float(rng.uniform(0, 1))
    sharpened = gray + amount * (gray - ndimage.gaussian_filter(gray, 1.0))
    return np.clip(sharpened, 0.0, 1.0), {"sharpen": amount}


def augment(gray, rng, strategy=None, max_angle=45.0, brightness=(0.6, 1.4), orientation=False, sharpness=0.0,
            occlusion=0.0, fill="air"):
    """Apply one of :data:`STRATEGIES` (drawn from ``rng`` when ``strategy`` is None).

    With ``orientation``, first one of the eight orientations of :func:`orient`; with
    ``sharpness``, then (with that probability) :func:`change_sharpness`; with ``occlusion``,
    then (with that probability) :func:`occlude` with ``fill``.
    Returns ``(image, info)`` where ``info`` records what was done, e.g.
    ``{"strategy": "both", "angle": -12.3, "brightness": 1.21}``.
    """
    if strategy is None:
        strategy = STRATEGIES[rng.integers(len(STRATEGIES))]
    if strategy not in (*STRATEGIES, "none"):
        raise ValueError(f"unknown augmentation {strategy!r}; choose from {', '.join(STRATEGIES)} or none")
    info = {"strategy": strategy}
    out = gray
    if orientation:
        info["quarter_turns"], info["mirror"] = int(rng.integers(4)), bool(rng.integers(2))
        out = orient(out, info["quarter_turns"], info["mirror"])
    if strategy in ("rotation", "both"):
        info["angle"] = float(rng.uniform(-max_angle, max_angle))
        out = rotate(out, info["angle"])
    if strategy in ("brightness", "both"):
        info["brightness"] = float(rng.uniform(*brightness))
        out = adjust_brightness(out, info["brightness"])
    if sharpness and rng.random() < sharpness:
        out, changed = change_sharpness(out, rng)
        info.update(changed)
    if occlusion and rng.random() < occlusion:
        out, info["hidden"] = occlude(out, rng, fill=fill)
    return out.astype(np.float32), info
