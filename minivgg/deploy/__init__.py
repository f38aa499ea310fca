"""The deployed model: a trained network with its preprocessing, calibration, detector and card.

* :mod:`.classifier`: :class:`Classifier` (read a file, assess, explain, save stamped pictures)
* :mod:`.modelfile`: model files (``.npz`` + JSON, checked before anything is allocated)
* :mod:`.bundled`: the model and samples that ship with minivgg
"""

from minivgg.deploy.bundled import BUNDLED_MODEL, BUNDLED_SAMPLES
from minivgg.deploy.classifier import Assessment, Classifier, Explanation
from minivgg.deploy.modelfile import load_model, save_model

__all__ = ["Assessment", "Classifier", "Explanation", "load_model", "save_model", "BUNDLED_MODEL", "BUNDLED_SAMPLES"]
