"""Probabilistic PCA as a scikit-learn estimator (closed-form fit, exact likelihood)."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.decomposition import PCA as _SklearnPCA

from ..errors import ConfigError, DataError
from ..models import PPCA, LatentModel
from ..runtime import seed_from
from ._base import LatentEstimator, check_fit_array, store_params
from .checks import check_int
from .conditioning import Unconditional
from .params import PCA_PARAMS

_CHUNK = 4096  # rows per pass of the exact likelihood
# The largest |value| PCA fits: past it, float32 differences and squares of the data overflow, and
# a model file refuses preprocessing moments over 1e30 as corrupted (estimators/modelfile.py).
_MAX_ABS = 1e30


def principal_moments(A: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The PPCA moments of rows ``A`` (n, d): mean (d,), top-``k`` axes (k, d), their variances (k,)
    and the mean variance of the other directions (the noise variance), all float64.

    float64 data, or fewer rows than features: scikit-learn's PCA on float64 (its numbers exactly).
    Taller float32 data (images): the axes come from the eigendecomposition of the covariance
    summed by float32 matrix products, the one pass that costs, and every number the likelihood
    reads (the mean, the variance along each axis as its Rayleigh quotient, the total variance) is
    summed in float64 over chunks of rows, so no float64 copy of the data is made. The
    log-likelihood is stationary at the maximum-likelihood axes, so their float32 rounding moves it
    only to second order.
    """
    n, d = A.shape
    if A.dtype == np.float64 or n < d:
        pca = _SklearnPCA(n_components=k, random_state=0).fit(A.astype(np.float64))
        return pca.mean_, pca.components_, pca.explained_variance_, float(pca.noise_variance_)
    mean = A.mean(axis=0, dtype=np.float64)
    scatter, total = np.zeros((d, d)), 0.0
    for start in range(0, n, _CHUNK):
        centred = A[start : start + _CHUNK] - mean  # float64 (chunk, d)
        total += float(np.square(centred).sum())
        centred32 = centred.astype(np.float32)
        scatter += centred32.T @ centred32
    _, vectors = np.linalg.eigh(scatter)
    axes = vectors[:, ::-1][:, :k].T.copy()  # (k, d), the largest eigenvalues first
    # scikit-learn's sign convention: each axis's largest-magnitude entry is positive
    axes *= np.sign(axes[np.arange(k), np.abs(axes).argmax(axis=1)])[:, None]
    along, centre = np.zeros(k), mean @ axes.T
    for start in range(0, n, _CHUNK):  # float32 rows times float64 axes: a float64 product
        along += np.square(A[start : start + _CHUNK] @ axes.T - centre).sum(axis=0)
    variances, total = along / (n - 1), total / (n - 1)
    noise = max(total - float(variances.sum()), 0.0) / (d - k) if d > k else 0.0
    return mean, axes, variances, noise


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
        largest = max(float(np.max(X)), -float(np.min(X)))
        if largest > _MAX_ABS:
            raise DataError(
                f"X holds a value of magnitude {largest:.3g}, over the {_MAX_ABS:g} PCA can fit (its float32 "
                "differences and squares overflow); rescale X, e.g. divide it by its largest value, and fit again"
            )
        seed = seed_from(self.random_state)  # also keys the dequantisation noise, as for the networks
        preprocessing = self._fit_preprocessing(X, seed)
        A = preprocessing.transform(X, np.float64 if X.dtype == np.float64 else np.float32).reshape(len(X), -1)
        limit = min(A.shape)
        if self.latent_dim > limit:  # an int >= 1 already: _check_params
            # both the bound and the sizes behind it, in scikit-learn's words (n_features=1)
            raise ConfigError(
                f"latent_dim must be an integer in [1, {limit}], got {self.latent_dim!r}: PCA finds at most "
                f"min(n_samples, n_features) axes, and X has n_samples={A.shape[0]}, n_features={A.shape[1]}"
            )
        k = int(self.latent_dim)
        if not np.ptp(A, axis=0).any():
            raise DataError("every sample of X is the same: there is no variance for PCA to model")
        mean, components, variances, noise = principal_moments(A, k)
        if preprocessing.levels is not None:
            # Dequantised: x + u with u uniform over each bin adds the bin's variance 1 / (12 levels^2)
            # to every direction of the covariance of the bin centres A, and the PPCA fitted to these
            # moments is the exact maximiser of E_u log p(x + u) (the fitted density's dequantised bound).
            bin_variance = 1.0 / (12.0 * preprocessing.levels**2)
            variances, noise = variances + bin_variance, noise + bin_variance
        # Only a numerically rank-deficient X (noise variance at rounding level, or 0) gets a floor:
        # there the exact density would be infinite. Any resolvable noise variance is kept as is.
        noise = max(noise, float(variances[0]) * np.finfo(np.float64).eps * A.shape[1])
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
