"""Shapley values of any set function by Kernel-SHAP regression, with standard errors, in rounds.

Players are ``m`` items (image regions); ``v(z)`` is defined for every coalition
``z`` in {0, 1}^m. Kernel-SHAP (Lundberg & Lee, 2017) finds the Shapley values ``phi``
as the weighted least-squares fit

    minimise  sum_z  pi(z) * (v(0) + z . phi - v(z))^2      subject to  sum_i phi_i = v(1) - v(0)

with the Shapley kernel ``pi(z) = (m - 1) / (C(m, |z|) |z| (m - |z|))``. Over all 2^m - 2
coalitions the fit is exact; here it runs on a sample (:mod:`.coalitions`).

**Pairs.** Coalitions come in complementary pairs ``(z, 1 - z)``. Writing ``x = 2z - 1``
(+-1 per player) and ``d = (v(z) - v(1 - z)) / 2``, the fit over a pair only sees ``d``:
the problem above is the same as

    minimise  sum_pairs  w * (d - x . theta)^2     subject to  sum_i theta_i = (v(1) - v(0)) / 2,
    phi = 2 theta,

so every even-order interaction of the players cancels out of the data.

**What is left, modelled** (our addition; measured in ``benchmarks/bench_explain.py
accuracy``). The fit's error comes from what ``x . theta`` cannot express. Two parts of it
are cheap to model:

* a term ``alpha_s`` for each coalition size: a function of the size alone (a model
  saturated near p = 1 is such a function, nearly) has Shapley value 0 for every player
  beyond the fixed total, so it takes nothing from ``phi``, and it stops that part of
  ``v`` from leaking into ``theta`` as noise (none for the size ``m/2``, where it is 0:
  :func:`size_terms`);
* three-way interactions ``gamma_A * x_a x_b x_c`` among the K players with the largest
  estimated values (every triple of them, K as large as keeps the triples at most half
  the number of pairs), held small by a ridge penalty. Each adds ``2/3 gamma_A`` to the
  Shapley value of its three players (in a random order, a player meets the other two
  on the same side -- both before or both after it -- two times in three).

Whatever these terms fit, the estimate stays that of Kernel-SHAP on the rest of the
game (the size terms and triples only move error out of the sample's noise), and over
all coalitions it is exact.

**Standard errors.** The sample is stratified (one stratum per coalition size) and drawn
without replacement; each pair is weighted by ``pi(z) * N_s / n_s`` (Horvitz-Thompson).
The estimate is a smooth function of weighted totals over pairs, so its variance is
that of the totals' linearisation (Binder, 1983; Särndal, Swensson & Wretman, 1992,
ch. 5-6): per stratum, ``(1 - n_s/N_s) n_s/(n_s - 1) sum (t_u - mean t)(t_u - mean t)^T``
of the pairs' score vectors ``t_u = w_u f_u e_u`` (``f_u`` the regressors, ``e_u`` the
pair's residual, divided by ``1 - h_u``, its leverage, as in the HC3 jackknife estimate,
so small samples are not overconfident), mapped through the inverse of the normal
equations. Strata enumerated completely (``n_s = N_s``) add nothing: the exactly known part
of the sum has no error. A stratum with a single sampled pair is pooled with the
next (collapsed strata). Where a direction of the fit is not determined by the sample,
the standard errors are infinite.

Covert & Lee (AISTATS 2021) estimate Kernel-SHAP's variance from the spread of the same
score vectors for sampling *with* replacement; the finite-population factor and the
strata are what make it right for draws without replacement and for sizes enumerated
in full.
"""

from dataclasses import dataclass
from itertools import combinations
from math import comb
from statistics import NormalDist

import numpy as np

from minivgg.explain.coalitions import PairSampler, stratum_weights

RIDGE = 0.1              # penalty on the three-way terms, relative to the total pair weight
BAND_LEVEL = 0.95        # the simultaneous band holds every value at once with this probability
TRIPLES_PER_PAIR = 0.5   # at most this many three-way terms per sampled pair (their players: the top K)
MIN_ROUND = 16           # pairs per round at least (each round refits: a few ms)
ROUND_MARGIN = 0.05      # a round sized to meet the tolerance draws this share more than the 1/sqrt law asks


