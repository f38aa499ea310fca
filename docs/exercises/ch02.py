"""Chapter 2, A small network by hand: exercises. Replace each TODO, then run ``python docs/exercises/ch02.py``.

Each checker calls your function on inputs of its own and says in words what differs.
Worked answers: ``docs/solutions/ch02.py`` (look after you have tried).
"""

import numpy as np  # noqa: F401 (for your answers)

from minivgg import Tape  # noqa: F401 (for your answers)
from minivgg.course.exercises import check_layer_gradient, check_relu_backward, check_two_layer_net, run_exercises


def relu_backward(dout, x):
    """Gradient of ``out = max(x, 0)``: dout and x of any shape -> dx of that shape.

    At x == 0 exactly the function has no derivative; take it as 0, as PyTorch and minivgg do.
    """
    # TODO: one line. Which entries of dout go through, and which become 0?
    raise NotImplementedError


def two_layer_net(x, y, params):
    """The loss and gradients of ``scores = relu(x @ w1.T + b1) @ w2.T + b2`` under the mean softmax cross-entropy.

    x (N, D), y (N,) integer labels, params {"w1": (H, D), "b1": (H,), "w2": (K, H), "b2": (K,)}
    -> (loss, {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}).
    """
    # TODO: the forward pass, keeping what the backward pass will need; then the backward pass,
    # last step first: dscores = (softmax - onehot) / N, then the second layer, the ReLU, the first layer.
    raise NotImplementedError


def layer_gradient(model, x, target, layer):
    """The gradient of each image's ``target`` logit with respect to the output of ``layer``.

    model: a VGG8; x (N, 3, S, S); target: a class index; layer: a layer name such as
    "features.14" -> an array of that layer's output shape, (N, ...).
    """
    # TODO: a Tape that watches the layer, a forward pass, a one-hot dlogits, and a backward pass
    # that stops at the layer (see the chapter's section on the Tape).
    raise NotImplementedError


EXERCISES = [(relu_backward, check_relu_backward), (two_layer_net, check_two_layer_net),
             (layer_gradient, check_layer_gradient)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
