"""The variational autoencoder (Kingma & Welling, 2014), with its variants as parameters.

Gaussian encoder q(z|x) = N(mu(x), diag sigma(x)^2), a prior from :mod:`vaelab.models.priors`
(N(0, I), the VampPrior or a Gaussian mixture) and a decoder likelihood from
:mod:`vaelab.likelihoods`. The objective is a parameter, not a subclass:

* ``"elbo"``: ``E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z))`` (``beta=1``: the negative ELBO;
  Higgins et al., 2017 for beta-VAE), the KL by :func:`vaelab.models.contract.kl_term`.
  ``free_bits`` > 0 floors the batch-mean KL of each latent dimension at that many nats (Kingma
  et al., 2016; needs the factorised N(0, I) prior, where a per-dimension KL exists).
* ``"iwae"``: the negative ``n_train_samples``-sample importance-weighted bound (Burda et al., 2016).

With ``n_classes`` > 0 the model is a conditional VAE (Sohn et al., 2015): q(z|x, y) and p(x|z, y)
see the one-hot class ``y`` (appended to the decoder's code, and to the encoder's input, as one
constant plane per class for a CNN); the prior stays unconditional.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal, kl_divergence

from ..errors import ConfigError
from ..likelihoods import Likelihood
from .contract import LossTerms, ProbabilisticModel, kl_term, log_importance_weights
from .networks import decoder_net, encoder_net
from .priors import Prior, StandardNormalPrior, make_prior

# Keeps encoder standard deviations away from 0, where log q(z|x) would blow up.
_MIN_POSTERIOR_SCALE = 1e-5
OBJECTIVES = ("elbo", "iwae")


class VAE(ProbabilisticModel):
    """Gaussian encoder, any prior and decoder likelihood; networks as in :class:`~.autoencoder.Autoencoder`.

    ``kl_scale`` multiplies ``beta``; the trainer's epoch hook anneals it for KL warm-up.
    """

    prior_module: Prior  # LatentModel stores any nn.Module; a VAE's prior can also initialise from data

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden: Sequence[int],
        likelihood: Likelihood,
        beta: float = 1.0,
        *,
        objective: str = "elbo",
        n_train_samples: int = 1,
        free_bits: float = 0.0,
        n_classes: int = 0,
        prior: str = "normal",
        prior_components: int = 500,
        architecture: str = "mlp",
        sample_shape: tuple[int, ...] | None = None,
        channels: Sequence[int] = (32, 64),
    ):
        if n_classes and prior == "vamp":
            raise ConfigError(
                "prior='vamp' reads unlabelled pseudo-inputs, so a conditional VAE cannot use it; use prior='normal'"
            )
        latent_prior = make_prior(prior, latent_dim, n_features, prior_components)
        if free_bits and not isinstance(latent_prior, StandardNormalPrior):
            raise ConfigError(
                f"free_bits floors a per-dimension KL, which prior={prior!r} does not have; use prior='normal'"
            )
        # A CNN encoder reads the label as extra constant image planes; an MLP as extra features.
        self.label_width = math.prod(sample_shape[1:]) if architecture == "conv" and sample_shape else 1
        encoder_shape = (
            (sample_shape[0] + n_classes, *sample_shape[1:])
            if architecture == "conv" and sample_shape
            else sample_shape
        )
        super().__init__(
            latent_dim,
            decoder_net(latent_dim + n_classes, n_features, architecture, hidden, sample_shape, channels),
            likelihood,
            latent_prior,
            n_classes,
        )
        self.encoder = encoder_net(
            n_features + n_classes * self.label_width, 2 * latent_dim, architecture, hidden, encoder_shape, channels
        )
        self.beta = beta
        self.objective = objective
        self.n_train_samples = n_train_samples
        self.free_bits = free_bits
        self.kl_scale = 1.0

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        loc, raw_scale = self.encoder(self.with_label(x, y, self.label_width)).chunk(2, dim=-1)
        scale = nn.functional.softplus(raw_scale) + _MIN_POSTERIOR_SCALE
        return Independent(Normal(loc, scale, validate_args=False), 1)

    def initialise(self, x: torch.Tensor) -> None:
        self.likelihood.initialise(x)
        self.prior_module.initialise(x)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> LossTerms:
        if self.objective == "iwae":
            return self._iwae_loss(x, y)
        qz = self.encode(x, y)
        z = qz.rsample()  # (n, latent_dim)
        reconstruction = -self.decode(z, y).log_prob(x).mean()
        kl = kl_term(qz, self.prior(), z).mean()
        penalty = kl
        if self.free_bits > 0:
            per_dim = kl_divergence(qz.base_dist, Normal(0.0, 1.0)).mean(0)  # (latent_dim,)
            penalty = per_dim.clamp_min(self.free_bits).sum()
        return LossTerms(
            reconstruction + self.beta * self.kl_scale * penalty, {"reconstruction": reconstruction, "kl": kl}
        )

    def _iwae_loss(self, x: torch.Tensor, y: torch.Tensor | None) -> LossTerms:
        qz, prior = self.encode(x, y), self.prior()
        z = qz.rsample((self.n_train_samples,))  # (K, n, latent_dim)
        log_w = log_importance_weights(self, x, z, qz, y, prior)  # (K, n)
        bound = torch.logsumexp(log_w, 0) - math.log(self.n_train_samples)
        # Reported parts, an unbiased split of the mean weight: E_q[log w] = -reconstruction - KL.
        kl = kl_term(qz, prior, z)  # (n,)
        reconstruction = -(log_w.mean(0) + kl)
        return LossTerms(-bound.mean(), {"reconstruction": reconstruction.mean(), "kl": kl.mean()})
