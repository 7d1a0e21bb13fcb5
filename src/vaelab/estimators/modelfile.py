"""The saved-model format: a directory with ``config.json`` and ``weights.safetensors``.

Writing it, and checking it on read.

Nothing from the files is executed on load: the JSON names one of a fixed set of classes and its
parameters, each checked, and the weights are plain tensors read by safetensors and checked
against the module the config describes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file

from .._jsonfile import check_history, read_json
from .._version import __version__
from .._writes import clean_stale, replace_dir, staging_dir, write_atomic
from ..checkpoint import check_tensor
from ..data.splits import RECORD_FIELDS, RULES
from ..errors import ConfigError, ModelFileError
from .bounds import check_sizes

FORMAT = "vaelab-model"
FORMAT_VERSION = 2  # 2: config.json carries weights_sha256, the digest of the weights file
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
# Files a model directory may hold besides its own two: a finished run keeps its checkpoint.
COMPANIONS = ("checkpoint.safetensors",)
_FIELDS = {"format", "format_version", "vaelab_version", "class", "params", "fitted", "weights_sha256"}
_MIN_STD = 1e-30  # a smaller std scales a unit change past float32's range: no fitted model has one
# Buffers that hold variances (PPCA): a value <= 0 gives NaN log-likelihoods, so it is refused.
_POSITIVE = ("noise_variance", "eigenvalues")


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return value
    # A RandomState object cannot be written; the fitted weights already capture its effect.
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_replaceable(path: Path) -> None:
    """Refuse to save over a directory holding anything but a model (and its run's checkpoint)."""
    if path.exists() and not path.is_dir():
        raise ModelFileError(f"cannot save a model to {path}: a file of that name exists; choose a directory name")
    if path.is_dir():
        clean_stale(path)
        other = sorted(p.name for p in path.iterdir() if p.name not in {CONFIG_FILE, WEIGHTS_FILE, *COMPANIONS})
        if other:
            raise ModelFileError(
                f"cannot save a model to {path}: it holds other files ({', '.join(other[:5])}); "
                "save into a new or empty directory"
            )


def save(estimator, path) -> Path:
    """Write a fitted estimator to the directory ``path``, replacing a model there as a unit; returns the path.

    The new model is written whole in a directory beside ``path`` and swapped in by one rename, so
    a kill at any instant leaves the old model or the new one. ``config.json`` records the SHA-256
    of the weights file, which :func:`read_config`'s caller checks: files that do not belong
    together are refused. A run's checkpoint already in ``path`` is kept (hard-linked across).
    """
    fitted, state = estimator._get_fitted_state()
    path = Path(path)
    _check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(path)
    try:
        kept = f"the previous model in {path} is unchanged" if path.exists() else "nothing was saved"
        needed = sum(t.numel() * t.element_size() for t in state.values())
        write_atomic(staging / WEIGHTS_FILE, lambda tmp: save_file(state, tmp), needed=needed, kept=kept)
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "vaelab_version": __version__,
            "class": type(estimator).__name__,
            "params": {k: _jsonable(v) for k, v in estimator.get_params(deep=False).items()},
            "fitted": fitted,
            "weights_sha256": _sha256(staging / WEIGHTS_FILE),
        }
        text = json.dumps(config, indent=2, allow_nan=False)
        write_atomic(staging / CONFIG_FILE, lambda tmp: tmp.write_text(text), needed=len(text), kept=kept)
        for name in COMPANIONS:
            if (path / name).is_file():
                try:
                    os.link(path / name, staging / name)
                except OSError:  # a file system without hard links
                    shutil.copy2(path / name, staging / name)
        replace_dir(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def read_config(path: Path) -> dict:
    """The checked ``config.json`` of the model directory ``path`` (ModelFileError naming what is wrong)."""
    config_path = path / CONFIG_FILE
    if not path.is_dir():
        raise ModelFileError(
            f"no saved model at {path}: it is not a directory; "
            "pass the directory written by save() or `vaelab fit --out`"
        )
    if not config_path.is_file():
        raise ModelFileError(f"{path} holds no {CONFIG_FILE}; it is not a saved vaelab model (or it is incomplete)")
    config = read_json(config_path, "the model directory is corrupted")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f'{config_path} is not a vaelab model config (missing "format": "{FORMAT}")')
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{config_path} has format_version {config.get('format_version')!r}; this vaelab reads version "
            f"{FORMAT_VERSION}: refit the model with this version"
        )
    unknown, missing = set(config) - _FIELDS, _FIELDS - set(config)
    if unknown or missing:
        raise ModelFileError(
            f"{config_path}: "
            + "; ".join(
                [f"unknown field(s) {sorted(unknown)}"] * bool(unknown)
                + [f"missing field(s) {sorted(missing)}"] * bool(missing)
            )
        )
    for field, kind in [("params", dict), ("fitted", dict), ("class", str), ("weights_sha256", str)]:
        if not isinstance(config[field], kind):
            raise ModelFileError(f"{config_path}: field {field!r} must be a {kind.__name__}")
    try:
        check_sizes(config["params"], str(config_path))
    except ConfigError as exc:
        raise ModelFileError(str(exc)) from None
    fitted = config["fitted"]
    required = {"sample_shape_", "preprocessing_", "history_", "seed_"}
    if not required <= set(fitted) <= required | {"classes_", "training_data_"}:
        raise ModelFileError(
            f"{config_path}: field 'fitted' must hold sample_shape_, preprocessing_, history_, seed_ and, for a "
            f"conditional model, classes_ (and, from `vaelab fit`, training_data_); got {sorted(fitted)}"
        )
    seed = fitted["seed_"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ModelFileError(f"{config_path}: fitted.seed_ must be an integer in [0, 2**32), got {seed!r}")
    classes = fitted.get("classes_")
    if classes is not None and not (
        isinstance(classes, list)
        and classes
        and (all(isinstance(c, str) for c in classes) or all(isinstance(c, int) for c in classes))
        and all(a < b for a, b in zip(classes, classes[1:], strict=False))
    ):
        raise ModelFileError(
            f"{config_path}: fitted.classes_ must be a non-empty sorted list of distinct integers or strings"
        )
    shape = fitted["sample_shape_"]
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 4
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s < 1 << 31 for s in shape)
    ):
        raise ModelFileError(
            f"{config_path}: fitted.sample_shape_ must be a list of positive integers (1 to 4 of them), got {shape!r}"
        )
    check_history(fitted["history_"], f"{config_path}: fitted.history_")
    _check_preprocessing(fitted["preprocessing_"], config_path)
    _check_training_data(fitted.get("training_data_"), config_path)
    return config


