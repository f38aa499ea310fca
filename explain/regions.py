"""Split an image into regions for Kernel-SHAP: superpixels that follow the anatomy, or a grid.

``superpixels`` is a small SLIC (Achanta et al., 2012) in NumPy/SciPy: k-means on
(intensity, row, column) started from a regular grid, where ``compactness`` trades
following edges (low) against square regions (high). Every connected piece of a
cluster then becomes its own region, and the count is brought to exactly the number
asked for: the smallest region is merged into its most similar neighbour while there
are too many, the largest is cut in two across its longest axis while there are too
few. (SLIC alone gives 4 regions for 7 asked, or 14 for 9.)

With ``merge_background=True`` the near-constant background (air around the hand:
pixels within a small tolerance of the image border's median, connected to the border)
becomes one region of its own, and the other ``n_regions - 1`` regions cover the
anatomy. Without it, a third or more of the regions can be empty air, each costing
Kernel-SHAP model calls and each carrying only noise.
"""

import heapq

import numpy as np
from scipy import ndimage


def grid_regions(shape, n_regions):
    """Label map (H, W) of exactly ``n_regions`` near-square cells in rows, labels 0..M-1.

    The grid has ``r = round(sqrt(n * H / W))`` rows; when ``n`` is not a multiple of
    ``r``, the lower rows get one cell more than the upper ones.
    """
    h, w = shape
    n_regions = min(n_regions, h * w)
    rows = min(max(1, int(round(np.sqrt(n_regions * h / w)))), n_regions, h)
    cols = np.full(rows, n_regions // rows)
    cols[rows - n_regions % rows:] += 1                         # cells per row, summing to n_regions
    first = np.concatenate([[0], np.cumsum(cols)[:-1]])         # label of each row's first cell
    row_of = np.minimum(np.arange(h) * rows // h, rows - 1)
    labels = np.empty((h, w), dtype=np.int64)
    for r in range(rows):
        col_of = np.minimum(np.arange(w) * cols[r] // w, cols[r] - 1)
        labels[row_of == r] = first[r] + col_of
    return labels


def background_mask(gray, tolerance=0.05):
    """(H, W) bool: near-constant background connected to the image border.

    A pixel is background when its lightly smoothed intensity lies within
    ``tolerance`` (intensities in [0, 1]) of the median of the border pixels, the
    intensities around it (5 x 5) vary by no more than ``tolerance`` (standard
    deviation), and it is connected to the border through such pixels. All False when
    that covers less than 2% of the image (no background to speak of).
    """
    gray = np.asarray(gray, dtype=np.float64)
    smooth = ndimage.gaussian_filter(gray, 1.0)
    local_var = ndimage.uniform_filter(gray ** 2, 5) - ndimage.uniform_filter(gray, 5) ** 2
    border = np.concatenate([smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1]])
    near = (np.abs(smooth - np.median(border)) <= tolerance) & (local_var <= tolerance ** 2)
    pieces, _ = ndimage.label(near)
    touching = np.unique(np.concatenate([pieces[0], pieces[-1], pieces[:, 0], pieces[:, -1]]))
    mask = np.isin(pieces, touching[touching > 0])
    return mask if mask.mean() >= 0.02 else np.zeros_like(mask)


def superpixels(gray, n_regions, compactness=0.1, iterations=10, merge_background=False):
    """SLIC-style superpixels of a gray image (H, W) in [0, 1]; labels 0..M-1, M = ``n_regions``.

    Parameters
    ----------
    gray : ndarray (H, W)
    n_regions : int, the number of regions (met exactly unless the image has fewer pixels
        that can be told apart, e.g. a tiny image)
    compactness : float
        Weight of distance in grid steps against intensity difference.
    iterations : int, k-means rounds
    merge_background : bool
        One region for the near-constant background (see :func:`background_mask`); it
        gets the last label, ``n_regions - 1``.
    """
    gray = np.asarray(gray, dtype=np.float64)
    h, w = gray.shape
    fg = ~background_mask(gray) if merge_background and n_regions > 1 else np.ones((h, w), bool)
    n_fg = n_regions - 1 if not fg.all() else n_regions
    step = np.sqrt(fg.sum() / n_fg)
    yy, xx = np.mgrid[0:h, 0:w]
    feats = np.stack([gray.ravel() / max(gray[fg].std(), 1e-6),
                      compactness * yy.ravel() / step, compactness * xx.ravel() / step], axis=1)
    inside = fg.ravel()
    labels0 = grid_regions((h, w), max(1, int(round(n_fg * h * w / fg.sum())))).ravel()
    start = [k for k in np.unique(labels0[inside])]
    centres = np.array([feats[inside & (labels0 == k)].mean(axis=0) for k in start])
    f = feats[inside]
    for _ in range(iterations):
        # Squared distances via |a|^2 - 2ab + |b|^2: one matrix product for all pixels and centres.
        d = (f ** 2).sum(1)[:, None] - 2 * f @ centres.T + (centres ** 2).sum(1)[None, :]
        labels = d.argmin(axis=1)
        used = np.unique(labels)
        centres = np.array([f[labels == k].mean(axis=0) for k in used])
        labels = np.searchsorted(used, labels)
    out = np.full(h * w, -1, dtype=np.int64)
    out[inside] = labels
    out = _exact_count(out.reshape(h, w), gray, n_fg)
    if n_fg < n_regions:
        out[~fg] = n_fg
    return out


def _exact_count(labels, gray, n):
    """Connected pieces of ``labels`` (pixels labelled -1 are left out), brought to exactly ``n``.

    Merging picks the smallest region and joins it to the neighbour with the closest mean
    intensity (a region adjacency graph kept up to date, so that the hundreds of small
    pieces a noisy radiograph gives cost milliseconds); splitting cuts the largest region
    at the median of its longest axis.
    """
    keep = labels >= 0
    out = np.full(labels.shape, -1, dtype=np.int64)
    count = 0
    for k in np.unique(labels[keep]):
        pieces, found = ndimage.label(labels == k)
        out[pieces > 0] = pieces[pieces > 0] - 1 + count
        count += found
    n = min(n, int(keep.sum()))
    if count > n:
        out = _merge_smallest(out, gray, count, n)
        count = n
    while count < n:
        k = int(np.argmax(np.bincount(out[keep], minlength=count)))
        rr, cc = np.nonzero(out == k)
        along = rr if np.ptp(rr) >= np.ptp(cc) else cc
        cut = along > np.median(along)
        if not cut.any():                              # one row or column of pixels: halve it
            cut = np.arange(len(rr)) >= len(rr) // 2
        out[rr[cut], cc[cut]] = count
        count += 1
    return out


def _merge_smallest(out, gray, count, n):
    """Merge regions 0..count-1 of ``out`` (smallest first, into the most similar neighbour) down to ``n``."""
    keep = out >= 0
    # Python lists, not arrays: the loop below reads single values, which a list gives 5 times faster.
    size = np.bincount(out[keep], minlength=count).astype(float).tolist()
    total = np.bincount(out[keep], weights=gray[keep], minlength=count).tolist()
    neighbours = [set() for _ in range(count)]
    for a, b in ((out[:, :-1], out[:, 1:]), (out[:-1], out[1:])):
        touch = (a != b) & (a >= 0) & (b >= 0)
        for i, j in zip(a[touch], b[touch]):
            neighbours[i].add(j)
            neighbours[j].add(i)
    alive = set(range(count))
    parent = np.arange(count)
    # The smallest region, from a heap of (size, label): the smallest label among equal sizes, and an
    # entry whose region has grown or gone since is skipped.
    smallest = [(s, r) for r, s in enumerate(size)]
    heapq.heapify(smallest)
    while len(alive) > n:
        s, k = heapq.heappop(smallest)
        if k not in alive or s != size[k]:
            continue
        near = neighbours[k] or (alive - {k})         # an island: join any other region
        target = min(near, key=lambda r: abs(total[r] / size[r] - total[k] / size[k]))
        size[target] += size[k]
        total[target] += total[k]
        heapq.heappush(smallest, (size[target], target))
        for r in neighbours[k]:
            neighbours[r].discard(k)
            if r != target:
                neighbours[r].add(target)
                neighbours[target].add(r)
        neighbours[target].discard(target)
        parent[k] = target
        alive.remove(k)
    for k in range(count):                             # follow each merged region to its survivor
        r = k
        while parent[r] != r:
            r = parent[r]
        parent[k] = r
    _, compact = np.unique(parent, return_inverse=True)
    return np.where(keep, compact[np.maximum(out, 0)], -1)
