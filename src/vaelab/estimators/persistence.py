"""Saving and loading fitted estimators (re-exported as :mod:`vaelab.io` and ``vaelab.save``/``vaelab.load``).

The file format and :func:`save` are :mod:`.modelfile`'s; :func:`load` finds the class a config
names in the registry and restores it through the estimators' persistence hook
(``_set_fitted_state``), never their private fitting API.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError, VaelabError
from .modelfile import CONFIG_FILE, FORMAT, FORMAT_VERSION, WEIGHTS_FILE, read_config, save, weights_reader
from .registry import CLASSES

__all__ = ["load", "save", "FORMAT", "FORMAT_VERSION", "CONFIG_FILE", "WEIGHTS_FILE"]


def load(path):
    """Load an estimator saved by :func:`save` (or ``vaelab fit --out``) from directory ``path``."""
    path = Path(path)
    config = read_config(path)
    cls = CLASSES.get(config["class"])
    if cls is None:
        raise ModelFileError(
            f"{path / CONFIG_FILE}: unknown class {config['class']!r}; expected one of {sorted(CLASSES)}"
        )
    unknown = sorted(set(config["params"]) - set(cls.params.names))
    if unknown:
        raise ModelFileError(f"{path / CONFIG_FILE}: unknown parameter(s) {unknown} for {cls.__name__}")
    fitted = config["fitted"]
    if set(cls.conditioning.state_keys) != set(fitted) & {"classes_"}:
        raise ModelFileError(f"{path / CONFIG_FILE}: fitted.classes_ is given exactly for a conditional model")
    estimator = cls(**cls.params.from_json(config["params"]))
    try:
        estimator._set_fitted_state(fitted, weights_reader(path / WEIGHTS_FILE, config["weights_sha256"]))
    except ModelFileError:
        raise
    except (VaelabError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise ModelFileError(f"{path / CONFIG_FILE}: invalid parameters: {exc}") from None
    return estimator
