"""The paper's preprocessing: resize, centre-crop, sym8 wavelet step, ImageNet normalisation.

For the paper's 224-pixel model (Methods, "Image Preprocessing"; Figure 2)::

    gray image (H, W) in [0, 1]
      -> resize to 256 x 256 (bilinear)
      -> centre-crop 224 x 224
      -> sym8 wavelet denoising (see below)
      -> clip to [0, 1]
      -> replicate to 3 channels, normalise each with mean [0.485, 0.456, 0.406]
         and std [0.229, 0.224, 0.225]
      = (3, 224, 224) float32

Sizes scale with the model: ``resize = round(image_size * 256 / 224)``, ``crop = image_size``.

**The wavelet step.** The paper names a "sym8 wavelet transformation" but not what is
done with the coefficients; returning them would not give an image a VGG could take.
We read it as wavelet *denoising*, the usual use of that step on radiographs: a
``levels``-deep 2-D decomposition with the Symlet-8 wavelet (PyWavelets
``wavedec2``), soft thresholding of every detail sub-band with the BayesShrink rule
(Chang, Yu & Vetterli, 2000), then reconstruction::

    sigma      = median(|HH_1|) / 0.6745                 noise, from the finest diagonal band
    sigma_x    = sqrt(max(var(band) - sigma^2, 0))        signal in a band
    threshold  = sigma^2 / sigma_x     (the whole band is zeroed when sigma_x = 0)
    coefficient -> sign(c) * max(|c| - threshold, 0)

The approximation band is never touched. Setting ``wavelet`` to ``None`` switches
the step off. The settings travel inside each model file, so prediction repeats
exactly what training did.
"""

import numpy as np
import pywt
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocessing_settings(image_size=224, wavelet="sym8", wavelet_levels=3):
    """The settings dict stored in model files, for a model with input ``image_size``."""
    return {"resize": int(round(image_size * 256 / 224)), "crop": int(image_size),
            "wavelet": wavelet, "wavelet_levels": int(wavelet_levels), "wavelet_threshold": "bayes",
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


def resize(gray, size):
    """Bilinear resize of a float image to ``size`` x ``size`` (Pillow, mode F)."""
    return np.asarray(Image.fromarray(np.asarray(gray, dtype=np.float32), mode="F")
                      .resize((size, size), Image.BILINEAR), dtype=np.float32)


def center_crop(gray, size):
    """The central ``size`` x ``size`` window (the larger half of an odd margin goes bottom/right)."""
    h, w = gray.shape
    top, left = (h - size) // 2, (w - size) // 2
    return gray[top:top + size, left:left + size]


def crop_box(shape, settings):
    """Where the model's input lies in an original image of ``shape`` (H, W): ``(top, left, bottom, right)``.

    The image is resized to R x R (``settings["resize"]``, each axis by its own factor) and
    the central S x S (``settings["crop"]``) kept; the box is that window in the original's
    pixel coordinates (edges, not centres).
    """
    h, w = shape
    r, s = settings["resize"], settings["crop"]
    top, left = (r - s) // 2, (r - s) // 2
    return top * h / r, left * w / r, (top + s) * h / r, (left + s) * w / r


def to_original(heat, shape, settings):
    """A map over the model's input (S, S) carried back onto the original image (H, W); NaN outside the crop.

    Each original pixel centre is mapped through the resize and the crop (the inverse of
    :func:`preprocess`'s geometry) and the map is sampled there bilinearly.
    """
    from scipy import ndimage
    h, w = shape
    r, s = settings["resize"], settings["crop"]
    offset = (r - s) // 2
    rows = (np.arange(h) + 0.5) * r / h - 0.5 - offset
    cols = (np.arange(w) + 0.5) * r / w - 0.5 - offset
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    out = ndimage.map_coordinates(np.asarray(heat, dtype=np.float64), [rr, cc], order=1, mode="nearest")
    inside = (rr >= -0.5) & (rr <= s - 0.5) & (cc >= -0.5) & (cc <= s - 0.5)
    return np.where(inside, out, np.nan).astype(np.float32)


def bayes_shrink_threshold(band, sigma):
    """BayesShrink soft threshold for one detail sub-band given the noise level ``sigma``."""
    sigma_x = np.sqrt(max(float(np.mean(band.astype(np.float64) ** 2)) - sigma ** 2, 0.0))
    return float(np.abs(band).max()) if sigma_x == 0 else sigma ** 2 / sigma_x


def wavelet_denoise(gray, wavelet="sym8", levels=3):
    """Soft-threshold wavelet denoising (BayesShrink); returns an image of the same shape.

    ``levels`` is capped at the deepest decomposition the image size allows.
    """
    gray = np.asarray(gray, dtype=np.float64)
    levels = max(1, min(levels, pywt.dwt_max_level(min(gray.shape), pywt.Wavelet(wavelet).dec_len)))
    coeffs = pywt.wavedec2(gray, wavelet, level=levels, mode="symmetric")
    sigma = float(np.median(np.abs(coeffs[-1][2]))) / 0.6745
    if sigma > 0:
        coeffs = [coeffs[0]] + [tuple(pywt.threshold(band, bayes_shrink_threshold(band, sigma), mode="soft")
                                      for band in detail) for detail in coeffs[1:]]
    out = pywt.waverec2(coeffs, wavelet, mode="symmetric")
    return out[:gray.shape[0], :gray.shape[1]].astype(np.float32)


def finish(gray_resized, settings):
    """Everything after the resize: centre-crop, wavelet step, clip, 3 channels, normalise.

    Parameters
    ----------
    gray_resized : ndarray, shape (R, R), values in [0, 1] (R = ``settings["resize"]``)

    Returns
    -------
    ndarray, shape (3, S, S), float32 (S = ``settings["crop"]``)
    """
    x = center_crop(gray_resized, settings["crop"])
    if settings.get("wavelet"):
        x = wavelet_denoise(x, settings["wavelet"], settings.get("wavelet_levels", 3))
    x = np.clip(x, 0.0, 1.0)
    mean = np.asarray(settings["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(settings["std"], dtype=np.float32)[:, None, None]
    return ((x[None] - mean) / std).astype(np.float32)


def to_display(x, settings):
    """Undo the normalisation of a model input (3, S, S): the gray image (S, S) in [0, 1] it came from."""
    mean = np.asarray(settings["mean"])[:, None, None]
    std = np.asarray(settings["std"])[:, None, None]
    return np.clip((x * std + mean).mean(axis=0), 0, 1)


def preprocess(gray, settings):
    """A gray image of any size in [0, 1] -> the model's input, shape (3, S, S) float32."""
    return finish(resize(gray, settings["resize"]), settings)
