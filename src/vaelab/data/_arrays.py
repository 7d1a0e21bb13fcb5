"""Checks shared by the loaders (dtype, NaN/inf, sample shape and labels), and reading rows.

Every scan walks the rows in chunks. Rows of a memory-mapped file are read with positioned reads
(``os.preadv``) into new arrays rather than through the mapping: pages touched through a mapping
count in the process's resident memory until it is unmapped, so one pass over a 4 GB file would
leave 4 GB resident, while the page cache that positioned reads fill is the kernel's to evict.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import DataError

# About 4 M values (16 MiB of float32) per chunk: bounded memory, few Python iterations.
CHUNK_VALUES = 1 << 22

# Data whose float32 copy would exceed this many bytes is read from disk batch by batch in fit
# (a memory-mapped array, a large folder of images) instead of being copied into memory.
IN_MEMORY_LIMIT = 1 << 30

_FLOAT32_MAX = float(np.finfo(np.float32).max)

# The most memory one array read into memory (an .npz member, a gzipped IDX file, one decoded
# image) may claim, as a fraction of the machine's physical memory: a header claiming more is
# refused before anything is allocated, not discovered by the allocator.
MEMORY_FRACTION = 0.5

_DTYPE_WORDS = {
    "c": "complex numbers",
    "O": "Python objects",
    "U": "text",
    "S": "byte strings",
    "V": "structured records",
    "M": "dates",
    "m": "time spans",
}


def memory_budget() -> int:
    """Bytes one in-memory array may take: ``MEMORY_FRACTION`` of physical memory (4 GiB if unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX, or the value is not known
        total = 8 << 30
    return int(total * MEMORY_FRACTION)


def describe_bytes(n: int) -> str:
    """``n`` bytes in words: "316 bytes", "7.3 TiB"."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    value, i = float(n), 0
    while value >= 1024 and i < len(units) - 1:
        value, i = value / 1024, i + 1
    return f"{n} bytes" if i == 0 else f"{value:.3g} {units[i]}"


def check_claimed_bytes(claimed: int, where: str, what: str, fix: str) -> None:
    """Raise a DataError when reading ``claimed`` bytes into memory would exceed `memory_budget`."""
    budget = memory_budget()
    if claimed > budget:
        raise DataError(
            f"{where}: {what} would need {describe_bytes(claimed)} in memory, over the budget of "
            f"{describe_bytes(budget)} (half of this machine's memory); {fix}"
        )


def memmap_of(X) -> np.memmap | None:
    """The ``np.memmap`` whose mapping holds the values of ``X`` (X itself or one it views), or None."""
    root = X
    while isinstance(root, np.ndarray) and isinstance(root.base, np.ndarray):
        root = root.base
    return root if isinstance(root, np.memmap) and isinstance(root.base, mmap.mmap) else None


@dataclass(frozen=True)
class _FileRows:
    """Where the rows of a memory-mapped array lie in its file."""

    path: str
    offset: int  # bytes from the start of the file to row 0
    stride: int  # bytes from one row to the next
    row_bytes: int  # bytes of one row (contiguous)


def _file_rows(X) -> _FileRows | None:
    """The file layout of the rows of ``X``, when they can be read from the file directly."""
    root = memmap_of(X)
    # A copy-on-write map ("c") may hold changes the file lacks, a Fortran-ordered file scatters
    # each row, and Windows has no positioned reads: those are read through the mapping instead.
    if root is None or root.mode not in ("r", "r+", "w+") or not root.filename or not hasattr(os, "preadv"):
        return None
    if not X.ndim or not len(X):
        return None
    if not X[:1].flags.c_contiguous:
        return None
    offset = root.offset + X.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return _FileRows(root.filename, offset, X.strides[0], X[:1].nbytes)


def _pread_into(fd: int, buffer: memoryview, offset: int, path: str) -> None:
    while len(buffer):  # one read may return fewer bytes than asked (Linux caps it near 2 GiB)
        n = os.preadv(fd, [buffer], offset)
        if n == 0:
            raise DataError(
                f"{path}: the file ends at byte {offset}, before the data do; was it truncated while in use?"
            )
        buffer, offset = buffer[n:], offset + n


def read_rows(X, rows: np.ndarray) -> np.ndarray:
    """``X[rows]`` as a new in-memory array; a memory-mapped file is read without mapping its pages.

    Parameters
    ----------
    X : array of shape (n_samples, ...)
        An array, a memory-mapped array or a view of one, or a lazy
        `vaelab.data.images.ImageFolder` (which decodes the rows).
    rows : ndarray of int, shape (k,)
        Row positions in ``[0, n_samples)``. From a file, runs of consecutive rows are read at
        once, so ascending order reads fastest.

    Returns
    -------
    ndarray of shape (k, ...), the dtype of ``X``
    """
    rows = np.asarray(rows, dtype=np.int64)
    layout = _file_rows(X)
    if layout is None:
        return np.asarray(X[rows])
    if len(rows) and (rows.min() < 0 or rows.max() >= len(X)):
        raise IndexError(f"row positions must lie in [0, {len(X)}); got {rows.min()}..{rows.max()}")
    out = np.empty((len(rows), *X.shape[1:]), dtype=X.dtype)
    if not len(rows):
        return out
    # ndarray has the buffer protocol; numpy's stubs declare it (__buffer__) only for Python >= 3.12.
    buffer = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    if layout.stride == layout.row_bytes:  # rows follow each other in the file: one read per run
        cuts = (np.flatnonzero(np.diff(rows) != 1) + 1).tolist()
    else:
        cuts = list(range(1, len(rows)))
    firsts, ends = [0, *cuts], [*cuts, len(rows)]
    size = layout.row_bytes
    try:
        with open(layout.path, "rb", buffering=0) as f:
            fd = f.fileno()
            for first, end, row in zip(firsts, ends, rows[firsts].tolist(), strict=True):
                _pread_into(fd, buffer[first * size : end * size], layout.offset + row * layout.stride, layout.path)
    except OSError as exc:
        raise DataError(f"{layout.path}: cannot read rows from it ({exc})") from exc
    return out


def row_chunks(X, max_values: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, X[start:stop])`` over the rows of ``X``, about ``max_values`` values each.

    ``max_values`` defaults to the module's ``CHUNK_VALUES``, read at call time. Chunks of a
    memory-mapped file are new arrays read by `read_rows`; chunks of other arrays are views, and
    those of a lazy image folder are decoded.
    """
    per_row = max(1, int(np.prod(X.shape[1:], dtype=np.int64)))
    step = max(1, (max_values or CHUNK_VALUES) // per_row)
    from_file = _file_rows(X) is not None
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        yield start, read_rows(X, np.arange(start, stop)) if from_file else X[start:stop]


def check_numeric(X: np.ndarray, where: str) -> None:
    """Raise a DataError unless ``X`` holds booleans, integers or real floats."""
    if X.dtype.kind in "biuf":
        return
    what = _DTYPE_WORDS.get(X.dtype.kind, "not real numbers")
    raise DataError(
        f"{where}: values are {what} (dtype {X.dtype}); vaelab needs real numbers: "
        "store integers or floats (for example X.astype('float32'))"
    )


def _position(index: tuple[int, ...]) -> str:
    # Tables read best as row/column, images as sample + (channel, row, column).
    if len(index) == 2:
        return f"row {index[0]}, column {index[1]}, counting from 0"
    return f"sample {index[0]}, position {tuple(int(i) for i in index[1:])}, counting from 0"


def check_finite(
    X: np.ndarray,
    where: str,
    describe: Callable[[tuple[int, ...]], str] | None = None,
) -> None:
    """Raise a DataError if ``X`` holds NaN/inf, or floats too large for float32.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
        Any numeric array, possibly memory-mapped; integer arrays pass at once.
    where : str
        The file or data set name that starts the message.
    describe : callable, optional
        Turns the index of the first bad value into words (the CSV reader gives line numbers);
        by default "row i, column j" counting from 0.
    """
    if X.dtype.kind != "f":
        return
    describe = describe or _position
    count = 0
    first: tuple[int, ...] | None = None
    for start, chunk in row_chunks(X):
        finite = np.isfinite(chunk)
        if not finite.all():  # one reduction when all is well; counting and locating only when not
            count += int(finite.size - np.count_nonzero(finite))
            if first is None:
                pos = tuple(int(i) for i in np.argwhere(~finite)[0])
                first = (start + pos[0],) + pos[1:]
        elif X.dtype.itemsize > 4:
            # Models compute in float32; a larger value would silently become inf there.
            big = np.abs(chunk) > _FLOAT32_MAX
            if big.any():
                pos = tuple(int(i) for i in np.argwhere(big)[0])
                pos = (start + pos[0],) + pos[1:]
                raise DataError(
                    f"{where}: value {chunk[(pos[0] - start,) + pos[1:]]:g} at {describe(pos)} "
                    f"is too large for float32 (max {_FLOAT32_MAX:.3g}); rescale the data"
                )
    if first is not None:  # count > 0
        raise DataError(
            f"{where}: {count} NaN/inf value{'s' if count > 1 else ''} "
            f"(first at {describe(first)}); remove or impute them"
        )


def as_samples(X: np.ndarray, where: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """Give ``X`` the shape ``(n, d)`` (tables) or ``(n, C, H, W)`` (images), as a view.

    2-D arrays are tables, 3-D ``(n, H, W)`` arrays grey images, 4-D arrays ``(n, C, H, W)``.

    Returns
    -------
    X : ndarray of shape (n_samples, *sample_shape)
    sample_shape : tuple of int
    """
    shape = tuple(int(s) for s in X.shape)
    if X.ndim < 2 or X.ndim > 4:
        fix = (
            "reshape it to (n_samples, 1) for one feature"
            if X.ndim == 1
            else ("give 2-D (n, d) tables, 3-D (n, H, W) grey images or 4-D (n, C, H, W) images")
        )
        raise DataError(f"{where}: array has shape {shape}, which is not a set of samples; {fix}")
    if shape[0] == 0:
        raise DataError(f"{where}: array has shape {shape}: it contains no samples")
    if 0 in shape[1:]:
        raise DataError(f"{where}: array has shape {shape}: each sample is empty")
    if X.ndim == 3:
        X = X.reshape(shape[0], 1, shape[1], shape[2])
    elif X.ndim == 4 and shape[1] > 4 and shape[3] in (1, 3):
        # (n, H, W, C) is what PIL and most image code produce; vaelab wants channels first.
        raise DataError(
            f"{where}: array has shape {shape}, which looks channels-last (n, H, W, C); "
            "vaelab wants (n, C, H, W): use X.transpose(0, 3, 1, 2)"
        )
    return X, tuple(int(s) for s in X.shape[1:])


def check_labels(y: np.ndarray, n_samples: int, where: str) -> np.ndarray:
    """Return labels as a 1-D array of length ``n_samples``, or raise a DataError."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: labels have shape {y.shape}; give one label per sample, shape (n,)")
    if y.dtype.kind not in "biufUS":
        raise DataError(f"{where}: labels have dtype {y.dtype}; use integers or text")
    if len(y) != n_samples:
        raise DataError(f"{where}: {len(y)} labels for {n_samples} samples; give exactly one label per sample")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{where}: labels contain NaN/inf; remove those samples or fix the labels")
    return y


def image_pixel_max(X: np.ndarray) -> float | None:
    """Guess the full-scale value of an image array, or None when it cannot be told.

    uint8 -> 255; booleans -> 1; other integers within 0..255 -> 255; floats within
    [0, 1] -> 1. Anything else (e.g. 16-bit or standardised images) -> None, so
    preprocessing falls back to standardising.
    """
    if X.dtype == np.uint8:
        return 255.0
    if X.dtype.kind == "b":
        return 1.0
    lo, hi = np.inf, -np.inf
    for _, chunk in row_chunks(X):
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    if lo < 0:
        return None
    if X.dtype.kind in "iu":
        return 255.0 if hi <= 255 else None
    return 1.0 if hi <= 1 else None


def mean_std(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and floored std in one chunked pass (Chan et al.'s merge, float64)."""
    n, mean, m2 = 0, 0.0, 0.0
    for _, chunk in row_chunks(X):
        c = np.asarray(chunk, dtype=np.float64).reshape(len(chunk), -1)
        n_c, mean_c = len(c), c.mean(axis=0)
        m2_c = ((c - mean_c) ** 2).sum(axis=0)
        delta = mean_c - mean
        total = n + n_c
        mean = mean + delta * (n_c / total)
        m2 = m2 + m2_c + delta**2 * (n * n_c / total)
        n = total
    means = np.asarray(mean)
    return means, floored_std(means, np.sqrt(m2 / n))  # population std (ddof=0), as scikit-learn's StandardScaler


def floored_std(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``std`` (d,) with the constant features' (std zero up to rounding) set to 1.

    They then map to x - mean, 0 on the training data, instead of dividing by ~0 and blowing up on
    any other value.
    """
    constant = std <= 1e-7 * np.abs(mean) + 1e-30
    return np.where(constant, 1.0, std)
