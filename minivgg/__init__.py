"""minivgg: the VGG8 rheumatoid-arthritis radiograph classifier, from scratch in NumPy + numba.

The package, layer by layer (each imports only from the ones above it)::

    minivgg.errors, files, text, progress, ...   one-line errors with exit codes, files, words
    minivgg.nn          the network and its kernels (VGG8, layers, Adam)
    minivgg.imaging     images, preprocessing, augmentation, data sets, phantoms
    minivgg.trust       model card, out-of-distribution detector, calibration, metrics
    minivgg.explain     Grad-CAM / HiResCAM, Kernel-SHAP, heatmap pictures (explain/ in the repository)
    minivgg.deploy      the Classifier a model file holds, and model files
    minivgg.training    training, and fitting the trust records
    minivgg.app         predicting many files, the file-to-figure pipeline, results files, Dask
    minivgg.course      the course's checkers
    minivgg.tui         the terminal app (tui/ in the repository)
    minivgg.cli         the ``minivgg`` command
"""

from minivgg.deploy import BUNDLED_MODEL, BUNDLED_SAMPLES, Classifier, load_model, save_model
from minivgg.errors import MinivggError, ModelFileError
from minivgg.explain.settings import ExplainSettings
from minivgg.nn.gradcheck import gradcheck, norm_rel_error, numerical_gradient, rel_error
from minivgg.nn.loss import softmax, softmax_cross_entropy
from minivgg.nn.model import PAPER_CHANNELS, VGG8, Tape
from minivgg.nn.optim import SGD, Adam
from minivgg.version import __version__

__all__ = ["VGG8", "Tape", "PAPER_CHANNELS", "Adam", "SGD", "softmax", "softmax_cross_entropy", "gradcheck",
           "numerical_gradient", "rel_error", "norm_rel_error", "Classifier", "ExplainSettings", "save_model",
           "load_model", "MinivggError", "ModelFileError", "BUNDLED_MODEL", "BUNDLED_SAMPLES", "__version__"]
