"""A small reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al., 1998).

An IDX file is: two zero bytes, a dtype code, the number of dimensions ``k``, then ``k``
big-endian uint32 sizes, then the values in C order, big-endian. Files may be gzipped.
Uncompressed files are memory-mapped read-only; gzipped ones are decompressed into memory, as a
stream that stops at the size the header claims (checked against the memory budget first), so a
small file that inflates to gigabytes is refused after reading no more than its claim.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._arrays import check_claimed_bytes, describe_bytes

# Labels are 1-D, tables 2-D, grey images 3-D, (n, C, H, W) images 4-D: nothing vaelab reads has more.
MAX_DIMENSIONS = 4
_GZIP_BLOCK = 1 << 20  # decompressed bytes per read

# The dtype codes of the format (http://yann.lecun.com/exdb/mnist/); values are big-endian.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _parse_header(head: bytes, where: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (dtype, shape, header length) from the first bytes of an IDX file."""
    if len(head) < 4:
        raise DataError(f"{where}: too short to be an IDX file ({len(head)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", head[:4])
    if zero != 0 or code not in IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{where}: not an IDX file (magic number 0x{head[:4].hex()}; expected 0x0000, "
            f"a dtype code in {sorted(hex(c) for c in IDX_DTYPES)} and a dimension count)"
        )
    if ndim > MAX_DIMENSIONS:
        raise DataError(
            f"{where}: IDX header claims {ndim} dimensions; vaelab reads 1 to {MAX_DIMENSIONS} "
            "(labels, tables, images): the file is corrupted or not data for vaelab"
        )
    n_head = 4 + 4 * ndim
    if len(head) < n_head:
        raise DataError(f"{where}: IDX header is truncated ({len(head)} of {n_head} bytes)")
    shape = struct.unpack(f">{ndim}I", head[4:n_head])
    return IDX_DTYPES[code], tuple(int(s) for s in shape), n_head


def _check_size(n_data: int, dtype: np.dtype, shape: tuple[int, ...], where: str) -> None:
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no wrap-around on hostile headers
    if n_data != expected:
        what = "truncated" if n_data < expected else "corrupted (extra bytes at the end)"
        raise DataError(
            f"{where}: IDX file is {what}: header says shape {shape} of {dtype.name} "
            f"({expected} bytes of data), but the file holds {n_data}; get a fresh copy"
        )


def read_idx(path: str | os.PathLike, where: str | None = None) -> np.ndarray:
    """Read an IDX file (optionally ``.gz``) as a numpy array, read-only.

    Parameters
    ----------
    path : path-like
        The file; a name ending in ``.gz`` is decompressed with gzip.
    where : str, optional
        The name used in error messages (default: the path).

    Returns
    -------
    ndarray of the shape stored in the header
        uint8 for image and label files. Uncompressed files come back memory-mapped.
    """
    path = Path(path)
    where = where or str(path)
    if path.name.endswith(".gz"):
        try:
            return _read_gzipped(path, where)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise DataError(f"{where}: gzip data is corrupted or truncated ({exc}); get a fresh copy") from exc
    with open(path, "rb") as f:
        head = f.read(4 + 4 * MAX_DIMENSIONS)
    dtype, shape, n_head = _parse_header(head, where)
    _check_size(path.stat().st_size - n_head, dtype, shape, where)
    if 0 in shape:
        return _empty(shape, dtype, where)
    return np.memmap(path, dtype=dtype, mode="r", offset=n_head, shape=shape)


def _read_gzipped(path: Path, where: str) -> np.ndarray:
    """Decompress a gzipped IDX file into memory, reading no more than its header claims (+1 byte)."""
    with gzip.open(path, "rb") as f:
        head = f.read(4)
        if len(head) == 4 and head[:2] == b"\0\0":
            head += f.read(4 * head[3])
        dtype, shape, n_head = _parse_header(head, where)
        claimed = math.prod(shape) * dtype.itemsize  # Python ints: a hostile header cannot wrap
        check_claimed_bytes(
            claimed,
            where,
            f"IDX data of shape {shape}",
            "decompress it (gunzip) so that vaelab memory-maps it instead",
        )
        out = np.empty(claimed, dtype=np.uint8)
        # ndarray has the buffer protocol; numpy's stubs declare it (__buffer__) only for Python >= 3.12.
        view, filled = memoryview(out), 0  # type: ignore[arg-type]
        while filled < claimed:  # readinto: the decompressed bytes land in `out`, never copied
            n = f.readinto(view[filled : filled + _GZIP_BLOCK])
            if n == 0:
                break
            filled += n
        extra = len(f.read(1)) if filled == claimed else 0
    if filled < claimed or extra:
        held = describe_bytes(filled) if filled < claimed else f"more than {describe_bytes(claimed)}"
        raise DataError(
            f"{where}: gzipped IDX file {'is truncated' if filled < claimed else 'inflates beyond its header'}: "
            f"header says shape {shape} of {dtype.name} ({describe_bytes(claimed)} of data), but it "
            f"decompresses to {held}; get a fresh copy"
        )
    if claimed == 0:
        return _empty(shape, dtype, where)
    values = out.view(dtype).reshape(shape)
    values.flags.writeable = False  # read-only, as the memory-mapped arrays of plain files are
    return values


def _empty(shape: tuple[int, ...], dtype: np.dtype, where: str) -> np.ndarray:
    """An array with no values (mmap cannot map zero bytes); shapes too large to describe are refused."""
    try:
        return np.zeros(shape, dtype=dtype)
    except (ValueError, MemoryError):
        raise DataError(f"{where}: IDX header gives an impossible shape {shape}; the file is corrupted") from None
