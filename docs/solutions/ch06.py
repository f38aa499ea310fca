"""Chapter 6, Grad-CAM by hand: worked answers to the exercises in ``docs/exercises/ch06.py``.

Try the exercises first; then ``python docs/solutions/ch06.py`` runs each answer through its checker.
"""

import numpy as np

from minivgg import Tape
from minivgg.course.exercises import check_cell_size, check_gradcam, check_probability_gradient, run_exercises


def my_gradcam(model, x, target, layer):
    """Low-resolution Grad-CAM maps (N, h, w) of ``target`` at ``layer``, for a batch."""
    tape = Tape(watch={layer})
    logits = model.forward(x, tape=tape)
    dlogits = np.zeros_like(logits)
    dlogits[:, target] = 1.0
    grads, _ = model.backward(dlogits, tape, stop_at=layer)
    alpha = grads.mean(axis=(2, 3))                          # (N, K): one weight per channel and image
    return np.maximum(np.einsum("nk,nkhw->nhw", alpha, tape.outputs[layer]), 0)


def probability_gradient(logits, target):
    """d p_target / d logits (N, K): ``p_t (onehot - p)``, the softmax's derivative."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    onehot = np.eye(logits.shape[1])[target]
    return p[:, target:target + 1] * (onehot - p)


def cell_size(model, layer):
    """Input pixels per map cell along a side: the input's side over the map's (2 to the number of pools before)."""
    _, out = model.infer(np.zeros((1, 3, model.image_size, model.image_size), model.dtype), capture=[layer])
    return model.image_size // out[layer].shape[-1]


EXERCISES = [(my_gradcam, check_gradcam), (probability_gradient, check_probability_gradient),
             (cell_size, check_cell_size)]

QUESTIONS = {
    "why the logit": """\
The probability's gradient is the logit's times p_t (1 - p_t) (two classes): d p_t / d A = p_t (1 - p_t)
d (z_t - z_other) / d A. For an image the model is sure of, p_t (1 - p_t) is tiny and every map built on the
probability shrinks with it: on the chapter's image (logits -23.7 and 14.2, so p(Normal) = 3.5e-17) the
probability map's maximum is 1.4e-18, against 0.025 for the logit map, 6e-17 times smaller. In float32 such a
map is at the edge of what can be represented, and it says how much the probability can still move (almost
nothing), not where the evidence is. The logit keeps its scale however sure the model is, so Grad-CAM is
defined on it.""",
    "which layer points at a joint": """\
On the bundled model (128 pixels), a cell of features.14 (16 x 16 maps) spans 8 input pixels and one of
features.19 (8 x 8 maps) spans 16; their receptive fields are 62 and 134 pixels (chapter 3's exercise). A
finger joint of a 128-pixel phantom is a few pixels across and neighbouring joints are about a finger's
width apart: an 8-pixel cell can tell one joint from its neighbours, a 16-pixel cell covers two. So
features.14 can point at a single joint (it is minivgg's default layer for that reason), features.19
cannot, although each cell of either *sees* much more than one joint.""",
}

if __name__ == "__main__":
    run_exercises(EXERCISES)
