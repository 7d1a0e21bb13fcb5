"""Probabilistic PCA as a scikit-learn estimator (closed-form fit, exact likelihood)."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch
from sklearn.decomposition import PCA as _SklearnPCA

from ..errors import ConfigError, DataError
from ..models import PPCA, LatentModel
from ..runtime import seed_from
from ._base import LatentEstimator, check_fit_array, store_params
from .checks import check_int
from .conditioning import Unconditional
from .params import PCA_PARAMS

_CHUNK = 1024  # rows per step of a pass over the data: its float64 temporaries stay in the cache
# The largest |value| PCA fits: past it, float32 differences and squares of the data overflow, and
# a model file refuses preprocessing moments over 1e30 as corrupted (estimators/modelfile.py).
_MAX_ABS = 1e30


def centred_scatter(X: np.ndarray, low=None, high=None) -> tuple[np.ndarray, np.ndarray]:
    """The mean (d,) of the rows of ``X`` (n, ...), summed in float64, and their centred scatter (d, d).

    ``low``, ``high``: the per-feature minimum and maximum (d,), when the caller has them.

    The scatter sum_i (x_i - mean)(x_i - mean)^T is float32 products (the one pass that costs, no
    copy of the data) summed in float64 over chunks of rows: precise enough for the principal axes,
    whose float32 rounding moves the log-likelihood only to second order (it is stationary there).
    """
    flat = X.reshape(len(X), -1)
    mean = flat.mean(axis=0, dtype=np.float64)
    # Each feature is divided by its largest distance from the mean before the float32 product, so
    # that squares of values up to 1e30 neither overflow nor underflow beside much smaller features.
    low = flat.min(axis=0) if low is None else low
    high = flat.max(axis=0) if high is None else high
    reach = np.maximum(high - mean, mean - low)
    reach = np.where(reach > 1e-30, reach, 1.0)
    centre, inverse = mean.astype(np.float32), (1.0 / reach).astype(np.float32)
    scatter = np.zeros((flat.shape[1],) * 2)
    for start in range(0, len(flat), _CHUNK):
        centred = np.subtract(flat[start : start + _CHUNK], centre, dtype=np.float32)
        centred *= inverse
        scatter += centred.T @ centred
    return mean, scatter * np.outer(reach, reach)


def principal_moments(
    X: np.ndarray, k: int, offset=0.0, scale=1.0, moments: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The PPCA moments of the rows ``A = (X - offset) / scale`` of tall, non-float64 data ``X`` (n, d):
    mean (d,), top-``k`` axes (k, d), their variances (k,) and the mean variance of the other
    directions (the noise variance), all float64, in the units of ``A``.

    ``offset`` and ``scale`` (scalars or (d,)) are the preprocessing's per-feature affine map, so
    no model-space copy of the data is made; ``moments``: :func:`centred_scatter` of ``X``, when
    already computed. The axes come from the eigendecomposition of that float32 scatter; every
    number the likelihood reads (the variance along each axis as its Rayleigh quotient, the total
    variance) is then summed in float64 over chunks of rows. (float64 data go to scikit-learn's PCA
    on float64, which gives its numbers exactly.)
    """
    flat = X.reshape(len(X), -1)
    n, d = flat.shape
    mean_raw, scatter = moments if moments is not None else centred_scatter(flat)
    offset = np.broadcast_to(np.asarray(offset, dtype=np.float64), (d,))
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (d,))
    # only the top k eigenvectors (LAPACK's bisection driver): 3x faster than all of them at d = 784
    model_scatter = scatter / scale[:, None] / scale[None, :]
    _, vectors = scipy.linalg.eigh(model_scatter, subset_by_index=[d - k, d - 1], driver="evx")
    axes = vectors[:, ::-1].T.copy()  # (k, d), the largest eigenvalues first
    # scikit-learn's sign convention: each axis's largest-magnitude entry is positive
    axes *= np.sign(axes[np.arange(k), np.abs(axes).argmax(axis=1)])[:, None]
    raw_axes = axes / scale  # projections of raw rows onto these equal the model space's
    along, squares = np.zeros(k), np.zeros(d)
    centred = np.empty((min(_CHUNK, n), d))  # float64, reused: no page faults per chunk
    for start in range(0, n, _CHUNK):
        rows = flat[start : start + _CHUNK]
        chunk = centred[: len(rows)]
        np.subtract(rows, mean_raw, out=chunk)
        along += np.square(chunk @ raw_axes.T).sum(axis=0)
        squares += np.einsum("ij,ij->j", chunk, chunk)
    variances, total = along / (n - 1), float((squares / scale**2).sum()) / (n - 1)
    noise = max(total - float(variances.sum()), 0.0) / (d - k) if d > k else 0.0
    return (mean_raw - offset) / scale, axes, variances, noise


