"""Read radiographs of any common kind into one grayscale float image.

Supported: PNG (8- and 16-bit), JPEG, BMP, TIFF in modes L, I;16, I, F, RGB, RGBA, P,
LA, CMYK (via Pillow), and DICOM (via the optional ``pydicom``: ``pip install
minivgg[dicom]``), also without a suffix (``IM0001`` from a PACS export: found by the
``DICM`` mark at byte 128). Every image ends as a 2-D float32 array scaled to [0, 1],
where bright means dense (bone), as on a printed radiograph.

* EXIF orientation is applied, so a phone photo of a film is upright; corrupt EXIF data
  becomes one note naming the file (a :class:`~minivgg.errors.Note` warning).
* Colour is converted to luminance (ITU-R 601-2, Pillow's ``L``); alpha is dropped
  (composited on black, the radiograph background).
* Integer images are scaled by the range of their type (8-bit by 255, 16-bit by
  65535) rather than by their own min/max, so exposure differences survive.
* Limits guard against decompression bombs, checked from the header before any pixel
  is decoded: :data:`MAX_PIXELS` pixels (every frame counted) and
  :data:`MAX_DECODED_BYTES` bytes of decoded pixels (:func:`reading_bytes` adds the float32 copy).
* Float images with NaN or infinite pixels are refused (scaling them by their own
  min/max would turn the whole image black without a word); finite ones are scaled by
  their own min/max, computed in float64 so that even +-3e38 does not overflow.
* DICOM: only the first frame of a multi-frame file is decoded. A grayscale frame goes
  through the file's modality LUT (rescale slope/intercept) and then its VOI LUT
  (window centre/width) where it has one; MONOCHROME1 (bright means *less* dense) is
  inverted. Like other integer images it is scaled by the range its stored values can
  take (through those LUTs), so the same 8-bit pixels give the same image as a PNG.
  Colour (RGB, YBR, palette) frames become luminance as colour PNGs do.
"""

import contextlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from minivgg.errors import ImageError, Note, describe
from minivgg.files import input_problem, open_regular

