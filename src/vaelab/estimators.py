"""scikit-learn-style estimators: PCA, Autoencoder and VAE over the torch modules.

The layer is thin: it validates parameters and data, builds a module from :mod:`vaelab.models`,
fits it (closed form for PCA, :func:`vaelab.train.train` otherwise) and converts arrays. Conventions
follow scikit-learn: ``__init__`` only stores parameters, ``fit`` returns ``self``, fitted state
ends in ``_``, and every post-fit method checks that the model is fitted first.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA as _SklearnPCA

from .data.validation import check_array
from .errors import ConfigError, DataError, NotFittedError
from .likelihoods import LIKELIHOODS, make_likelihood
from .models import VAE as _VAEModule
from .models import PPCA, Autoencoder as _AEModule, LatentModel
from .train import TrainConfig, resolve_device, seed_from, seeded, train

_CHUNK = 4096  # rows per forward pass when encoding/decoding whole arrays


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
        high is not None and value > high
    ):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{name} must be an integer {allowed}, got {value!r}")
    return int(value)


def _check_positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not value > 0 or not np.isfinite(value):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class _LatentEstimator(TransformerMixin, BaseEstimator):
    """Shared post-fit API; subclasses define ``fit``."""

    module_: LatentModel

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X) before using it"
            )

    @property
    def device_(self) -> torch.device:
        return next(self.module_.buffers(), next(self.module_.parameters(), None)).device

    def _check_X(self, X) -> np.ndarray:
        self._check_fitted()
        return check_array(X, n_features=self.n_features_in_, fitted_by=type(self).__name__)

    @torch.no_grad()
    def _map(self, fn, A: np.ndarray) -> np.ndarray:
        device = self.device_
        parts = [fn(torch.from_numpy(A[i : i + _CHUNK]).to(device)).float().cpu() for i in range(0, len(A), _CHUNK)]
        return torch.cat(parts).numpy()

    def transform(self, X) -> np.ndarray:
        """Codes of ``X``: ``(n, n_features) -> (n, latent_dim)``, float32.

        PCA: argmax_z p(x|z); autoencoder: the encoder output; VAE: the posterior mean.
        """
        X = self._check_X(X)
        return self._map(self.module_.embed, X)

    def inverse_transform(self, Z) -> np.ndarray:
        """Decoder mean of codes ``Z``: ``(n, latent_dim) -> (n, n_features)``, float32."""
        self._check_fitted()
        Z = check_array(Z, name="Z", n_features=self.module_.latent_dim, fitted_by=f"{type(self).__name__}'s latent space")
        return self._map(lambda z: self.module_.decode(z).mean, Z)

    def reconstruct(self, X) -> np.ndarray:
        """``inverse_transform(transform(X))``: shape ``(n, n_features)``."""
        return self.inverse_transform(self.transform(X))

    def sample(self, n_samples: int, random_state=None) -> np.ndarray:
        """Decoder means of ``n_samples`` draws from the prior N(0, I): shape ``(n_samples, n_features)``."""
        self._check_fitted()
        n_samples = _check_int("n_samples", n_samples, 1)
        generator = torch.Generator().manual_seed(seed_from(random_state))
        Z = torch.randn(n_samples, self.module_.latent_dim, generator=generator)
        return self.inverse_transform(Z.numpy())

    def save(self, path) -> None:
        """Write the fitted model to directory ``path`` (JSON config + safetensors weights)."""
        from .io import save

        save(self, path)


class PCA(_LatentEstimator):
    """Probabilistic PCA (Tipping & Bishop, 1999) with an exact log-likelihood.

    Parameters
    ----------
    latent_dim : int
        Number of principal components kept.
    random_state : int, RandomState or None
        Seeds :meth:`sample` when it is not given its own ``random_state``.
    """

    def __init__(self, latent_dim: int = 2, random_state=None):
        self.latent_dim = latent_dim
        self.random_state = random_state

    def _build_module(self, n_features: int) -> LatentModel:
        return PPCA(n_features, _check_int("latent_dim", self.latent_dim, 1, n_features))

    def fit(self, X, y=None) -> PCA:
        """Fit the principal subspace and noise variance of ``X`` (n, d); returns ``self``."""
        X = check_array(X)
        k = _check_int("latent_dim", self.latent_dim, 1, min(X.shape))
        # float64 for the decomposition: the eigenvalues feed an exact log-likelihood.
        pca = _SklearnPCA(n_components=k, svd_solver="full").fit(X.astype(np.float64))
        # A rank-deficient X gives noise_variance 0 and an infinite density; keep it tiny instead.
        noise = max(pca.noise_variance_, 1e-6 * float(pca.explained_variance_[0]))
        self.module_ = PPCA.from_moments(pca.mean_, pca.components_, pca.explained_variance_, noise)
        self.n_features_in_ = X.shape[1]
        return self

    @property
    def components_(self) -> np.ndarray:
        """Principal axes, shape ``(latent_dim, n_features)``."""
        self._check_fitted()
        return self.module_.components.numpy().copy()

    @property
    def noise_variance_(self) -> float:
        self._check_fitted()
        return float(self.module_.noise_variance)

    def sample(self, n_samples: int, random_state=None) -> np.ndarray:
        return super().sample(n_samples, self.random_state if random_state is None else random_state)

    sample.__doc__ = _LatentEstimator.sample.__doc__

    def score_samples(self, X) -> np.ndarray:
        """Exact log-likelihood log p(x) of each row, in nats (higher is better): shape ``(n,)``."""
        X = self._check_X(X)
        return self._map(self.module_.log_marginal, X)

    def score(self, X, y=None) -> float:
        """Mean exact log-likelihood per example, in nats."""
        return float(np.mean(self.score_samples(X)))


class _NeuralEstimator(_LatentEstimator):
    """Shared fitting for the autoencoder and the VAE (MLP encoder and decoder)."""

    def _build_module(self, n_features: int) -> LatentModel:
        raise NotImplementedError

    def _check_params(self, X: np.ndarray) -> None:
        _check_int("latent_dim", self.latent_dim, 1)
        hidden = tuple(self.hidden)
        for h in hidden:
            _check_int("each hidden layer size", h, 1)
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"unknown likelihood {self.likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_positive_float("lr", self.lr)
        if self.patience is not None:
            _check_int("patience", self.patience, 1)
        if isinstance(self.validation_fraction, bool) or not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")

    def fit(self, X, y=None):
        """Train on ``X`` (n, n_features), holding out ``validation_fraction`` for early stopping.

        Returns ``self``. Sets ``module_``, ``n_features_in_`` and ``history_`` (per-epoch losses).
        """
        X = check_array(X)
        self._check_params(X)
        device = resolve_device(self.device)
        seed = seed_from(self.random_state)
        order = np.random.default_rng(seed).permutation(len(X))
        n_val = int(round(self.validation_fraction * len(X))) if len(X) > 1 else 0
        X_val = torch.from_numpy(X[order[:n_val]]).to(device) if n_val else None
        X_train = torch.from_numpy(X[order[n_val:]]).to(device)
        with seeded(seed, device):
            module = self._build_module(X.shape[1]).to(device)
            module.likelihood.check_support(X)
            config = TrainConfig(
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                patience=self.patience if X_val is not None else None,
                progress=bool(self.verbose),
                description=type(self).__name__,
            )
            history = train(module, X_train, X_val, config)
        self.module_ = module
        self.n_features_in_ = X.shape[1]
        self.history_ = history.to_dict()
        return self


class Autoencoder(_NeuralEstimator):
    """A deterministic autoencoder: MLP encoder to ``latent_dim`` codes, MLP decoder, likelihood loss.

    Parameters
    ----------
    latent_dim : int
        Size of the code.
    hidden : tuple of int
        Hidden layer sizes of the encoder (the decoder mirrors them); ``()`` gives linear maps.
    likelihood : {"bernoulli", "continuous_bernoulli", "gaussian"}
        Decoder distribution; the loss is its negative log-likelihood in nats per example.
    epochs, batch_size, lr : training length, mini-batch size and Adam learning rate.
    validation_fraction : float
        Share of the data held out for early stopping (0 disables it).
    patience : int or None
        Epochs without improvement of the validation loss before stopping.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    random_state : int, RandomState or None
        Same seed, same machine: same weights.
    verbose : int
        0 is silent; 1 shows a progress bar.
    """

    def __init__(
        self,
        latent_dim: int = 2,
        hidden: tuple[int, ...] = (256, 128),
        likelihood: str = "bernoulli",
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.likelihood = likelihood
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _build_module(self, n_features: int) -> LatentModel:
        return _AEModule(n_features, self.latent_dim, tuple(self.hidden), make_likelihood(self.likelihood, (n_features,)))


class VAE(_NeuralEstimator):
    """A variational autoencoder (Kingma & Welling, 2014), trained on the negative ELBO.

    Parameters are those of :class:`Autoencoder`, plus

    beta : float
        Weight of the KL term (1: the ELBO; Higgins et al., 2017).
    """

    def __init__(
        self,
        latent_dim: int = 2,
        hidden: tuple[int, ...] = (256, 128),
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.likelihood = likelihood
        self.beta = beta
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self, X: np.ndarray) -> None:
        super()._check_params(X)
        _check_positive_float("beta", self.beta)

    def _build_module(self, n_features: int) -> LatentModel:
        likelihood = make_likelihood(self.likelihood, (n_features,))
        return _VAEModule(n_features, self.latent_dim, tuple(self.hidden), likelihood, beta=self.beta)

    def score_samples(self, X) -> np.ndarray:
        """The ELBO of each row in nats (a lower bound on log p(x); higher is better): shape ``(n,)``.

        One posterior sample per example, seeded by ``random_state``.
        """
        X = self._check_X(X)
        with seeded(seed_from(self.random_state), self.device_):
            return self._map(lambda x: -sum(self.module_.elbo_terms(x)), X)

    def score(self, X, y=None) -> float:
        """Mean of :meth:`score_samples`, in nats per example."""
        return float(np.mean(self.score_samples(X)))
