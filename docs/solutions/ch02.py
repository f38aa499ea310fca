"""Chapter 2, A small network by hand: worked answers to the exercises in ``docs/exercises/ch02.py``.

Try the exercises first; then ``python docs/solutions/ch02.py`` runs each answer through its checker.
"""

import numpy as np

from minivgg import Tape
from minivgg.course.exercises import check_layer_gradient, check_relu_backward, check_two_layer_net, run_exercises


def relu_backward(dout, x):
    """Gradient of ``max(x, 0)``: dout where the input was positive, 0 elsewhere (also at x == 0 exactly)."""
    return dout * (x > 0)


def two_layer_net(x, y, params):
    """Mean softmax cross-entropy of ``affine -> ReLU -> affine`` and the gradient of every parameter.

    The backward pass visits the forward pass's steps in reverse order, each turning the
    gradient of its output into those of its input and its parameters.
    """
    hidden_in = x @ params["w1"].T + params["b1"]                # (N, H)
    hidden = np.maximum(hidden_in, 0)
    scores = hidden @ params["w2"].T + params["b2"]              # (N, K)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(y)
    loss = -log_p[np.arange(n), y].mean()
    dscores = np.exp(log_p)
    dscores[np.arange(n), y] -= 1
    dscores /= n
    dhidden_in = (dscores @ params["w2"]) * (hidden_in > 0)      # back through the second layer, then the ReLU
    grads = {"w1": dhidden_in.T @ x, "b1": dhidden_in.sum(axis=0),
             "w2": dscores.T @ hidden, "b2": dscores.sum(axis=0)}
    return loss, grads


def layer_gradient(model, x, target, layer):
    """The gradient of each image's ``target`` logit at ``layer``'s output: what Grad-CAM weighs."""
    tape = Tape(watch={layer})
    logits = model.forward(x, tape=tape)
    dlogits = np.zeros_like(logits)
    dlogits[:, target] = 1.0                 # d logit_target / d logits: the target's score itself, not a loss
    grad, _ = model.backward(dlogits, tape, stop_at=layer)
    return grad


EXERCISES = [(relu_backward, check_relu_backward), (two_layer_net, check_two_layer_net),
             (layer_gradient, check_layer_gradient)]

if __name__ == "__main__":
    run_exercises(EXERCISES)
