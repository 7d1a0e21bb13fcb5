"""Priors p(z) as modules: ``prior_module(model) -> Distribution`` with event shape ``(latent_dim,)``.

A prior is a parameter of the model (``prior="normal" | "vamp" | "mixture"``), never a subclass:
each is one class here and one line in :data:`PRIORS`. Where torch registers no closed-form KL
against a posterior (the mixtures), :func:`vaelab.models.contract.kl_term` falls back to Monte Carlo.

* ``"normal"``: N(0, I), the VAE of Kingma & Welling (2014).
* ``"vamp"``: the VampPrior of Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS:
  ``p(z) = (1/K) sum_k q(z | u_k)``, the encoder's posteriors at K learned pseudo-inputs ``u_k``
  (model-space rows, initialised from training data by :meth:`VampPrior.initialise`).
* ``"mixture"``: a mixture of K diagonal Gaussians with learned weights, means and scales.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from ..errors import ConfigError
from .contract import LatentModel, ProbabilisticModel


class Prior(nn.Module, ABC):
    """Abstract: ``forward(model)`` gives p(z); built as ``cls(latent_dim, n_features, n_components)``."""

    @abstractmethod
    def forward(self, model: LatentModel) -> Distribution:
        """p(z) for ``model`` (whose encoder a VampPrior reads), event shape ``(latent_dim,)``."""

    def initialise(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation from model-space training rows ``x`` (default: none)."""


class StandardNormalPrior(Prior):
    """p(z) = N(0, I)."""

    loc: torch.Tensor
    scale: torch.Tensor

    def __init__(self, latent_dim: int, n_features: int, n_components: int):
        super().__init__()
        self.register_buffer("loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("scale", torch.ones(latent_dim), persistent=False)

    def forward(self, model: LatentModel) -> Distribution:
        return Independent(Normal(self.loc, self.scale, validate_args=False), 1)


class VampPrior(Prior):
    """p(z) = (1/K) sum_k q(z | u_k) over K learned pseudo-inputs ``u_k`` ``(K, n_features)``."""

    def __init__(self, latent_dim: int, n_features: int, n_components: int):
        super().__init__()
        self.pseudo_inputs = nn.Parameter(torch.zeros(n_components, n_features))

    def forward(self, model: LatentModel) -> Distribution:
        if not isinstance(model, ProbabilisticModel):
            raise TypeError(f"a VampPrior mixes encoder distributions; {type(model).__name__} has no encoder")
        components = model.encode_top(self.pseudo_inputs)  # batch shape (K,); q(z2|u) of a two-level model
        weights = torch.zeros(len(self.pseudo_inputs), device=self.pseudo_inputs.device)
        return MixtureSameFamily(Categorical(logits=weights, validate_args=False), components, validate_args=False)

    @torch.no_grad()
    def initialise(self, x: torch.Tensor) -> None:
        """Start the pseudo-inputs at training rows ``x`` (cycled when fewer than K), slightly jittered."""
        rows = x[torch.arange(len(self.pseudo_inputs)) % len(x)].to(self.pseudo_inputs)
        self.pseudo_inputs.copy_(rows + 0.01 * torch.randn_like(rows))


class MixturePrior(Prior):
    """p(z) = sum_k pi_k N(mu_k, diag sigma_k^2): K learned diagonal Gaussians."""

    def __init__(self, latent_dim: int, n_features: int, n_components: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_components))
        self.means = nn.Parameter(torch.randn(n_components, latent_dim))
        self.raw_scales = nn.Parameter(torch.zeros(n_components, latent_dim))

    def forward(self, model: LatentModel) -> Distribution:
        scales = nn.functional.softplus(self.raw_scales) + 1e-4
        components = Independent(Normal(self.means, scales, validate_args=False), 1)
        return MixtureSameFamily(Categorical(logits=self.logits, validate_args=False), components, validate_args=False)


PriorFactory = Callable[[int, int, int], Prior]
PRIORS: dict[str, PriorFactory] = {
    "normal": StandardNormalPrior,
    "vamp": VampPrior,
    "mixture": MixturePrior,
}


def make_prior(name: str, latent_dim: int, n_features: int, n_components: int) -> Prior:
    """The prior called ``name`` for codes of size ``latent_dim`` over ``n_features`` inputs."""
    if not isinstance(name, str) or name not in PRIORS:
        raise ConfigError(f"unknown prior {name!r}; choose one of {', '.join(PRIORS)}")
    return PRIORS[name](latent_dim, n_features, n_components)
