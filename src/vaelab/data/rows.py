"""Training rows read from disk on demand, for data larger than memory.

A memory-mapped array is read with positioned reads (`vaelab.data._arrays.read_rows`), so that
training keeps only the current batch in memory; a lazy `ImageFolder` decodes each batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ._arrays import memmap_of, read_rows
from .images import ImageFolder


def read_per_batch(X, limit: int) -> bool:
    """Whether fit should read ``X`` from disk batch by batch instead of copying it into memory.

    True for a lazy `ImageFolder`, and for a memory-mapped array (or a view of one) whose
    float32 copy would exceed ``limit`` bytes.
    """
    return isinstance(X, ImageFolder) or (memmap_of(X) is not None and X.size * 4 > limit)


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
