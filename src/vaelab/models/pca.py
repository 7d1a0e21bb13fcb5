"""Probabilistic PCA (Tipping & Bishop, 1999) as a linear-Gaussian latent-variable module.

x = W z + mu + eps, z ~ N(0, I_k), eps ~ N(0, sigma^2 I_d), with the maximum-likelihood solution
W = U (L - sigma^2 I)^{1/2}, sigma^2 = mean of the discarded eigenvalues (U, L: leading
eigenvectors and eigenvalues of the data covariance). Everything is closed form:

* ``encode(x)``: the exact posterior p(z|x) = N(M^{-1} W^T (x - mu), sigma^2 M^{-1}),
  M = W^T W + sigma^2 I = diag(L), so an importance-sampled estimate with it is exact;
* ``embed(x)``: argmax_z p(x|z) = W^+ (x - mu), whose decoder mean is the PCA reconstruction;
* ``exact_log_likelihood(x)``: log N(x; mu, W W^T + sigma^2 I) in nats, via the Woodbury identity;
* ``expected_reconstruction(x, q)``: the distortion E_q[-log p(x|z)] in closed form, so the ELBO
  (distortion + KL) equals log p(x) to rounding, as it must with the exact posterior.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..likelihoods import GaussianLikelihood
from .contract import LossTerms, ProbabilisticModel, kl_term
from .priors import StandardNormalPrior


class PPCA(ProbabilisticModel):
    """Closed-form PPCA in float64; not trained by gradients (build it with :meth:`from_moments`).

    Every parameter is float64, because the exact log-likelihood sums d terms whose float32
    rounding (~1e-7 each, relative) is visible in nats on tables with large values. Inputs of
    any float dtype are promoted; outputs are float64.
    """

    decoder: nn.Linear  # z -> W z + mu, kept equal to the buffers by sync_decoder
    likelihood: GaussianLikelihood
    components: torch.Tensor
    eigenvalues: torch.Tensor
    mean: torch.Tensor
    noise_variance: torch.Tensor

    def __init__(self, n_features: int, latent_dim: int):
        likelihood = GaussianLikelihood((n_features,), shared=True, min_scale=0.0)
        prior = StandardNormalPrior(latent_dim, n_features, 1)
        super().__init__(latent_dim, nn.Linear(latent_dim, n_features), likelihood, prior)
        self.register_buffer("components", torch.zeros(latent_dim, n_features))  # U^T, (k, d)
        self.register_buffer("eigenvalues", torch.ones(latent_dim))  # L, (k,)
        self.register_buffer("mean", torch.zeros(n_features))  # mu, (d,)
        self.register_buffer("noise_variance", torch.ones(()))  # sigma^2
        self.requires_grad_(False)
        self.double()

    @classmethod
    def from_moments(cls, mean, components, eigenvalues, noise_variance) -> PPCA:
        """Build from a PCA fit: ``components`` (k, d) orthonormal rows, ``eigenvalues`` (k,)."""
        components = np.asarray(components)
        model = cls(components.shape[1], components.shape[0])
        for buffer, value in [
            (model.mean, mean),
            (model.components, components),
            (model.eigenvalues, eigenvalues),
            (model.noise_variance, noise_variance),
        ]:
            buffer.copy_(torch.as_tensor(np.asarray(value), dtype=torch.float64))
        model.sync_decoder()
        return model

    @torch.no_grad()
    def sync_decoder(self) -> None:
        """Set the decoder's weights and the likelihood's scale from the PPCA buffers."""
        self.decoder.weight.copy_((self.components * self._loading_scale()[:, None]).T)
        self.decoder.bias.copy_(self.mean)
        self.likelihood.set_scale(self.noise_variance.sqrt())

    def _loading_scale(self) -> torch.Tensor:
        # (L - sigma^2)^{1/2}; floored so that a degenerate spectrum cannot divide by zero.
        return (self.eigenvalues - self.noise_variance).clamp_min(1e-300).sqrt()

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        return super().decode(z.double(), y)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        """Exact posterior p(z|x): batch shape ``x.shape[:-1]``, event shape ``(latent_dim,)``."""
        self.with_label(x, y)  # refuses labels: PPCA is unconditional
        scores = (x.double() - self.mean) @ self.components.T
        loc = scores * (self._loading_scale() / self.eigenvalues)
        scale = (self.noise_variance / self.eigenvalues).sqrt().expand_as(loc)
        return Independent(Normal(loc, scale, validate_args=False), 1)

    def embed(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """argmax_z p(x|z) = W^+ (x - mu), whose decoder mean is the PCA reconstruction."""
        self.with_label(x, y)
        return ((x.double() - self.mean) @ self.components.T) / self._loading_scale()

    def exact_log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = log N(x; mu, W W^T + sigma^2 I) in nats per example, shape ``(n,)``, float64."""
        centred = x.double() - self.mean
        eigenvalues, noise = self.eigenvalues, self.noise_variance
        scores = centred @ self.components.T  # (n, k)
        d, k = x.shape[-1], self.latent_dim
        # C^{-1} = (I - U diag(1 - sigma^2 / L) U^T) / sigma^2
        mahalanobis = (centred.square().sum(-1) - (scores.square() * (1 - noise / eigenvalues)).sum(-1)) / noise
        log_det = eigenvalues.log().sum() + (d - k) * noise.log()
        return -0.5 * (d * math.log(2 * math.pi) + log_det + mahalanobis)

    def expected_reconstruction(self, x: torch.Tensor, qz: Distribution) -> torch.Tensor:
        """``E_q[-log N(x; W z + mu, sigma^2 I)]`` in closed form, ``(n,)`` nats.

        ``= d/2 log(2 pi sigma^2) + (||x - W m - mu||^2 + tr(W S W^T)) / (2 sigma^2)`` for
        q = N(m, S); with the exact posterior, ``tr(W S W^T) = sum_i (L_i - sigma^2) sigma^2 / L_i``.
        """
        loc, scale = qz.mean, qz.stddev  # (n, k) each; the formula needs only q's mean and diagonal covariance
        residual = x.double() - self.decoder(loc)
        loadings = self._loading_scale().square()  # L - sigma^2, (k,): squared column norms of W
        trace = (loadings * scale.square()).sum(-1)
        noise = self.noise_variance
        d = x.shape[-1]
        return 0.5 * d * torch.log(2 * math.pi * noise) + (residual.square().sum(-1) + trace) / (2 * noise)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> LossTerms:
        """The negative exact log-likelihood (PPCA's fit is closed form; this is for evaluation)."""
        qz = self.encode(x, y)
        kl = kl_term(qz, self.prior(), qz.mean)
        return LossTerms(
            -self.exact_log_likelihood(x).mean(),
            {"reconstruction": self.expected_reconstruction(x, qz).mean(), "kl": kl.mean()},
        )
