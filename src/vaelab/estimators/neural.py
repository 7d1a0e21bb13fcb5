"""The autoencoder and the VAE as scikit-learn estimators, trained by :func:`vaelab.train.train`."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import CHECKPOINT_FILE
from ..data._arrays import IN_MEMORY_LIMIT, row_chunks
from ..data.preprocessing import Preprocessing
from ..data.rows import MappedRows, read_per_batch, read_rows
from ..errors import (
    ConfigError,
    DataError,
    PosteriorCollapseWarning,
)
from ..likelihoods import LIKELIHOODS, make_likelihood
from ..metrics import iw_log_likelihood
from ..models import ARCHITECTURES, LatentModel
from ..models import VAE as _VAEModule
from ..models import Autoencoder as _AEModule
from ..models import OBJECTIVES
from ..train import PRECISIONS, TrainConfig, resolve_device, seed_from, seeded, train
from ._base import _check_fit_array, _check_int, _check_positive_float, _LatentEstimator

# A memory-mapped X whose float32 copy would exceed this is read batch by batch from disk instead.
_IN_MEMORY_LIMIT = IN_MEMORY_LIMIT


def _data_fingerprint(X) -> str:
    step = max(1, len(X) // 1000)
    return hashlib.sha256(read_rows(X, np.arange(0, len(X), step)).tobytes()).hexdigest()[:16]


class _StoredRows:
    """Rows ``positions`` (m,) of a stored tensor ``data`` (n, d): ``[index] -> data[positions[index]]``."""

    def __init__(self, data: torch.Tensor, positions: torch.Tensor):
        self.data = data
        self.positions = positions

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def device(self) -> torch.device:
        return self.data.device

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return self.data[self.positions[index]]


class _LabelledRows:
    """Training rows beside their class indices: ``[index] -> (rows, labels)``, as :func:`train` takes them."""

    def __init__(self, rows, labels: torch.Tensor):
        self.rows = rows
        self.labels = labels

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def device(self) -> torch.device:
        return self.rows.device

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rows[index], self.labels[index]


class _NeuralEstimator(_LatentEstimator):
    """Shared fitting for the autoencoder and the VAE (MLP encoder and decoder)."""

    def _build_module(self, sample_shape: tuple[int, ...]) -> LatentModel:
        raise NotImplementedError

    def _networks(self, sample_shape: tuple[int, ...]) -> dict:
        """Keyword arguments choosing the encoder/decoder networks for samples of this shape."""
        architecture = self.architecture
        if architecture == "auto":
            architecture = "conv" if len(sample_shape) == 3 else "mlp"
        return {"architecture": architecture, "sample_shape": tuple(sample_shape), "channels": tuple(self.channels)}

    def _check_params(self) -> None:
        _check_int("latent_dim", self.latent_dim, 1)
        for name in ("hidden", "channels"):
            sizes = getattr(self, name)
            if not isinstance(sizes, (tuple, list)):
                raise ConfigError(f"{name} must be a tuple of layer sizes like (256, 128), got {sizes!r}")
            for size in sizes:
                _check_int(f"each {name} size", size, 1)
        if self.architecture not in ("auto", *ARCHITECTURES):
            raise ConfigError(f"unknown architecture {self.architecture!r}; choose auto, {', '.join(ARCHITECTURES)}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"unknown likelihood {self.likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_positive_float("lr", self.lr)
        if self.patience is not None:
            _check_int("patience", self.patience, 1)
        if self.grad_clip is not None:
            _check_positive_float("grad_clip", self.grad_clip)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if isinstance(self.validation_fraction, bool) or not (
            isinstance(self.validation_fraction, (int, float)) and 0.0 <= self.validation_fraction < 1.0
        ):
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")

    def _training_data(self, X: np.ndarray, preprocessing: Preprocessing, device):
        """``X`` as one stored tensor ``(n, d)`` in its own row order, the per-batch map to model space, and the value range.

        Float32 data that preprocessing leaves as is, and 8-bit images (a quarter of float32,
        scaled batch by batch), are trained on where they are, without a copy; training only
        reads them. Other data are preprocessed chunk by chunk into one new float32 array.
        """
        flat = X.reshape(len(X), -1)
        dynamic = preprocessing.binarize == "dynamic"
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
            stored = torch.from_numpy(stored).to(device)
        if not compact:
            return stored, (torch.bernoulli if dynamic else None), (low, high)
        inv = 1.0 / preprocessing.pixel_max

        def prepare(batch):
            batch = batch.float() * inv
            return torch.bernoulli(batch) if dynamic else batch

        return stored, prepare, (low * inv, high * inv)

    @staticmethod
    def _mapped_data(X, preprocessing: Preprocessing, order: np.ndarray, n_val: int, device):
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
        prepare = torch.bernoulli if preprocessing.binarize == "dynamic" else None
        return MappedRows(X, order[n_val:], transform, device), X_val, prepare, (low, high)

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
        X = _check_fit_array(X)
        labels = self._fit_labels(y, len(X))
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
        if read_per_batch(X, _IN_MEMORY_LIMIT):  # memory-mapped and large, or a lazy image folder
            X_train, X_val, prepare, (low, high) = self._mapped_data(X, preprocessing, order, n_val, device)
        else:
            stored, prepare, (low, high) = self._training_data(X, preprocessing, device)
            positions = torch.from_numpy(order).to(device)
            X_val = _StoredRows(stored, positions[:n_val]) if n_val else None
            X_train = _StoredRows(stored, positions[n_val:])
        if labels is not None:
            ordered = torch.from_numpy(labels[order]).to(device)
            X_val = _LabelledRows(X_val, ordered[:n_val]) if X_val is not None else None
            X_train = _LabelledRows(X_train, ordered[n_val:])
        config = TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience if X_val is not None else None,
            grad_clip=self.grad_clip,
            progress=bool(self.verbose),
            description=type(self).__name__,
            checkpoint=self._checkpoint_path(checkpoint_dir, resume, overwrite),
            resume=resume,
            run_key=self._run_key(X, labels),
            shuffle_seed=seed,
            precision=self.precision,
        )
        with seeded(seed, device):
            module = self._build_module(X.shape[1:]).to(device)
            module.likelihood.check_support(low, high)
            first = X_train[torch.arange(min(len(X_train), 256), device=device)]  # rows are shuffled already
            first = first[0] if isinstance(first, tuple) else first
            module.initialise((prepare or (lambda batch: batch))(first).float())
            history = train(module, X_train, X_val, config, prepare, self._epoch_hook())
        self._set_fitted(module, preprocessing, X.shape[1:])
        self.history_ = history.to_dict()
        self._warn_if_collapsed(self._fit_code_mixture(X, seed, None if labels is None else np.asarray(y)))
        return self

    def _fit_labels(self, y, n: int) -> np.ndarray | None:
        """Class indices ``(n,)`` int64 that condition the model, or None: unconditional models ignore ``y``."""
        return None

    def _warn_if_collapsed(self, codes: np.ndarray) -> None:
        """Posterior-collapse guard on training codes ``(m, latent_dim)``; a no-op without a posterior."""

    def _epoch_hook(self):
        """Called with (module, epoch) before each epoch; None when nothing changes per epoch."""
        return None

    def _run_key(self, X: np.ndarray, labels: np.ndarray | None) -> str:
        params = {k: v for k, v in self.get_params().items() if k not in ("epochs", "verbose", "device")}
        key = [repr(sorted(params.items())), X.shape, str(X.dtype), _data_fingerprint(X)]
        if labels is not None:
            key.append(hashlib.sha256(labels.tobytes()).hexdigest()[:16])
        return json.dumps(key)

    @staticmethod
    def _checkpoint_path(checkpoint_dir, resume: bool, overwrite: bool) -> Path | None:
        if checkpoint_dir is None:
            if resume:
                raise ConfigError("resume=True needs checkpoint_dir, the directory of the run to continue")
            return None
        path = Path(checkpoint_dir) / CHECKPOINT_FILE
        if resume and not path.is_file():
            raise ConfigError(f"nothing to resume: {path} does not exist; fit without resume to start the run")
        if not resume and not overwrite and path.exists():
            raise ConfigError(
                f"{checkpoint_dir} already holds a training checkpoint; pass resume=True to continue "
                "it or overwrite=True to start afresh"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


_NEURAL_DOC = """
    Parameters
    ----------
    latent_dim : int
        Size of the code.
    hidden : tuple of int
        MLP hidden layer sizes of the encoder (the decoder mirrors them); ``()`` gives linear maps.
    architecture : {"auto", "mlp", "conv"}
        ``"auto"``: a CNN for images (n, C, H, W), an MLP for tables (n, d).
    channels : tuple of int
        Conv channels of the encoder's stride-2 layers (the decoder mirrors them).
    likelihood : {"bernoulli", "continuous_bernoulli", "gaussian", "gaussian_shared", "gaussian_fixed"}
        Decoder distribution p(x|z); its negative log-likelihood (nats) is the reconstruction term.
    preprocessing : {"none", "scale", "standardize"}
        Map from raw values to model space, fitted on the training data and stored with the model.
    pixel_max : float or None
        For ``preprocessing="scale"``: the raw full-scale value (255 for uint8 when None).
    binarize : {"none", "threshold", "static", "dynamic"}
        After scaling: binarise at 0.5, by one fixed Bernoulli draw, or by a fresh draw of every
        batch (the usual protocol for likelihood benchmarks).
    epochs, batch_size, lr : training length, mini-batch size and Adam learning rate.
    validation_fraction : float
        Share of the data held out for early stopping (0 disables it).
    patience : int or None
        Epochs without improvement of the validation loss before stopping.
    grad_clip : float or None
        Clip the global gradient norm to this value.
    precision : {"float32", "bfloat16"}
        ``"bfloat16"``: mixed precision, forward and backward passes under ``torch.autocast`` (fast on
        GPUs with bfloat16 units; usually slower on CPUs without them). Weights, Adam and every
        method after fit stay float32.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    random_state : int, RandomState or None
        Same seed, same machine: same weights.
    verbose : int
        0 is silent; 1 shows a progress bar.