def _check_training_data(record, config_path: Path) -> None:
    """Refuse a held-out record (:func:`vaelab.data.splits.split_record`) with missing or mistyped fields."""
    if record is None:
        return
    counts = ("n_rows", "n_train", "n_test")
    ok = (
        isinstance(record, dict)
        and set(record) == set(RECORD_FIELDS)
        and isinstance(record["source"], str)
        and record["rule"] in RULES
        and all(isinstance(record[k], int) and not isinstance(record[k], bool) and record[k] >= 0 for k in counts)
        and isinstance(record["test_sha256"], str)
        and len(record["test_sha256"]) == 64
        and (record["seed"] is None or (isinstance(record["seed"], int) and not isinstance(record["seed"], bool)))
        and (record["test_fraction"] is None or isinstance(record["test_fraction"], (int, float)))
    )
    if not ok:
        raise ModelFileError(
            f"{config_path}: fitted.training_data_ must be an object with {', '.join(RECORD_FIELDS)} "
            f"(the held-out split `vaelab fit` kept back); the model file is corrupted, refit it"
        )


def _check_preprocessing(pre, config_path: Path) -> None:
    """Refuse fitted preprocessing values no fit produces (they turn every code into NaN or inf)."""
    if not isinstance(pre, dict):
        raise ModelFileError(f"{config_path}: fitted.preprocessing_ must be an object")
    for name, low in (("std", _MIN_STD), ("mean", None)):
        values = pre.get(name)
        if values is None:
            continue
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise ModelFileError(f"{config_path}: fitted.preprocessing_.{name} must be a list of numbers")
        if low is not None and any(not low <= abs(v) for v in values):
            raise ModelFileError(
                f"{config_path}: fitted.preprocessing_.std holds {min(values, key=abs):g}, below {low:g}: no fit "
                "gives that (it would turn codes into NaN); the model file is corrupted, refit it"
            )
        if any(abs(v) > 1e30 for v in values):
            raise ModelFileError(
                f"{config_path}: fitted.preprocessing_.{name} holds a value over 1e30; the model file is corrupted"
            )


def weights_reader(weights_path: Path, sha256: str | None = None):
    """``read(expected)``: the tensors of ``weights_path``, checked against the state dict ``expected``.

    ``sha256``: the digest ``config.json`` recorded; a weights file with another digest (not
    written with that config, or altered since) is refused before it is parsed.
    """

    def read(expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not weights_path.is_file():
            raise ModelFileError(f"{weights_path.parent} holds no {WEIGHTS_FILE}; the saved model is incomplete")
        size = weights_path.stat().st_size
        claimed = sum(t.numel() * t.element_size() for t in expected.values())
        if size > 2 * claimed + (1 << 20):
            raise ModelFileError(
                f"{weights_path} is {size} bytes, far more than the {claimed} the config implies; "
                "it does not belong to this config"
            )
        blob = weights_path.read_bytes()
        if sha256 is not None and hashlib.sha256(blob).hexdigest() != sha256:
            raise ModelFileError(
                f"{weights_path} does not match {CONFIG_FILE} (its SHA-256 differs from the one recorded): the "
                "files do not belong together or the weights were altered; save or fit the model again"
            )
        try:
            state = load_bytes(blob)
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{weights_path} is corrupted or not a safetensors file ({exc})") from None
        if set(state) != set(expected):
            raise ModelFileError(
                f"{weights_path} does not match {CONFIG_FILE}: missing {sorted(set(expected) - set(state))}, "
                f"unexpected {sorted(set(state) - set(expected))}"
            )
        for name, tensor in state.items():
            check_tensor(tensor, expected[name], f"{weights_path}: tensor {name!r}")
            if name.rsplit(".", 1)[-1] in _POSITIVE and not (tensor > 0).all():
                raise ModelFileError(
                    f"{weights_path}: tensor {name!r} must be positive (a variance); the model file is corrupted"
                )
        return state

    return read
