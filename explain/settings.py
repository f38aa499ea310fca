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
# run stops before the budget of 2000 calls once every value is known to within 20% of the map's
# scale, all at once (95%): after 600-1400 calls on the bundled samples at 24 regions, with a
# largest error of 4-11% of the scale against a 4000-call run; at 32, after 1100-1500 calls on
# four of the six bundled samples (the other two use the budget).
DEFAULT_REGIONS, DEFAULT_BUDGET, DEFAULT_TOLERANCE = 32, 2000, 0.2


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
