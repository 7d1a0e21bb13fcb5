"""Plain network builders shared by encoders and decoders."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """Linear layers with ReLU between them; ``hidden=()`` gives a single linear map."""
    sizes = [in_features, *hidden, out_features]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)
