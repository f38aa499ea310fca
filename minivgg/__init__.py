"""minivgg: the VGG8 rheumatoid-arthritis radiograph classifier, from scratch in NumPy + numba."""

__version__ = "0.1.0"

from .gradcheck import gradcheck, norm_rel_error, numerical_gradient, rel_error  # noqa: E402
from .loss import softmax, softmax_cross_entropy  # noqa: E402
from .model import PAPER_CHANNELS, VGG8, Tape  # noqa: E402
from .modelfile import ModelFileError, load_model, save_model  # noqa: E402
from .optim import SGD, Adam  # noqa: E402

__all__ = ["VGG8", "Tape", "PAPER_CHANNELS", "Adam", "SGD", "softmax", "softmax_cross_entropy",
           "gradcheck", "numerical_gradient", "rel_error", "norm_rel_error", "save_model", "load_model", "ModelFileError"]
