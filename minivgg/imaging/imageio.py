"""Read radiographs of any common kind into one grayscale float image.

Supported: PNG (8- and 16-bit), JPEG, BMP, TIFF in modes L, I;16, I, F, RGB, RGBA, P,
LA, CMYK (via Pillow), and DICOM (via the optional ``pydicom``: ``pip install
minivgg[dicom]``). Every image ends as a 2-D float32 array scaled to [0, 1], where
bright means dense (bone), as on a printed radiograph.

* EXIF orientation is applied, so a phone photo of a film is upright.
* Colour is converted to luminance (ITU-R 601-2, Pillow's ``L``); alpha is dropped
  (composited on black, the radiograph background).
* Integer images are scaled by the range of their type (8-bit by 255, 16-bit by
  65535) rather than by their own min/max, so exposure differences survive.
* A pixel limit guards against decompression bombs.
* Float images with NaN or infinite pixels are refused (scaling them by their own
  min/max would turn the whole image black without a word).
* DICOM: the modality LUT (rescale slope/intercept) is applied and MONOCHROME1
  images (where bright means *less* dense) are inverted; values are then scaled by
  their own min/max, since DICOM stores no fixed display range.
"""

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from minivgg.errors import ImageError
from minivgg.files import input_problem

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
MAX_PIXELS = 60_000_000      # ~7700 x 7700; the largest plain radiographs are ~4300 x 3500



def is_image_path(path):
    """True when ``path`` has an image suffix this module reads (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _is_dicom(path):
    if Path(path).suffix.lower() in {".dcm", ".dicom"}:
        return True
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def load_image(path, max_pixels=MAX_PIXELS):
    """Read ``path`` into a float32 array of shape (H, W) with values in [0, 1].

    Raises
    ------
    ImageError
        Missing, unreadable (permission, symbolic-link loop), empty, truncated or non-image
        files, images over ``max_pixels`` and images with NaN or infinite pixels.
    """
    path = Path(path)
    problem = input_problem(path)
    if problem:
        raise ImageError(f"{path}: {problem}")
    try:
        dicom = _is_dicom(path)
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({(e.strerror or type(e).__name__).lower()})") from None
    image = _load_dicom(path, max_pixels) if dicom else _load_pillow(path, max_pixels)
    if not np.isfinite(image).all():
        bad = int((~np.isfinite(image)).sum())
        raise ImageError(f"{path}: {bad:,} pixels are NaN or infinite")
    return image


def _load_pillow(path, max_pixels):
    try:
        with warnings.catch_warnings():
            # Pillow warns (DecompressionBombWarning) below its own error limit; we
            # apply our own limit instead, before any pixel is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageError(f"{path}: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,}")
                im = ImageOps.exif_transpose(im)
                return _to_gray_float(im, path)
    except ImageError:
        raise
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path}: not a readable image ({_short(e)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: truncated or corrupt image ({_short(e)})") from None


def _short(err):
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _to_gray_float(im, path):
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return (np.asarray(im, dtype=np.uint16).astype(np.float32) / 65535.0)
    if mode == "I":
        a = np.asarray(im, dtype=np.int64)
        # 32-bit integer PNG/TIFF usually carry 16-bit data; scale by the smallest range that fits.
        top = 65535.0 if a.max(initial=0) <= 65535 else float(2 ** 31 - 1)
        return (np.clip(a, 0, None) / top).astype(np.float32)
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        if not np.isfinite(a).all():
            return a                      # refused by load_image, naming the file
        lo, hi = float(a.min()), float(a.max())
        return ((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)).astype(np.float32)
    if mode == "1":
        im = im.convert("L")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(background, rgba).convert("L")
    elif mode != "L":
        im = im.convert("RGB").convert("L")       # P, CMYK, YCbCr, RGB, LAB ...
    return np.asarray(im, dtype=np.float32) / 255.0


def _load_dicom(path, max_pixels):
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut
    except ImportError:
        raise ImageError(f"{path}: DICOM needs the optional pydicom package (pip install minivgg[dicom])") from None
    try:
        ds = pydicom.dcmread(path)
        rows, cols = int(ds.Rows), int(ds.Columns)
        if rows * cols > max_pixels:
            raise ImageError(f"{path}: {cols}x{rows} = {rows * cols:,} pixels exceeds the limit of {max_pixels:,}")
        a = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    except ImageError:
        raise
    except Exception as e:      # pydicom raises many kinds; each means "unreadable"
        raise ImageError(f"{path}: unreadable DICOM ({_short(e)})") from None
    if a.ndim == 3:             # multi-frame or colour: take the first frame, as luminance
        a = a[0] if a.shape[-1] not in (3, 4) else a[..., :3] @ np.array([0.299, 0.587, 0.114])
    if not np.isfinite(a).all():
        return a                          # refused by load_image, naming the file
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        a = 1.0 - a
    return a.astype(np.float32)
