"""Readers for NumPy's files: a ``.npy`` memory-mapped read-only, a ``.npz`` archive's data and label arrays.

Every header is checked against the file's size and the memory budget before anything is read, so
a truncated file or a tiny archive claiming terabytes is refused with a DataError, not discovered
by the allocator.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ._arrays import check_claimed_bytes, check_numeric, describe_bytes

_LABEL_KEYS = ("y", "labels")  # the label array of an .npz, when the caller names none


def read_npy(path: Path, where: str) -> np.ndarray:
    """Memory-map a .npy file read-only, checking its header and size first."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if read_header is not None:
                shape, _, dtype = read_header(f)
                check_numeric(np.empty(0, dtype=dtype), where)
                expected = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                size = path.stat().st_size
                if size < expected:
                    raise DataError(
                        f"{where}: .npy file is truncated: header says shape {shape} of {dtype} "
                        f"({expected} bytes in all) but the file has {size} bytes; save it again"
                    )
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{where}: not a valid .npy file ({exc}); save it with numpy.save") from exc


def _check_npz_members(path: Path, where: str) -> None:
    """Check every member's .npy header against its stored size and the memory budget.

    ``np.load`` allocates what a member's header claims before reading it, so a tiny archive can
    claim terabytes; each claim is checked here first, from the headers alone.
    """
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise DataError(
                    f"{where}: member {name!r} is not a .npy array (numpy.savez writes only .npy "
                    "members); rebuild the archive with numpy.savez, or save the data as .npy"
                )
            with archive.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    read_header = {
                        (1, 0): np.lib.format.read_array_header_1_0,
                        (2, 0): np.lib.format.read_array_header_2_0,
                    }.get(version)
                    if read_header is None:
                        raise ValueError(f"unsupported .npy format version {version}")
                    shape, _, dtype = read_header(f)
                except (ValueError, EOFError) as exc:
                    raise DataError(
                        f"{where}: member {name!r} is not a valid .npy array ({exc}); save it with numpy.savez"
                    ) from exc
                n_head = f.tell()
            if dtype.hasobject:
                continue  # refused by allow_pickle=False when read, before any allocation
            claimed = math.prod(shape) * dtype.itemsize  # Python ints: a hostile shape cannot wrap
            if claimed != info.file_size - n_head:
                raise DataError(
                    f"{where}: member {name!r} claims shape {shape} of {dtype} "
                    f"({describe_bytes(claimed)}) but holds {describe_bytes(max(0, info.file_size - n_head))} "
                    "of data; the archive is corrupted: save it again with numpy.savez"
                )
            check_claimed_bytes(
                claimed,
                where,
                f"member {name!r} of shape {shape}",
                "save that array as .npy, which vaelab memory-maps instead of reading",
            )


def read_npz(path: Path, key: str | None, label_key: str | None, where: str):
    """Read the data array (and labels, when present) from a .npz archive."""
    try:
        _check_npz_members(path, where)
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            if label_key is None:
                label_key = next((k for k in _LABEL_KEYS if k in keys), None)
            elif label_key not in keys:
                raise ConfigError(f"{where}: no array named {label_key!r} for the labels; it holds {keys}")
            if key is None:
                data_keys = [k for k in keys if k != label_key]
                if len(data_keys) != 1:
                    what = "no data array" if not data_keys else f"arrays {', '.join(data_keys)}"
                    raise DataError(
                        f"{where}: holds {what}; pass key=NAME (--key NAME) to pick the data "
                        f"(keys: {', '.join(keys) or 'none'})"
                    )
                key = data_keys[0]
            elif key not in keys:
                raise ConfigError(f"{where}: no array named {key!r}; it holds {', '.join(keys)}")
            X = npz[key]
            y = npz[label_key] if label_key is not None else None
    except (ValueError, EOFError, zipfile.BadZipFile, OSError) as exc:
        if isinstance(exc, (DataError, ConfigError)):
            raise
        raise DataError(f"{where}: not a valid .npz file ({exc}); save it with numpy.savez") from exc
    return X, y
