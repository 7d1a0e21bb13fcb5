"""What training, the estimators and the metrics share about the process: devices, seeds, ranks.

``world()`` reads the torch.distributed process group (torchrun); ``resolve_device`` turns the
``device`` parameter into a torch device; ``seed_from`` turns ``random_state`` into one integer
seed, once; ``seeded`` runs a block under a seed without disturbing the caller's RNG.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from sklearn.utils import check_random_state

from .errors import ConfigError


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the torch.distributed process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when present (this rank's GPU under torchrun), else the CPU."""
    if device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device(
            "cuda", int(os.environ.get("LOCAL_RANK", 0)) if world()[1] > 1 else torch.cuda.current_device()
        )
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' was asked for but no CUDA GPU is available; use device='auto' or 'cpu'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ConfigError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return resolved


def seed_from(random_state) -> int:
    """An integer seed from ``None`` (fresh entropy), an int in [0, 2**32) or a ``numpy.random.RandomState``."""
    valid_int = (
        isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and 0 <= random_state < 2**32
    )
    if not (random_state is None or valid_int or isinstance(random_state, np.random.RandomState)):
        raise ConfigError(
            f"random_state must be None, an integer in [0, 2**32) or a numpy RandomState, got {random_state!r}"
        )
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block under ``torch.manual_seed(seed)``, restoring the caller's RNG state after."""
    cuda_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        yield
