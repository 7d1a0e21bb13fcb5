"""Convolutional encoder and decoder networks for image-shaped data ``(C, H, W)``.

Both keep the flat interface of the models (:mod:`vaelab.models.contract`), so they drop into the autoencoder
and VAE modules in place of the MLPs: the encoder maps ``(..., C*H*W) -> (..., out_features)``
and the decoder maps codes ``(..., latent_dim) -> (..., C*H*W)`` decoder parameters (logits or
means, whatever the likelihood expects). Images are reshaped internally, channel first, the
order of ``x.reshape(n, -1)`` on an ``(n, C, H, W)`` array.

The architecture is the usual DCGAN-style pair (Radford et al., 2016): stride-2 3x3 convolutions
with ReLU halve the map ``len(channels)`` times, a linear layer reads out the features; the
decoder runs the same size chain backwards with stride-2 3x3 transposed convolutions.

The decoder hits ``(H, W)`` exactly, for any size, by construction rather than by cropping or
interpolating: a 3x3 stride-2 convolution with padding 1 maps a side ``s`` to ``ceil(s / 2)``,
and a 3x3 stride-2 transposed convolution with padding 1 maps ``t`` to ``2t - 1 + output_padding``,
so ``output_padding = s - 2 * ceil(s / 2) + 1`` (0 for odd ``s``, 1 for even) inverts each step.
Every output pixel is therefore produced by a learned filter, with no border thrown away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral

import torch
from torch import nn

from ..errors import ConfigError, DataError

_KERNEL, _STRIDE, _PADDING = 3, 2, 1


def _check_shape(sample_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(sample_shape)
    if len(shape) != 3 or not all(isinstance(s, Integral) and s >= 1 for s in shape):
        raise ConfigError(f"sample_shape must be three positive ints (C, H, W), got {sample_shape!r}")
    c, h, w = (int(s) for s in shape)
    return c, h, w


def _check_channels(channels: Sequence[int]) -> tuple[int, ...]:
    channels = tuple(channels)
    if not channels or not all(isinstance(c, Integral) and c >= 1 for c in channels):
        raise ConfigError(f"channels must be a non-empty sequence of positive ints, got {channels!r}")
    return tuple(int(c) for c in channels)


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, Integral) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")


def _side_chain(side: int, n_layers: int) -> list[int]:
    """Map sides through ``n_layers`` stride-2 convolutions: ``[side, ceil(side/2), ...]``."""
    sides = [side]
    for _ in range(n_layers):
        sides.append(math.ceil(sides[-1] / _STRIDE))
    return sides


def _check_last_dim(x: torch.Tensor, expected: int, what: str) -> None:
    if x.ndim == 0 or x.shape[-1] != expected:
        raise DataError(f"{what} needs inputs of shape (..., {expected}), got {tuple(x.shape)}")


class ConvEncoder(nn.Module):
    """Flat images ``(..., C*H*W)`` -> features ``(..., out_features)``.

    ``len(channels)`` stride-2 3x3 convolutions with ReLU, then one linear layer (no activation,
    so the output can be a code, or a VAE's ``(loc, raw scale)`` pair of ``2 * latent_dim``).
    """

    def __init__(self, sample_shape: tuple[int, ...], out_features: int, channels: Sequence[int] = (32, 64)):
        super().__init__()
        self.sample_shape = _check_shape(sample_shape)
        _check_positive("out_features", out_features)
        channels = _check_channels(channels)
        c, h, w = self.sample_shape
        self.n_features = c * h * w
        layers: list[nn.Module] = []
        for c_in, c_out in zip((c, *channels[:-1]), channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, _KERNEL, _STRIDE, _PADDING), nn.ReLU()]
        self.conv = nn.Sequential(*layers)
        h_out, w_out = _side_chain(h, len(channels))[-1], _side_chain(w, len(channels))[-1]
        self.head = nn.Linear(channels[-1] * h_out * w_out, int(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_last_dim(x, self.n_features, "ConvEncoder")
        lead = x.shape[:-1]
        images = x.reshape(-1, *self.sample_shape)  # (N, C, H, W), N = prod(lead)
        features = self.conv(images).flatten(1)  # (N, channels[-1] * h' * w')
        return self.head(features).reshape(*lead, self.head.out_features)  # (..., out_features)


class ConvDecoder(nn.Module):
    """Codes ``(..., latent_dim)`` -> flat decoder parameters ``(..., C*H*W)``.

    A linear layer with ReLU to a ``channels[0]`` map at the encoder's smallest size, then
    ``len(channels)`` stride-2 3x3 transposed convolutions through ``channels[1:]`` down to ``C``
    output channels (ReLU between them, none after the last, so outputs are unconstrained
    logits or means). The output is exactly ``(C, H, W)``; see the module docstring for why.
    """

    def __init__(self, latent_dim: int, sample_shape: tuple[int, ...], channels: Sequence[int] = (64, 32)):
        super().__init__()
        _check_positive("latent_dim", latent_dim)
        self.latent_dim = int(latent_dim)
        self.sample_shape = _check_shape(sample_shape)
        self.n_features = math.prod(self.sample_shape)
        channels = _check_channels(channels)
        c, h, w = self.sample_shape
        hs, ws = _side_chain(h, len(channels)), _side_chain(w, len(channels))
        self._start_shape = (channels[0], hs[-1], ws[-1])
        self.stem = nn.Sequential(nn.Linear(self.latent_dim, math.prod(self._start_shape)), nn.ReLU())
        layers: list[nn.Module] = []
        # Step i takes the map from side hs[i + 1] back up to exactly hs[i], smallest map first.
        for i, c_in, c_out in zip(reversed(range(len(channels))), channels, (*channels[1:], c), strict=True):
            output_padding = (hs[i] - 2 * hs[i + 1] + 1, ws[i] - 2 * ws[i + 1] + 1)  # each 0 or 1
            layers.append(nn.ConvTranspose2d(c_in, c_out, _KERNEL, _STRIDE, _PADDING, output_padding))
            if i > 0:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_last_dim(z, self.latent_dim, "ConvDecoder")
        lead = z.shape[:-1]  # e.g. (K, n) for importance sampling
        maps = self.stem(z.reshape(-1, self.latent_dim)).reshape(-1, *self._start_shape)  # (N, c0, h', w')
        return self.deconv(maps).reshape(*lead, self.n_features)  # (..., C*H*W)


def conv_encoder(sample_shape: tuple[int, ...], out_features: int, channels: Sequence[int] = (32, 64)) -> nn.Module:
    """A convolutional encoder ``(..., C*H*W) -> (..., out_features)``.

    Parameters
    ----------
    sample_shape : (C, H, W)
        Shape of one image; inputs are its flattening, channel first.
    out_features : int
        Output size: ``latent_dim`` for an autoencoder, ``2 * latent_dim`` for a VAE encoder.
    channels : sequence of int
        Output channels of each stride-2 convolution; each halves the map (rounding up).
    """
    return ConvEncoder(sample_shape, out_features, channels)


def conv_decoder(latent_dim: int, sample_shape: tuple[int, ...], channels: Sequence[int] = (64, 32)) -> nn.Module:
    """A convolutional decoder ``(..., latent_dim) -> (..., C*H*W)``, exact for any ``(H, W)``.

    Parameters
    ----------
    latent_dim : int
        Size of the codes; any leading dimensions are kept.
    sample_shape : (C, H, W)
        Shape of one image; outputs are its flattening, channel first.
    channels : sequence of int
        Channels of the smallest map and of each upsampled map but the last (which has ``C``);
        the reverse of the encoder's ``channels`` mirrors it.
    """
    return ConvDecoder(latent_dim, sample_shape, channels)
