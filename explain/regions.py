"""Split an image into regions for Kernel-SHAP: superpixels that follow the anatomy, or a grid.

``superpixels`` is a small SLIC (Achanta et al., 2012) in NumPy/SciPy: k-means on
(intensity, row, column) started from a regular grid, where ``compactness`` trades
following edges (low) against square regions (high); then every connected piece of a
cluster becomes its own region and pieces smaller than a quarter of the nominal size
are merged into their largest neighbour. The number of regions actually produced
differs from the number asked for, and is what is reported.
"""

import numpy as np
from scipy import ndimage


def grid_regions(shape, n_regions):
    """Label map (H, W) of a near-square grid with about ``n_regions`` cells, labels 0..M-1."""
    h, w = shape
    rows = max(1, int(round(np.sqrt(n_regions * h / w))))
    cols = max(1, int(round(n_regions / rows)))
    r = np.minimum(np.arange(h) * rows // h, rows - 1)
    c = np.minimum(np.arange(w) * cols // w, cols - 1)
    return (r[:, None] * cols + c[None, :]).astype(np.int64)


def superpixels(gray, n_regions, compactness=0.1, iterations=10):
    """SLIC-style superpixels of a gray image (H, W) in [0, 1]; returns labels 0..M-1.

    Parameters
    ----------
    gray : ndarray (H, W)
    n_regions : int, the number of regions aimed at
    compactness : float
        Weight of distance in grid steps against intensity difference.
    iterations : int, k-means rounds
    """
    gray = np.asarray(gray, dtype=np.float64)
    h, w = gray.shape
    step = np.sqrt(h * w / n_regions)
    yy, xx = np.mgrid[0:h, 0:w]
    feats = np.stack([gray.ravel() / max(gray.std(), 1e-6),
                      compactness * yy.ravel() / step, compactness * xx.ravel() / step], axis=1)
    labels0 = grid_regions((h, w), n_regions).ravel()
    centres = np.array([feats[labels0 == k].mean(axis=0) for k in np.unique(labels0)])
    for _ in range(iterations):
        # Squared distances via |a|^2 - 2ab + |b|^2: one matrix product for all pixels and centres.
        d = (feats ** 2).sum(1)[:, None] - 2 * feats @ centres.T + (centres ** 2).sum(1)[None, :]
        labels = d.argmin(axis=1)
        used = np.unique(labels)
        centres = np.array([feats[labels == k].mean(axis=0) for k in used])
        labels = np.searchsorted(used, labels)
    return _connected_and_merged(labels.reshape(h, w), min_size=int(step * step / 4))


def _connected_and_merged(labels, min_size):
    """Relabel each connected piece separately; merge pieces below ``min_size`` into a neighbour."""
    out = np.zeros_like(labels)
    next_label = 0
    for k in np.unique(labels):
        pieces, n = ndimage.label(labels == k)
        out[pieces > 0] = pieces[pieces > 0] + next_label - 1
        next_label += n
    changed = True
    while changed:
        changed = False
        sizes = np.bincount(out.ravel())
        for k in np.argsort(sizes):
            if sizes[k] == 0 or sizes[k] >= min_size or len(sizes[sizes > 0]) == 1:
                continue
            ring = ndimage.binary_dilation(out == k) & (out != k)
            if ring.any():
                neighbours, counts = np.unique(out[ring], return_counts=True)
                out[out == k] = neighbours[counts.argmax()]
                changed = True
                break
    _, compact = np.unique(out, return_inverse=True)
    return compact.reshape(out.shape).astype(np.int64)
