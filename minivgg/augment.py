"""Training-time augmentation as in the paper's Figure 2.

Three strategies, one drawn at random for each training sample:

* rotation only: a uniform angle in [-45, +45] degrees about the image centre
  (bilinear, corners filled with black, the radiograph background);
* brightness only: pixel values times a factor uniform in [0.6, 1.4], clipped to the
  valid range (the paper: 0-255 clipping; here [0, 1]);
* both: the rotation, then the brightness change.

Augmentation is applied to the resized image before the centre crop (so rotated
corners are mostly cropped away), and only during training. Every draw comes from the
``numpy.random.Generator`` passed in, so a seeded run repeats exactly.
"""

import numpy as np
from scipy import ndimage

STRATEGIES = ("rotation", "brightness", "both")


def rotate(gray, angle_degrees):
    """Rotate about the centre, keeping the shape; outside pixels become 0."""
    return ndimage.rotate(gray, angle_degrees, reshape=False, order=1, mode="constant", cval=0.0)


def adjust_brightness(gray, factor):
    """Multiply by ``factor`` and clip to [0, 1]."""
    return np.clip(gray * np.float32(factor), 0.0, 1.0)


def augment(gray, rng, strategy=None, max_angle=45.0, brightness=(0.6, 1.4)):
    """Apply one of :data:`STRATEGIES` (drawn from ``rng`` when ``strategy`` is None).

    Returns ``(image, info)`` where ``info`` records what was done, e.g.
    ``{"strategy": "both", "angle": -12.3, "brightness": 1.21}``.
    """
    if strategy is None:
        strategy = STRATEGIES[rng.integers(len(STRATEGIES))]
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown augmentation {strategy!r}; choose from {', '.join(STRATEGIES)}")
    info = {"strategy": strategy}
    out = gray
    if strategy in ("rotation", "both"):
        info["angle"] = float(rng.uniform(-max_angle, max_angle))
        out = rotate(out, info["angle"])
    if strategy in ("brightness", "both"):
        info["brightness"] = float(rng.uniform(*brightness))
        out = adjust_brightness(out, info["brightness"])
    return out.astype(np.float32), info
