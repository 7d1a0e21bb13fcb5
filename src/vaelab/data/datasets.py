"""`load`: one entry point from a data set name or a user file to a checked `Dataset`.

Values are returned as read (not scaled); `vaelab.data.preprocessing` maps them to model
space. User files are opened read-only and never modified; ``.npy`` and uncompressed IDX
files are memory-mapped, so large files are not read into memory, and a folder of images whose
float32 copy would exceed ``IN_MEMORY_LIMIT`` is decoded on demand (an `ImageFolder`).
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ._arrays import (
    IN_MEMORY_LIMIT,
    as_samples,
    check_finite,
    check_labels,
    check_numeric,
    image_pixel_max,
)
from .arrayfiles import read_npy, read_npz
from .builtin import load_digits, load_fashion_mnist
from .idx import read_idx
from .images import ImageFolder, open_image_folder
from .tables import DELIMITERS, read_table

DATASET_NAMES = ("digits", "fashion-mnist")
FILE_TYPES = (".npy", ".npz", ".csv", ".tsv", "IDX (*-ubyte, *-ubyte.gz)", "a folder of PNG/JPEG images")


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == has no single truth value
class Dataset:
    """A data set as read, with its standard split when the source has one.

    Arrays may be read-only (memory-mapped files); copy before changing them. A large image
    folder comes as an `ImageFolder`, an array-like that decodes the images it is indexed by.

    Attributes
    ----------
    name : str
        ``"digits"``, ``"fashion-mnist"`` or the file path as given.
    X_train : ndarray or ImageFolder of shape (n_train, *sample_shape)
        Raw values, not scaled: uint8 for images, float32 for tables, or the numeric dtype
        stored in a ``.npy``/``.npz`` file.
    y_train : ndarray of shape (n_train,) or None
        Labels (integers, or text from a CSV label column).
    X_test, y_test : ndarray or None
        The standard test split of a named data set; None for user files.
    sample_shape : tuple of int
        ``(n_features,)`` for tables, ``(C, H, W)`` for images.
    pixel_max : float or None
        The full-scale value that maps images to [0, 1] (16 for digits, 255 for 8-bit images and
        for any uint8 array); None for other tables and for images whose range cannot be told.
    feature_names : tuple of str or None
        The column names of a CSV/TSV header (the label column left out), for reports;
        None when the source has none.
    """

    name: str
    X_train: np.ndarray | ImageFolder
    y_train: np.ndarray | None
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    sample_shape: tuple[int, ...]
    pixel_max: float | None
    feature_names: tuple[str, ...] | None = None

    @property
    def is_image(self) -> bool:
        """True for image data, shaped (C, H, W) per sample."""
        return len(self.sample_shape) == 3

    @property
    def n_features(self) -> int:
        """Values per sample: d for tables, C * H * W for images."""
        return int(np.prod(self.sample_shape))

    def describe(self) -> str:
        """What the data are, as loaded: "8x8 grey images, uint8 values 0..16", "a table of 13 features, float32"."""
        values = "" if self.pixel_max is None else f" values 0..{self.pixel_max:g}"
        if not self.is_image:
            return f"a table of {self.n_features} features, {self.X_train.dtype}{values}"
        channels, height, width = self.sample_shape
        colour = {1: "grey", 3: "RGB"}.get(channels, f"{channels}-channel")
        return f"{height}x{width} {colour} images, {self.X_train.dtype}{values}"

    def __repr__(self) -> str:
        n_test = None if self.X_test is None else len(self.X_test)
        return (
            f"Dataset(name={self.name!r}, n_train={len(self.X_train)}, n_test={n_test}, "
            f"sample_shape={self.sample_shape}, dtype={self.X_train.dtype}, "
            f"labels={self.y_train is not None}, pixel_max={self.pixel_max})"
        )


def _file_type(path: Path) -> str | None:
    name = path.name.lower()
    if path.is_dir():
        return "images"
    for suffix in (".npy", ".npz", ".csv", ".tsv"):
        if name.endswith(suffix):
            return suffix[1:]
    if name.endswith(("-ubyte", "-ubyte.gz", ".idx", ".idx.gz")):
        return "idx"
    return None


# Which of load()'s options each source understands; any other option given is an error.
_OPTIONS = {
    "digits": (),
    "fashion-mnist": ("data_dir",),
    "npy": (),
    "npz": ("key", "label_column"),
    "csv": ("header", "label_column", "delimiter"),
    "tsv": ("header", "label_column", "delimiter"),
    "idx": (),
    "images": ("image_size",),
}


def _check_options(kind: str, where: str, **given) -> None:
    for option, value in given.items():
        if value is not None and option not in _OPTIONS[kind]:
            usable = ", ".join(_OPTIONS[kind]) or "none"
            raise ConfigError(
                f"{where}: option {option}={value!r} does not apply to this source "
                f"({kind}; its options: {usable}); leave it out"
            )


def _finish(name: str, X: np.ndarray, y: np.ndarray | None, where: str, pixel_max=None, feature_names=None) -> Dataset:
    """Check a user array and its labels and wrap them as a Dataset with no test split."""
    check_numeric(X, where)
    X, sample_shape = as_samples(X, where)
    check_finite(X, where)
    if y is not None:
        y = check_labels(y, len(X), where)
    if pixel_max is None and (len(sample_shape) == 3 or X.dtype == np.uint8):
        pixel_max = image_pixel_max(X)  # uint8 is 0..255 whatever its shape; other tables: None
    return Dataset(name, X, y, None, None, sample_shape, pixel_max, feature_names)


def _unknown(source: str) -> DataError:
    close = difflib.get_close_matches(source.lower(), DATASET_NAMES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return DataError(
        f"{source!r} is neither a named data set nor an existing file or folder; {hint}named data "
        f"sets: {', '.join(DATASET_NAMES)}; files: {', '.join(FILE_TYPES)}"
    )


_SPECIAL_FILES = {
    stat.S_ISFIFO: "a FIFO (named pipe)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}


def _check_regular(path: Path, where: str) -> None:
    """Refuse anything but a regular file or a folder: reading a FIFO or a device could block or never end."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    what = next((words for test, words in _SPECIAL_FILES.items() if test(mode)), "not a regular file")
    raise DataError(
        f"{where}: is {what}, not a regular file; vaelab reads data from files it can check before "
        "reading: save the data to a file first and pass that"
    )


