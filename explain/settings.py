"""What an explanation is asked to do: one frozen settings object, and the one place its defaults live.

The command line (``minivgg explain``, ``predict --gradcam/--shap``), the Dask workers and
the terminal app all explain through :meth:`minivgg.deploy.Classifier.explain` with an
:class:`ExplainSettings`; :class:`~minivgg.explain.kernelshap.KernelSHAP` takes its own
keyword defaults from the constants below. The object is frozen (an explanation cannot
change its settings half-way) and plain (it is pickled as it is to a Dask worker).
"""

import math
from dataclasses import asdict, dataclass

METHODS = ("gradcam", "shap", "both")           # which maps an explanation computes
CAMS = ("gradcam", "hirescam")                  # the class-activation map (minivgg.explain.gradcam)
SEGMENTATIONS = ("superpixels", "grid")
BACKGROUNDS = ("merge", "keep")
OUTPUTS = ("probability", "logit")
BASELINES = ("air", "mean", "blur")             # or a finite number, in normalised input units
BLUR_WARNING = ("the blur baseline asks what the model says of a blurred image, and blur itself moves a model "
                "trained without blurred images (the second bundled model called 9 of 10 healthy phantoms 'RA' "
                "once blurred): prefer air")
# Kernel-SHAP's defaults. 32 regions: on 24 fresh easy RA phantoms the map's top region was on a
# lesion in 92% of them (24 regions: 88%; more calls did not change it, smaller regions did). The
# run stops once every value is known to within 30% of the map's scale, all at once (95%), or after
# 1000 calls. Measured against 8000-call runs on 20 fresh easy RA phantoms (seed 2): the largest
# error of a map was 0.13 of its scale (median; 0.21 in 9 of 10, 0.24 at most), the pointing game
# 0.95 as the reference's, the lesion mass ratio 6.6 (reference 7.4), after 753 calls on average.
# The former defaults (20%, 2000 calls) took 1358 calls for 0.10 (0.13; 0.26) and 7.2: past 1000
# calls the band narrows as 1/sqrt(calls), so a second 1000 calls bought a third off the error and
# nothing in where the map points. On the bundled samples: 714-1000 calls (20000-call reference).
DEFAULT_REGIONS, DEFAULT_BUDGET, DEFAULT_TOLERANCE = 32, 1000, 0.3


@dataclass(frozen=True)
class ExplainSettings:
    """How to explain an image.

    Attributes
    ----------
    method : "gradcam", "shap" or "both": the maps to compute
    cam : "hirescam" (default) or "gradcam" (the paper's): the class-activation map. HiResCAM
        is the default because it points at the evidence the model uses: on the bundled model
        Grad-CAM's channel weights make the lesions the most negative part of its map, and its
        ReLU erases them (README, "Explanations")
    signed : bool, keep the class-activation map's negative part (evidence against the class),
        drawn in a second colour
    target : str or None, the class to explain by name (None: the predicted class)
    regions : int, Kernel-SHAP regions
    segmentation : "superpixels" or "grid"
    background : "merge", "keep" or None (None: merge for superpixels, keep a grid's cells)
    baseline : "air" (default), "mean", "blur" or a finite number: what a hidden region is
        filled with (:mod:`minivgg.explain.kernelshap` says why air)
    budget : int, Kernel-SHAP model calls at most
    tolerance : float, stop once every region's value is known to within this fraction of the
        map's scale (its largest |value|), all regions at once with 95% probability (0: spend
        the whole budget)
    output : "probability" or "logit", the scale SHAP explains
    seed : int
    raw : bool, also save the maps as ``.npy`` and SHAP's regions as JSON

    Raises ``ValueError`` naming the field for a value that cannot work.
    """
    method: str = "both"
    cam: str = "hirescam"
    signed: bool = False
    target: str = None
    regions: int = DEFAULT_REGIONS
    segmentation: str = "superpixels"
    background: str = None
    baseline: object = "air"
    budget: int = DEFAULT_BUDGET
    tolerance: float = DEFAULT_TOLERANCE
    output: str = "probability"
    seed: int = 0
    raw: bool = False

    def __post_init__(self):
        for name, allowed in (("method", METHODS), ("cam", CAMS), ("segmentation", SEGMENTATIONS),
                              ("output", OUTPUTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.background not in (None, *BACKGROUNDS):
            raise ValueError(f"background must be merge, keep or None, got {self.background!r}")
        if self.background == "merge" and self.segmentation == "grid":
            raise ValueError("--background merge applies to superpixels; a grid's cells are plain tiles "
                             "(use --background keep)")
        if not (self.baseline in BASELINES or _finite_number(self.baseline)):
            raise ValueError(f"baseline must be air, mean, blur or a finite number, got {self.baseline!r}")
        if not isinstance(self.signed, bool):
            raise ValueError(f"signed must be true or false, got {self.signed!r}")
        for name, low in (("regions", 1), ("budget", 2), ("seed", None)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or (low is not None and value < low):
                raise ValueError(f"{name} must be an integer{f' >= {low}' if low else ''}, got {value!r}")
        if not (_finite_number(self.tolerance) and 0 <= self.tolerance <= 1):
            raise ValueError(f"tolerance must be a number in [0, 1], got {self.tolerance!r}")

    @property
    def wants_cam(self):
        return self.method in ("gradcam", "both")

    @property
    def wants_shap(self):
        return self.method in ("shap", "both")

    @property
    def warnings(self):
        """What the user should know about these settings before trusting the maps."""
        return [BLUR_WARNING] if self.baseline == "blur" else []

    def describe(self):
        """The settings as JSON values (for records and the stamp of a saved picture)."""
        return asdict(self)


def _finite_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
