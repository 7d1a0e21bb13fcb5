"""The choices a user makes about preprocessing, and the rules that settle ``"auto"`` ones.

`auto_kind` picks the kind; `scaled_integers` checks scaled values against their range and says
whether they are dequantised (see :mod:`vaelab.data.preprocessing`).
"""

from __future__ import annotations

import math
import numbers
from typing import Literal, TypeGuard

import numpy as np

from ..errors import DataError
from ._arrays import row_chunks

KINDS = ("none", "scale", "standardize")  # what a fitted Preprocessing is (and to_dict stores)
CHOICES = ("auto", *KINDS)  # what a user may ask `fit` for
BINARIZE = ("none", "threshold", "static", "dynamic")
Binarize = Literal["none", "threshold", "static", "dynamic"]  # BINARIZE, as a type
DEQUANTIZE = ("auto", "uniform", "none")  # what a user may ask `fit` for; a fitted one stores a bool
Dequantize = Literal["auto", "uniform", "none"]


def auto_kind(sample_shape: tuple[int, ...], dtype, pixel_max: float | None) -> Literal["scale", "standardize"]:
    """The one rule behind ``preprocessing="auto"``: ``"scale"`` or ``"standardize"``.

    ``"scale"`` when the data are image-like, that is images ``(C, H, W)`` or any uint8 array,
    and their full-scale value ``pixel_max`` is known (given, or told from the values by
    `vaelab.data._arrays.image_pixel_max`): values in [0, pixel_max] map to [0, 1] without
    distorting them. Everything else (tables, images of unknown range) is standardised.

    Parameters
    ----------
    sample_shape : tuple of int
        The shape of one sample: ``(n_features,)`` or ``(C, H, W)``.
    dtype : numpy dtype
    pixel_max : float or None
    """
    image_like = len(sample_shape) == 3 or np.dtype(dtype) == np.uint8
    return "scale" if image_like and pixel_max is not None else "standardize"


def is_real(v) -> TypeGuard[float]:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def is_integer(v) -> bool:
    return is_real(v) and float(v).is_integer() and v >= 1


def scaled_integers(X, pixel_max: float, binarize: Binarize, dequantize: Dequantize) -> bool:
    """Check that ``X`` lies in [0, pixel_max] and say whether ``"scale"`` dequantises it.

    ``dequantize="uniform"`` needs integers 0..pixel_max (an integer) and no binarisation;
    ``"auto"`` dequantises exactly those with pixel_max >= 2 (grey levels, e.g. 8-bit images).
    One pass over the data, none for an unsigned dtype whose every value is in range (uint8, 255).
    """
    integers = X.dtype.kind in "ub"
    if not (X.dtype.kind == "u" and np.iinfo(X.dtype).max <= pixel_max):
        lo, hi, integers = np.inf, -np.inf, dequantize != "none" and binarize == "none"
        for _, chunk in row_chunks(X):
            lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
            integers = integers and bool(np.array_equal(chunk, np.floor(chunk)))
        if lo < 0 or hi > pixel_max:
            raise DataError(
                f"Preprocessing.fit: values span [{lo:g}, {hi:g}] but preprocessing='scale' maps "
                f"[0, {pixel_max:g}] to [0, 1]; pass the right pixel_max or use preprocessing='standardize'"
            )
    if dequantize == "uniform" and not (integers and is_integer(pixel_max) and binarize == "none"):
        raise DataError(
            "dequantize='uniform' treats integers 0..pixel_max as bins, but "
            + (f"binarize={binarize!r} " if binarize != "none" else "")
            + ("the values are not all integers" if not integers else f"pixel_max={pixel_max:g} is not")
            + "; pass dequantize='none'"
        )
    grey_levels = integers and binarize == "none" and is_integer(pixel_max) and pixel_max >= 2
    return dequantize == "uniform" or (dequantize == "auto" and grey_levels)
