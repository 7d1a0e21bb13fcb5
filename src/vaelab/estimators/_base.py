"""Shared estimator machinery: parameter checks and the post-fit API over a torch module."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ..data._arrays import image_pixel_max
from ..data.preprocessing import Preprocessing
from ..data.rows import read_rows
from ..data.validation import check_array
from ..errors import (
    ConfigError,
    DataError,
    NotFittedError,
    TrainingError,
)
from ..models import LatentModel
from ..models import CODE_SAMPLE_SIZE
from ..train import seed_from, seeded

_CHUNK = 4096  # rows per forward pass when encoding/decoding whole arrays


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
        high is not None and value > high
    ):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{name} must be an integer {allowed}, got {value!r}")
    return int(value)


def _check_positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
        np.isfinite(value) and value > 0
    ):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _check_fit_array(X) -> np.ndarray:
    X = check_array(X)
    if len(X) < 2:
        raise DataError(f"fitting needs at least 2 samples, got {len(X)}; a latent space cannot be learned from one")
    return X


class _LatentEstimator(TransformerMixin, BaseEstimator):
    """Shared post-fit API over ``module_`` and ``preprocessing_``; subclasses define ``fit``."""

    module_: LatentModel
    preprocessing_: Preprocessing
    sample_shape_: tuple[int, ...]  # (n_features,) for tables, (C, H, W) for images

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) before using it")

    def _fit_preprocessing(self, X: np.ndarray, seed: int, binarize: str = "none") -> Preprocessing:
        pixel_max = self.pixel_max
        if self.preprocessing == "scale" and pixel_max is None:
            pixel_max = image_pixel_max(X)
        return Preprocessing.fit(X, kind=self.preprocessing, binarize=binarize, pixel_max=pixel_max, seed=seed)

    def _set_fitted(self, module: LatentModel, preprocessing: Preprocessing, sample_shape) -> None:
        self.module_ = module
        self.preprocessing_ = preprocessing
        self.sample_shape_ = tuple(sample_shape)
        self.n_features_in_ = math.prod(self.sample_shape_)

    @property
    def device_(self) -> torch.device:
        return next(self.module_.buffers(), next(self.module_.parameters(), None)).device

    def _model_space(self, X) -> np.ndarray:
        """Raw samples -> the module's input, float32 of shape ``(n, n_features_in_)``."""
        self._check_fitted()
        X = check_array(X, sample_shape=self.sample_shape_, fitted_by=type(self).__name__)
        return self.preprocessing_.transform(X).reshape(len(X), -1)

    def _user_space(self, A: np.ndarray) -> np.ndarray:
        """Model-space rows -> the user's units and sample shape."""
        return self.preprocessing_.inverse_transform(A).reshape(len(A), *self.sample_shape_)

    @torch.no_grad()
    def _map(self, fn, A: np.ndarray, *per_row: np.ndarray) -> np.ndarray:
        """``fn`` over chunks of rows of ``A`` (and of the arrays ``per_row`` beside it), concatenated."""
        device = self.device_
        parts = [
            fn(*(torch.from_numpy(a[i : i + _CHUNK]).to(device) for a in (A, *per_row))).float().cpu()
            for i in range(0, len(A), _CHUNK)
        ]
        return torch.cat(parts).numpy()

    def transform(self, X) -> np.ndarray:
        """Codes of ``X``: ``(n, *sample_shape) -> (n, latent_dim)``, float32.

        PCA: argmax_z p(x|z); autoencoder: the encoder output; VAE: the posterior mean.
        """
        A = self._model_space(X)
        return self._map(self.module_.embed, A)

    def inverse_transform(self, Z) -> np.ndarray:
        """Decoder means of codes ``Z`` (n, latent_dim), in the data's units: ``(n, *sample_shape)``."""
        return self._decode_means(Z)

    def _decode_means(self, Z, *per_row: np.ndarray) -> np.ndarray:
        """Decoder means of codes ``Z`` given per-row arrays (e.g. class indices), in the data's units."""
        self._check_fitted()
        Z = check_array(Z, name="Z", sample_shape=(self.module_.latent_dim,), fitted_by=f"{type(self).__name__}'s latent space")
        means = self._map(lambda z, *extra: self.module_.decode(z, *extra).mean, Z.astype(np.float32), *per_row)
        return self._user_space(means)

    def reconstruct(self, X) -> np.ndarray:
        """``inverse_transform(transform(X))``: shape ``(n, *sample_shape)``."""
        return self.inverse_transform(self.transform(X))

    def _fit_code_mixture(self, X: np.ndarray, seed: int, y: np.ndarray | None = None) -> np.ndarray:
        """Keep the codes of a bounded training subsample for the aggregate-posterior sampler.

        ``y``: the training labels of a conditional model. Returns those codes, ``(m, latent_dim)``
        float64, for other post-fit checks to reuse.
        """
        rows = np.sort(np.random.default_rng(seed).permutation(len(X))[:CODE_SAMPLE_SIZE])
        sample = read_rows(X, rows)  # from disk for memory-mapped X, without keeping its pages resident
        codes = (self.transform(sample) if y is None else self.transform(sample, y[rows])).astype(np.float64)
        if not np.isfinite(codes).all():
            raise TrainingError(
                "the fitted model encodes some training data to NaN or infinite codes: training diverged; "
                "lower lr, scale the data, or use grad_clip"
            )
        self.module_.set_code_sample(torch.from_numpy(codes))
        return codes

    def sample(self, n_samples: int, random_state=None, sampler: str = "prior") -> np.ndarray:
        """Decoder means of ``n_samples`` sampled codes: ``(n_samples, *sample_shape)``, in the data's units.

        ``sampler="prior"`` draws codes from the model's prior; ``"gmm"`` from a 10-component Gaussian
        mixture fitted to the training codes (the aggregate posterior; fair to an autoencoder too).
        """
        return self.inverse_transform(self._sample_codes(n_samples, random_state, sampler))

    def _sample_codes(self, n_samples: int, random_state, sampler: str) -> np.ndarray:
        """``n_samples`` codes ``(n_samples, latent_dim)`` from the prior or the code mixture."""
        self._check_fitted()
        n_samples = _check_int("n_samples", n_samples, 1)
        seed = seed_from(random_state)
        if sampler not in ("prior", "gmm"):
            raise ConfigError(f"unknown sampler {sampler!r}; choose 'prior' or 'gmm'")
        with seeded(seed, self.device_), torch.no_grad():
            distribution = self.module_.prior() if sampler == "prior" else self.module_.code_mixture()
            return distribution.sample((n_samples,)).float().cpu().numpy()

    def save(self, path) -> None:
        """Write the fitted model to directory ``path`` (JSON config + safetensors weights)."""
        from ..io import save

        save(self, path)

