"""Training checkpoints: one safetensors file holding weights, optimiser state, RNG and progress.

Tensors go in the safetensors body; everything else (epoch, history, early-stopping state,
optimiser hyper-parameters) goes as JSON in its string metadata, so reading a checkpoint executes
nothing. Writes are atomic (temporary file, fsync, rename): a kill at any instant leaves the
previous checkpoint readable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import ModelFileError

CHECKPOINT_FILE = "checkpoint.safetensors"


def write_atomic(path: Path, write) -> None:
    """Call ``write(tmp_path)``, fsync the result and rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_checkpoint(path: Path, tensors: dict[str, dict[str, torch.Tensor]], meta: dict) -> None:
    """Write named groups of tensors (``{"model": state_dict, ...}``) and JSON ``meta`` to ``path``."""
    flat = {
        f"{group}/{name}": t.detach().cpu().contiguous()
        for group, state in tensors.items()
        for name, t in state.items()
    }
    write_atomic(path, lambda tmp: save_file(flat, tmp, metadata={"vaelab": json.dumps(meta)}))


def load_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(tensor groups, meta)``."""
    try:
        with safe_open(path, framework="pt") as f:
            meta = json.loads((f.metadata() or {})["vaelab"])
            groups: dict[str, dict[str, torch.Tensor]] = {}
            for key in f.keys():
                group, name = key.split("/", 1)
                groups.setdefault(group, {})[name] = f.get_tensor(key)
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise ModelFileError(f"checkpoint {path} is unreadable ({exc}); start again without resuming") from None
    return groups, meta


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser's state dict into flat tensors and JSON-safe hyper-parameters."""
    state = optimizer.state_dict()
    tensors = {f"{index}.{key}": value for index, entries in state["state"].items() for key, value in entries.items()}
    return tensors, state["param_groups"]


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], param_groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for group in param_groups:
        group["betas"] = tuple(group.get("betas", (0.9, 0.999)))
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})
