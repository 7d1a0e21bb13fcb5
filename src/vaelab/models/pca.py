"""Probabilistic PCA (Tipping & Bishop, 1999) as a linear-Gaussian latent-variable module.

x = W z + mu + eps, z ~ N(0, I_k), eps ~ N(0, sigma^2 I_d), with the maximum-likelihood solution
W = U (L - sigma^2 I)^{1/2}, sigma^2 = mean of the discarded eigenvalues (U, L: leading
eigenvectors and eigenvalues of the data covariance). Everything is closed form:

* ``encode(x)``: the exact posterior p(z|x) = N(M^{-1} W^T (x - mu), sigma^2 M^{-1}),
  M = W^T W + sigma^2 I = diag(L), so an importance-sampled estimate with it is exact;
* ``embed(x)``: argmax_z p(x|z) = W^+ (x - mu), whose decoder mean is the PCA reconstruction;
* ``log_marginal(x)``: log N(x; mu, W W^T + sigma^2 I) in nats, via the Woodbury identity.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..likelihoods import GaussianLikelihood
from .latent import LatentModel


class PPCA(LatentModel):
    """Closed-form PPCA; not trained by gradients (build it with :meth:`from_moments`)."""

    def __init__(self, n_features: int, latent_dim: int):
        likelihood = GaussianLikelihood((n_features,), shared=True, min_scale=0.0)
        super().__init__(latent_dim, nn.Linear(latent_dim, n_features), likelihood)
        self.register_buffer("components", torch.zeros(latent_dim, n_features))  # U^T, (k, d)
        self.register_buffer("eigenvalues", torch.ones(latent_dim))  # L, (k,)
        self.register_buffer("mean", torch.zeros(n_features))  # mu, (d,)
        self.register_buffer("noise_variance", torch.ones(()))  # sigma^2
        self.requires_grad_(False)

    @classmethod
    def from_moments(cls, mean, components, eigenvalues, noise_variance) -> PPCA:
        """Build from a PCA fit: ``components`` (k, d) orthonormal rows, ``eigenvalues`` (k,)."""
        components = np.asarray(components)
        model = cls(components.shape[1], components.shape[0])
        for name, value in [
            ("mean", mean),
            ("components", components),
            ("eigenvalues", eigenvalues),
            ("noise_variance", noise_variance),
        ]:
            getattr(model, name).copy_(torch.as_tensor(np.asarray(value), dtype=torch.float32))
        model.sync_decoder()
        return model

    def sync_decoder(self) -> None:
        """Set the decoder's weights and the likelihood's scale from the PPCA buffers."""
        self.decoder.weight.copy_((self.components * self._loading_scale()[:, None]).T)
        self.decoder.bias.copy_(self.mean)
        self.likelihood.set_scale(self.noise_variance.sqrt())

    def _loading_scale(self) -> torch.Tensor:
        # (L - sigma^2)^{1/2}; floored so that a degenerate spectrum cannot divide by zero.
        return (self.eigenvalues - self.noise_variance).clamp_min(1e-12).sqrt()

    def encode(self, x: torch.Tensor) -> Distribution:
        """Exact posterior p(z|x): batch shape ``x.shape[:-1]``, event shape ``(latent_dim,)``."""
        scores = (x - self.mean) @ self.components.T
        loc = scores * (self._loading_scale() / self.eigenvalues)
        scale = (self.noise_variance / self.eigenvalues).sqrt().expand_as(loc)
        return Independent(Normal(loc, scale, validate_args=False), 1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) @ self.components.T) / self._loading_scale()

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats per example, shape ``(n,)``."""
        x = x.double()
        centred = x - self.mean.double()
        eigenvalues, noise = self.eigenvalues.double(), self.noise_variance.double()
        scores = centred @ self.components.double().T  # (n, k)
        d, k = x.shape[-1], self.latent_dim
        # C^{-1} = (I - U diag(1 - sigma^2 / L) U^T) / sigma^2
        mahalanobis = (centred.pow(2).sum(-1) - (scores.pow(2) * (1 - noise / eigenvalues)).sum(-1)) / noise
        log_det = eigenvalues.log().sum() + (d - k) * noise.log()
        return (-0.5 * (d * math.log(2 * math.pi) + log_det + mahalanobis)).float()
