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
BASELINES = ("mean", "blur")                    # or a finite number, in normalised input units
# Kernel-SHAP's defaults: chosen so that two seeds give the same map on the bundled samples
# (README, "Explanations").
DEFAULT_REGIONS, DEFAULT_BUDGET, DEFAULT_TOLERANCE = 24, 2000, 0.01


@dataclass(frozen=True)
class ExplainSettings:
    """How to explain an image.

    Attributes
    ----------
    method : "gradcam", "shap" or "both": the maps to compute
    cam : "gradcam" (the paper's) or "hirescam": the class-activation map
    target : str or None, the class to explain by name (None: the predicted class)
    regions : int, Kernel-SHAP regions
    segmentation : "superpixels" or "grid"
    background : "merge", "keep" or None (None: merge for superpixels, keep a grid's cells)
    baseline : "mean", "blur" or a finite number (what a hidden region is filled with)
    budget : int, Kernel-SHAP model calls at most
    tolerance : float, stop once the largest standard error is at most this fraction of
        ``|f(x) - base|`` (0: spend the whole budget)
    output : "probability" or "logit", the scale SHAP explains
    seed : int
    raw : bool, also save the maps as ``.npy`` and SHAP's regions as JSON

    Raises ``ValueError`` naming the field for a value that cannot work.
    """
    method: str = "both"
    cam: str = "gradcam"
    target: str = None
    regions: int = DEFAULT_REGIONS
    segmentation: str = "superpixels"
    background: str = None
    baseline: object = "mean"
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
            raise ValueError(f"baseline must be mean, blur or a finite number, got {self.baseline!r}")
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

    def describe(self):
        """The settings as JSON values (for records and the stamp of a saved picture)."""
        return asdict(self)


def _finite_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
