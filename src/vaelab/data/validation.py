"""Checks on arrays handed to estimators: one clear DataError per problem, never coercion."""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError
from ._arrays import as_samples, check_finite, check_numeric
from .images import ImageFolder


def check_array(
    X,
    *,
    name: str = "X",
    sample_shape: tuple[int, ...] | None = None,
    fitted_by: str = "the model",
) -> np.ndarray:
    """Validate ``X`` as finite real samples: ``(n, d)`` tables or ``(n, C, H, W)`` images.

    ``(n, H, W)`` is read as grey images. The dtype is kept and nothing is copied unless needed,
    so the caller's array is never modified. ``sample_shape``, when given, is the shape the model
    was fitted with; a flattened ``(n, prod(sample_shape))`` array is accepted for it too.
    Returns ``X`` shaped ``(n, *sample_shape)``; a lazy `ImageFolder` is returned as it is.
    """
    if not isinstance(X, ImageFolder):  # np.asarray would decode every image of a folder
        try:
            X = np.asarray(X)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{name} is not an array of numbers: {exc}") from None
    check_numeric(X, name)
    if X.ndim < 2:
        raise DataError(
            f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}; reshape it, e.g. X.reshape(len(X), -1)"
        )
    X, shape = as_samples(X, name)
    if sample_shape is not None and shape != tuple(sample_shape):
        n_expected = math.prod(sample_shape)
        if shape == (n_expected,):
            X = X.reshape(len(X), *sample_shape)
        else:
            n_got = math.prod(shape)
            detail = f"{n_got} features" if len(shape) == 1 else f"samples of shape {shape}"
            raise DataError(
                f"{name} has {detail}, but {fitted_by} was fitted with {n_expected}"
                + (f" (samples of shape {tuple(sample_shape)})" if len(sample_shape) > 1 else "")
            )
    check_finite(X, name)
    return X
