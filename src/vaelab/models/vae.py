"""The variational autoencoder (Kingma & Welling, 2014), with its variants as parameters.

Gaussian encoder q(z|x) = N(mu(x), diag sigma(x)^2), a prior from :mod:`vaelab.models.priors`
(N(0, I), the VampPrior or a Gaussian mixture) and a decoder likelihood from
:mod:`vaelab.likelihoods`. The objective is a parameter, not a subclass:

* ``"elbo"``: ``E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z))`` (``beta=1``: the negative ELBO;
  Higgins et al., 2017 for beta-VAE), the KL by :func:`vaelab.models.contract.kl_term`.
  ``free_bits`` > 0 floors the batch-mean KL of each latent dimension at that many nats (Kingma
  et al., 2016; needs the factorised N(0, I) prior, where a per-dimension KL exists).
* ``"iwae"``: the negative ``n_train_samples``-sample importance-weighted bound (Burda et al., 2016).

With ``top_latent_dim`` > 0 the model is the two-level hierarchical VAE of Tomczak & Welling (2018):
q(z2|x) q(z1|x, z2) and p(z2) p(z1|z2) p(x|z1, z2), the prior over the top layer z2, codes
``(z1, z2)`` of width ``latent_dim + top_latent_dim`` (see :mod:`.hierarchy`). Its ``q(z1|x, z2)``
and ``p(z1|z2)`` networks have the encoder's architecture and hidden sizes.

With ``n_classes`` > 0 the model is a conditional VAE (Sohn et al., 2015): q(z|x, y) and p(x|z, y)
see the one-hot class ``y`` (appended to the decoder's code, and to the encoder's input, as one
constant plane per class for a CNN); the prior stays unconditional.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from ..errors import ConfigError
from ..likelihoods import Likelihood
from .contract import LossTerms, ProbabilisticModel, kl_term, log_weight_terms
from .hierarchy import ConditionalGaussian, TwoLevelGaussian, diagonal_normal
from .networks import decoder_net, dense_net, encoder_net
from .priors import Prior, StandardNormalPrior, make_prior

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
        top_latent_dim: int = 0,
    ):
        if top_latent_dim and (architecture == "conv" or n_classes):
            raise ConfigError(
                "top_latent_dim > 0 (a two-level VAE) needs an unconditional MLP model; use architecture='mlp' "
                "or 'gated_mlp' and no class labels"
            )
        if n_classes and prior == "vamp":
            raise ConfigError(
                "prior='vamp' reads unlabelled pseudo-inputs, so a conditional VAE cannot use it; use prior='normal'"
            )
        top_dim = top_latent_dim or latent_dim  # the layer the prior and the encoder's output are over
        latent_prior = make_prior(prior, top_dim, n_features, prior_components)
        if free_bits and (top_latent_dim or not isinstance(latent_prior, StandardNormalPrior)):
            raise ConfigError(
                f"free_bits floors a per-dimension KL, which prior={prior!r} with top_latent_dim={top_latent_dim} "
                "does not have; use prior='normal' and top_latent_dim=0"
            )
        # A CNN encoder reads the label as extra constant image planes; an MLP as extra features.
        self.label_width = math.prod(sample_shape[1:]) if architecture == "conv" and sample_shape else 1
        encoder_shape = (
            (sample_shape[0] + n_classes, *sample_shape[1:])
            if architecture == "conv" and sample_shape
            else sample_shape
        )
        code_dim = latent_dim + top_latent_dim
        super().__init__(
            code_dim,
            decoder_net(code_dim + n_classes, n_features, architecture, hidden, sample_shape, channels),
            likelihood,
            latent_prior,
            n_classes,
        )
        self.encoder = encoder_net(
            n_features + n_classes * self.label_width, 2 * top_dim, architecture, hidden, encoder_shape, channels
        )
        self.bottom_dim = latent_dim if top_latent_dim else 0
        self.bottom_posterior: ConditionalGaussian | None = None  # q(z1|x, z2)
        self.bottom_prior: ConditionalGaussian | None = None  # p(z1|z2)
        if top_latent_dim:
            self.bottom_posterior = ConditionalGaussian(
                dense_net(architecture, n_features + top_dim, hidden, 2 * latent_dim), n_features
            )
            self.bottom_prior = ConditionalGaussian(dense_net(architecture, top_dim, hidden, 2 * latent_dim), 0)
        self.beta = beta
        self.objective = objective
        self.n_train_samples = n_train_samples
        self.free_bits = free_bits
        self.kl_scale = 1.0

    def encode_top(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """q(z2|x) of a two-level model (q(z|x) of a one-level one): batch ``x.shape[:-1]``."""
        return diagonal_normal(self.encoder(self.with_label(x, y, self.label_width)))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        top = self.encode_top(x, y)
        if self.bottom_posterior is None:
            return top
        bottom_posterior = self.bottom_posterior
        return TwoLevelGaussian(top, lambda z2: bottom_posterior(z2, x), self.bottom_dim)

    def prior(self) -> Distribution:
        """p(z2) p(z1|z2) for a two-level model, the prior module's p(z) for a one-level one."""
        top = self.prior_module(self)
        return top if self.bottom_prior is None else TwoLevelGaussian(top, self.bottom_prior, self.bottom_dim)

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
            assert isinstance(qz, Independent)  # free bits exist only for the one-level model (checked in __init__)
            per_dim = kl_divergence(qz.base_dist, Normal(0.0, 1.0)).mean(0)  # (latent_dim,)
            penalty = per_dim.clamp_min(self.free_bits).sum()
        return LossTerms(
            reconstruction + self.beta * self.kl_scale * penalty, {"reconstruction": reconstruction, "kl": kl}
        )

    def _iwae_loss(self, x: torch.Tensor, y: torch.Tensor | None) -> LossTerms:
        qz, prior = self.encode(x, y), self.prior()
        z = qz.rsample((self.n_train_samples,))  # (K, n, latent_dim)
        log_px, log_pz, log_qz = log_weight_terms(self, x, z, qz, y, prior)  # (K, n) each
        log_w = log_px + log_pz - log_qz
        bound = torch.logsumexp(log_w, 0) - math.log(self.n_train_samples)
        # Reported parts, an unbiased split of the mean weight: E_q[log w] = -reconstruction - KL.
        kl = kl_term(qz, prior, z, log_qz - log_pz)  # (n,)
        reconstruction = -(log_w.mean(0) + kl)
        return LossTerms(-bound.mean(), {"reconstruction": reconstruction.mean(), "kl": kl.mean()})
