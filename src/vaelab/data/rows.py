"""Training rows read from a memory-mapped array on demand, for data larger than memory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


class MappedRows:
    """A view of rows ``rows`` of a (memory-mapped) array, indexed like a tensor of model-space rows.

    ``source[index]`` reads only the rows named by ``index`` (a LongTensor of positions into
    ``rows``) from disk, maps them with ``transform`` (raw ``(k, ...)`` -> float32 ``(k, d)``) and
    returns a tensor on ``device``. Rows are read in file order for locality; a batch is a set, so
    its order does not matter to the loss.
    """

    def __init__(self, X: np.ndarray, rows: np.ndarray, transform: Callable[[np.ndarray], np.ndarray], device):
        self.X = X
        self.rows = np.asarray(rows)
        self.transform = transform
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        picks = np.sort(self.rows[index.cpu().numpy()])
        return torch.from_numpy(self.transform(self.X[picks])).to(self.device)
