"""Chapter 6, Grad-CAM by hand: exercises. Replace each TODO, then run ``python docs/exercises/ch06.py``.

Each checker calls your function on inputs of its own and says in words what differs.
Questions to answer in words are in QUESTIONS. Worked answers: ``docs/solutions/ch06.py``
(look after you have tried).
"""

import numpy as np  # noqa: F401 (for your answers)

from minivgg import Tape  # noqa: F401 (for your answers)
from minivgg.course.exercises import check_cell_size, check_gradcam, check_probability_gradient, run_exercises


def my_gradcam(model, x, target, layer):
    """The low-resolution Grad-CAM maps (N, h, w) of class ``target`` at ``layer``, for a batch x (N, 3, S, S)."""
    # TODO: the layer's output A and the gradient of the target's logit there (a Tape, stop_at);
    # one weight per channel and image; the weighted sum of the channels; a ReLU.
    raise NotImplementedError


def probability_gradient(logits, target):
    """d p_target / d logits for each row, where p = softmax(logits): logits (N, K) -> (N, K)."""
    # TODO: differentiate p_t = exp(z_t) / sum_j exp(z_j) with respect to z_t and to every other z_j.
    raise NotImplementedError


def cell_size(model, layer):
    """How many input pixels one cell of ``layer``'s maps spans, along a side (an int)."""
    # TODO: compare the layer's map with the input (model.infer(..., capture=[layer]), or count the pools).
    raise NotImplementedError


EXERCISES = [(my_gradcam, check_gradcam), (probability_gradient, check_probability_gradient),
             (cell_size, check_cell_size)]

QUESTIONS = {
    "why the logit": """TODO: replace the one-hot dlogits by probability_gradient for an image the model is sure
about (p close to 1) and compare the maxima of the two maps. Why is Grad-CAM defined on the logit?""",
    "which layer points at a joint": """TODO: compute the map at features.19 (the last conv block) and at the
default layer for the same image. How many input pixels does one cell of each cover, and how many does it
see (its receptive field, chapter 3)? Which one could point at a single joint?""",
}

if __name__ == "__main__":
    run_exercises(EXERCISES)
