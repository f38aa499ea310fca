"""Which coalitions Kernel-SHAP evaluates: complementary pairs, drawn without replacement, by size.

A coalition ``z`` in {0, 1}^m keeps the players (image regions) with ``z_i = 1``. The
sampler works with *pairs* ``(z, 1 - z)``: the Shapley values depend only on
``v(z) - v(1 - z)`` (the Shapley value is self-dual), so a pair cancels every even-order
interaction exactly, and the pair is the unit of sampling.

Pairs are grouped by size into strata: stratum ``s`` (1 <= s <= m/2) holds the pairs
whose smaller coalition has ``s`` players, ``C(m, s)`` of them (half that for
``s = m/2``, where both halves have the same size).

* **How many pairs per size** (``allocation``). ``"leverage"`` (default) gives every
  coalition size the same share, the leverage scores of the Kernel-SHAP regression
  (Musco & Witter, ICLR 2025): the kernel's weight is then carried by the regression
  weights instead of by duplicate draws. ``"kernel"`` draws sizes in proportion to the
  Shapley kernel's total weight, the rule of the shap package. Shares become whole
  pairs one at a time by the Sainte-Laguë (Webster) divisor rule, which never takes a
  pair away when the budget grows, so that drawing in rounds gives the same design as
  drawing all at once. A stratum whose share exceeds its size is enumerated completely,
  and the excess goes to the other strata.
* **Which pairs within a size**: uniformly, without replacement, so every call of the
  budget is a distinct coalition and every pair of stratum ``s`` is in the sample with
  the same probability ``n_s / N_s``. Each stratum draws from its own random stream, so
  the pairs drawn do not depend on how a budget is split into rounds.
"""

import heapq
from itertools import combinations
from math import comb

import numpy as np

ALLOCATIONS = ("leverage", "kernel")


def shapley_kernel_weight(m, s):
    """pi(z) for one coalition of size ``s`` out of ``m`` players (0 < s < m)."""
    return (m - 1) / (comb(m, s) * s * (m - s))


def strata_sizes(m):
    """Sizes ``s = 1 .. floor(m / 2)`` and the number of complementary pairs of each (float: C(m, s)
    passes 2^63 beyond m = 66; it is exact to m = 55 and within rounding after that)."""
    sizes = np.arange(1, m // 2 + 1)
    return sizes, np.array([comb(m, int(s)) // (2 if 2 * s == m else 1) for s in sizes], dtype=np.float64)


def stratum_weights(m):
    """Total Shapley-kernel weight of each stratum's pairs, ``N_s * pi(s)`` = (m - 1) / (s (m - s)), halved for
    s = m/2."""
    sizes = np.arange(1, m // 2 + 1)
    return (m - 1) / (sizes * (m - sizes)) / np.where(2 * sizes == m, 2, 1)


def allocation_shares(m, rule="leverage"):
    """Share of the pairs each stratum gets before any is full, (m // 2,) summing to 1."""
    sizes, _ = strata_sizes(m)
    sizes_in_stratum = np.where(2 * sizes == m, 1.0, 2.0)         # s and m - s, or m/2 alone
    if rule == "leverage":
        share = sizes_in_stratum
    elif rule == "kernel":
        share = sizes_in_stratum / (sizes * (m - sizes))           # total kernel weight of the sizes
    else:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {rule!r}")
    return share / share.sum()


class PairSampler:
    """Draws distinct complementary pairs of coalitions of ``m`` players, stratified by size.

    Parameters
    ----------
    m : int, players (m >= 2)
    rng : numpy Generator
    allocation : "leverage" or "kernel" (see the module docstring)

    Attributes
    ----------
    population : (K,) float, pairs in each stratum, N_s
    drawn : (K,) int, pairs drawn so far from each stratum, n_s

    Examples
    --------
    >>> sampler = PairSampler(10, np.random.default_rng(0))
    >>> z, stratum = sampler.draw(20)              # 20 pairs: rows z, their complements 1 - z
    >>> sampler.draw(sampler.pairs_left)           # all the rest: every pair exactly once
    """

    def __init__(self, m, rng, allocation="leverage"):
        self.m = m
        self.sizes, self.population = strata_sizes(m)
        self.share = allocation_shares(m, allocation)
        self.drawn = np.zeros(len(self.sizes), dtype=np.int64)
        self._seen = [set() for _ in self.sizes]
        seeds = rng.integers(0, 2 ** 63, size=len(self.sizes))            # one random stream per stratum
        self._streams = [self._candidates(int(s), np.random.default_rng(int(seed)))
                         for s, seed in zip(self.sizes, seeds)]

    @property
    def pairs_left(self):
        return int(self.population.sum()) - int(self.drawn.sum())

    def plan(self, pairs):
        """How many of the next ``pairs`` pairs come from each stratum (Sainte-Laguë, capped at N_s)."""
        n = self.drawn.copy()
        heap = [(-self.share[k] / (n[k] + 0.5), k) for k in range(len(n)) if n[k] < self.population[k]]
        heapq.heapify(heap)
        for _ in range(min(pairs, self.pairs_left)):
            _, k = heapq.heappop(heap)
            n[k] += 1
            if n[k] < self.population[k]:
                heapq.heappush(heap, (-self.share[k] / (n[k] + 0.5), k))
        return n - self.drawn

    def draw(self, pairs):
        """The next ``pairs`` pairs (fewer when the strata run out).

        Returns ``(z, stratum)``: (P, m) uint8 rows, one coalition of each pair (its
        complement is ``1 - z``), and (P,) the stratum index of each.
        """
        blocks, strata = [], []
        for k, count in enumerate(self.plan(pairs)):
            if count:
                blocks.append(self._draw_stratum(k, int(count)))
                strata.append(np.full(count, k))
        if not blocks:
            return np.zeros((0, self.m), np.uint8), np.zeros(0, np.int64)
        return np.concatenate(blocks), np.concatenate(strata)

    def _draw_stratum(self, k, count):
        m, s = self.m, int(self.sizes[k])
        seen = self._seen[k]
        rows = []
        if self.drawn[k] + count == self.population[k]:
            # The rest of the stratum: list it rather than wait for rejection sampling to find it.
            for members in combinations(range(m), s):
                if 2 * s == m and members[0] != 0:
                    continue
                z = np.zeros(m, np.uint8)
                z[list(members)] = 1
                if _key(z) not in seen:
                    rows.append(z)
        else:
            for z in self._streams[k]:                 # uniform draws; repeats of earlier ones are rejected
                key = _key(z)
                if key not in seen:
                    seen.add(key)
                    rows.append(z)
                    if len(rows) == count:
                        break
        seen.update(_key(z) for z in rows)
        self.drawn[k] += count
        return np.array(rows, dtype=np.uint8).reshape(count, m)

    def _candidates(self, s, rng, block=256):
        """Endless uniform random coalitions of size ``s`` (for s = m/2: those holding player 0)."""
        m = self.m
        while True:
            if 2 * s == m:
                picks = rng.random((block, m - 1)).argsort(axis=1)[:, :s - 1] + 1
                batch = np.zeros((block, m), np.uint8)
                batch[:, 0] = 1
            else:
                picks = rng.random((block, m)).argsort(axis=1)[:, :s]
                batch = np.zeros((block, m), np.uint8)
            np.put_along_axis(batch, picks, 1, axis=1)
            yield from batch


def _key(z):
    """A hashable, compact (m / 8 bytes) name for a coalition row."""
    return np.packbits(z).tobytes()
