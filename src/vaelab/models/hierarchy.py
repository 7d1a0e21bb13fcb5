"""Two stochastic layers as one code: the distribution over ``(z1, z2)`` of a two-level VAE.

The hierarchical VAE of Tomczak & Welling (2018, "VAE with a VampPrior", AISTATS, section 3.2)
has a top layer z2 and a bottom layer z1 next to the data:

* inference: ``q(z2|x) q(z1|x, z2)``;
* generation: ``p(z2) p(z1|z2) p(x|z1, z2)``, with p(z2) any prior of :mod:`.priors`.

Both the posterior and the prior are :class:`TwoLevelGaussian` distributions over the
concatenated code ``z = (z1, z2)`` (bottom first), so the contract of :mod:`.contract` holds
unchanged: the importance weight ``log p(x|z) + log p(z) - log q(z|x)`` is the one formula, the
KL is its Monte-Carlo estimate (no closed form exists), and samplers, metrics and maps see codes
of width ``latent_dim + top_latent_dim``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal, constraints

from .networks import GatedDense

_NO_SHAPE = torch.Size()
# Keeps standard deviations away from 0, where log densities would blow up (as the one-level VAE's).
MIN_SCALE = 1e-5


def diagonal_normal(out: torch.Tensor) -> Independent:
    """``(..., 2 d)`` network output -> N(loc, diag scale^2) over ``(..., d)``; scale = softplus + MIN_SCALE."""
    loc, raw_scale = out.chunk(2, dim=-1)
    return Independent(Normal(loc, nn.functional.softplus(raw_scale) + MIN_SCALE, validate_args=False), 1)


class TwoLevelGaussian(Distribution):
    """``z2 ~ top``, then ``z1 | z2 ~ bottom(z2)``; values are ``cat(z1, z2)``, ``(..., d1 + d2)``.

    ``top`` has event shape ``(d2,)`` (a diagonal Gaussian for a posterior; any prior for p(z2));
    ``bottom(z2)`` returns a diagonal Gaussian over ``(..., d1)`` for ``z2`` of shape
    ``(..., *batch_shape, d2)``. :attr:`mean` is the plug-in mean ``(E[z1 | z2 = E z2], E z2)``:
    the code the model's ``embed`` returns (the exact E[z1] has no closed form).
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, top: Distribution, bottom: Callable[[torch.Tensor], Independent], bottom_dim: int):
        self.top, self.bottom, self.bottom_dim = top, bottom, bottom_dim
        super().__init__(top.batch_shape, torch.Size([bottom_dim + top.event_shape[-1]]), validate_args=False)

    def _split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[..., : self.bottom_dim], z[..., self.bottom_dim :]

    def rsample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = _NO_SHAPE) -> torch.Tensor:
        z2 = self.top.rsample(sample_shape)
        return torch.cat([self.bottom(z2).rsample(), z2], dim=-1)

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = _NO_SHAPE) -> torch.Tensor:
        # The top may have no reparameterised sampler (a VampPrior's mixture): draw it plainly.
        z2 = self.top.sample(sample_shape)
        return torch.cat([self.bottom(z2).sample(), z2], dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        z1, z2 = self._split(value)
        return self.top.log_prob(z2) + self.bottom(z2).log_prob(z1)

    def from_noise(self, eps: torch.Tensor) -> torch.Tensor:
        """The reparameterised draw for standard-normal noise ``eps`` ``(..., *batch_shape, d1 + d2)``.

        Needs a diagonal-Gaussian top (a posterior): ``z2 = loc + scale * eps2``, then z1 likewise
        from ``bottom(z2)``. The metrics key the noise on each example, so draws are reproducible.
        """
        if not (isinstance(self.top, Independent) and isinstance(self.top.base_dist, Normal)):
            raise TypeError(f"from_noise needs a diagonal Gaussian top layer, got {type(self.top).__name__}")
        eps1, eps2 = self._split(eps)
        z2 = self.top.base_dist.loc + self.top.base_dist.scale * eps2
        bottom = self.bottom(z2).base_dist
        return torch.cat([bottom.loc + bottom.scale * eps1, z2], dim=-1)

    @property
    def mean(self) -> torch.Tensor:
        z2 = self.top.mean
        return torch.cat([self.bottom(z2).mean, z2], dim=-1)


class ConditionalGaussian(nn.Module):
    """A diagonal Gaussian over ``out_features`` given a code ``z`` and an optional context ``x``.

    The network (an MLP or gated MLP over ``hidden``) reads ``cat(x, z)``. Its first layer is
    applied to the two parts separately, ``W_x x + W_z z + b``, so that K codes per example
    ``(K, n, d)`` share one pass of the context ``(n, c)``: in importance sampling the context is
    the data row, the widest input, and is not copied K times.
    """

    def __init__(self, net: nn.Sequential, context_features: int):
        super().__init__()
        self.net = net
        self.context_features = context_features

    def _linear(self, linear: nn.Linear, z: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        c = self.context_features
        out = nn.functional.linear(z, linear.weight[:, c:], linear.bias)
        return out if context is None else out + nn.functional.linear(context, linear.weight[:, :c])

    def _first_layer(self, z: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        layer = self.net[0]
        if isinstance(layer, GatedDense):
            return self._linear(layer.value, z, context) * torch.sigmoid(self._linear(layer.gate, z, context))
        if isinstance(layer, nn.Linear):
            return self._linear(layer, z, context)
        raise TypeError(f"the first layer must be linear or gated, got {type(layer).__name__}")

    def forward(self, z: torch.Tensor, context: torch.Tensor | None = None) -> Independent:
        """``z`` ``(..., n, d)``, ``context`` ``(n, c)`` (None iff ``context_features`` is 0) -> ``(..., n, out)``."""
        if (context is None) != (self.context_features == 0):
            raise ValueError(f"this layer reads a context of {self.context_features} features: pass it exactly then")
        return diagonal_normal(self.net[1:](self._first_layer(z, context)))
