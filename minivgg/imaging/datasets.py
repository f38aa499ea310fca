"""Folder data sets (``ROOT/<class>/*.png``), stratified splits and k-fold cross-validation.

A data set is a folder with one sub-folder per class; class names are the sub-folder
names, sorted, so label ``i`` is the ``i``-th name. Every image is read once, up front,
resized to the preprocessing size and kept in memory (a 256 x 256 float32 image is
256 KiB): an epoch then never touches the disk, and a broken file is found before
training starts, listed, and left out, never met in the middle of an epoch.
"""

import hashlib
from pathlib import Path

import numpy as np

from minivgg.errors import DatasetError
from minivgg.imaging.imageio import ImageError, is_image_path, load_image
from minivgg.imaging.preprocess import finish, resize


def scan_folder(root):
    """List ``(path, class_name)`` for every image file under ``root/<class>/``.

    Raises :class:`DatasetError` for a missing root, fewer than two classes, or an empty
    class folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    classes = sorted(p.name for p in _listing(root) if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise DatasetError(f"{root}: needs one sub-folder per class and at least two classes (found {found})")
    items = []
    for name in classes:
        # Image-named entries that are not plain files (a symbolic-link loop, say) are kept,
        # so that loading reports them by name instead of leaving them out in silence.
        files = sorted(p for p in _listing(root / name) if is_image_path(p) and not p.is_dir())
        if not files:
            raise DatasetError(f"{root / name}: class folder holds no image files")
        items += [(p, name) for p in files]
    return classes, items


def _listing(folder):
    try:
        return list(folder.iterdir())
    except OSError as e:
        raise DatasetError(f"{folder}: cannot list the folder ({(e.strerror or type(e).__name__).lower()})") from None


class FolderDataset:
    """Images of a class-per-folder tree, loaded and resized once.

    Parameters
    ----------
    root : path
    settings : dict
        Preprocessing settings (:func:`minivgg.imaging.preprocess.preprocessing_settings`).
    class_names : list of str, optional
        Expected class names (e.g. a trained model's); a mismatch is an error.
    progress : callable ``(done, total)``, optional, called after each file is read

    Attributes
    ----------
    class_names : list of str
    paths : list of Path
    labels : ndarray of int
    broken : list of str
        One line per file that could not be read (left out of the data set).
    """

    def __init__(self, root, settings, class_names=None, progress=None):
        self.root = Path(root)
        self.settings = settings
        classes, items = scan_folder(self.root)
        if class_names is not None and list(class_names) != classes:
            raise DatasetError(f"{self.root}: class folders {classes} differ from the model's classes "
                               f"{list(class_names)}")
        self.class_names = classes
        self.paths, labels, self.images, self.broken = [], [], [], []
        for done, (path, name) in enumerate(items, 1):
            if progress:
                progress(done, len(items))
            try:
                self.images.append(resize(load_image(path), settings["resize"]))
            except ImageError as e:
                self.broken.append(str(e))
                continue
            self.paths.append(path)
            labels.append(classes.index(name))
        self.labels = np.array(labels, dtype=np.int64)
        empty = [c for i, c in enumerate(classes) if not (self.labels == i).any()]
        if empty:
            raise DatasetError(f"{self.root}: no readable image in class folder(s) {', '.join(empty)}")

    def __len__(self):
        return len(self.paths)

    def class_counts(self):
        return np.bincount(self.labels, minlength=len(self.class_names))

    def batches(self, indices, batch_size=32):
        """Yield ``batch(chunk)`` for successive chunks of ``indices`` (no augmentation): bounded memory."""
        for i in range(0, len(indices), batch_size):
            yield self.batch(indices[i:i + batch_size])

    def batch(self, indices, rng=None, augmentation=None):
        """Model inputs (len, 3, S, S) float32 and labels for ``indices``.

        Augmented when ``rng`` is given, with ``augmentation`` (a dict of
        :func:`minivgg.imaging.augment.augment` options, e.g. ``{"orientation": True}``).
        """
        from minivgg.imaging.augment import augment  # SciPy's ndimage: imported only when training needs it
        xs = []
        for i in indices:
            img = self.images[i]
            if rng is not None:
                img, _ = augment(img, rng, **(augmentation or {}))
            xs.append(finish(img, self.settings))
        return np.stack(xs), self.labels[np.asarray(indices, dtype=np.int64)]


def stratified_split(labels, fraction, seed=0):
    """Split indices into (train, held_out), holding out ``fraction`` of each class.

    Every class keeps at least one sample on each side when it has two or more.
    """
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = int(round(fraction * len(idx)))
        n = min(max(n, 1), len(idx) - 1) if len(idx) > 1 else 0
        held += list(idx[:n])
        train += list(idx[n:])
    return np.sort(train), np.sort(held)


def stratified_kfold(labels, k, seed=0):
    """``k`` (train, test) index pairs; each class is dealt round-robin over the folds.

    Every sample is in exactly one test fold, and each fold's class counts differ from
    ``count / k`` by less than one.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    if k < 2 or k > counts[counts > 0].min():
        raise DatasetError(f"{k}-fold cross-validation needs 2 <= k <= the smallest class size "
                           f"({counts[counts > 0].min()})")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        # Start each class where the previous one stopped, so fold sizes stay even too.
        fold_of[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    all_idx = np.arange(len(labels))
    return [(all_idx[fold_of != f], all_idx[fold_of == f]) for f in range(k)]


def file_list_hash(dataset, indices):
    """SHA-256 of the sorted ``class/file name`` list of ``dataset[indices]``: which images a model saw."""
    names = sorted(f"{dataset.class_names[dataset.labels[i]]}/{dataset.paths[i].name}" for i in indices)
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()