@dataclass
class ShapleyEstimate:
    """Shapley values of a set function, as estimated so far.

    Attributes
    ----------
    values : (m,) the estimated Shapley values; ``sum(values) == fx - base_value`` exactly
    stderr : (m,) their standard errors (0 where exact; inf where the sample cannot say)
    base_value : float, v(no player)
    fx : float, v(every player)
    n_evaluations : int, calls of the value function so far (coalitions + the two ends)
    exact : bool, True when every coalition was evaluated (then ``stderr`` is 0)
    """
    values: np.ndarray
    stderr: np.ndarray
    base_value: float
    fx: float
    n_evaluations: int
    exact: bool

    @property
    def max_stderr(self):
        return float(np.max(self.stderr)) if np.size(self.stderr) else 0.0

    @property
    def band_z(self):
        """How many standard errors the simultaneous band spans: :func:`simultaneous_z` of the players."""
        return simultaneous_z(len(self.values))

    @property
    def band(self):
        """(m,) half-widths of the simultaneous 95% band: every exact value lies in ``values +- band`` at
        once, with probability 0.95 (Bonferroni)."""
        return self.band_z * self.stderr

    @property
    def scale(self):
        """The map's scale: the largest |value| (what a picture's colours are relative to)."""
        return float(np.max(np.abs(self.values))) if np.size(self.values) else 0.0


def simultaneous_z(m, level=BAND_LEVEL):
    """The multiple of the standard error that holds ``m`` estimates at once with probability ``level``.

    Bonferroni: each of the ``m`` two-sided intervals misses with probability ``(1 - level) / m``,
    so ``z = Phi^-1(1 - (1 - level) / (2 m))``: 1.96 for one value, 3.08 for 24. A band of
    +-2 standard errors holds each value alone 95% of the time, but all 24 of a map at once
    far less often (57-78% of the runs on the bundled model).
    """
    return NormalDist().inv_cdf(1 - (1 - level) / (2 * m))


def fit_pairs(z, d, stratum, population, drawn, total, interactions=True):
    """Kernel-SHAP from sampled complementary pairs: ``(values (m,), stderr (m,))``.

    Parameters
    ----------
    z : (P, m) 0/1, one coalition of each pair (the other is ``1 - z``)
    d : (P,) ``(v(z) - v(1 - z)) / 2``
    stratum : (P,) stratum index of each pair (0 for size 1 and m - 1, 1 for sizes 2 and m - 2, ...)
    population, drawn : (K,) pairs in each stratum, and pairs sampled from it
    total : float, ``v(1) - v(0)``
    interactions : bool, model the size terms and three-way interactions (see the module
        docstring) once there are more pairs than the size terms and the players; False
        gives plain Kernel-SHAP on the pairs
    """
    m = z.shape[1]
    x = 2.0 * z - 1.0
    weight = stratum_weights(m)[stratum] / drawn[stratum]      # pi(z) N_s / n_s: the stratum's kernel weight, shared
    weight = weight / weight.mean()
    sizes = (stratum[:, None] == size_terms(stratum, m)[None, :]).astype(float)     # a term per size
    sampled = drawn[stratum] < population[stratum]
    if not interactions or not sampled.any() or len(d) <= m + sizes.shape[1]:
        # Plain Kernel-SHAP: exact when nothing is sampled; the only fit when too few pairs are in.
        return _fit(x, d, weight, stratum, population, drawn, total, np.zeros((len(d), 0)), [])
    values, _ = _fit(x, d, weight, stratum, population, drawn, total, sizes, [])
    k = max([k for k in range(3, m + 1) if comb(k, 3) <= TRIPLES_PER_PAIR * len(d)] or [0])
    top = np.sort(np.argsort(-np.abs(values))[:k])
    return _fit(x, d, weight, stratum, population, drawn, total, sizes, list(combinations(top, 3)))