DICOM_SUFFIXES = {".dcm", ".dicom"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"} | DICOM_SUFFIXES
MAX_PIXELS = 60_000_000      # ~7700 x 7700; the largest plain radiographs are ~4300 x 3500
# The pixels of one image as decoded, before the float32 copy made of them: a 7700 x 7700
# RGBA image (Pillow keeps 4 bytes a pixel) just fits; a 16-bit RGBA one, or a DICOM stack
# of 128 frames of 1024 x 1024 x 16 bit, does not.
MAX_DECODED_BYTES = 256 * 2 ** 20
DICOM_MARK = (128, b"DICM")  # where every DICOM file (PS3.10) says what it is, after a 128-byte preamble


def is_image_path(path):
    """True when ``path`` is a file this module reads: an image suffix, or a DICOM file without one.

    The one test the folder scan and the data sets use. A folder is never an image;
    a file with an image suffix that cannot be examined (a broken link, a path over the
    system's limit) counts as one, so that reading it reports why. Files without an
    image suffix are looked into (132 bytes) for the DICOM mark; FIFOs and devices are
    not opened.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return _has_dicom_mark(path)
    try:
        return not path.is_dir()
    except OSError:
        return True


def _has_dicom_mark(path):
    at, mark = DICOM_MARK
    try:
        with open_regular(path) as f:
            return f.read(at + len(mark))[at:] == mark
    except OSError:
        return False


def find_images(folder):
    """Every image file under ``folder``, searched recursively, sorted (as :func:`is_image_path` decides).

    Symbolic links to folders are not followed (a link loop cannot trap the search). A
    sub-folder that cannot be listed (permission, a path over the system's limit) is
    left out with one :class:`~minivgg.errors.Note` naming it.
    """
    def skipped(error):
        warnings.warn(Note(f"{error.filename}: cannot search this folder ({describe(error)}); its images are "
                           f"left out"), stacklevel=2)
    found = []
    for root, _, names in os.walk(folder, onerror=skipped):
        found += [path for path in (Path(root, name) for name in names) if is_image_path(path)]
    return sorted(found)


def _is_dicom(path):
    return Path(path).suffix.lower() in DICOM_SUFFIXES or _has_dicom_mark(path)


def load_image(path, max_pixels=MAX_PIXELS, max_bytes=MAX_DECODED_BYTES):
    """Read ``path`` into a float32 array of shape (H, W) with values in [0, 1].

    Raises
    ------
    ImageError
        Missing, unreadable (permission, symbolic-link loop), empty, truncated or non-image
        files, folders, FIFOs and devices, images over ``max_pixels`` pixels or
        ``max_bytes`` decoded bytes, and images with NaN or infinite pixels.
    """
    path = Path(path)
    problem = input_problem(path)
    if problem:
        raise ImageError(f"{path}: {problem}")
    image = _load_dicom(path, max_pixels, max_bytes) if _is_dicom(path) else _load_pillow(path, max_pixels, max_bytes)
    if not np.isfinite(image).all():
        bad = int((~np.isfinite(image)).sum())
        raise ImageError(f"{path}: {bad:,} pixels are NaN or infinite")
    return image


def reading_bytes(path):
    """The memory that reading ``path`` takes, from its header alone (0 when it has none).

    Its decoded pixels (width x height x samples x bytes per sample x frames, which
    :func:`load_image` checks against ``max_bytes``) and the float32 image made of them.
    Read-ahead uses it to keep the images being read at once within a memory budget. A
    file whose header cannot be read gives 0: reading it will say why.
    """
    if input_problem(path):              # a FIFO would block the opening, a folder cannot be opened
        return 0
    try:
        if _is_dicom(path):
            ds = _dicom_header(path)
            return _dicom_size(ds)[1] + 4 * int(ds.Rows) * int(ds.Columns)
        with _open_pillow(path) as im:
            return im.width * im.height * (_pillow_bytes_per_pixel(im.mode) + 4)
    except ImageError:
        return 0


def _check_size(path, what, pixels, nbytes, max_pixels, max_bytes):
    if pixels > max_pixels:
        raise ImageError(f"{path}: {what} = {pixels:,} pixels exceeds the limit of {max_pixels:,}")
    if nbytes > max_bytes:
        raise ImageError(f"{path}: {what} would take {nbytes / 2 ** 20:,.0f} MB decoded, over the limit of "
                         f"{max_bytes / 2 ** 20:,.0f} MB")


def _short(err):
    return str(err).splitlines()[0] if str(err) else type(err).__name__


# ------------------------------------------------------------------ Pillow

# Pillow reports problems in a file's EXIF data as warnings (with no file name) while it parses
# them. ``warnings.catch_warnings`` changes process-wide state and images are read on several
# threads at once, so opening and turning upright are done under this lock; decoding is not.
_PARSING = threading.Lock()


@contextlib.contextmanager
def _pillow_errors(path):
    """Pillow's exceptions while reading ``path`` as one-line :class:`ImageError`\\ s."""
    try:
        yield
    except ImageError:
        raise
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path}: not a readable image ({_short(e)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: truncated or corrupt image ({_short(e)})") from None


def _open_pillow(path, max_pixels=None, max_bytes=None):
    """The image at ``path``, opened (header only); with limits, checked against them and turned upright.

    The size is checked before anything is decoded: turning an image upright by its EXIF
    orientation decodes it. Pillow's warnings meanwhile become one :class:`Note` naming the
    file when it is read (with limits), and are dropped when only its header is looked at;
    its DecompressionBombWarning is always dropped, since :data:`MAX_PIXELS` is checked instead.
    """
    with _pillow_errors(path), _PARSING, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("always", UserWarning)
        im = Image.open(path)
        try:
            if max_pixels is not None:
                w, h = im.size
                _check_size(path, f"{w}x{h}", w * h, w * h * _pillow_bytes_per_pixel(im.mode), max_pixels, max_bytes)
                ImageOps.exif_transpose(im, in_place=True)
        except BaseException:
            im.close()
            raise
    pillow = [w for w in caught if "PIL" in Path(w.filename).parts]
    if pillow and max_pixels is not None:
        warnings.warn(Note(f"{path}: {_short(pillow[0].message).rstrip('. ')}; the rest of the file was read"),
                      stacklevel=3)
    for w in caught:
        if w not in pillow:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return im


def _pillow_bytes_per_pixel(mode):
    """What Pillow keeps per pixel: 1 byte for 1-band 8-bit modes, 2 for 16-bit, else 4 (every multi-band mode)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def _load_pillow(path, max_pixels, max_bytes):
    with _open_pillow(path, max_pixels, max_bytes) as im, _pillow_errors(path):
        return _to_gray_float(im)


def _to_gray_float(im):
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16).astype(np.float32) / 65535.0
    if mode == "I":
        a = np.asarray(im)
        # 32-bit integer PNG/TIFF usually carry 16-bit data; scale by the smallest range that fits.
        top = 65535.0 if a.max(initial=0) <= 65535 else float(2 ** 31 - 1)
        return np.clip(a, 0, None).astype(np.float32) / np.float32(top)
    if mode == "F":
        return _min_max_scaled(np.asarray(im, dtype=np.float32))
    if mode == "1":
        im = im.convert("L")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(background, rgba).convert("L")
    elif mode != "L":
        im = im.convert("RGB").convert("L")       # P, CMYK, YCbCr, RGB, LAB ...
    return np.asarray(im, dtype=np.float32) / 255.0


def _min_max_scaled(a, rows_at_once=256):
    """``a`` scaled by its own min and max to [0, 1], as float32; NaN or infinite values are left for the caller.

    The subtraction and division run in float64: in float32, ``3e38 - (-3e38)`` overflows
    to infinity, and a finite image would be refused as "NaN or infinite". A block of
    rows at a time, so the float64 copy stays small.
    """
    if a.size == 0 or not np.isfinite(a).all():
        return a
    lo, hi = float(a.min()), float(a.max())
    out = np.zeros(a.shape, dtype=np.float32)
    if hi > lo:
        for i in range(0, len(a), rows_at_once):
            out[i:i + rows_at_once] = (a[i:i + rows_at_once].astype(np.float64) - lo) / (hi - lo)
    return out


# ------------------------------------------------------------------ DICOM

def _pydicom(path):
    try:
        import pydicom
    except ImportError:
        raise ImageError(f"{path}: DICOM needs the optional pydicom package (pip install minivgg[dicom])") from None
    return pydicom


def _dicom_header(path):
    """The DICOM data set of ``path`` without its pixels (large values deferred: nothing big is read)."""
    pydicom = _pydicom(path)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size="1 MB")
        int(ds.Rows), int(ds.Columns)                 # a file without them has no image
    except Exception as e:      # pydicom raises many kinds; each means "unreadable"
        raise ImageError(f"{path}: unreadable DICOM ({_short(e)})") from None
    return ds


def _dicom_size(ds):
    """``(pixels, decoded bytes)`` of every frame of ``ds``, and how to say its shape."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = max(int(ds.get("NumberOfFrames") or 1), 1)
    samples, bytes_per_sample = int(ds.get("SamplesPerPixel") or 1), -(-int(ds.get("BitsAllocated") or 8) // 8)
    what = f"{cols}x{rows}" + (f" x {frames} frames" if frames > 1 else "")
    return rows * cols * frames, rows * cols * frames * samples * bytes_per_sample, what


def _load_dicom(path, max_pixels, max_bytes):
    ds = _dicom_header(path)
    pixels, nbytes, what = _dicom_size(ds)
    _check_size(path, what, pixels, nbytes, max_pixels, max_bytes)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    from pydicom.pixels import apply_color_lut, pixel_array
    try:
        frame = pixel_array(path, index=0)      # the first frame only; YBR comes as RGB
        if photometric == "PALETTE COLOR":
            frame = apply_color_lut(frame, ds)
        if photometric.startswith("MONOCHROME"):
            return _monochrome(frame, ds, inverted=photometric == "MONOCHROME1")
    except Exception as e:      # pydicom raises many kinds; each means "unreadable"
        raise ImageError(f"{path}: unreadable DICOM ({_short(e)})") from None
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ImageError(f"{path}: DICOM with {photometric} pixels of shape {frame.shape} is not supported "
                         f"(grayscale or RGB only)")
    if frame.dtype == np.uint8:               # as a colour PNG: Pillow's luminance
        return np.asarray(Image.fromarray(frame, "RGB").convert("L"), dtype=np.float32) / 255.0
    top = float(np.iinfo(frame.dtype).max) if frame.dtype.kind == "u" else float(frame.max(initial=1))
    return (frame.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])) / np.float32(top)


def _monochrome(frame, ds, inverted):
    """A grayscale frame through the modality LUT, then the VOI LUT (where the file has one), scaled to [0, 1].

    For 8- and 16-bit samples (every radiograph) each value the frame *could* hold is sent
    through the LUTs once, as a table of at most 65,536 entries, and the table is scaled
    by its own range: the scaling follows the type and the file's LUTs, not this image's
    darkest and brightest pixel. Looking the frame up in it gives float32 directly.
    Other samples (32-bit, floating point) are scaled by their own min/max.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    def displayed(values):
        return apply_voi_lut(apply_modality_lut(values, ds), ds)

    if frame.dtype.kind not in "iu" or frame.dtype.itemsize > 2:
        scaled = _min_max_scaled(np.asarray(displayed(frame), dtype=np.float64))
        return (1 - scaled if inverted else scaled).astype(np.float32)
    bits, signed = int(ds.get("BitsStored") or 8 * frame.dtype.itemsize), frame.dtype.kind == "i"
    lo, hi = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
    unsigned = np.dtype(f"u{frame.dtype.itemsize}")
    # Entry k is for the stored sample whose bits read k as unsigned: the frame indexes it directly.
    every_value = np.clip(np.arange(1 << 8 * frame.dtype.itemsize).astype(unsigned).view(frame.dtype), lo, hi)
    table = _min_max_scaled(np.asarray(displayed(every_value), dtype=np.float64))
    return (1 - table if inverted else table).astype(np.float32)[frame.view(unsigned)]
