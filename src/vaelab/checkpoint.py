"""Training checkpoints: one safetensors file holding weights, optimiser state, RNG and progress.

Also the policy around them: where a run's checkpoint lives (:func:`checkpoint_path`) and what
identifies a run (:func:`run_key`), so that resuming with other data or settings is refused.

Tensors go in the safetensors body; everything else (epoch, history, early-stopping state,
optimiser hyper-parameters) goes as JSON in its string metadata, so reading a checkpoint executes
nothing. Writes are atomic (temporary file, fsync, rename): a kill at any instant leaves the
previous checkpoint readable.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .data._arrays import row_chunks
from .errors import ConfigError, ModelFileError

CHECKPOINT_FILE = "checkpoint.safetensors"
# Parameters that may change between a run and its resumption: they do not change what is learned
# per epoch (more epochs continue the run; progress bars and the device do not alter the maths).
RESUMABLE_PARAMS = ("epochs", "verbose", "device")


def data_fingerprint(X) -> str:
    """A digest of every row of ``X`` (n, ...), read chunk by chunk (a memory-mapped file without mapping it)."""
    digest = hashlib.sha256(repr((tuple(X.shape), str(X.dtype))).encode())
    for _, chunk in row_chunks(X):
        digest.update(np.ascontiguousarray(chunk).data)
    return digest.hexdigest()[:16]


def run_key(params: dict, X, labels: np.ndarray | None = None) -> str:
    """What identifies a training run: the estimator's ``params`` (less :data:`RESUMABLE_PARAMS`), the data and labels."""
    kept = {k: v for k, v in params.items() if k not in RESUMABLE_PARAMS}
    key = [repr(sorted(kept.items())), list(X.shape), str(X.dtype), data_fingerprint(X)]
    if labels is not None:
        key.append(hashlib.sha256(np.ascontiguousarray(labels).data).hexdigest()[:16])
    return json.dumps(key)


def checkpoint_path(checkpoint_dir, resume: bool, overwrite: bool) -> Path | None:
    """The checkpoint file of the run in ``checkpoint_dir`` (created), or None without one.

    Refuses to resume what does not exist, and to start over an existing checkpoint unless
    ``overwrite``.
    """
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
