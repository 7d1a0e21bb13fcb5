"""Checks on arrays handed to estimators: one clear DataError per problem, never coercion."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def check_array(X, *, name: str = "X", n_features: int | None = None, fitted_by: str = "the model") -> np.ndarray:
    """Validate ``X`` as a finite 2-D numeric array of shape ``(n_samples, n_features)``.

    Returns a float32 array (a copy only when the dtype must change); the caller's array is
    never modified. ``n_features``, when given, is the width the model was fitted with.
    """
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} is not an array of numbers: {exc}") from None
    if arr.dtype == object or arr.dtype.kind in "USVcmM":
        raise DataError(
            f"{name} has dtype {arr.dtype}, not real numbers; convert it to float "
            "(non-numeric columns must be dropped or given as labels)"
        )
    if arr.dtype.kind == "b":
        arr = arr.astype(np.float32)
    if arr.ndim != 2:
        raise DataError(
            f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}; "
            "reshape it, e.g. X.reshape(len(X), -1)"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {arr.shape}); pass at least one sample with one feature")
    if n_features is not None and arr.shape[1] != n_features:
        raise DataError(
            f"{name} has {arr.shape[1]} features, but {fitted_by} was fitted with {n_features}"
        )
    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        row, col = bad[0]
        raise DataError(
            f"{name} contains {len(bad)} NaN or infinite value(s), the first at row {row}, column {col}; "
            "remove or impute them before fitting"
        )
    return arr
