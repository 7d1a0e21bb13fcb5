"""Data: loading named data sets and user files (`load`), and preprocessing (`Preprocessing`)."""

from __future__ import annotations

from .datasets import DATASET_NAMES, FILE_TYPES, Dataset, load
from .idx import read_idx
from .images import ImageFolder
from .preprocessing import BINARIZE, CHOICES, KINDS, Preprocessing, auto_kind, default_preprocessing

__all__ = [
    "BINARIZE",
    "CHOICES",
    "DATASET_NAMES",
    "FILE_TYPES",
    "KINDS",
    "Dataset",
    "ImageFolder",
    "Preprocessing",
    "auto_kind",
    "default_preprocessing",
    "load",
    "read_idx",
]
