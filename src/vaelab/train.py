"""The training loop: model-agnostic mini-batch Adam with early stopping and a progress bar.

It knows nothing about the model beyond ``module.loss(batch) -> LossTerms``. Batches are index
slices of one tensor already on the device (no per-example Python objects), and the loop never
synchronises with the host inside an epoch: per-batch terms are summed on the device and read once
per epoch.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from .errors import ConfigError, TrainingError

_TERMS = ("loss", "reconstruction", "kl")


@dataclass
class TrainConfig:
    epochs: int = 50  # passes over the training data (an upper bound with early stopping)
    batch_size: int = 128  # examples per gradient step
    lr: float = 1e-3  # Adam learning rate
    patience: int | None = 10  # epochs without validation improvement before stopping; None: never stop
    progress: bool = False  # show a tqdm bar on stderr
    description: str = "fit"  # label of the progress bar


@dataclass
class History:
    """Per-epoch means (nats per example) of the loss terms, on training and validation data."""

    train: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in _TERMS})
    validation: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in _TERMS})
    best_epoch: int = 0  # 1-based epoch whose weights were kept

    def to_dict(self) -> dict:
        return {"train": self.train, "validation": self.validation, "best_epoch": self.best_epoch}


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; other strings are torch device names."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was asked for but no CUDA GPU is available; use device='auto' or 'cpu'")
    return resolved


def seed_from(random_state) -> int:
    """An integer seed from ``None`` (fresh entropy), an int or a ``numpy.random.RandomState``."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block under ``torch.manual_seed(seed)``, restoring the caller's RNG state after."""
    cuda_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def _mean_terms(module: torch.nn.Module, X: torch.Tensor, batch_size: int) -> torch.Tensor:
    sums = torch.zeros(len(_TERMS), device=X.device)
    for start in range(0, len(X), batch_size):
        batch = X[start : start + batch_size]
        terms = module.loss(batch)
        sums += torch.stack([terms.loss, terms.reconstruction, terms.kl]) * len(batch)
    return sums / len(X)


def train(
    module: torch.nn.Module,
    X_train: torch.Tensor,
    X_val: torch.Tensor | None,
    config: TrainConfig,
) -> History:
    """Fit ``module`` in place on ``X_train`` (n, d); early-stop on ``X_val`` and keep the best weights.

    Returns the :class:`History`. Raises :class:`TrainingError` if a loss becomes NaN or infinite.
    """
    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    history = History()
    best_loss, best_state, waited = math.inf, None, 0
    n = len(X_train)
    bar = tqdm(range(1, config.epochs + 1), desc=config.description, disable=not config.progress, leave=False)
    for epoch in bar:
        module.train()
        sums = torch.zeros(len(_TERMS), device=X_train.device)
        for batch_index in torch.randperm(n, device=X_train.device).split(config.batch_size):
            batch = X_train[batch_index]
            terms = module.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            optimizer.step()
            sums += torch.stack([terms.loss, terms.reconstruction, terms.kl]).detach() * len(batch)
        train_terms = (sums / n).tolist()
        if not all(map(math.isfinite, train_terms)):
            raise TrainingError(
                f"the training loss became {train_terms[0]} in epoch {epoch}; lower the learning rate "
                "(lr), check that the data are scaled, or use a likelihood that fits the data"
            )
        for name, value in zip(_TERMS, train_terms):
            history.train[name].append(value)
        postfix = {"loss": f"{train_terms[0]:.4g}", "rec": f"{train_terms[1]:.4g}", "kl": f"{train_terms[2]:.4g}"}
        module.eval()
        if X_val is None:
            history.best_epoch = epoch
        else:
            val_terms = _mean_terms(module, X_val, 4 * config.batch_size).tolist()
            for name, value in zip(_TERMS, val_terms):
                history.validation[name].append(value)
            postfix["val"] = f"{val_terms[0]:.4g}"
            if val_terms[0] < best_loss:
                best_loss, waited, history.best_epoch = val_terms[0], 0, epoch
                best_state = copy.deepcopy(module.state_dict())
            else:
                waited += 1
        bar.set_postfix(postfix)
        if config.patience is not None and waited >= config.patience:
            break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return history
