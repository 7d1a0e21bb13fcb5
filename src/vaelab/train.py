"""The training loop: model-agnostic mini-batch Adam with early stopping, checkpoints and resume.

It knows nothing about the model beyond ``module.loss(batch) -> LossTerms`` (the objective and
its named parts, which the history records under the model's own names). Batches are index
slices of one tensor already on the device (no per-example Python objects), and the loop does not
synchronise with the host inside an epoch: per-batch terms stay on the device and are read once
per epoch. With a checkpoint path, the state after every epoch (weights, optimiser, RNG, history,
early stopping) is written atomically, and ``resume=True`` continues from it bit for bit.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, optimizer_tensors, restore_optimizer, save_checkpoint
from .errors import ConfigError, TrainingError, TrainingInterrupted
from .models.contract import LatentModel
from .optim import Adam
from .runtime import seeded, world


@dataclass
class TrainConfig:
    epochs: int | None = None  # passes over the data, an upper bound; None: max(10, enough for AUTO_STEPS steps)
    batch_size: int = 128  # examples per gradient step
    lr: float = 1e-3  # Adam learning rate
    patience: int | None = 10  # epochs without validation improvement before stopping; None: never stop
    patience_after: int = 0  # epochs before early stopping and best-weight tracking start (a KL warm-up's)
    grad_clip: float | None = None  # clip the global gradient norm to this value; None: no clipping
    progress: bool = False  # show a tqdm bar on stderr
    description: str = "fit"  # label of the progress bar
    checkpoint: Path | None = None  # file written after every epoch; None: no checkpoints
    resume: bool = False  # continue from `checkpoint` instead of starting afresh
    run_key: str = ""  # identifies data and settings; resuming a checkpoint with another key refuses
    shuffle_seed: int = 0  # epoch e shuffles with seed shuffle_seed + e: the same on every rank and on resume
    precision: str = "float32"  # "bfloat16": forward and backward under autocast; weights and Adam stay float32


@dataclass
class History:
    """Per-epoch means (nats per example) of the loss terms, on training and validation data."""

    train: dict[str, list[float]] = field(default_factory=dict)  # term name ("loss" first) -> per-epoch means
    validation: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0  # 1-based epoch whose weights were kept

    def to_dict(self) -> dict:
        return {"train": self.train, "validation": self.validation, "best_epoch": self.best_epoch}


# Adam steps that ``epochs=None`` allows at least: small data sets need many passes to converge.
AUTO_STEPS = 5_000
LOG_SECONDS = 10.0  # off a terminal, the least time between two progress lines


def max_epochs(config: TrainConfig, n_train: int) -> int:
    """``config.epochs``, or for None the larger of 10 epochs and the epochs of ``AUTO_STEPS`` Adam steps."""
    if config.epochs is not None:
        return config.epochs
    steps_per_epoch = max(1, math.ceil(n_train / config.batch_size))
    return max(10, math.ceil(AUTO_STEPS / steps_per_epoch))


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


PRECISIONS = ("float32", "bfloat16")


class _Objective(nn.Module):
    """``module.loss`` as a forward pass, so that DistributedDataParallel can hook it.

    Returns the loss and its named parts stacked ``(1 + n_terms,)``; ``names`` holds their names
    (``"loss"`` first) once the first batch has run.
    """

    def __init__(self, module: LatentModel, device: torch.device, precision: str):
        super().__init__()
        self.module = module
        self.device_type = device.type
        self.mixed = precision == "bfloat16"
        self.names: tuple[str, ...] = ()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        # autocast runs matmuls and convolutions in bfloat16 and keeps log/exp/softplus/sums in float32
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.mixed):
            terms = self.module.loss(*inputs).as_dict()
        if not self.names:
            self.names = tuple(terms)
        elif tuple(terms) != self.names:
            raise TrainingError(f"the model's loss terms changed from {self.names} to {tuple(terms)} between batches")
        return torch.stack(list(terms.values())).float()


def _names(objective: nn.Module) -> tuple[str, ...]:
    inner = objective.module if isinstance(objective, DistributedDataParallel) else objective
    return cast(_Objective, inner).names  # train() builds the objective: an _Objective, maybe wrapped


def _batch(X, index: torch.Tensor, prepare_batch) -> tuple[torch.Tensor, ...]:
    """The inputs of ``module.loss`` for rows ``index``: the prepared batch, then any labels ``X`` carries."""
    rows = X[index]
    if isinstance(rows, tuple):
        return (prepare_batch(rows[0]), *rows[1:])
    return (prepare_batch(rows),)


def _all_sum(t: torch.Tensor) -> torch.Tensor:
    if world()[1] > 1:
        dist.all_reduce(t)
    return t


@torch.no_grad()
def _mean_terms(objective: nn.Module, X: torch.Tensor, batch_size: int, prepare_batch) -> torch.Tensor:
    """Mean loss terms over ``X``, each rank taking every world_size-th row; reduced across ranks."""
    rank, size = world()
    sums = None  # the terms, then the row count
    for index in torch.arange(rank, len(X), size, device=X.device).split(batch_size):
        terms = objective(*_batch(X, index, prepare_batch))
        if sums is None:
            sums = torch.zeros(len(terms) + 1, device=X.device)
        sums[:-1] += terms * len(index)
        sums[-1] += len(index)
    if sums is None:
        raise TrainingError(
            "the validation split holds no rows on this rank; lower the world size or validation_fraction"
        )
    sums = _all_sum(sums)
    return sums[:-1] / sums[-1]


@dataclass
class _Progress:
    """What a checkpoint must restore besides weights, optimiser and RNG."""

    history: History = field(default_factory=History)
    epoch: int = 0  # last completed epoch
    best_loss: float = math.inf
    waited: int = 0
    finished: bool = False
    best_state: dict | None = None

    def meta(self, run_key: str, param_groups: dict) -> dict:
        return {
            "run_key": run_key,
            "epoch": self.epoch,
            "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
            "waited": self.waited,
            "finished": self.finished,
            "history": self.history.to_dict(),
            "param_groups": param_groups,
        }


def _save(path: Path, config: TrainConfig, module, optimizer, progress: _Progress, device) -> None:
    optim, groups = optimizer_tensors(optimizer)
    tensors = {"model": module.state_dict(), "optim": optim, "rng": _rng_state(device)}
    if progress.best_state is not None:
        tensors["best"] = progress.best_state
    save_checkpoint(path, tensors, progress.meta(config.run_key, groups))


def _restore(config: TrainConfig, module, optimizer, device) -> _Progress:
    if config.checkpoint is None:
        raise ConfigError("resume=True needs the checkpoint path to resume from; set checkpoint")
    # load_checkpoint checks the digest, schema, run identity and weights, naming what differs
    groups, meta = load_checkpoint(config.checkpoint, config.run_key, module.state_dict())
    module.load_state_dict(groups["model"])
    restore_optimizer(optimizer, groups.get("optim", {}), meta["param_groups"])
    _set_rng_state(groups["rng"], device)
    history = History(meta["history"]["train"], meta["history"]["validation"], meta["history"]["best_epoch"])
    best_loss = math.inf if meta["best_loss"] is None else meta["best_loss"]
    return _Progress(history, meta["epoch"], best_loss, meta["waited"], meta["finished"], groups.get("best"))


def train(
    module: LatentModel,
    X_train: torch.Tensor,
    X_val: torch.Tensor | None,
    config: TrainConfig,
    prepare_batch: Callable[[torch.Tensor], torch.Tensor] | None = None,
    epoch_hook: Callable[[torch.nn.Module, int], None] | None = None,
) -> History:
    """Fit ``module`` in place on ``X_train`` (n, ...); early-stop on ``X_val``, keep the best weights.

    ``X_train`` and ``X_val`` are tensors on the training device, or any object with ``len``,
    ``device`` and ``[LongTensor] -> Tensor`` (e.g. :class:`vaelab.data.rows.MappedRows`); an
    object whose rows come as a tuple ``(x, *extra)`` (e.g. labels) is trained on ``module.loss(x, *extra)``.

    ``prepare_batch`` maps each stored batch to the model's input (e.g. uint8 -> float in [0, 1],
    or a fresh binarisation); ``epoch_hook(module, epoch)`` runs before each epoch (e.g. a KL
    warm-up schedule) and must depend only on the epoch, so that resuming replays it. Returns the
    :class:`History`. Raises :class:`TrainingError` if a loss becomes NaN or infinite, or when
    interrupted (after the last checkpoint was written).
    """
    prepare_batch = prepare_batch or (lambda batch: batch)
    device = X_train.device
    rank, size = world()
    optimizer = Adam(module.parameters(), lr=config.lr)
    progress = _restore(config, module, optimizer, device) if config.resume else _Progress()
    objective: nn.Module = _Objective(module, device, config.precision)
    if size > 1:
        # Gradients averaged across ranks; every rank then takes the same Adam step.
        objective = DistributedDataParallel(objective, device_ids=[device] if device.type == "cuda" else None)
        torch.manual_seed(torch.initial_seed() + rank)  # independent reparameterisation noise per rank
    epochs = max_epochs(config, len(X_train))
    if progress.finished and progress.epoch < epochs and not _stopped_early(config, progress):
        progress.finished = False  # resumed with more epochs than the finished run had
    saved_epoch = progress.epoch if config.resume else 0
    # A live bar on a terminal; elsewhere (a log file, CI) plain lines, never carriage returns: the
    # first epoch, then one at most every LOG_SECONDS, and the last, so a long fit logs a few dozen
    # lines instead of one per epoch.
    report = config.progress and rank == 0
    live = report and sys.stderr.isatty()
    last_line = -math.inf
    bar = tqdm(
        range(progress.epoch + 1, epochs + 1) if not progress.finished else [],
        desc=config.description,
        disable=not live,
        leave=False,
    )
    try:
        for epoch in bar:
            if epoch_hook is not None:
                epoch_hook(module, epoch)
            _train_epoch(module, objective, optimizer, X_train, config, prepare_batch, progress, epoch)
            postfix = {name[:4]: f"{values[-1]:.4g}" for name, values in progress.history.train.items()}
            if X_val is None:
                progress.history.best_epoch = epoch
            else:
                # The same noise (reparameterisation, binarisation) in every validation pass: epochs
                # are compared on common random numbers, so early stopping sees the model, not the draw.
                with seeded(config.shuffle_seed + rank, device):
                    val_terms = _mean_terms(objective, X_val, 4 * config.batch_size, prepare_batch).tolist()
                for name, value in zip(_names(objective), val_terms, strict=True):
                    progress.history.validation.setdefault(name, []).append(value)
                postfix["val"] = f"{val_terms[0]:.4g}"
                if epoch <= config.patience_after:
                    progress.history.best_epoch = epoch  # no early stopping while the objective still changes
                elif val_terms[0] < progress.best_loss:
                    progress.best_loss, progress.waited, progress.history.best_epoch = val_terms[0], 0, epoch
                    progress.best_state = copy.deepcopy(module.state_dict())
                else:
                    progress.waited += 1
            bar.set_postfix(postfix)
            progress.epoch = epoch
            progress.finished = epoch == epochs or _stopped_early(config, progress)
            if report and not live and (progress.finished or time.monotonic() - last_line >= LOG_SECONDS):
                last_line = time.monotonic()
                line = ", ".join(f"{name} {value}" for name, value in postfix.items())
                print(f"{config.description} epoch {epoch}/{epochs}: {line}", file=sys.stderr, flush=True)
            if config.checkpoint is not None and world()[0] == 0:
                _save(config.checkpoint, config, module, optimizer, progress, device)
                saved_epoch = epoch
            if progress.finished:
                break
    except KeyboardInterrupt:
        if config.checkpoint is None:
            where = "nothing was saved (give an output directory to keep checkpoints)"
        elif saved_epoch:
            where = (
                f"the checkpoint of epoch {saved_epoch} is in {config.checkpoint.parent}; resume with "
                "fit(..., resume=True) or `vaelab fit ... --resume`"
            )
        else:
            where = (
                f"no epoch had finished, so {config.checkpoint.parent} holds no checkpoint; "
                "rerun the fit to start again"
            )
        raise TrainingInterrupted(f"training interrupted in epoch {progress.epoch + 1}: {where}") from None
    finally:
        bar.close()
    if progress.best_state is not None:
        module.load_state_dict(progress.best_state)
    module.eval()
    return progress.history


def _stopped_early(config: TrainConfig, progress: _Progress) -> bool:
    return config.patience is not None and progress.waited >= config.patience


def _train_epoch(
    module, objective, optimizer, X_train, config: TrainConfig, prepare_batch, progress: _Progress, epoch: int
) -> None:
    """One pass over ``X_train``; under torchrun each global batch is split across the ranks."""
    rank, size = world()
    module.train()
    order = torch.randperm(len(X_train), generator=torch.Generator().manual_seed(config.shuffle_seed + epoch))
    batches = [b[rank::size].to(X_train.device) for b in order.split(config.batch_size) if len(b) >= size]
    terms_per_batch: torch.Tensor | None = None  # (n_batches, 1 + n_terms), allocated at the first batch
    sizes = torch.tensor([len(b) for b in batches], device=X_train.device, dtype=torch.float32)
    parameters = [p for p in module.parameters() if p.requires_grad]
    for i, batch_index in enumerate(batches):
        terms = objective(*_batch(X_train, batch_index, prepare_batch))
        optimizer.zero_grad(set_to_none=True)
        terms[0].backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip, foreach=True)
        optimizer.step()
        if terms_per_batch is None:
            terms_per_batch = torch.empty(len(batches), len(terms), device=X_train.device)
        terms_per_batch[i] = terms.detach()
    if terms_per_batch is None:
        raise TrainingError(f"no training batch in epoch {epoch}: {len(X_train)} rows over {size} ranks")
    finite = torch.isfinite(terms_per_batch).all(dim=1)
    # first bad batch on any rank (len(batches) + 1 when none); one reduction per epoch
    first_bad = torch.where(finite, len(batches) + 1, torch.arange(len(batches), device=finite.device)).min()
    if size > 1:
        dist.all_reduce(first_bad, op=dist.ReduceOp.MIN)
    if int(first_bad) <= len(batches):
        if progress.best_state is not None:
            module.load_state_dict(progress.best_state)
        kept = f"the best weights so far (epoch {progress.history.best_epoch}) are kept" + (
            f" in {config.checkpoint}" if config.checkpoint is not None else ""
        )
        raise TrainingError(
            f"the loss became NaN or infinite in epoch {epoch}, batch {int(first_bad) + 1}; {kept}. Likely causes: "
            "a learning rate too high (lower lr), unscaled data, or a Gaussian variance collapsing; "
            "try a smaller lr, scaled or standardised data, or grad_clip"
        )
    weighted = torch.cat([(terms_per_batch * sizes[:, None]).sum(0), sizes.sum()[None]])
    weighted = _all_sum(weighted)
    means = weighted[:-1] / weighted[-1]
    for name, value in zip(_names(objective), means.tolist(), strict=True):
        progress.history.train.setdefault(name, []).append(value)
