"""Where training rows live, indexed like a tensor of model-space rows by :func:`vaelab.train.train`.

`StoredRows`: rows of one tensor already on the device. `MappedRows`: rows read from disk on
demand, for data larger than memory -- a memory-mapped array is read with positioned reads
(`vaelab.data._arrays.read_rows`), so that training keeps only the current batch in memory; a lazy
`ImageFolder` decodes each batch. `LabelledRows`: either, beside the class indices of its rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ._arrays import IN_MEMORY_LIMIT, memmap_of, read_rows
from .images import ImageFolder

# A memory-mapped X whose float32 copy would exceed this many bytes is read batch by batch.
TRAIN_IN_MEMORY_LIMIT = IN_MEMORY_LIMIT


def read_per_batch(X, limit: int | None = None) -> bool:
    """Whether fit should read ``X`` from disk batch by batch instead of copying it into memory.

    True for a lazy `ImageFolder`, and for a memory-mapped array (or a view of one) whose
    float32 copy would exceed ``limit`` bytes (default: this module's ``TRAIN_IN_MEMORY_LIMIT``,
    read at call time).
    """
    limit = TRAIN_IN_MEMORY_LIMIT if limit is None else limit
    return isinstance(X, ImageFolder) or (memmap_of(X) is not None and X.size * 4 > limit)


class StoredRows:
    """Rows ``positions`` (m,) of a stored tensor ``data`` (n, d): ``[index] -> data[positions[index]]``."""

    def __init__(self, data: torch.Tensor, positions: torch.Tensor):
        self.data = data
        self.positions = positions

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def device(self) -> torch.device:
        return self.data.device

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return self.data[self.positions[index]]


class LabelledRows:
    """Training rows beside their class indices: ``[index] -> (rows, labels)``, as :func:`train` takes them."""

    def __init__(self, rows, labels: torch.Tensor):
        self.rows = rows
        self.labels = labels

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def device(self) -> torch.device:
        return self.rows.device

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rows[index], self.labels[index]


class MappedRows:
    """A view of rows ``rows`` of on-disk data, indexed like a tensor of model-space rows.

    ``source[index]`` reads only the rows named by ``index`` (a LongTensor of positions into
    ``rows``) from disk, maps them with ``transform`` (raw ``(k, ...)`` -> float32 ``(k, d)``) and
    returns a tensor on ``device``, in the order of ``index`` (so that labels kept beside the rows
    stay aligned); they are read from the file in file order, for locality.

    Parameters
    ----------
    X : memory-mapped ndarray or ImageFolder of shape (n_samples, ...)
    rows : ndarray of int, shape (m,)
        The rows of ``X`` this view holds.
    """

    def __init__(self, X, rows: np.ndarray, transform: Callable[[np.ndarray], np.ndarray], device):
        self.X = X
        self.rows = np.asarray(rows)
        self.transform = transform
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        positions = self.rows[index.cpu().numpy()]
        file_order = np.argsort(positions, kind="stable")
        batch = np.empty((len(positions), *self.X.shape[1:]), dtype=self.X.dtype)
        batch[file_order] = read_rows(self.X, positions[file_order])
        return torch.from_numpy(self.transform(batch)).to(self.device)
