"""Plain network builders shared by encoders and decoders."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..errors import ConfigError
from .conv import conv_decoder, conv_encoder


def mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """Linear layers with ReLU between them; ``hidden=()`` gives a single linear map."""
    sizes = [in_features, *hidden, out_features]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


ARCHITECTURES = ("mlp", "conv")


def _check_architecture(architecture: str, sample_shape: tuple[int, ...] | None) -> None:
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)} (or 'auto')")
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
    """Flat inputs ``(..., n_features)`` -> ``(..., out_features)``: an MLP over ``hidden`` or a CNN over ``channels``."""
    _check_architecture(architecture, sample_shape)
    if architecture == "conv":
        return conv_encoder(sample_shape, out_features, channels)
    return mlp(n_features, hidden, out_features)


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
        return conv_decoder(latent_dim, sample_shape, tuple(reversed(channels)))
    return mlp(latent_dim, tuple(reversed(hidden)), n_features)