def size_terms(stratum, m):
    """The strata that get a size term: every sampled one but the middle stratum ``s = m/2`` of an even ``m``.

    A function of the coalition's size alone gives a pair ``d = (f(s) - f(m - s)) / 2``:
    constant within a stratum, and 0 where ``s = m - s``. So the middle stratum needs no
    size term, and must not have one: its pairs are listed by the half that holds player
    0 (:class:`.coalitions.PairSampler`), so there a size term would only measure "player 0
    in or out" and give that share of the game to nobody (a bias on player 0 alone).
    """
    present = np.unique(stratum)
    return present[present != m // 2 - 1] if m % 2 == 0 else present


def _fit(x, d, weight, stratum, population, drawn, total, sizes, triples):
    """The constrained, weighted ridge fit of ``d`` on [x, sizes, triple products] and its linearised variance."""
    m, n_sizes, n_tri = x.shape[1], sizes.shape[1], len(triples)
    products = np.stack([np.prod(x[:, list(t)], axis=1) for t in triples], axis=1) if n_tri else np.zeros((len(d), 0))
    # Efficiency fixes the fitted game's total, sum(theta) + sum(gamma) = total / 2: the last
    # player's theta is what the others leave, so its column is subtracted from theirs.
    last = x[:, -1:]
    g = np.concatenate([x[:, :-1] - last, sizes, products - last], axis=1)      # (P, p) free regressors
    p = g.shape[1]
    expand = np.zeros((m + n_sizes + n_tri, p))          # all parameters = start + expand @ free ones
    expand[np.r_[0:m - 1, m:m + n_sizes + n_tri], np.arange(p)] = 1
    expand[m - 1, :m - 1] = expand[m - 1, m - 1 + n_sizes:] = -1
    start = np.zeros(m + n_sizes + n_tri)
    start[m - 1] = total / 2
    gram = (g * weight[:, None]).T @ g
    gram[p - n_tri:, p - n_tri:] += RIDGE * len(d) * np.eye(n_tri)
    eigval, eigvec = np.linalg.eigh(gram)
    kept = eigval > 1e-10 * max(eigval[-1], 1e-300)
    inverse = (eigvec[:, kept] / eigval[kept]) @ eigvec[:, kept].T
    residual = d - last[:, 0] * total / 2
    a = inverse @ (g.T @ (weight * residual))
    residual -= g @ a
    # Shapley value of the fitted game: 2 theta_i, plus 2/3 of every triple's gamma for its three players.
    to_values = np.zeros((m, m + n_sizes + n_tri))
    to_values[:, :m] = 2 * np.eye(m)
    for j, t in enumerate(triples):
        to_values[list(t), m + n_sizes + j] = 2 / 3
    values = to_values @ (start + expand @ a)
    if not kept.all():
        return values, np.full(m, np.inf)                             # the sample leaves a direction open
    leverage = weight * ((g @ inverse) * g).sum(axis=1)
    scores = g * (weight * residual / np.clip(1 - leverage, 1e-3, None))[:, None]
    cov_scores = _stratified_covariance(scores, stratum, population, drawn)
    if cov_scores is None:
        return values, np.full(m, np.inf)
    to_free = to_values @ expand @ inverse
    return values, np.sqrt(np.clip(((to_free @ cov_scores) * to_free).sum(axis=1), 0, None))


def _stratified_covariance(scores, stratum, population, drawn):
    """Covariance of the sum of ``scores`` (P, q) over a stratified sample drawn without replacement.

    Fully enumerated strata add nothing. A stratum with a single sampled pair is pooled
    with the next sampled ones until the pool has two; None when no pool can be formed.
    """
    cov = np.zeros((scores.shape[1], scores.shape[1]))
    pools, pool = [], []
    for k in np.flatnonzero((drawn > 0) & (drawn < population)):
        pool.append(k)
        if drawn[pool].sum() >= 2:
            pools.append(pool)
            pool = []
    if pool:
        if not pools:
            return None
        pools[-1] += pool
    for pool in pools:
        rows = scores[np.isin(stratum, pool)]
        n, fraction = len(rows), drawn[pool].sum() / population[pool].sum()
        centred = rows - rows.mean(axis=0)
        cov += (1 - fraction) * n / (n - 1) * centred.T @ centred
    return cov


def shapley_rounds(value_fn, m, budget=1000, seed=0, tolerance=None, allocation="leverage", interactions=True,
                   first_round=None):
    """Kernel-SHAP in rounds: yields a :class:`ShapleyEstimate` after each round of evaluations.

    Parameters
    ----------
    value_fn : callable, (B, m) uint8 coalitions -> (B,) values
    m : int, players
    budget : int, coalitions to evaluate at most, besides the two ends (an odd budget
        leaves one call unused: coalitions come in pairs); capped at 2^m - 2, where the
        result is exact
    seed : int
    tolerance : float or None
        Stop once every value is known to within ``tolerance`` of the map's scale, all at
        once: the simultaneous band's largest half-width is at most ``tolerance`` times the
        largest |value| (checked from 2m pairs on). None spends the whole budget. Ignored
        when the budget covers every coalition: then the exact values cost no more than
        the budget.
    allocation : "leverage" or "kernel", how pairs are spread over coalition sizes
    interactions : bool, model size terms and three-way interactions (see the module docstring)
    first_round : int, pairs in the first round (default max(m, 16)). A later round adds half
        of what has been drawn, or, with a tolerance, the pairs that the band's fall as
        1/sqrt(pairs) says are still missing (:func:`next_round`). The pairs drawn do not
        depend on the rounds: the last estimate is the same however the budget is split.
    """
    if m < 1:
        raise ValueError(f"need at least one player, got {m}")
    ends = np.asarray(value_fn(np.array([np.zeros(m, np.uint8), np.ones(m, np.uint8)])), dtype=np.float64)
    v0, v1 = float(ends[0]), float(ends[1])
    if m == 1:
        yield ShapleyEstimate(np.array([v1 - v0]), np.zeros(1), v0, v1, 2, True)
        return
    if budget < 2:
        raise ValueError(f"a budget of {budget} coalitions is too small (need at least 2: one complementary pair)")
    sampler = PairSampler(m, np.random.default_rng(seed), allocation)
    pairs_wanted = min(budget // 2, sampler.pairs_left)
    if pairs_wanted == sampler.pairs_left:
        tolerance = None            # the budget covers every coalition: spend it, and be exact
    z_all, d_all, strata = np.zeros((0, m), np.uint8), np.zeros(0), np.zeros(0, np.int64)
    step = first_round or max(m, MIN_ROUND)
    while len(d_all) < pairs_wanted:
        z, stratum = sampler.draw(min(step, pairs_wanted - len(d_all)))
        values = np.asarray(value_fn(np.concatenate([z, 1 - z])), dtype=np.float64)
        z_all = np.concatenate([z_all, z])
        d_all = np.concatenate([d_all, (values[:len(z)] - values[len(z):]) / 2])
        strata = np.concatenate([strata, stratum])
        exact = sampler.pairs_left == 0
        phi, stderr = fit_pairs(z_all, d_all, strata, sampler.population, sampler.drawn, v1 - v0,
                                interactions=interactions)
        if exact:
            stderr = np.zeros(m)
        estimate = ShapleyEstimate(phi, stderr, v0, v1, 2 + 2 * len(d_all), exact)
        yield estimate
        if tolerance is None:
            step = max(MIN_ROUND, len(d_all) // 2)
            continue
        if len(d_all) >= 2 * m and estimate.band.max() <= tolerance * estimate.scale:
            return
        step = next_round(len(d_all), estimate.band.max() / max(estimate.scale, 1e-300) / tolerance,
                          2 * m - len(d_all))


def next_round(drawn, ratio, to_first_check):
    """Pairs to draw next, when ``drawn`` pairs leave the band ``ratio`` times as wide as the tolerance.

    The band narrows as 1/sqrt(pairs), so ``drawn * ratio^2`` pairs should meet the tolerance:
    the round draws what is missing, plus :data:`ROUND_MARGIN` of it (the ratio itself is an
    estimate). Rounds growing by half of what has been drawn overshoot the stopping point by
    up to half a round (a fifth of the calls on average, were it anywhere in a round); sized
    this way, the four bundled samples that stop early used 8% fewer calls. The round is at least
    :data:`MIN_ROUND` pairs and reaches the first check (``to_first_check`` pairs away), and
    at most half of what has been drawn: a band that is still far off (early, few pairs)
    says little about where it will end.
    """
    missing = drawn * (ratio ** 2 - 1) * (1 + ROUND_MARGIN) if np.isfinite(ratio) else np.inf
    return int(max(MIN_ROUND, to_first_check, min(np.ceil(missing), drawn // 2)))


def explain_function(value_fn, m, budget=1000, seed=0, tolerance=None, **options):
    """Kernel-SHAP of any set function: the last :class:`ShapleyEstimate` of :func:`shapley_rounds`.

    Without a tolerance the whole budget is drawn in one round (the same pairs, one fit).
    """
    if tolerance is None:
        options.setdefault("first_round", max(budget // 2, 1))
    estimate = None
    for estimate in shapley_rounds(value_fn, m, budget, seed, tolerance, **options):  # noqa: B007 (keep the last)
        pass
    return estimate
