"""Out-of-distribution scores: is this image like the ones the model was trained on?

A classifier answers for every input, also for a child's hand, a photograph or a blank
frame, and its softmax is often most confident far from its training data. minivgg
therefore scores each image's distance from the training images in the network's own
feature space, with the **Mahalanobis score** of Lee et al. (NeurIPS 2018), "A Simple
Unified Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks"::

    f(x)    = block 3's last ReLU output (``features.9``), averaged over its h x w
              positions: one number per channel, shape (C,)
    mu_k    = mean of f over the training images of class k                     (K, C)
    Sigma   = covariance of f(x_n) - mu_{y_n} over all training images, shared by
              the classes, shrunk towards a multiple of the identity (Ledoit-Wolf)
    score(x) = min_k (f(x) - mu_k)^T Sigma^{-1} (f(x) - mu_k)

and flags an image when its score is above ``threshold``: the ``quantile`` (0.99) of the
scores of held-out in-distribution images (the validation split), so that about 1% of
images like the training ones are flagged by chance.

Why this score (``benchmarks/bench_trust.py``): the **energy score** of Liu et al.
(NeurIPS 2020), ``-logsumexp(logits)``, which needs no fitting, and the maximum softmax
probability flagged none of the real radiographs: the network is *confident* on them. The
penultimate dense features (``classifier.4``) missed half of the blank and noise images:
the dense layers keep mostly what the class is, the pooled conv features what the image
looks like.

Why this layer: the deeper a layer, the more its features are about the class and the less
about the picture. On the first bundled model the last block (``features.19``) was enough.
The second one was trained on hands in every orientation with random patches painted over
(``minivgg.imaging.augment``), and at ``features.19`` it no longer told a blank frame or pure noise
from a phantom (1 of 5 blank and 0 of 10 noise images flagged); block 4 (``features.14``)
flagged 4 of 5 blank images. Block 3 (``features.9``) is the deepest layer that flags all 15,
and flags none of 200 fresh phantoms. (Chosen by that rule on synthetic images; on the 70
real radiographs in ``../shared/data`` the three layers flag 66, 68 and 70.) A model file
records its detector's layer, so a detector fitted at another of :data:`minivgg.nn.model.CONV_RELUS` loads
and works.

**Ledoit-Wolf shrinkage** (Ledoit & Wolf 2004): with C channels and a few hundred images
the sample covariance is poorly conditioned, and channels that never fire on training
images make it singular. The shrunk estimate ``(1 - a) S + a m I`` (``m = trace(S) / C``)
uses the coefficient ``a`` that minimises the expected squared error, estimated from the
data (no tuning)::

    S  = X^T X / n                     X: (n, C) centred features
    d2 = ||S - m I||_F^2 / C
    b2 = min(d2, sum_i ||x_i x_i^T - S||_F^2 / (n^2 C))
    a  = b2 / d2
"""

from dataclasses import dataclass, replace

import numpy as np

FEATURE_LAYER = "features.9"       # the ReLU after block 3's last conv: see the module docstring
QUANTILE = 0.99


def pooled_features(activations):
    """Global average pooling: (N, C, h, w) -> (N, C), float64; dense outputs (N, C) pass through."""
    a = np.asarray(activations, dtype=np.float64)
    return a if a.ndim == 2 else a.mean(axis=(2, 3))


def ledoit_wolf(centred):
    """Shrunk covariance of ``centred`` (n, C) rows and the shrinkage coefficient ``a`` in [0, 1]."""
    x = np.asarray(centred, dtype=np.float64)
    n, c = x.shape
    s = x.T @ x / n
    m = np.trace(s) / c
    d2 = ((s - m * np.eye(c)) ** 2).sum() / c
    # sum_i ||x_i x_i^T - S||_F^2 = sum_i ||x_i||^4 - n ||S||_F^2
    b2 = min(d2, (((x ** 2).sum(axis=1) ** 2).sum() - n * (s ** 2).sum()) / (n ** 2 * c))
    a = 0.0 if d2 == 0 else float(b2 / d2)
    return (1 - a) * s + a * m * np.eye(c), a


def energy_score(logits, temperature=1.0):
    """Energy score of Liu et al. (NeurIPS 2020): ``-T logsumexp(logits / T)``; higher = less familiar."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    top = z.max(axis=1)
    return -temperature * (top + np.log(np.exp(z - top[:, None]).sum(axis=1)))


@dataclass(frozen=True, eq=False)
class MahalanobisDetector:
    """Class means and a shared precision matrix of pooled ``layer`` features, and a threshold.

    Fit it with :meth:`fit` on the training images, then set its threshold with
    :meth:`with_threshold` on held-out ones; it never changes after that (one detector
    serves many threads).

    Attributes
    ----------
    class_means : ndarray (K, C)
    precision : ndarray (C, C), the inverse of the shrunk shared covariance
    threshold : float, scores above it are out of distribution
    quantile : float, the held-out quantile the threshold was set at
    layer : str, the layer whose output is pooled
    n_fit, n_held_out : int, images the means and covariance, and the threshold, came from
    """
    class_means: np.ndarray
    precision: np.ndarray
    threshold: float = np.inf
    quantile: float = QUANTILE
    layer: str = FEATURE_LAYER
    n_fit: int = 0
    n_held_out: int = 0

    @classmethod
    def fit(cls, activations, labels, num_classes, layer=FEATURE_LAYER):
        """Class means and shared shrunk covariance of the training images' ``layer`` outputs (N, C, h, w)."""
        f = pooled_features(activations)
        labels = np.asarray(labels)
        missing = [k for k in range(num_classes) if not (labels == k).any()]
        if missing:
            raise ValueError(f"no training image of class {missing[0]} to fit the out-of-distribution detector")
        means = np.stack([f[labels == k].mean(axis=0) for k in range(num_classes)])
        cov, _ = ledoit_wolf(f - means[labels])
        if np.trace(cov) <= 0:
            raise ValueError(f"the {layer} features are zero on every training image")
        # Invert through the eigen-decomposition; eigenvalues are floored so that a channel
        # that never varied gets a large but finite weight instead of a division by zero.
        w, v = np.linalg.eigh(cov)
        w = np.maximum(w, 1e-12 * w.max())
        precision = (v / w) @ v.T
        return cls(means, (precision + precision.T) / 2, layer=layer, n_fit=len(labels))

    def score(self, activations):
        """Mahalanobis score (N,) of ``layer`` outputs (N, C, h, w): the squared distance to the nearest class mean."""
        diff = pooled_features(activations)[:, None, :] - self.class_means[None]           # (N, K, C)
        return np.einsum("nkc,cd,nkd->nk", diff, self.precision, diff).min(axis=1)

    def with_threshold(self, held_out_scores, quantile=QUANTILE):
        """The same detector with its threshold at ``quantile`` of in-distribution held-out scores."""
        return replace(self, threshold=float(np.quantile(held_out_scores, quantile)), quantile=float(quantile),
                       n_held_out=len(held_out_scores))

    def in_distribution(self, scores):
        """True where a score is at or below the threshold."""
        return np.asarray(scores) <= self.threshold
