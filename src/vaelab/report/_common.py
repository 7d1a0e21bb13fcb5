"""Shared pieces of the report's figures: the fixed width, titles, and turning arrays into rows."""

from __future__ import annotations

import textwrap

import numpy as np

from ..errors import DataError
from ..models.priors import MixturePrior, VampPrior

FIGURE_WIDTH = 8.0  # inches; every figure has this width, its height follows its content
_TITLE_CHARS = 90  # characters per title line that fit FIGURE_WIDTH at the default font size


def heading(name: str | None, what: str, detail: str = "") -> str:
    """A figure title: ``"name: what"``, then ``detail`` wrapped to fit the figure's width."""
    title = f"{name}: {what}" if name else what[:1].upper() + what[1:]
    lines = [textwrap.fill(part, _TITLE_CHARS) for part in detail.split("\n") if part]
    return "\n".join([title, *lines])


def latent_dim(model) -> int:
    module = getattr(model, "module_", None)
    if module is None:
        raise DataError(f"{type(model).__name__} is not fitted; fit it before drawing its figures")
    return int(module.latent_dim)


STANDARD_NORMAL = "N(0, I)"


def prior_name(model) -> str:
    """The prior p(z) that ``model.sample`` draws codes from, in words: "N(0, I)" or the learned one it has."""
    latent_dim(model)  # fitted, with a module
    prior = model.module_.prior_module
    if isinstance(prior, VampPrior):
        return f"a VampPrior ({len(prior.pseudo_inputs)} learned pseudo-inputs)"
    if isinstance(prior, MixturePrior):
        return f"a learned mixture of {len(prior.logits)} Gaussians"
    return STANDARD_NORMAL


def as_rows(A, name: str = "X") -> np.ndarray:
    """Any ``(n, ...)`` array of numbers as float32 rows ``(n, n_features)`` for drawing."""
    A = np.asarray(A)
    if A.ndim < 2 or len(A) == 0 or A.dtype.kind not in "biuf":
        raise DataError(
            f"{name} must be a non-empty numeric array (n_samples, ...), got shape {A.shape}, dtype {A.dtype}"
        )
    return A.reshape(len(A), -1).astype(np.float32, copy=False)


def data_and_rows(model, X) -> tuple[np.ndarray, np.ndarray]:
    """``X`` shaped as the model was fitted (for its own methods) and as flat rows (for drawing)."""
    X = np.asarray(X)
    rows = as_rows(X)
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and rows.shape[1] != expected:
        raise DataError(f"X has {rows.shape[1]} features, but {type(model).__name__} was fitted with {expected}")
    fitted_shape = getattr(model, "sample_shape_", None)  # flat rows or (C, H, W), as given to fit
    if fitted_shape is not None and int(np.prod(fitted_shape)) == rows.shape[1]:
        X = X.reshape(len(X), *fitted_shape)
    return X, rows
