"""The shared estimator machinery: parameters from a table, the post-fit API over a torch module,
conditioning through one helper, the aggregate-posterior code sample, and the persistence hooks."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import chain
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ..data._arrays import image_pixel_max
from ..data.preprocessing import Binarize, Preprocessing
from ..data.rows import read_rows
from ..errors import ConfigError, NotFittedError, TrainingError
from ..models import CODE_SAMPLE_SIZE, LatentModel
from ..runtime import seed_from, seeded
from ._sklearn import SklearnConventions, check_fit_input, check_input, in_shape_of, model_shape, output_dtype
from .checks import check_int
from .conditioning import Conditioning, Unconditional
from .modelfile import save as save_model
from .params import ParamTable

_CHUNK = 4096  # rows per forward pass when encoding/decoding whole arrays


SPACES = ("data", "model")  # the units of a log-likelihood: the raw data's, or the preprocessed values'


def check_fit_array(X) -> tuple[np.ndarray, tuple[int, ...]]:
    """``X`` validated for fitting (finite real samples, at least two), and its sample shape as given."""
    return check_fit_input(X)


def store_params(estimator: LatentEstimator, values: dict) -> None:
    """``__init__``'s body: store each parameter of the estimator's table as given (no logic, as scikit-learn asks)."""
    for name in estimator.params.names:
        setattr(estimator, name, values[name])


class LatentEstimator(SklearnConventions, TransformerMixin, BaseEstimator):
    """Shared post-fit API over ``module_`` and ``preprocessing_``; subclasses define ``fit``.

    What a class is, it declares: ``params`` (its parameter table), ``conditioning`` (what its
    module is conditioned on), ``has_likelihood`` (whether it scores data in nats), ``kind``
    (its family, as the report names it) and ``seeds_sampling``.
    """

    params: ClassVar[ParamTable]
    conditioning: ClassVar[type[Conditioning]] = Unconditional
    has_likelihood: ClassVar[bool] = True
    kind: ClassVar[str]
    seeds_sampling: ClassVar[bool] = False  # random_state also seeds sample() when it is given none

    conditioning_: Conditioning  # an instance of ``conditioning``
    module_: LatentModel
    preprocessing_: Preprocessing
    sample_shape_: tuple[int, ...]  # as given to fit: (n_features,) for tables, (H, W) or (C, H, W) for images
    # The held-out split `vaelab fit` kept back (vaelab.data.splits.split_record); None from fit(X) alone.
    training_data_: dict | None

    # --- parameters -------------------------------------------------------------------------
    def _check_params(self) -> None:
        self.params.validate(self.get_params(deep=False))

    def _build_module(self, sample_shape: tuple[int, ...], n_classes: int, binary: bool) -> LatentModel:
        """The (untrained) torch module for samples of ``sample_shape``, conditioned on ``n_classes``
        classes; ``binary``: the data are binarised (which settles ``likelihood="auto"``)."""
        raise NotImplementedError

    # --- fitted state -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) before using it")

    def _fit_preprocessing(self, X: np.ndarray, seed: int, binarize: Binarize = "none", moments=None) -> Preprocessing:
        pixel_max = self.pixel_max
        if self.preprocessing == "scale" and pixel_max is None:
            pixel_max = image_pixel_max(X)
        dequantize = self.dequantize
        if getattr(self, "likelihood", None) == "bernoulli":  # a probability of binary values: no bins to fill
            if dequantize == "uniform":
                raise ConfigError(
                    "dequantize='uniform' makes the values continuous, which likelihood='bernoulli' (for binary "
                    "values) does not model; use likelihood 'gaussian' or 'continuous_bernoulli', or dequantize='none'"
                )
            dequantize = "none"
        return Preprocessing.fit(
            X,
            kind=self.preprocessing,
            binarize=binarize,
            pixel_max=pixel_max,
            seed=seed,
            dequantize=dequantize,
            moments=moments,
        )

    def _set_fitted(
        self, module: LatentModel, preprocessing: Preprocessing, sample_shape, conditioning: Conditioning, seed: int
    ) -> None:
        self.conditioning_ = conditioning
        self.seed_ = int(seed)  # random_state made a seed once, at fit: a RandomState gives one number
        self.module_ = module
        self.preprocessing_ = preprocessing
        self.sample_shape_ = tuple(sample_shape)
        self.n_features_in_ = math.prod(self.sample_shape_)
        self.training_data_ = None  # a new fit forgets the split an earlier one recorded

    def _get_fitted_state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """The persistence hook: JSON-safe fitted attributes, and the module's tensors (on the CPU)."""
        self._check_fitted()
        fitted = {
            "sample_shape_": list(self.sample_shape_),
            "preprocessing_": self.preprocessing_.to_dict(),
            "history_": getattr(self, "history_", None),
            "seed_": self.seed_,
            **self.conditioning_.state(),
        }
        if self.training_data_ is not None:
            fitted["training_data_"] = self.training_data_
        weights = {k: v.detach().cpu().contiguous() for k, v in self.module_.state_dict().items()}
        return fitted, weights

    def _set_fitted_state(self, fitted: dict, read_weights: Callable[[dict[str, torch.Tensor]], dict]) -> None:
        """The persistence hook: restore what :meth:`_get_fitted_state` gave.

        ``read_weights(expected)`` returns the saved tensors, checked against ``expected``, the
        state dict of the module ``fitted`` describes, built on the meta device (nothing allocated,
        so a config describing a huge model cannot exhaust memory before its shapes are checked).
        """
        self._check_params()
        seed_from(self.random_state)
        preprocessing = Preprocessing.from_dict(fitted["preprocessing_"])
        sample_shape = tuple(fitted["sample_shape_"])
        conditioning = self.conditioning.from_state(fitted)
        with torch.device("meta"):
            expected = self._build_module(
                model_shape(sample_shape), conditioning.n_classes, preprocessing.binarize != "none"
            ).state_dict()
        state = read_weights(expected)
        module = self._build_module(model_shape(sample_shape), conditioning.n_classes, preprocessing.binarize != "none")
        module.load_state_dict(state)
        module.eval()
        self._set_fitted(module, preprocessing, sample_shape, conditioning, fitted.get("seed_", 0))
        if fitted.get("history_") is not None:
            self.history_ = fitted["history_"]
        self.training_data_ = fitted.get("training_data_")

    @property
    def device_(self) -> torch.device:
        for tensor in chain(self.module_.buffers(), self.module_.parameters()):
            return tensor.device  # the first buffer's, else the first parameter's
        raise RuntimeError(f"the module of this {type(self).__name__} holds no tensors, so it has no device")

    # --- arrays in and out ------------------------------------------------------------------
    def _check_X(self, X) -> np.ndarray:
        """Raw samples validated against the fitted shape (see :func:`._sklearn.check_input`)."""
        self._check_fitted()
        return check_input(X, self.sample_shape_, type(self).__name__)

    def to_model_space(self, X, dtype=np.float32, *, scored: bool = False) -> np.ndarray:
        """Raw samples ``(n, *sample_shape)`` -> the module's input, ``dtype`` ``(n, n_features_in_)``.

        ``scored``: the values a density is scored at. They differ only for dequantised data: a point
        drawn in each integer's bin, keyed on the example and the fit's seed, instead of its centre.
        """
        X = self._check_X(X)
        return self.preprocessing_.transform(X, dtype, noise=scored).reshape(len(X), -1)

    def _in_units(self, scores: np.ndarray, space: str) -> np.ndarray:
        """Model-space log-likelihoods ``(n,)`` in nats, in the units ``space`` names.

        ``"data"``: a density of the raw values as the user gave them, the log-determinant of the
        preprocessing's Jacobian added (``-D log pixel_max`` for scale, ``-sum log std`` for
        standardize); for binarised data, the probability mass of the binarised values (no
        Jacobian: binarising is discrete). ``"model"``: the density of the preprocessed values.
        """
        if space not in SPACES:
            raise ConfigError(f"unknown space {space!r}; choose 'data' (the raw values' units) or 'model'")
        offset = self.preprocessing_.log_abs_det_jacobian(self.n_features_in_) if space == "data" else None
        return scores if offset is None else scores + offset

    def _user_space(self, A: np.ndarray) -> np.ndarray:
        """Model-space rows -> the user's units and sample shape."""
        return self.preprocessing_.inverse_transform(A).reshape(len(A), *self.sample_shape_)

    def _labels(self, y, n: int) -> np.ndarray | None:
        """Every ``y`` a method takes goes through here: class indices ``(n,)`` for the module, or None."""
        return self.conditioning_.indices(type(self).__name__, y, n)

    @torch.no_grad()
    def _map(self, fn, A: np.ndarray, labels: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
        """``fn(rows[, labels])`` over chunks of the rows of ``A``, concatenated, as ``dtype``."""
        device = self.device_
        parts = []
        for i in range(0, len(A), _CHUNK):
            args = [torch.from_numpy(A[i : i + _CHUNK]).to(device)]
            if labels is not None:
                args.append(torch.from_numpy(labels[i : i + _CHUNK]).to(device))
            parts.append(fn(*args).cpu())
        return torch.cat(parts).numpy().astype(dtype, copy=False)

    # --- the post-fit API -------------------------------------------------------------------
    def transform(self, X, y=None) -> np.ndarray:
        """Codes of ``X``: ``(n, *sample_shape) -> (n, latent_dim)``, float64 for float64 ``X``, else float32.

        PCA: argmax_z p(x|z); autoencoder: the encoder output; VAE: the posterior mean.
        ``y``: the class labels, for a conditional model only ((n,) or one label for all rows).
        """
        X = self._check_X(X)
        A = self.preprocessing_.transform(X).reshape(len(X), -1)
        return self._map(self.module_.embed, A, self._labels(y, len(A)), output_dtype(X))

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit(X, y)`` then the codes of ``X``; ``y`` conditions only a conditional model."""
        self.fit(X, y, **fit_params)
        return self.transform(X, self.conditioning_.supervised(y))

    def inverse_transform(self, Z, y=None) -> np.ndarray:
        """Decoder means of codes ``Z`` (n, latent_dim) [for classes ``y``], in the data's units.

        Shape ``(n, *sample_shape_)``, the sample shape given to fit; float64 for float64 ``Z``, else float32.
        """
        self._check_fitted()
        Z = check_input(Z, (self.module_.latent_dim,), type(self).__name__, name="Z", what=" (its latent_dim)")
        out = self._decode_means(Z.astype(np.float32), self._labels(y, len(Z)))
        return out.astype(output_dtype(Z), copy=False)

    def _decode_means(self, Z: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        means = self._map(lambda *args: self.module_.decode(*args).mean, Z, labels)
        return self._user_space(means)

    def reconstruct(self, X, y=None) -> np.ndarray:
        """``inverse_transform(transform(X, y), y)`` in the shape of ``X``: ``(n, 28, 28)`` in, ``(n, 28, 28)`` out."""
        return in_shape_of(self.inverse_transform(self.transform(X, y), y), X)

    def sample(self, n_samples: int, y=None, *, random_state=None, sampler: str = "prior") -> np.ndarray:
        """Decoder means of ``n_samples`` sampled codes: ``(n_samples, *sample_shape)``, in the data's units.

        ``sampler="prior"`` draws codes from the module's prior p(z); ``"gmm"`` from a 10-component
        Gaussian mixture fitted to (up to 2,000) training codes (the aggregate posterior; fair to an
        autoencoder too). ``y`` (conditional models): one label for all samples, one per sample, or
        None for the classes in turn.
        """
        self._check_fitted()
        n_samples = check_int("n_samples", n_samples, 1)
        seed = seed_from(self.random_state if random_state is None and self.seeds_sampling else random_state)
        if sampler not in ("prior", "gmm"):
            raise ConfigError(f"unknown sampler {sampler!r}; choose 'prior' or 'gmm'")
        labels = self._labels(self.conditioning_.default_labels(n_samples) if y is None else y, n_samples)
        with seeded(seed, self.device_), torch.no_grad():
            codes = self.module_.prior() if sampler == "prior" else self.module_.code_mixture()
            Z = codes.sample((n_samples,)).float().cpu().numpy()
        return self._decode_means(Z, labels)

    def _fit_code_mixture(self, X, seed: int, labels: np.ndarray | None = None) -> np.ndarray:
        """Keep the codes of a seeded subsample of (at most 2,000) training rows in the module.

        They are the aggregate-posterior sampler's data (``sampler="gmm"``). ``labels``: the class
        indices of ``X`` for a conditional model. Returns the codes, ``(m, latent_dim)`` float64,
        for post-fit checks (the collapse guard) to reuse.
        """
        rows = np.sort(np.random.default_rng(seed).permutation(len(X))[:CODE_SAMPLE_SIZE])
        sample = read_rows(X, rows)  # from disk for memory-mapped X, without keeping its pages resident
        A = self.to_model_space(sample)
        codes = self._map(self.module_.embed, A, None if labels is None else labels[rows]).astype(np.float64)
        if not np.isfinite(codes).all():
            raise TrainingError(
                "the fitted model encodes some training data to NaN or infinite codes: training diverged; "
                "lower lr, scale the data, or use grad_clip"
            )
        self.module_.set_code_sample(torch.from_numpy(codes))
        return codes

    def save(self, path) -> None:
        """Write the fitted model to directory ``path`` (JSON config + safetensors weights)."""
        save_model(self, path)
