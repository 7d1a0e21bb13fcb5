"""scikit-learn's conventions for data in and out of every estimator, in one place.

* **Inputs** (:func:`check_fit_input`, :func:`check_input`): each refusal says what is wrong in
  vaelab's words *and* in the words scikit-learn's estimator checks look for ("Reshape your
  data", "Complex data not supported", "sparse", "n_samples=1", "0 feature(s) (shape=...)",
  "X has 5 features, but PCA is expecting 4 features as input"), so both users and
  ``sklearn.utils.estimator_checks`` read them. The array checks themselves (NaN, range, image
  layout) are :func:`vaelab.data.validation.check_array`'s; these run first.
* **Shapes**: a sample shape is kept as the user gave it (``(d,)``, ``(H, W)`` or ``(C, H, W)``);
  the torch modules see ``(C, H, W)`` (:func:`model_shape`).
* **Dtypes**: networks compute in float32 (PCA in float64); what comes back is float64 when the
  input was float64 and float32 otherwise (:func:`output_dtype`). Returning the input's precision
  costs one cast and keeps ``X - m.reconstruct(X)`` and downstream float64 pipelines in float64;
  the estimators' tags declare it (``preserves_dtype``).

Nothing here uses scikit-learn's private helpers (``_validate_data`` and friends move between
versions); only public API: ``scipy.sparse.issparse``, ``BaseEstimator.__sklearn_tags__``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy import sparse

from ..data._arrays import check_numeric
from ..data.images import ImageFolder
from ..data.validation import check_array
from ..errors import DataError

if TYPE_CHECKING:
    from ..models import LatentModel
    from .conditioning import Conditioning


class NonNumericDataError(DataError, TypeError):
    """Data holding Python objects that are not numbers: a DataError, and the TypeError numpy raises."""


def model_shape(sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The sample shape a module is built for: grey images ``(H, W)`` become ``(1, H, W)``."""
    sample_shape = tuple(int(s) for s in sample_shape)
    return (1, *sample_shape) if len(sample_shape) == 2 else sample_shape


def output_dtype(X) -> np.dtype:
    """float64 for float64 input, float32 for anything else (the precision the networks compute in)."""
    return np.dtype(np.float64) if getattr(X, "dtype", None) == np.float64 else np.dtype(np.float32)


def _as_dense_real(X, name: str):
    """``X`` as a numpy array of real numbers (or the lazy ImageFolder it is), refusing what cannot be one."""
    if isinstance(X, ImageFolder):  # lazy, uint8 by construction: check_array handles it
        return X
    if sparse.issparse(X):
        raise DataError(
            f"{name} is a sparse matrix ({type(X).__name__}): sparse input is not supported; "
            f"pass a dense array ({name}.toarray()) if it fits in memory"
        )
    try:
        X = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} is not an array of numbers: {exc}") from None
    if X.dtype.kind == "c":
        raise DataError(
            f"Complex data not supported: {name} holds complex numbers (dtype {X.dtype}); "
            "vaelab needs real numbers (take .real or np.abs if that is what you mean)"
        )
    if X.dtype.kind == "O":
        # A table of Python numbers (e.g. from a mixed-type frame) is read as numbers, as
        # scikit-learn does; anything else is refused with numpy's own reason kept.
        try:
            X = X.astype(np.float64)
        except TypeError as exc:
            raise NonNumericDataError(
                f"{name} holds values that are not numbers: {exc}; vaelab needs real numbers"
            ) from None
        except ValueError as exc:
            raise DataError(f"{name} holds values that are not numbers: {exc}; vaelab needs real numbers") from None
    check_numeric(X, name)  # text, dates...: what the values are, before any count of them
    if X.ndim < 2:
        raise DataError(
            f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}. Reshape your data: "
            f"{name}.reshape(-1, 1) if it has a single feature, {name}.reshape(1, -1) if it is a single sample"
        )
    if X.shape[0] == 0:
        raise DataError(
            f"{name} has 0 sample(s) (shape={X.shape}) while a minimum of 1 is required: it contains no samples"
        )
    if math.prod(X.shape[1:]) == 0:
        raise DataError(
            f"{name} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is required: each sample is empty"
        )
    return X


def check_fit_input(X, name: str = "X") -> tuple[np.ndarray, tuple[int, ...]]:
    """``X`` validated for fitting, and the sample shape as the user gave it.

    Returns
    -------
    X : ndarray of shape (n_samples, *model_shape)
        Finite real samples, at least two; grey images ``(n, H, W)`` come back as ``(n, 1, H, W)``.
    sample_shape : tuple of int
        ``X.shape[1:]`` as given: ``(d,)``, ``(H, W)`` or ``(C, H, W)``.
    """
    X = _as_dense_real(X, name)
    if len(X) < 2:
        raise DataError(
            f"fitting needs at least 2 samples, got n_samples={len(X)}; a latent space cannot be learned from one"
        )
    sample_shape = tuple(int(s) for s in X.shape[1:])
    return check_array(X, name=name), sample_shape


def check_input(X, sample_shape: tuple[int, ...], owner: str, name: str = "X", what: str = "") -> np.ndarray:
    """``X`` validated against a fitted shape: ``(n, *model_shape(sample_shape))``, finite and real.

    A flattened ``(n, prod(sample_shape))`` array is accepted too. ``owner`` names the estimator
    in the messages; ``what`` says what the count is, e.g. ``" (its latent_dim)"``.
    """
    X = _as_dense_real(X, name)
    n_expected, n_got = math.prod(sample_shape), math.prod(X.shape[1:])
    if n_got != n_expected:
        got = f"{n_got} features" if X.ndim == 2 else f"{n_got} features (samples of shape {tuple(X.shape[1:])})"
        fitted = f" (samples of shape {tuple(sample_shape)})" if len(sample_shape) > 1 else what
        raise DataError(f"{name} has {got}, but {owner} is expecting {n_expected} features as input{fitted}")
    return check_array(X, name=name, sample_shape=model_shape(sample_shape), fitted_by=owner)


def in_shape_of(A: np.ndarray, X) -> np.ndarray:
    """``A`` (n, ...) reshaped to the per-sample shape of ``X`` when the sizes agree (else as it is)."""
    shape = tuple(getattr(X, "shape", None) or np.shape(X))
    if len(shape) >= 2 and math.prod(shape[1:]) == math.prod(A.shape[1:]):
        return A.reshape(len(A), *shape[1:])
    return A


class SklearnConventions:
    """Mixin: the tags and the output feature names scikit-learn asks an estimator for.

    Mixed into :class:`~vaelab.estimators._base.LatentEstimator` before scikit-learn's
    ``BaseEstimator``, which provides ``__sklearn_tags__``; the estimator provides what is
    declared here.
    """

    conditioning: ClassVar[type[Conditioning]]
    n_features_in_: int
    module_: LatentModel

    def _check_fitted(self) -> None:
        raise NotImplementedError

    def __sklearn_tags__(self):
        # scikit-learn ships no type information, and a mixin's super() is object to mypy:
        # at run time it is BaseEstimator's, next in the estimator's MRO
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        # see the module docstring: the input's float precision comes back
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = bool(self.conditioning.conditional)
        return tags

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the code columns ``transform`` returns: ``["vae0", "vae1", ...]`` (object array, ``(latent_dim,)``).

        ``input_features``, when given, must name the ``n_features_in_`` input columns; they do
        not enter the names (every code mixes all inputs).
        """
        self._check_fitted()
        if input_features is not None and len(input_features) != self.n_features_in_:
            raise DataError(
                f"input_features has {len(input_features)} names, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self.module_.latent_dim)], dtype=object)
