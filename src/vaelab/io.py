"""Saving and loading fitted estimators; the implementation is :mod:`vaelab.estimators.persistence`."""

from __future__ import annotations

from .estimators.persistence import CONFIG_FILE, FORMAT, FORMAT_VERSION, WEIGHTS_FILE, load, save

__all__ = ["load", "save", "FORMAT", "FORMAT_VERSION", "CONFIG_FILE", "WEIGHTS_FILE"]
