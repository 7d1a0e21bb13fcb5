"""Sizes checked before any work: a model, a training run or an output that cannot fit is refused up front.

Each refusal says the size it would need, against the memory budget the data layer uses
(:func:`vaelab.data._arrays.memory_budget`, half of physical memory). Counts are checked before
anything is built (a config with 300,000 layers would take minutes just to describe on the meta
device); the network is then built on the meta device, which allocates nothing, and its
parameters counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from ..data._arrays import describe_bytes, memory_budget
from ..errors import ConfigError

MAX_LAYERS = 64  # hidden layers or conv stages: far past any useful depth here
MAX_WIDTH = 1 << 20  # units in one layer, or latent dimensions
MAX_IW_SAMPLES = 100_000  # importance samples per example: its standard error is already ~1/300 of K=1
MAX_TRAIN_SAMPLES = 10_000  # IWAE samples per example during training
_COUNTS = {
    "latent_dim": MAX_WIDTH,
    "top_latent_dim": MAX_WIDTH,
    "n_train_samples": MAX_TRAIN_SAMPLES,
    "prior_components": MAX_WIDTH,
    "batch_size": 1 << 24,
    "epochs": 1 << 24,
    "kl_warmup": 1 << 24,
}
# weights, gradients and Adam's two moments: four float32 copies of every parameter
_TRAINING_COPIES = 4


def check_sizes(params: Mapping, where: str) -> None:
    """Refuse layer lists longer than :data:`MAX_LAYERS` and sizes over their caps, naming ``where``."""
    for name in ("hidden", "channels"):
        sizes = params.get(name)
        if isinstance(sizes, (list, tuple)):
            if len(sizes) > MAX_LAYERS:
                raise ConfigError(f"{where}: {name} has {len(sizes)} layers; at most {MAX_LAYERS} are allowed")
            for size in sizes:
                if isinstance(size, int) and size > MAX_WIDTH:
                    raise ConfigError(f"{where}: {name} has a layer of {size} units; at most {MAX_WIDTH} are allowed")
    for name, cap in _COUNTS.items():
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            raise ConfigError(f"{where}: {name}={value} is over the limit of {cap}")


def module_bytes(estimator, sample_shape: tuple[int, ...], n_classes: int = 0) -> int:
    """Bytes of the float32 parameters and buffers of ``estimator``'s network for ``sample_shape``.

    The network is built on the meta device.
    """
    with torch.device("meta"):
        module = estimator._build_module(
            tuple(sample_shape), n_classes, estimator.get_params().get("binarize", "none") != "none"
        )
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def check_training_memory(estimator, sample_shape: tuple[int, ...], n_classes: int = 0, where: str = "fit") -> None:
    """Refuse a fit whose network and batch activations would exceed the memory budget.

    The estimate is a floor: four copies of every parameter (weights, gradients, two Adam
    moments) and one float32 activation per unit, sample and example of a batch.
    """
    params = estimator.get_params(deep=False)
    check_sizes(params, where)
    estimator._check_params()
    weights = module_bytes(estimator, sample_shape, n_classes)
    widths = math.prod(sample_shape) * 2 + sum(params.get("hidden") or ()) * 2 + 2 * int(params.get("latent_dim") or 1)
    widths += 2 * int(params.get("top_latent_dim") or 0)
    batch = int(params.get("batch_size") or 1) * int(params.get("n_train_samples") or 1)
    needed = _TRAINING_COPIES * weights + 4 * batch * widths
    budget = memory_budget()
    if needed > budget:
        raise ConfigError(
            f"{where}: this model would need at least {describe_bytes(needed)} to train ({describe_bytes(weights)} of "
            f"weights), over the budget of {describe_bytes(budget)} (half of this machine's memory); "
            "lower latent_dim, hidden, channels or n_train_samples"
        )


def check_output_bytes(n_rows: int, n_values: int, where: str, flag: str) -> None:
    """Refuse an output of ``n_rows`` rows of ``n_values`` numbers whose float64 working copy exceeds the budget."""
    if n_rows < 1:
        raise ConfigError(f"{where}: {flag} must be at least 1, got {n_rows}")
    needed = n_rows * n_values * 8
    budget = memory_budget()
    if needed > budget:
        raise ConfigError(
            f"{where}: {flag} {n_rows} would need {describe_bytes(needed)} in memory, over the budget of "
            f"{describe_bytes(budget)} (half of this machine's memory); ask for fewer rows"
        )


def check_iw_samples(k: int, where: str) -> None:
    """Refuse a number of importance samples outside [1, :data:`MAX_IW_SAMPLES`]."""
    if not 1 <= k <= MAX_IW_SAMPLES:
        raise ConfigError(
            f"{where}: --iw-samples {k} is outside [1, {MAX_IW_SAMPLES}]; {k} decoder passes per example "
            "would run for hours, and the estimate's error stops shrinking long before (1000 is the default)"
        )
