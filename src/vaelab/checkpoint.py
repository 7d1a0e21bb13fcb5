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
import math
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ._jsonfile import check_history, parse_json
from ._writes import write_atomic
from .data._arrays import row_chunks
from .errors import ConfigError, ModelFileError
from .optim import Adam

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
    """What identifies a training run: the estimator's ``params`` (less :data:`RESUMABLE_PARAMS`), the data and labels.

    A JSON object with the parts named, so a refusal can say which part differs (:func:`key_difference`).
    """
    kept = {k: repr(v) for k, v in sorted(params.items()) if k not in RESUMABLE_PARAMS}
    key = {"params": kept, "data": [list(X.shape), str(X.dtype), data_fingerprint(X)]}
    if labels is not None:
        key["labels"] = hashlib.sha256(np.ascontiguousarray(labels).data).hexdigest()[:16]
    return json.dumps(key)


def key_difference(saved: str, current: str) -> str:
    """What differs between two :func:`run_key` values, in words ("beta=4.0 (now 1.0)", "other data ...")."""
    try:
        old, new = json.loads(saved), json.loads(current)
        parts = []
        for name in sorted(set(old["params"]) | set(new["params"])):
            a, b = old["params"].get(name, "unset"), new["params"].get(name, "unset")
            if a != b:
                parts.append(f"{name}={a} (now {b})")
        if old["data"][:2] != new["data"][:2]:
            parts.append(
                f"data of shape {tuple(old['data'][0])} {old['data'][1]} (now {tuple(new['data'][0])} {new['data'][1]})"
            )
        elif old["data"] != new["data"]:
            parts.append("other data values (the same shape, different contents)")
        if old.get("labels") != new.get("labels"):
            parts.append("other labels")
        return ", ".join(parts) or "other settings"
    except (TypeError, KeyError, ValueError, IndexError):
        return "another vaelab version or other settings"


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
        raise ConfigError(
            f"nothing to resume: {checkpoint_dir} holds no checkpoint (no epoch had finished); "
            "fit without resume to start the run"
        )
    if not resume and not overwrite and path.exists():
        raise ConfigError(
            f"{checkpoint_dir} already holds a training checkpoint; pass resume=True to continue "
            "it or overwrite=True to start afresh"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _digest(flat: dict[str, torch.Tensor], meta_text: str) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, and the metadata: any bit flip changes it."""
    digest = hashlib.sha256(meta_text.encode())
    for key in sorted(flat):
        t = flat[key].detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: Path, tensors: dict[str, dict[str, torch.Tensor]], meta: dict) -> None:
    """Write named groups of tensors (``{"model": state_dict, ...}``) and JSON ``meta`` to ``path``.

    Out of space, the previous checkpoint is kept and a :class:`vaelab.errors.DiskFullError` names
    the path and the size needed.
    """
    flat = {
        f"{group}/{name}": t.detach().cpu().contiguous()
        for group, state in tensors.items()
        for name, t in state.items()
    }
    text = json.dumps(meta, allow_nan=False)
    metadata = {"vaelab": text, "sha256": _digest(flat, text)}
    needed = sum(t.numel() * t.element_size() for t in flat.values()) + len(text)
    previous = "the previous checkpoint is kept" if path.exists() else "no checkpoint was written"
    write_atomic(
        path,
        lambda tmp: save_file(flat, tmp, metadata=metadata),
        needed=needed,
        kept=f"{previous}; free some space, then resume with --resume (fit(..., resume=True))",
    )


def load_checkpoint(path: Path, run_key: str | None = None, model: dict[str, torch.Tensor] | None = None):
    """Read a checkpoint written by :func:`save_checkpoint`: ``(tensor groups, meta)``, checked.

    Its digest, the schema of its metadata and, given ``model`` (the state dict it must restore),
    the names, shapes, dtypes and finiteness of its weights are checked; given ``run_key``, a
    checkpoint of another run is refused, naming what differs. Every refusal is a
    :class:`ModelFileError` or :class:`ConfigError` that says how to go on.
    """
    fresh = "start afresh with --overwrite (fit(..., overwrite=True))"
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            groups: dict[str, dict[str, torch.Tensor]] = {}
            flat = {}
            for key in f.keys():  # noqa: SIM118  # safe_open is not iterable, only .keys() lists its tensors
                flat[key] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"checkpoint {path} is unreadable ({exc}); {fresh}") from None
    if set(metadata) != {"vaelab", "sha256"} or metadata["sha256"] != _digest(flat, metadata["vaelab"]):
        raise ModelFileError(f"checkpoint {path} is corrupted (its digest does not match its contents); {fresh}")
    for key, tensor in flat.items():
        group, _, name = key.partition("/")
        groups.setdefault(group, {})[name] = tensor
    meta = parse_json(metadata["vaelab"], f"checkpoint {path} metadata", fresh)
    meta = check_meta(meta, groups, f"checkpoint {path}", fresh)
    if run_key is not None and meta["run_key"] != run_key:
        raise ConfigError(
            f"checkpoint {path} was written for {key_difference(meta['run_key'], run_key)}; resume with the "
            f"same data and parameters, or {fresh}"
        )
    if model is not None:
        for group in ("model", "best"):
            if group not in groups:
                continue
            if set(groups[group]) != set(model):
                raise ModelFileError(
                    f"checkpoint {path}: {group} weights do not match the model (missing "
                    f"{sorted(set(model) - set(groups[group]))[:3]}, "
                    f"unexpected {sorted(set(groups[group]) - set(model))[:3]}); {fresh}"
                )
            for name, tensor in groups[group].items():
                try:
                    check_tensor(tensor, model[name], f"checkpoint {path}: {group}/{name}")
                except ModelFileError as exc:
                    raise ModelFileError(f"{exc}; {fresh}") from None
    return groups, meta


def check_tensor(tensor: torch.Tensor, expected: torch.Tensor, where: str) -> None:
    """Refuse a saved tensor of another shape or dtype than ``expected`` (never cast), or holding NaN/inf."""
    if tensor.shape != expected.shape:
        raise ModelFileError(f"{where} has shape {tuple(tensor.shape)}, but the config implies {tuple(expected.shape)}")
    if tensor.dtype != expected.dtype:
        raise ModelFileError(f"{where} is {tensor.dtype}, but the model needs {expected.dtype}; the file is corrupted")
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise ModelFileError(f"{where} holds NaN or infinite values; the file is corrupted")


_META: dict[str, type | tuple[type, ...]] = {
    "run_key": str,
    "epoch": int,
    "best_loss": (float, int, type(None)),
    "waited": int,
    "finished": bool,
    "history": dict,
    "param_groups": list,
}


def check_meta(meta: object, groups: dict, where: str, fresh: str) -> dict:
    """Refuse checkpoint metadata or tensor groups that :func:`save_checkpoint` cannot have written.

    Returns ``meta``, now known to be a dict of the fields :func:`save_checkpoint` writes.
    """

    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{where} is corrupted ({what}); {fresh}")

    if not isinstance(meta, dict) or set(meta) != set(_META):
        raise bad("its metadata lacks or adds fields")
    for name, kind in _META.items():
        if not isinstance(meta[name], kind) or (kind is int and isinstance(meta[name], bool)):
            raise bad(f"{name} has the wrong type")
    if meta["epoch"] < 1 or meta["waited"] < 0:
        raise bad(f"epoch {meta['epoch']}, waited {meta['waited']}")
    if meta["best_loss"] is not None and not math.isfinite(meta["best_loss"]):
        raise bad("best_loss is not finite")
    try:
        check_history(meta["history"], where)
    except ModelFileError:
        raise bad("its history has the wrong shape or types") from None
    if any(len(v) != meta["epoch"] for v in meta["history"]["train"].values()):
        raise bad(f"its history does not hold {meta['epoch']} epochs")
    if not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in meta["param_groups"]):
        raise bad("its optimiser groups are malformed")
    if not {"model", "rng"} <= set(groups) <= {"model", "rng", "optim", "best"}:
        raise bad(f"tensor groups {sorted(groups)}; expected model, rng, optim and best")
    if set(groups["rng"]) - {"cpu", "cuda"} or any(t.dtype != torch.uint8 for t in groups["rng"].values()):
        raise bad("its random-number state is malformed")
    return meta


def optimizer_tensors(optimizer: Adam) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser's state dict into flat tensors and JSON-safe hyper-parameters."""
    state = optimizer.state_dict()
    tensors = {f"{index}.{key}": value for index, entries in state["state"].items() for key, value in entries.items()}
    return tensors, state["param_groups"]


def restore_optimizer(optimizer: Adam, tensors: dict[str, torch.Tensor], param_groups: list) -> None:
    """Load the optimiser state, refusing entries that do not fit ``optimizer``'s parameters."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    bad = (
        "checkpoint optimiser state {} does not fit the model; start afresh with --overwrite (fit(..., overwrite=True))"
    )
    for key, value in tensors.items():
        index, _, name = key.partition(".")
        # the entries' names and shapes are the optimiser's to check (load_state_dict's ValueError)
        fits = index.isdigit() and int(index) < len(params)
        if not fits or not value.is_floating_point() or not value.isfinite().all():
            raise ModelFileError(bad.format(repr(key)))
        state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise ModelFileError(bad.format(f"({exc})")) from None
