"""Chapter 5, Training on phantoms: exercises. Replace each TODO, then run ``python docs/exercises/ch05.py``.

Each checker calls your function on inputs of its own and says in words what differs.
The last exercise is a question: write your answer in QUESTIONS. Worked answers:
``docs/solutions/ch05.py`` (look after you have tried).
"""

import numpy as np  # noqa: F401 (for your answers)

from minivgg.course.exercises import check_sgd_momentum_step, check_softmax_cross_entropy, run_exercises


def my_loss(logits, y):
    """The mean softmax cross-entropy and its gradient: logits (N, K), y (N,) -> (loss, dlogits (N, K)).

    dlogits = (softmax(logits) - onehot(y)) / N. The checker also tries logits of 1000.
    """
    # TODO: subtract each row's maximum before exp, or exp(1000) overflows; take the log of the
    # softmax as shifted - log(sum(exp(shifted))), or a probability that rounds to 0 gives log(0).
    raise NotImplementedError


def my_sgd_step(p, g, velocity, lr, momentum):
    """One step of SGD with momentum, PyTorch's rule -> (new p, new velocity).

    velocity = g on the first step (velocity is None), else momentum * velocity + g; then p -= lr * velocity.
    """
    # TODO: two lines; return new arrays rather than changing p in place.
    raise NotImplementedError


EXERCISES = [(my_loss, check_softmax_cross_entropy), (my_sgd_step, check_sgd_momentum_step)]

QUESTIONS = {
    "the confounder": """TODO: draw the phantoms again without global_osteopenia and train the same tiny network.
How far does the validation AUC get in 20 epochs, at 64 and at 128 pixels? Then: does an AUC tell you which
of the two differences (the lesions, the darker bones) the chapter's network used? What would?""",
}

if __name__ == "__main__":
    run_exercises(EXERCISES)
