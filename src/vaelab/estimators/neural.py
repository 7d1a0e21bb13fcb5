"""Neural fitting: the rows a network trains on, and ``fit`` for the autoencoder and VAE families.

The trainer (:func:`vaelab.train.train`) gets the training and validation rows (stored on the
device, or read from disk per batch, :mod:`vaelab.data.rows`), a :class:`vaelab.train.TrainConfig`
made from the estimator's parameter table, and the run's identity and checkpoint
(:mod:`vaelab.checkpoint`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..checkpoint import checkpoint_path, run_key
from ..data._arrays import row_chunks
from ..data.preprocessing import Preprocessing
from ..data.rows import LabelledRows, MappedRows, StoredRows, read_per_batch
from ..errors import ConfigError, ConvergenceWarning, DataError, DegenerateDensityWarning
from ..likelihoods import GaussianLikelihood
from ..runtime import resolve_device, seed_from, seeded
from ..train import TrainConfig, max_epochs, train
from ._base import LatentEstimator, check_fit_array

# Fewer validation rows than this make the validation loss too noisy to stop on.
_MIN_VALIDATION_ROWS = 50


def _batch_map(preprocessing: Preprocessing, compact: bool):
    """The per-batch map of stored rows to the model's input, or None: the identity.

    ``compact``: the rows are raw 8-bit values (scaled here, batch by batch); otherwise they are
    model space already. Dynamic binarisation draws each value from Bernoulli(p); dequantisation
    moves each integer's bin centre to a uniform point in its bin, afresh every batch.
    """
    dynamic, levels = preprocessing.binarize == "dynamic", preprocessing.levels
    if not compact:
        if levels is not None:
            width = 1.0 / levels
            return lambda batch: batch + (torch.rand_like(batch) - 0.5) * width
        return torch.bernoulli if dynamic else None
    if preprocessing.pixel_max is None:  # Preprocessing refuses kind="scale" without one
        raise ConfigError("preprocessing='scale' needs pixel_max")
    if levels is not None:
        inv = 1.0 / levels
        return lambda batch: (batch.float() + torch.rand(batch.shape, device=batch.device)) * inv
    inv = 1.0 / preprocessing.pixel_max

    def prepare(batch):
        batch = batch.float() * inv
        return torch.bernoulli(batch) if dynamic else batch

    return prepare


def stored_rows(X: np.ndarray, preprocessing: Preprocessing, device):
    """``X`` as one stored tensor ``(n, d)`` in its own row order; the per-batch map to model space; the value range.

    Float32 data that preprocessing leaves as is, and 8-bit images (a quarter of float32,
    scaled batch by batch), are trained on where they are, without a copy; training only
    reads them. Other data are preprocessed chunk by chunk into one new float32 array.
    """
    flat = X.reshape(len(X), -1)
    compact = preprocessing.kind == "scale" and X.dtype == np.uint8
    as_is = compact or (
        X.dtype == np.float32 and preprocessing.kind == "none" and preprocessing.binarize in ("none", "dynamic")
    )
    if as_is:
        stored = np.ascontiguousarray(flat)
    else:
        stored = np.empty(flat.shape, dtype=np.float32)
        for start, chunk in row_chunks(flat):
            stored[start : start + len(chunk)] = preprocessing.transform(chunk)
    low, high = float(stored.min()), float(stored.max())
    with warnings.catch_warnings():
        # a read-only array (e.g. a small memory-mapped file) is shared, never written
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        rows = torch.from_numpy(stored).to(device)
    if preprocessing.dequantize:
        low, high = 0.0, 1.0  # a point anywhere in the bins of the values 0..pixel_max
    elif compact and preprocessing.pixel_max is not None:  # 8-bit rows, scaled batch by batch
        low, high = low / preprocessing.pixel_max, high / preprocessing.pixel_max
    return rows, _batch_map(preprocessing, compact), (low, high)


def mapped_rows(X, preprocessing: Preprocessing, order: np.ndarray, n_val: int, device):
    """Training and validation rows read from disk per batch: data larger than memory."""

    def transform(rows: np.ndarray) -> np.ndarray:
        return preprocessing.transform(rows).reshape(len(rows), -1)

    if preprocessing.kind == "scale":
        low, high = 0.0, 1.0  # Preprocessing.fit has checked the raw values lie in [0, pixel_max]
    else:
        low, high = np.inf, -np.inf
        for _, chunk in row_chunks(X):
            model_space = transform(chunk)
            low, high = min(low, float(model_space.min())), max(high, float(model_space.max()))
    X_val = MappedRows(X, order[:n_val], transform, device) if n_val else None
    return MappedRows(X, order[n_val:], transform, device), X_val, _batch_map(preprocessing, False), (low, high)


def training_rows(X, preprocessing: Preprocessing, order: np.ndarray, n_val: int, labels: np.ndarray | None, device):
    """``(X_train, X_val, prepare, (low, high))``: the rows :func:`train` takes, in the seeded ``order``."""
    if read_per_batch(X):  # memory-mapped and large, or a lazy image folder
        X_train, X_val, prepare, value_range = mapped_rows(X, preprocessing, order, n_val, device)
    else:
        stored, prepare, value_range = stored_rows(X, preprocessing, device)
        positions = torch.from_numpy(order).to(device)
        X_val = StoredRows(stored, positions[:n_val]) if n_val else None
        X_train = StoredRows(stored, positions[n_val:])
    if labels is not None:
        ordered = torch.from_numpy(labels[order]).to(device)
        X_val = LabelledRows(X_val, ordered[:n_val]) if X_val is not None else None
        X_train = LabelledRows(X_train, ordered[n_val:])
    return X_train, X_val, prepare, value_range


class NeuralEstimator(LatentEstimator):
    """Shared fitting for the autoencoder and VAE families (MLP or conv encoder and decoder)."""

    def _networks(self, sample_shape: tuple[int, ...]) -> dict:
        """Keyword arguments choosing the encoder/decoder networks for samples of this shape."""
        # "auto" is the MLP, for images too: on a CPU it trains about 10x faster per epoch than the CNN
        # (Fashion-MNIST, benchmarks/README.md), which is what keeps the default comparison short.
        architecture = "mlp" if self.architecture == "auto" else self.architecture
        return {"architecture": architecture, "sample_shape": tuple(sample_shape), "channels": tuple(self.channels)}

    def fit(self, X, y=None, *, checkpoint_dir=None, resume: bool = False, overwrite: bool = False):
        """Train on ``X`` (n, ...), holding out ``validation_fraction`` for early stopping.

        ``y``: class labels (n,) for a :class:`ConditionalVAE`; ignored by the others (scikit-learn's
        convention for unsupervised estimators).

        A memory-mapped ``X`` (e.g. from ``vaelab.data.load`` of a ``.npy``) larger than 1 GiB as
        float32, or a lazy :class:`vaelab.data.ImageFolder` (``load`` of a large image folder), is
        never loaded whole: batches are read from the file, or decoded, as they are needed.

        With ``checkpoint_dir``, the training state is written there after every epoch; an
        existing checkpoint is refused unless ``resume=True`` (continue from it) or
        ``overwrite=True``. Returns ``self``; sets ``module_``, ``preprocessing_``,
        ``n_features_in_``, ``sample_shape_`` and ``history_`` (per-epoch losses, nats).
        """
        X, sample_shape = check_fit_array(X)
        conditioning, labels = self.conditioning.fit(type(self).__name__, y, len(X))
        self._check_params()
        device = resolve_device(self.device)
        seed = seed_from(self.random_state)
        preprocessing = self._fit_preprocessing(X, seed, self.binarize)
        order = np.random.default_rng(seed).permutation(len(X))
        n_val = int(round(self.validation_fraction * len(X)))
        if n_val >= len(X):
            raise DataError(
                f"validation_fraction={self.validation_fraction} of {len(X)} samples leaves no training data; "
                "lower validation_fraction or give more samples"
            )
        X_train, X_val, prepare, (low, high) = training_rows(X, preprocessing, order, n_val, labels, device)
        knobs = self.params.train_knobs(self.get_params(deep=False))
        if X_val is None:
            knobs["patience"] = None  # nothing to stop early on
        config = TrainConfig(
            **knobs,
            progress=bool(self.verbose),
            description=type(self).__name__,
            checkpoint=checkpoint_path(checkpoint_dir, resume, overwrite),
            resume=resume,
            run_key=run_key(self.get_params(deep=False), X, labels),
            shuffle_seed=seed,
            patience_after=self._warmup_epochs(),
        )
        with seeded(seed, device):
            module = self._build_module(X.shape[1:], conditioning.n_classes, preprocessing.binarize != "none").to(
                device
            )
            module.likelihood.check_support(low, high)
            first = X_train[torch.arange(min(len(X_train), 256), device=device)]  # rows are shuffled already
            first = first[0] if isinstance(first, tuple) else first
            module.initialise((prepare or (lambda batch: batch))(first).float())
            history = train(module, X_train, X_val, config, prepare, self._epoch_hook())
        self._set_fitted(module, preprocessing, sample_shape, conditioning, seed)
        self.history_ = history.to_dict()
        self._warn_if_unconverged(config, len(X_train), n_val)
        self._warn_if_degenerate(module, preprocessing)
        self._warn_if_collapsed(self._fit_code_mixture(X, seed, labels))
        return self

    def _warn_if_collapsed(self, codes: np.ndarray) -> None:
        """Posterior-collapse guard on training codes ``(m, latent_dim)``; a no-op without a posterior."""

    def _warmup_epochs(self) -> int:
        """Epochs of a warm-up, during which early stopping does not count (0: none)."""
        return 0

    def _warn_if_degenerate(self, module, preprocessing: Preprocessing) -> None:
        """Say so when a per-feature Gaussian decoder has features whose spread sits at its floor.

        They did not vary in the training data, so the density there is a spike of width
        ``min_scale`` and any held-out value off it scores very low (PCA's shared noise variance
        has no such spikes). Dequantised data cannot do this: each bin has width 1.
        """
        likelihood = module.likelihood
        if not isinstance(likelihood, GaussianLikelihood) or preprocessing.dequantize:
            return
        scale = likelihood.scale.detach()
        at_floor = int((scale < 3 * likelihood.min_scale).sum()) if scale.dim() else 0
        if at_floor:
            warnings.warn(
                f"{type(self).__name__}: {at_floor} of {scale.numel()} features have a decoder standard deviation at "
                f"its floor ({likelihood.min_scale:g} in model units): they (almost) never vary in the training data, "
                "so the density is a spike there and held-out values off it score very low; drop constant features, "
                "use dequantize='uniform' for integer data, or likelihood='gaussian_shared'",
                DegenerateDensityWarning,
                stacklevel=3,
            )

    def _warn_if_unconverged(self, config: TrainConfig, n_train: int, n_val: int) -> None:
        """Say so when early stopping could not judge convergence: too few validation rows, or still improving."""
        name = type(self).__name__
        trained = len(self.history_["train"]["loss"])
        if n_val and n_val < _MIN_VALIDATION_ROWS:
            warnings.warn(
                f"{name}: the validation split has only {n_val} rows, too few to judge early stopping; "
                "give more data, raise validation_fraction, or set patience=None and choose epochs",
                ConvergenceWarning,
                stacklevel=3,
            )
        elif n_val and trained == max_epochs(config, n_train) and self.history_["best_epoch"] == trained:
            warnings.warn(
                f"{name}: the validation loss was still improving at the last of {trained} epochs; the model "
                "may be under-trained: raise epochs (or leave epochs=None), or raise lr",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _epoch_hook(self):
        """Called with (module, epoch) before each epoch; None when nothing changes per epoch."""
        return None