"""


class Autoencoder(_NeuralEstimator):
    __doc__ = "A deterministic autoencoder: MLP encoder to ``latent_dim`` codes, MLP decoder.\n" + _NEURAL_DOC

    def __init__(
        self,
        latent_dim: int = 2,
        hidden: tuple[int, ...] = (256, 128),
        architecture: str = "auto",
        channels: tuple[int, ...] = (32, 64),
        likelihood: str = "bernoulli",
        preprocessing: str = "none",
        pixel_max: float | None = None,
        binarize: str = "none",
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        grad_clip: float | None = None,
        precision: str = "float32",
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.architecture = architecture
        self.channels = channels
        self.likelihood = likelihood
        self.preprocessing = preprocessing
        self.pixel_max = pixel_max
        self.binarize = binarize
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.grad_clip = grad_clip
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _build_module(self, sample_shape: tuple[int, ...]) -> LatentModel:
        n_features = math.prod(sample_shape)
        likelihood = make_likelihood(self.likelihood, (n_features,))
        return _AEModule(n_features, self.latent_dim, tuple(self.hidden), likelihood, **self._networks(sample_shape))


class VAE(_NeuralEstimator):
    __doc__ = (
        "A variational autoencoder (Kingma & Welling, 2014) trained on the negative ELBO.\n"
        + _NEURAL_DOC
        + """    beta : float
        Weight of the KL term (1: the ELBO; Higgins et al., 2017).
    objective : {"elbo", "iwae"}
        The ELBO, or the importance-weighted bound with ``n_train_samples`` samples (Burda et al., 2016).
    n_train_samples : int
        Samples per example of the IWAE bound during training.
    kl_warmup : int
        Anneal the KL weight linearly from 0 to ``beta`` over this many epochs (0: off).
    free_bits : float
        Floor, in nats, of the batch-mean KL of each latent dimension (0: off).