def _check_image_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    ok = (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in image_size)
    )
    if not ok:
        raise ConfigError(f"image_size must be (height, width), two positive integers; got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def load(
    source: str | os.PathLike,
    *,
    key: str | None = None,
    label_column: str | int | None = None,
    header: bool | None = None,
    data_dir: str | os.PathLike | None = None,
    image_size: tuple[int, int] | None = None,
    delimiter: str | None = None,
) -> Dataset:
    """Load a named data set or a user file, checked, with values as read.

    Parameters
    ----------
    source : str or path-like
        ``"digits"`` (scikit-learn's 8x8 digits, fixed 1437/360 split, see
        `vaelab.data.builtin.digits_split`), ``"fashion-mnist"`` (local IDX files, 60,000 /
        10,000), or a path: ``.npy`` (memory-mapped), ``.npz``, ``.csv``, ``.tsv``, an IDX file
        (``*-ubyte``, optionally ``.gz``; a sibling ``*labels-idx1-ubyte`` gives the labels),
        or a folder of PNG/JPEG images (decoded on demand when its float32 copy would
        exceed ``IN_MEMORY_LIMIT``, 1 GiB). Names are tried before paths: write ``./digits``
        for a folder called ``digits``.
    key : str, optional
        ``.npz`` only: the array holding the data. Needed when the archive holds more than
        one array besides the labels (``y`` or ``labels``).
    label_column : str or int, optional
        CSV/TSV: the label column, by name (or index from 0 without a header).
        ``.npz``: the key of the label array.
    header : bool, optional
        CSV/TSV: whether line 1 holds column names. Detected when not given: names are text
        above numbers in every numeric column; a line 1 mixing text and numbers is refused.
    data_dir : path-like, optional
        ``"fashion-mnist"`` only: a folder with its four IDX files (default
        ``$VAELAB_DATA_DIR``, then ``/usr/share/datasets/fashion-mnist``).
    image_size : (height, width), optional
        Image folders only: resize every image to this size.
    delimiter : {",", ";", "\\t"}, optional
        CSV/TSV: the field separator; detected from the first lines when not given. Decimal
        commas (``1,5``) are read when the separator is ``;`` or a tab.

    Returns
    -------
    Dataset
        2-D arrays are tables ``(n, d)``; 3-D arrays ``(n, H, W)`` become grey images
        ``(n, 1, H, W)``; 4-D arrays are ``(n, C, H, W)``.

    Raises
    ------
    DataError
        Unknown source (with the closest data set name, if any), unreadable/corrupted/empty
        file, a FIFO or device, non-numeric values, NaN/inf, labels of the wrong length, mixed
        image sizes or modes, Fashion-MNIST not installed, or a file whose header claims more
        memory than `vaelab.data._arrays.memory_budget` allows (checked before reading).
    ConfigError
        An option that does not apply to the source, or an invalid option value.
    """
    given = dict(
        key=key, label_column=label_column, header=header, data_dir=data_dir, image_size=image_size, delimiter=delimiter
    )
    if header is not None and not isinstance(header, bool):
        raise ConfigError(f"header must be True, False or None; got {header!r}")
    if delimiter is not None and delimiter not in DELIMITERS:
        raise ConfigError(f"delimiter must be one of ',', ';', '\\t' (tab), or None to detect it; got {delimiter!r}")
    source_str = os.fspath(source)
    if source_str in DATASET_NAMES:
        _check_options(source_str, source_str, **given)
        parts = load_digits() if source_str == "digits" else load_fashion_mnist(data_dir)
        return Dataset(name=source_str, **parts)

    path = Path(source_str).expanduser()
    if not path.exists():
        raise _unknown(source_str)
    kind = _file_type(path)
    if kind is None:
        raise DataError(
            f"{source_str}: unknown file type {path.suffix or '(no extension)'!r}; vaelab reads {', '.join(FILE_TYPES)}"
        )
    _check_regular(path, source_str)
    _check_options(kind, source_str, **given)
    if kind != "images" and path.stat().st_size == 0:
        raise DataError(f"{source_str}: the file is empty")
    try:
        return _load_file(path, kind, source_str, key, label_column, header, image_size, delimiter)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{source_str}: cannot read it ({exc})") from exc


