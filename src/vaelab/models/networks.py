"""Network builders shared by encoders and decoders: MLP, gated MLP, CNN (:mod:`.conv`).

The gated MLP is the one of Tomczak & Welling's VampPrior experiments (after Dauphin et al.,
2017, "Language modeling with gated convolutional networks"): every hidden layer computes
``h = (W x + b) * sigmoid(V x + c)``, and the output layer is linear.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from ..errors import ConfigError
from .conv import conv_decoder, conv_encoder


def mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """Linear layers with ReLU between them; ``hidden=()`` gives a single linear map."""
    sizes = [in_features, *hidden, out_features]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class GatedDense(nn.Module):
    """``(..., n_in) -> (..., n_out)``: a linear map gated by a sigmoid of another."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.value = nn.Linear(n_in, n_out)
        self.gate = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value(x) * torch.sigmoid(self.gate(x))


def gated_mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """Gated hidden layers (no other activation), then a linear output layer."""
    sizes = [in_features, *hidden]
    layers: list[nn.Module] = [GatedDense(n_in, n_out) for n_in, n_out in pairwise(sizes)]
    layers.append(nn.Linear(sizes[-1], out_features))
    return nn.Sequential(*layers)


_MLPS = {"mlp": mlp, "gated_mlp": gated_mlp}
ARCHITECTURES = (*_MLPS, "conv")


def dense_net(architecture: str, in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """The MLP (``"mlp"``) or gated MLP (``"gated_mlp"``) ``(..., in_features) -> (..., out_features)``."""
    if architecture not in _MLPS:
        raise ConfigError(f"architecture {architecture!r} has no dense network; choose one of {', '.join(_MLPS)}")
    return _MLPS[architecture](in_features, hidden, out_features)


def _check_architecture(architecture: str, sample_shape: tuple[int, ...] | None) -> None:
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)} (or 'auto')"
        )
    if architecture == "conv" and (sample_shape is None or len(sample_shape) != 3):
        raise ConfigError(
            f"architecture='conv' needs image data of shape (n, C, H, W), got samples of shape {sample_shape}; "
            "use architecture='mlp' for tables"
        )


def encoder_net(
    n_features: int,
    out_features: int,
    architecture: str,
    hidden: Sequence[int],
    sample_shape: tuple[int, ...] | None = None,
    channels: Sequence[int] = (32, 64),
) -> nn.Module:
    """Flat inputs ``(..., n_features)`` -> ``(..., out_features)``: an MLP over ``hidden``, a CNN over ``channels``."""
    _check_architecture(architecture, sample_shape)
    if architecture == "conv":
        assert sample_shape is not None  # _check_architecture raised otherwise; this narrows the type
        return conv_encoder(sample_shape, out_features, channels)
    return dense_net(architecture, n_features, hidden, out_features)


def decoder_net(
    latent_dim: int,
    n_features: int,
    architecture: str,
    hidden: Sequence[int],
    sample_shape: tuple[int, ...] | None = None,
    channels: Sequence[int] = (32, 64),
) -> nn.Module:
    """Codes ``(..., latent_dim)`` -> flat decoder parameters ``(..., n_features)``, mirroring the encoder."""
    _check_architecture(architecture, sample_shape)
    if architecture == "conv":
        assert sample_shape is not None  # _check_architecture raised otherwise; this narrows the type
        return conv_decoder(latent_dim, sample_shape, tuple(reversed(channels)))
    return dense_net(architecture, latent_dim, tuple(reversed(hidden)), n_features)