"""
    )

    def __init__(
        self,
        latent_dim: int = 2,
        hidden: tuple[int, ...] = (256, 128),
        architecture: str = "auto",
        channels: tuple[int, ...] = (32, 64),
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        objective: str = "elbo",
        n_train_samples: int = 1,
        kl_warmup: int = 0,
        free_bits: float = 0.0,
        preprocessing: str = "none",
        pixel_max: float | None = None,
        binarize: str = "none",
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 1e-3,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        grad_clip: float | None = None,
        precision: str = "float32",
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.architecture = architecture
        self.channels = channels
        self.likelihood = likelihood
        self.beta = beta
        self.objective = objective
        self.n_train_samples = n_train_samples
        self.kl_warmup = kl_warmup
        self.free_bits = free_bits
        self.preprocessing = preprocessing
        self.pixel_max = pixel_max
        self.binarize = binarize
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.grad_clip = grad_clip
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        _check_positive_float("beta", self.beta)
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        _check_int("n_train_samples", self.n_train_samples, 1)
        if self.objective == "elbo" and self.n_train_samples != 1:
            raise ConfigError("n_train_samples > 1 needs objective='iwae' (the ELBO uses one sample)")
        if self.objective == "iwae" and (self.beta != 1 or self.free_bits or self.kl_warmup):
            raise ConfigError("objective='iwae' is the plain importance-weighted bound: use beta=1, free_bits=0, kl_warmup=0")
        _check_int("kl_warmup", self.kl_warmup, 0)
        if isinstance(self.free_bits, bool) or not isinstance(self.free_bits, (int, float)) or not 0 <= self.free_bits < np.inf:
            raise ConfigError(f"free_bits must be a number >= 0 (nats per latent dimension), got {self.free_bits!r}")

    def _build_module(self, sample_shape: tuple[int, ...], n_classes: int = 0) -> LatentModel:
        n_features = math.prod(sample_shape)
        likelihood = make_likelihood(self.likelihood, (n_features,))
        return _VAEModule(
            n_features, self.latent_dim, tuple(self.hidden), likelihood, beta=self.beta, objective=self.objective,
            n_train_samples=self.n_train_samples, free_bits=float(self.free_bits), n_classes=n_classes,
            **self._networks(sample_shape),
        )

    def _warn_if_collapsed(self, codes: np.ndarray) -> None:
        # A VAE's codes are its posterior means: their variance over data is Cov_x E[z|x].
        inactive = int((codes.var(axis=0) <= 0.01).sum())
        # A few idle dimensions are normal for a roomy latent space (e.g. 2 of 20 on Fashion-MNIST);
        # half or more idle means the KL term has won.
        if 2 * inactive >= self.latent_dim:
            warnings.warn(
                f"posterior collapse: {inactive} of {self.latent_dim} latent dimensions are inactive "
                "(Cov_x E[z|x] <= 0.01): their codes carry no information about x. Knobs that help: "
                "kl_warmup (e.g. 10 epochs), free_bits (e.g. 0.5), a smaller beta, a smaller decoder, "
                "or a smaller latent_dim",
                PosteriorCollapseWarning,
                stacklevel=3,
            )

    def _epoch_hook(self):
        if not self.kl_warmup:
            return None
        warmup = self.kl_warmup

        def anneal(module, epoch: int) -> None:
            # linear KL warm-up: beta * epoch / warmup over the first `warmup` epochs (1-based)
            module.kl_scale = min(1.0, epoch / warmup)

        return anneal

    def score_samples(self, X, n_samples: int = 1000) -> np.ndarray:
        """Importance-sampled log p(x) of each sample in model space, in nats: shape ``(n,)``.

        The K-sample importance-weighted bound of Burda et al. (2016) with q(z|x) as proposal,
        K = ``n_samples``: a stochastic lower bound that tightens as K grows (K = 1 is the ELBO).
        Seeded by ``random_state``: same seed, same numbers.
        """
        return self._iw_scores(self._model_space(X), n_samples)

    def _iw_scores(self, A: np.ndarray, n_samples: int, labels: np.ndarray | None = None) -> np.ndarray:
        """:func:`iw_log_likelihood` of model-space rows ``A`` (and class indices), seeded by ``random_state``."""
        n_samples = _check_int("n_samples", n_samples, 1)
        seed = seed_from(self.random_state if self.random_state is not None else 0)
        y = None if labels is None else torch.from_numpy(labels)
        return iw_log_likelihood(self.module_, torch.from_numpy(A), n_samples, seed=seed, y=y).float().cpu().numpy()

    def score(self, X, y=None, n_samples: int = 1000) -> float:
        """Mean of :meth:`score_samples`, in nats per example."""
        return float(np.mean(self.score_samples(X, n_samples)))


def _label_values(y, name: str = "y") -> np.ndarray:
    """Class labels as a 1-D array of ints, bools or strings; floats only when whole numbers."""
    try:
        y = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be an array of class labels ({exc})") from None
    if y.ndim != 1:
        raise DataError(f"{name} must hold one class label per example, shape (n,); got shape {y.shape}")
    if y.dtype.kind == "f":
        if not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DataError(f"{name} holds non-integer or NaN values; class labels must be integers or strings")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iubU":
        raise DataError(f"{name} must hold integers, booleans or strings as class labels, got dtype {y.dtype}")
    return y


class ConditionalVAE(VAE):
    __doc__ = (
        "A conditional VAE (Sohn et al., 2015): encoder q(z|x, y) and decoder p(x|z, y) see the class\n"
        "label ``y``, the prior stays N(0, I). ``fit(X, y)`` learns one latent space shared by all classes;\n"
        "``sample(n, y=c)`` generates class ``c``. Every method that reads data or codes takes the labels\n"
        "``y`` beside them: an array of shape (n,) or one label for all rows. Sets ``classes_`` (sorted).\n"
        "Parameters as for :class:`VAE`.\n"
    )

    classes_: np.ndarray

    def _fit_labels(self, y, n: int) -> np.ndarray:
        if y is None:
            raise DataError("ConditionalVAE.fit needs the class labels y of X, shape (n,); use VAE for unlabelled data")
        y = _label_values(y)
        if len(y) != n:
            raise DataError(f"got {len(y)} labels for {n} examples; pass one label per row of X")
        self.classes_ = np.unique(y)
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _build_module(self, sample_shape: tuple[int, ...], n_classes: int | None = None) -> LatentModel:
        return super()._build_module(sample_shape, len(self.classes_) if n_classes is None else n_classes)

    def _class_indices(self, y, n: int) -> np.ndarray:
        """Indices into ``classes_`` of labels ``y`` ((n,) or one label for all ``n`` rows): ``(n,)`` int64."""
        if y is None:
            raise DataError(f"{type(self).__name__} needs the class labels y: shape (n,) or one label for all rows")
        y = _label_values(np.broadcast_to(np.asarray(y), (n,)) if np.ndim(y) == 0 else y)
        if len(y) != n:
            raise DataError(f"got {len(y)} labels for {n} rows; pass one label per row, or a single label")
        if (y.dtype.kind == "U") != (self.classes_.dtype.kind == "U"):  # strings never equal numbers
            index, known = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        else:
            index = np.searchsorted(self.classes_, y).clip(0, len(self.classes_) - 1)
            known = self.classes_[index] == y
        if not known.all():
            unknown = np.unique(y[~known])
            raise DataError(
                f"label(s) {unknown[:5].tolist()} were not seen in fit; this model knows classes {self.classes_.tolist()}"
            )
        return index.astype(np.int64)

    def transform(self, X, y=None) -> np.ndarray:
        """Posterior means E[z|x, y]: ``(n, *sample_shape)`` with labels ``y`` -> ``(n, latent_dim)``."""
        A = self._model_space(X)
        return self._map(self.module_.embed, A, self._class_indices(y, len(A)))

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        return self.fit(X, y, **fit_params).transform(X, y)

    def inverse_transform(self, Z, y=None) -> np.ndarray:
        """Decoder means of codes ``Z`` (n, latent_dim) for classes ``y``: ``(n, *sample_shape)``."""
        self._check_fitted()
        return self._decode_means(Z, self._class_indices(y, len(Z)))

    def reconstruct(self, X, y=None) -> np.ndarray:
        """``inverse_transform(transform(X, y), y)``: shape ``(n, *sample_shape)``."""
        return self.inverse_transform(self.transform(X, y), y)

    def sample(self, n_samples: int, y=None, random_state=None, sampler: str = "prior") -> np.ndarray:
        """Decoder means of ``n_samples`` sampled codes for class(es) ``y``: ``(n_samples, *sample_shape)``.

        ``y``: one label for all samples, one per sample, or None for the classes in turn.
        ``sampler`` as in :meth:`VAE.sample`.
        """
        Z = self._sample_codes(n_samples, random_state, sampler)
        if y is None:
            y = np.resize(self.classes_, len(Z))
        return self._decode_means(Z, self._class_indices(y, len(Z)))

    def score_samples(self, X, y=None, n_samples: int = 1000) -> np.ndarray:
        """Importance-sampled log p(x|y) of each sample, in nats: shape ``(n,)``; see :meth:`VAE.score_samples`."""
        A = self._model_space(X)
        return self._iw_scores(A, n_samples, self._class_indices(y, len(A)))

    def score(self, X, y=None, n_samples: int = 1000) -> float:
        """Mean of :meth:`score_samples`, in nats per example."""
        return float(np.mean(self.score_samples(X, y, n_samples)))