def _load_file(path, kind, where, key, label_column, header, image_size, delimiter) -> Dataset:
    if kind == "npy":
        return _finish(where, read_npy(path, where), None, where)
    if kind == "npz":
        X, y = read_npz(path, key, None if label_column is None else str(label_column), where)
        return _finish(where, X, y, where)
    if kind in ("csv", "tsv"):
        table = read_table(
            path,
            delimiter=delimiter,
            default_delimiter="," if kind == "csv" else "\t",
            header=header,
            label_column=label_column,
            where=where,
        )
        return _finish(where, table.X, table.y, where, feature_names=table.feature_names)
    if kind == "idx":
        X = read_idx(path, where)
        labels = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        # is_file() is False for a FIFO or device named like a label file: those are left alone.
        y = read_idx(labels, str(labels)) if labels != path and labels.is_file() else None
        return _finish(where, X, y, where)
    folder = open_image_folder(path, _check_image_size(image_size), where)
    # small enough to decode now; fit decodes larger folders per batch
    images = np.asarray(folder) if folder.size * 4 <= IN_MEMORY_LIMIT else folder
    # An ImageFolder has what _finish reads (shape, ndim, dtype); _arrays types only ndarrays so far.
    return _finish(where, images, None, where, pixel_max=255.0)  # type: ignore[arg-type]
