"""The deterministic autoencoder: an encoder to a code, a decoder likelihood, and no KL term.

Its loss is the reconstruction term alone, ``-log p(x | z(x))`` in nats per example. It keeps a
standard normal prior only as the reference that its codes are *not* trained towards: sampling it
shows the holes of an unregularised latent space (compare ``sampler="gmm"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..likelihoods import Likelihood
from .contract import LatentModel, LossTerms
from .networks import decoder_net, encoder_net
from .priors import StandardNormalPrior


class Autoencoder(LatentModel):
    """Deterministic encoder; loss = -log p(x | z(x)) averaged over the batch.

    ``architecture="mlp"`` (or ``"gated_mlp"``) uses ``hidden`` layer sizes; ``"conv"`` a CNN over
    ``channels`` for images of ``sample_shape`` (C, H, W), still on flat ``(n, C*H*W)`` inputs.
    """

    def __init__(
        self,
        n_features: int,
        latent_dim: int,
        hidden: Sequence[int],
        likelihood: Likelihood,
        *,
        architecture: str = "mlp",
        sample_shape: tuple[int, ...] | None = None,
        channels: Sequence[int] = (32, 64),
    ):
        nets = (architecture, hidden, sample_shape, channels)
        prior = StandardNormalPrior(latent_dim, n_features, 1)
        super().__init__(latent_dim, decoder_net(latent_dim, n_features, *nets), likelihood, prior)
        self.encoder = encoder_net(n_features, latent_dim, *nets)

    def embed(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(self.with_label(x, y))

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> LossTerms:
        reconstruction = -self.decode(self.embed(x, y), y).log_prob(x).mean()
        return LossTerms(reconstruction, {"reconstruction": reconstruction})

    def initialise(self, x: torch.Tensor) -> None:
        self.likelihood.initialise(x)