class PCA(LatentEstimator):
    __doc__ = PCA_PARAMS.docstring("Probabilistic PCA (Tipping & Bishop, 1999) with an exact log-likelihood.")
    params = PCA_PARAMS
    kind = "pca"
    seeds_sampling = True

    module_: PPCA

    def __init__(
        self,
        *,
        latent_dim: int = 2,
        preprocessing: str = "auto",
        pixel_max: float | None = None,
        dequantize: str = "auto",
        random_state=None,
    ):
        store_params(self, locals())

    def _build_module(self, sample_shape: tuple[int, ...], n_classes: int, binary: bool) -> LatentModel:
        n_features = math.prod(sample_shape)
        return PPCA(n_features, check_int("latent_dim", self.latent_dim, 1, n_features))

    def fit(self, X, y=None) -> PCA:
        """Fit the principal subspace and noise variance of ``X`` (n, ...); returns ``self``. ``y`` is ignored."""
        X, sample_shape = check_fit_array(X)
        self._check_params()
        flat = X.reshape(len(X), -1)
        low, high = flat.min(axis=0), flat.max(axis=0)
        largest = max(float(high.max()), -float(low.min()))
        if largest > _MAX_ABS:
            raise DataError(
                f"X holds a value of magnitude {largest:.3g}, over the {_MAX_ABS:g} PCA can fit (its float32 "
                "differences and squares overflow); rescale X, e.g. divide it by its largest value, and fit again"
            )
        seed = seed_from(self.random_state)  # also keys the dequantisation noise, as for the networks
        n, d = len(X), math.prod(X.shape[1:])
        if self.latent_dim > min(n, d):  # an int >= 1 already: _check_params
            # both the bound and the sizes behind it, in scikit-learn's words (n_features=1)
            raise ConfigError(
                f"latent_dim must be an integer in [1, {min(n, d)}], got {self.latent_dim!r}: PCA finds at most "
                f"min(n_samples, n_features) axes, and X has n_samples={n}, n_features={d}"
            )
        k = int(self.latent_dim)
        if X.dtype == np.float64 or n < d:  # scikit-learn's PCA on the float64 model-space values
            preprocessing = self._fit_preprocessing(X, seed)
            A = preprocessing.transform(X, np.float64).reshape(n, d)
            if not np.ptp(A, axis=0).any():
                raise DataError("every sample of X is the same: there is no variance for PCA to model")
            pca = _SklearnPCA(n_components=k, random_state=0).fit(A)
            mean, components, variances = pca.mean_, pca.components_, pca.explained_variance_
            noise = float(pca.noise_variance_)
        else:  # tall data of other dtypes: moments of the raw rows, mapped by the preprocessing's affine map
            moments = centred_scatter(X, low, high)
            spread = np.diag(moments[1])
            if not spread.any():
                raise DataError("every sample of X is the same: there is no variance for PCA to model")
            preprocessing = self._fit_preprocessing(X, seed, moments=(moments[0], np.sqrt(spread / n)))
            offset, scale = preprocessing.affine(d)
            mean, components, variances, noise = principal_moments(X, k, offset, scale, moments)
        if preprocessing.levels is not None:
            # Dequantised: x + u with u uniform over each bin adds the bin's variance 1 / (12 levels^2)
            # to every direction of the covariance of the bin centres A, and the PPCA fitted to these
            # moments is the exact maximiser of E_u log p(x + u) (the fitted density's dequantised bound).
            bin_variance = 1.0 / (12.0 * preprocessing.levels**2)
            variances, noise = variances + bin_variance, noise + bin_variance
        # Only a numerically rank-deficient X (noise variance at rounding level, or 0) gets a floor:
        # there the exact density would be infinite. Any resolvable noise variance is kept as is.
        noise = max(noise, float(variances[0]) * np.finfo(np.float64).eps * d)
        module = PPCA.from_moments(mean, components, variances, noise)
        self._set_fitted(module, preprocessing, sample_shape, Unconditional(), seed)
        self._fit_code_mixture(X, seed=0)
        return self

    @property
    def components_(self) -> np.ndarray:
        """Principal axes in model space, shape ``(latent_dim, n_features)``."""
        self._check_fitted()
        return self.module_.components.numpy().copy()

    @property
    def noise_variance_(self) -> float:
        """The isotropic noise variance sigma^2 of the PPCA model, in model-space units."""
        self._check_fitted()
        return float(self.module_.noise_variance)

    def score_samples(self, X, y=None, *, space: str = "data") -> np.ndarray:
        """Exact log-likelihood log p(x) of each sample, in nats (higher is better): ``(n,)`` float64.

        ``space="data"`` (the default): the density of ``X`` in its own units, the preprocessing's
        log-Jacobian included, so that with ``preprocessing="none"`` it equals scikit-learn's
        ``PCA.score_samples``; ``"model"``: the density of the preprocessed values. Computed in
        float64 for float64 data. Dequantised integer data (``preprocessing_.dequantize``): the
        density at a point drawn in each integer's bin (keyed on the example), which in ``"data"``
        units is a lower bound, in expectation, on the log-probability of the integers.
        """
        self._labels(y, 0)
        dtype = np.float64 if np.asarray(X).dtype == np.float64 else np.float32
        A = self.to_model_space(X, dtype, scored=True)
        with torch.no_grad():
            parts = [
                self.module_.exact_log_likelihood(torch.from_numpy(A[i : i + _CHUNK])) for i in range(0, len(A), _CHUNK)
            ]
        return self._in_units(torch.cat(parts).numpy(), space)

    def score(self, X, y=None) -> float:
        """Mean exact log-likelihood per example, in nats, in the data's units. ``y`` is ignored."""
        self._check_fitted()
        return float(np.mean(self.score_samples(X)))
