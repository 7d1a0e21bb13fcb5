"""The named data sets: scikit-learn's digits (bundled) and Fashion-MNIST (local IDX files).

Nothing is ever downloaded. Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) is read from the
Debian package ``dataset-fashion-mnist`` or from a folder the user names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .idx import read_idx

DIGITS_TEST_FRACTION = 0.2
DIGITS_SEED = 0

# Where `apt-get install dataset-fashion-mnist` puts the files (found with `dpkg -L`).
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
DATA_DIR_ENV = "VAELAB_DATA_DIR"
FASHION_MNIST_FILES = {
    "X_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_FASHION_SIZES = {"X_train": 60000, "y_train": 60000, "X_test": 10000, "y_test": 10000}


def digits_split(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed train/test split of digits: indices (train, test), each sorted.

    A permutation from ``numpy.random.RandomState(0)`` (whose stream numpy keeps stable across
    versions); its last ``ceil(0.2 * n)`` entries are the test set: 1437 train / 360 test of
    the 1797 images.
    """
    perm = np.random.RandomState(DIGITS_SEED).permutation(n_samples)
    n_test = int(np.ceil(DIGITS_TEST_FRACTION * n_samples))
    return np.sort(perm[:-n_test]), np.sort(perm[-n_test:])


def load_digits() -> dict:
    """scikit-learn's 8x8 digits as uint8 images (n, 1, 8, 8) in 0..16, split as `digits_split`."""
    from sklearn.datasets import load_digits as _sklearn_digits

    bunch = _sklearn_digits()
    X = bunch.images.astype(np.uint8)[:, None]  # (1797, 1, 8, 8); values are integers 0..16
    y = bunch.target.astype(np.int64)
    train, test = digits_split(len(X))
    return dict(
        X_train=X[train],
        y_train=y[train],
        X_test=X[test],
        y_test=y[test],
        sample_shape=(1, 8, 8),
        pixel_max=16.0,
    )


def _find_files(folder: Path) -> dict[str, Path | None]:
    """Each Fashion-MNIST file in ``folder`` (plain or .gz), or None where missing."""
    found = {}
    for part, stem in FASHION_MNIST_FILES.items():
        candidates = [folder / stem, folder / (stem + ".gz")]
        found[part] = next((p for p in candidates if p.is_file()), None)
    return found


def _candidate_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    # An explicit data_dir is final; the environment variable is a general data folder, so
    # the system path is still tried after it.
    if data_dir is not None:
        base = [Path(data_dir).expanduser()]
    else:
        env = os.environ.get(DATA_DIR_ENV)
        base = ([Path(env).expanduser()] if env else []) + [Path(FASHION_MNIST_DEFAULT_DIR)]
    return [d for b in base for d in (b, b / "fashion-mnist")]


def fashion_mnist_files(data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Locate the four Fashion-MNIST IDX files, or raise a DataError saying how to get them.

    Search order: ``data_dir`` (and its ``fashion-mnist`` subfolder) when given; otherwise
    ``$VAELAB_DATA_DIR`` (and subfolder), then ``/usr/share/datasets/fashion-mnist``.
    """
    dirs = _candidate_dirs(data_dir)
    for folder in dirs:
        found = _find_files(folder)
        if all(found.values()):
            return {part: path for part, path in found.items() if path is not None}
        if any(found.values()):
            missing = [FASHION_MNIST_FILES[k] for k, v in found.items() if v is None]
            raise DataError(
                f"fashion-mnist: {folder} holds only some of the files; missing "
                f"{', '.join(missing)} (or .gz); reinstall with `apt-get install --reinstall "
                "dataset-fashion-mnist` or copy the four IDX files there"
            )
    names = ", ".join(s + "[.gz]" for s in FASHION_MNIST_FILES.values())
    raise DataError(
        f"fashion-mnist: not found (looked in {', '.join(map(str, dirs))}); vaelab never "
        f"downloads data: install it with `apt-get install dataset-fashion-mnist`, or pass "
        f"--data-dir DIR (data_dir=DIR) naming a folder that holds the four IDX files {names}"
    )


def load_fashion_mnist(data_dir: str | os.PathLike | None = None) -> dict:
    """Fashion-MNIST: 60,000 train / 10,000 test images (n, 1, 28, 28), uint8, labels 0..9."""
    arrays = {}
    for part, path in fashion_mnist_files(data_dir).items():
        arr = read_idx(path, where=f"fashion-mnist: {path}")
        want = (_FASHION_SIZES[part], 28, 28) if part.startswith("X") else (_FASHION_SIZES[part],)
        if arr.shape != want or arr.dtype != np.uint8:
            raise DataError(
                f"fashion-mnist: {path} holds {arr.dtype} of shape {arr.shape}, expected uint8 of "
                f"shape {want}; it is not the Fashion-MNIST file: get a fresh copy"
            )
        arrays[part] = arr[:, None] if part.startswith("X") else arr.astype(np.int64)
    return dict(**arrays, sample_shape=(1, 28, 28), pixel_max=255.0)
