"""Data: loading named data sets and user files (`load`), and preprocessing (`Preprocessing`)."""

from __future__ import annotations

from .datasets import DATASET_NAMES, FILE_TYPES, Dataset, load
from .idx import read_idx
from .images import ImageFolder
from .preprocessing import BINARIZE, KINDS, Preprocessing, default_preprocessing

__all__ = [
    "BINARIZE",
    "DATASET_NAMES",
    "FILE_TYPES",
    "KINDS",
    "Dataset",
    "ImageFolder",
    "Preprocessing",
    "default_preprocessing",
    "load",
    "read_idx",
]
