"""Chapter 7, Kernel-SHAP by hand: exercises. Replace each TODO, then run ``python docs/exercises/ch07.py``.

Each checker calls your function on inputs of its own and says in words what differs.
A question to answer in words is in QUESTIONS. Worked answers: ``docs/solutions/ch07.py``
(look after you have tried).
"""

import numpy as np  # noqa: F401 (for your answers)

from minivgg.course.exercises import check_shapley_kernel_weight, check_shapley_values, check_significant, run_exercises


def kernel_weight(m, s):
    """The Shapley kernel weight of one coalition of size s (0 < s < m) among m players (a float)."""
    # TODO: the formula of the chapter.
    raise NotImplementedError


def my_shapley(value, m):
    """Exact Shapley values of any game: value(z) takes a tuple of m zeros and ones -> phi (m,).

    The checker's game has interactions among three players and more: weigh the coalitions right.
    """
    # TODO: for each player i, sum its marginal contributions v(S + i) - v(S) over the coalitions S
    # without i, each with the weight of its size.
    raise NotImplementedError


def significant(values, stderr):
    """Which regions' values are known to differ from 0, all at once with 95% probability: (m,) bool.

    values, stderr: (m,) estimates and their standard errors (as SHAPResult's).
    """
    # TODO: a value is significant when |value| is at least z standard errors; which z holds m
    # intervals at once with probability 95%?
    raise NotImplementedError


EXERCISES = [(kernel_weight, check_shapley_kernel_weight), (my_shapley, check_shapley_values),
             (significant, check_significant)]

QUESTIONS = {
    "when is a map noise": """TODO: run KernelSHAP with 48 regions and a budget of 300 (tolerance=None) on the
chapter's image, with seeds 0 and 1. Compare the two maps' rank correlation (scipy.stats.spearmanr) over all
regions and over the regions significant in both (result.significant). Then set tolerance=0.2, 0.05 and 0.02
with a large budget: how many calls does each take?""",
}

if __name__ == "__main__":
    run_exercises(EXERCISES)
