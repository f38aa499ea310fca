"""Chapter 7, Kernel-SHAP by hand: worked answers to the exercises in ``docs/exercises/ch07.py``.

Try the exercises first; then ``python docs/solutions/ch07.py`` runs each answer through its checker.
"""

import itertools
from math import comb, factorial
from statistics import NormalDist

import numpy as np

from minivgg.course.exercises import check_shapley_kernel_weight, check_shapley_values, check_significant, run_exercises


def kernel_weight(m, s):
    """The Shapley kernel weight of one coalition of size s among m players."""
    return (m - 1) / (comb(m, s) * s * (m - s))


def my_shapley(value, m):
    """Exact Shapley values: every player's marginal contributions, a coalition of size s weighted s!(m-s-1)!/m!.

    That weight is the chance that, in a random order of the m players, exactly the
    players of S come before player i: so every coalition *size* counts as much.
    """
    phi = np.zeros(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            weight = factorial(size) * factorial(m - size - 1) / factorial(m)
            for s in itertools.combinations(others, size):
                without = tuple(1 if j in s else 0 for j in range(m))
                with_i = tuple(1 if j in s or j == i else 0 for j in range(m))
                phi[i] += weight * (value(with_i) - value(without))
    return phi


def significant(values, stderr):
    """Regions whose value lies outside the simultaneous 95% band around 0.

    Each of the m intervals may miss with probability 0.05 / m (Bonferroni), so the band
    is z = Phi^-1(1 - 0.05 / (2 m)) standard errors wide: 3.08 for 24 regions, not 1.96.
    """
    m = len(values)
    z = NormalDist().inv_cdf(1 - 0.05 / (2 * m))
    return np.abs(values) >= z * np.asarray(stderr)


EXERCISES = [(kernel_weight, check_shapley_kernel_weight), (my_shapley, check_shapley_values),
             (significant, check_significant)]

QUESTIONS = {
    "when is a map noise": """\
Measured on the chapter's image (the first bundled RA sample), 48 superpixels, 300 calls: the two seeds'
maps have a rank correlation of 0.44 over all regions, and only 1 and 0 regions are significant. The model
is sure (p(RA) = 1.000), so on the probability scale every region moves p(RA) by a noise-sized amount:
that map is mostly noise, and result.significant says so. On the log-odds (output="logit"), which keeps
its spread where the probability saturates, the maps correlate at 0.63, 7 regions are significant in each
run and 6 in both, and over those 6 the two runs agree in rank (0.6) and in sign.

How many calls: with tolerance=0.2 the probability map took 3,686 calls (the band's widest half-width
then 17% of the largest |value|), the logit map 730; tolerance=0.1 on the logit map took 2,458. On the
probability map, tolerance=0.05 was not met within 20,000 calls (the band stopped at 5.5% of the scale).
The band narrows as one over the square root of the calls, so 0.02 would take roughly (0.055 / 0.02)^2,
about 8, times as many again: each halving of the tolerance costs four times the calls.""",
}

if __name__ == "__main__":
    run_exercises(EXERCISES)
