"""The saved-model format: a directory with ``config.json`` and ``weights.safetensors``; writing it, and checking it on read.

Nothing from the files is executed on load: the JSON names one of a fixed set of classes and its
parameters, each checked, and the weights are plain tensors read by safetensors and checked
against the module the config describes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .._version import __version__
from ..checkpoint import write_atomic
from ..errors import ModelFileError

FORMAT = "vaelab-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return value
    # A RandomState object cannot be written; the fitted weights already capture its effect.
    return None


def save(estimator, path) -> Path:
    """Write a fitted estimator to the directory ``path`` (created if needed); returns the path."""
    fitted, state = estimator._get_fitted_state()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vaelab_version": __version__,
        "class": type(estimator).__name__,
        "params": {k: _jsonable(v) for k, v in estimator.get_params(deep=False).items()},
        "fitted": fitted,
    }
    # Weights first, config last: a directory whose config is written is complete.
    write_atomic(path / WEIGHTS_FILE, lambda tmp: save_file(state, tmp))
    write_atomic(path / CONFIG_FILE, lambda tmp: tmp.write_text(json.dumps(config, indent=2)))
    return path


def read_config(path: Path) -> dict:
    config_path = path / CONFIG_FILE
    if not path.is_dir():
        raise ModelFileError(f"no saved model at {path}: it is not a directory; pass the directory written by save() or `vaelab fit --out`")
    if not config_path.is_file():
        raise ModelFileError(f"{path} holds no {CONFIG_FILE}; it is not a saved vaelab model (or it is incomplete)")
    try:
        config = json.loads(config_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{config_path} is not valid JSON ({exc}); the model directory is corrupted") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{config_path} is not a vaelab model config (missing \"format\": \"{FORMAT}\")")
    expected = {"format", "format_version", "vaelab_version", "class", "params", "fitted"}
    unknown, missing = set(config) - expected, expected - set(config)
    if unknown or missing:
        raise ModelFileError(
            f"{config_path}: " + "; ".join(
                [f"unknown field(s) {sorted(unknown)}"] * bool(unknown) + [f"missing field(s) {sorted(missing)}"] * bool(missing)
            )
        )
    if config["format_version"] != FORMAT_VERSION:
        raise ModelFileError(
            f"{config_path} has format_version {config['format_version']!r}; this vaelab reads version {FORMAT_VERSION}"
        )
    for field, kind in [("params", dict), ("fitted", dict), ("class", str)]:
        if not isinstance(config[field], kind):
            raise ModelFileError(f"{config_path}: field {field!r} must be a {kind.__name__}")
    fitted = config["fitted"]
    required = {"sample_shape_", "preprocessing_", "history_", "seed_"}
    if not required <= set(fitted) <= required | {"classes_"}:
        raise ModelFileError(
            f"{config_path}: field 'fitted' must hold sample_shape_, preprocessing_, history_, seed_ and, for a "
            f"conditional model, classes_; got {sorted(fitted)}"
        )
    seed = fitted["seed_"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ModelFileError(f"{config_path}: fitted.seed_ must be an integer in [0, 2**32), got {seed!r}")
    classes = fitted.get("classes_")
    if classes is not None and not (
        isinstance(classes, list) and classes
        and (all(isinstance(c, str) for c in classes) or all(isinstance(c, int) for c in classes))
        and all(a < b for a, b in zip(classes, classes[1:]))
    ):
        raise ModelFileError(f"{config_path}: fitted.classes_ must be a non-empty sorted list of distinct integers or strings")
    shape = fitted["sample_shape_"]
    if not isinstance(shape, list) or not shape or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ModelFileError(f"{config_path}: fitted.sample_shape_ must be a list of positive integers, got {shape!r}")
    if fitted["history_"] is not None and not isinstance(fitted["history_"], dict):
        raise ModelFileError(f"{config_path}: fitted.history_ must be an object or null")
    return config


def weights_reader(weights_path: Path):
    """``read(expected)``: the tensors of ``weights_path``, checked against the state dict ``expected``."""

    def read(expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not weights_path.is_file():
            raise ModelFileError(f"{weights_path.parent} holds no {WEIGHTS_FILE}; the saved model is incomplete")
        try:
            state = load_file(weights_path)
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(f"{weights_path} is corrupted or not a safetensors file ({exc})") from None
        if set(state) != set(expected):
            raise ModelFileError(
                f"{weights_path} does not match {CONFIG_FILE}: missing {sorted(set(expected) - set(state))}, "
                f"unexpected {sorted(set(state) - set(expected))}"
            )
        for name, tensor in state.items():
            if tensor.shape != expected[name].shape:
                raise ModelFileError(
                    f"{weights_path}: tensor {name!r} has shape {tuple(tensor.shape)}, but the config implies "
                    f"{tuple(expected[name].shape)}"
                )
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise ModelFileError(f"{weights_path}: tensor {name!r} holds NaN or infinite values")
        return state

    return read
