"""The held-out split every command uses, and the record a fitted model keeps of it.

A named data set has its standard test split; a user file has none, so a seeded fraction of its
rows is held out -- the same rows for ``fit`` (which keeps them back), ``evaluate``, ``encode
--split test``, ``compare``, ``sweep`` and ``report``. ``vaelab fit`` stores :func:`split_record`
in the model; :func:`held_out_status` then tells whether the rows a command scores are the ones
that model never saw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import read_rows, row_chunks
from .images import ImageFolder

TEST_FRACTION = 0.2  # of a user file's rows, held out when it has no test split
SPLIT_SEED = 0
RULES = ("standard", "seeded")  # the source's own test split, or a seeded TEST_FRACTION of its rows
RECORD_FIELDS = ("source", "rule", "test_fraction", "seed", "n_rows", "n_train", "n_test", "test_sha256")


@dataclass(frozen=True)
class Split:
    """A data set's training and held-out rows, with their labels when it has them.

    ``rule``: ``"standard"`` (the source's own test split) or ``"seeded"`` (``test_fraction`` of
    its rows drawn with ``seed``); ``n_rows``: the rows of the source, both parts together.
    """

    X_train: Any  # ndarray, or a lazy ImageFolder when asked for (see held_out_split)
    X_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    rule: str
    n_rows: int
    test_fraction: float | None = None
    seed: int | None = None


def _take(X, rows: np.ndarray, lazy: bool):
    """Rows ``rows`` of ``X``: a lazy image folder stays lazy when ``lazy``; other data are read into memory."""
    if lazy and isinstance(X, ImageFolder):
        return ImageFolder([X.paths[i] for i in rows.tolist()], X.mode, X.shape[2], X.shape[3], X.where)
    return read_rows(X, rows)


def held_out_split(dataset, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED, *, lazy: bool = False):
    """The dataset's standard split, or a seeded ``test_fraction`` hold-out when it has none.

    The one place a hold-out is drawn: every command and the labels beside the rows see the same
    rows. ``lazy``: the training rows of a lazy `ImageFolder` stay one (``fit`` decodes them per
    batch); otherwise both parts are in-memory arrays.
    """
    if dataset.X_test is not None:
        n_rows = len(dataset.X_train) + len(dataset.X_test)
        return Split(dataset.X_train, dataset.X_test, dataset.y_train, dataset.y_test, "standard", n_rows)
    n_rows = len(dataset.X_train)
    order = np.random.default_rng(seed).permutation(n_rows)
    n_test = max(1, int(round(test_fraction * n_rows)))
    train, test = np.sort(order[n_test:]), np.sort(order[:n_test])
    y = dataset.y_train
    return Split(
        _take(dataset.X_train, train, lazy),
        _take(dataset.X_train, test, False),
        None if y is None else y[train],
        None if y is None else y[test],
        "seeded",
        n_rows,
        test_fraction,
        seed,
    )


def rows_digest(X) -> str:
    """SHA-256 of the rows of ``X`` (their dtype, shape and values, in order), read in chunks."""
    digest = hashlib.sha256(f"{np.dtype(X.dtype).str}{tuple(X.shape)}".encode())
    for _, chunk in row_chunks(X):
        digest.update(np.ascontiguousarray(chunk).tobytes())
    return digest.hexdigest()


def split_record(name: str, split: Split) -> dict:
    """What a model fitted on ``split.X_train`` records of its data: JSON-safe, fields ``RECORD_FIELDS``."""
    return {
        "source": name,
        "rule": split.rule,
        "test_fraction": split.test_fraction,
        "seed": split.seed,
        "n_rows": split.n_rows,
        "n_train": len(split.X_train),
        "n_test": len(split.X_test),
        "test_sha256": rows_digest(split.X_test),
    }


def _describe(split: Split) -> str:
    if split.rule == "standard":
        return "the source's test split"
    return f"a seeded {split.test_fraction:.0%} of its rows, seed {split.seed}"


def held_out_status(record: dict | None, split: Split, name: str) -> tuple[bool, str]:
    """Whether ``split.X_test`` is unseen by the model that kept ``record``, and that in words.

    True only when the model recorded this very test split (the same rows, by digest): then none
    of them was trained on. A model without a record (fitted outside ``vaelab fit``), or fitted on
    other data, may have seen them, and the words say so.
    """
    n = len(split.X_test)
    if record is None:
        return False, (
            f"{n} examples of {name} ({_describe(split)}), which may include training data: the model records "
            "no held-out split (it was fitted outside `vaelab fit`), so vaelab cannot tell which rows it saw"
        )
    if record["n_test"] == n and record["test_sha256"] == rows_digest(split.X_test):
        return True, f"{n} held-out examples of {name} ({_describe(split)}, kept back when the model was fitted)"
    return False, (
        f"{n} examples of {name} ({_describe(split)}), which may include training data: the model was fitted on "
        f"{record['n_train']} rows of {record['source']} and kept back other rows than these; they are unseen "
        "only if that data and this share no rows"
    )
