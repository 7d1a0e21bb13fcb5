"""The latent-model contract, and the formulas every model shares, each written once.

A latent model is a decoder p(x|z) (a network feeding a :mod:`vaelab.likelihoods` distribution)
and a prior p(z); a probabilistic one adds an encoder q(z|x). The trainer, the metrics, the
samplers and the report read models only through this contract:

* ``embed(x)``: the deterministic code; ``decode(z)``: p(x|z); ``prior()``: p(z); ``loss(x)``:
  the training objective as named terms; ``encode(x)``: q(z|x) (probabilistic models only;
  ``encode_top(x)``: q of the layer a VampPrior mixes, the same for one-level models).
* :func:`log_importance_weights`: ``log p(x|z) + log p(z) - log q(z|x)``, the quantity behind the
  ELBO (its expectation under q) and the importance-weighted bound (Burda et al., 2016).
* :func:`kl_term`: KL(q(z|x) || p(z)), in closed form where torch registers one
  (``torch.distributions.kl_divergence``), else the Monte-Carlo estimate at the given draws.

Conditional models take class indices ``y`` (LongTensor, shape ``(n,)``) after ``x`` or ``z``;
the label's one-hot code is appended to the decoder's input (and, by the model, to its encoder's).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.distributions import Distribution, kl_divergence

from ..errors import ModelFileError
from ..likelihoods import Likelihood
from .samplers import CODE_SAMPLE_SIZE, fit_code_mixture


@dataclass(frozen=True)
class LossTerms:
    """A training objective on a batch: ``loss`` is minimised; ``terms`` are its named parts.

    Every tensor is a batch mean in nats per example. The trainer, the history and the report
    follow whatever names a model returns (a VAE: ``reconstruction`` and ``kl``).
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)

    def as_dict(self) -> dict[str, torch.Tensor]:
        """``{"loss": loss, **terms}``, in that order."""
        return {"loss": self.loss, **self.terms}


def _forget_code_mixture(module: LatentModel, keys) -> None:
    # A module-level function, not a lambda: the hook is kept in the module, which must pickle.
    module._code_mixture = None


class LatentModel(nn.Module, ABC):
    """Abstract: a decoder with a likelihood, a prior module, and an optional class condition.

    ``prior_module(model)`` returns p(z) (see :mod:`vaelab.models.priors`). ``n_classes > 0``
    makes the decoder read the one-hot class after the code. The model also keeps a bounded
    sample of training codes (:meth:`set_code_sample`) for the aggregate-posterior sampler.
    """

    # Buffers, declared so that type checkers see tensors rather than nn.Module.__getattr__'s union.
    code_sample: torch.Tensor  # (CODE_SAMPLE_SIZE, latent_dim)
    code_sample_size: torch.Tensor  # (), int64: how many rows of code_sample are codes

    def __init__(
        self, latent_dim: int, decoder: nn.Module, likelihood: Likelihood, prior: nn.Module, n_classes: int = 0
    ):
        super().__init__()
        self.latent_dim = latent_dim
        self.n_classes = n_classes
        self.decoder = decoder
        self.likelihood = likelihood
        self.prior_module = prior
        self.register_buffer("code_sample", torch.zeros(CODE_SAMPLE_SIZE, latent_dim))
        self.register_buffer("code_sample_size", torch.zeros((), dtype=torch.int64))
        self._code_mixture: Distribution | None = None
        # Loading new buffers invalidates a mixture fitted to the old codes.
        self.register_load_state_dict_post_hook(_forget_code_mixture)

    def prior(self) -> Distribution:
        """p(z), event shape ``(latent_dim,)``: every sampler and metric draws codes from it."""
        return self.prior_module(self)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        """p(x|z[, y]) for codes ``z`` ``(..., n, latent_dim)``; its ``mean`` is the reconstruction."""
        return self.likelihood(self.decoder(self.with_label(z, y)))

    def with_label(self, t: torch.Tensor, y: torch.Tensor | None, width: int = 1) -> torch.Tensor:
        """``t`` ``(..., n, d)`` with each row's one-hot class appended ``width`` times per class."""
        if (y is None) != (self.n_classes == 0):
            raise ValueError(
                f"this model has {self.n_classes} classes: pass class indices y exactly when it is conditional"
            )
        if y is None:
            return t
        one_hot = nn.functional.one_hot(y, self.n_classes).to(t.dtype)
        if width > 1:
            one_hot = one_hot.repeat_interleave(width, dim=-1)
        return torch.cat([t, one_hot.expand(*t.shape[:-1], one_hot.shape[-1])], dim=-1)

    @abstractmethod
    def embed(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic code of ``x``: ``(n, n_features) -> (n, latent_dim)``."""

    @abstractmethod
    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> LossTerms:
        """The training objective on a batch ``x`` ``(n, n_features)``, in nats per example."""

    def initialise(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation before training from a sample of model-space rows ``x``."""

    @torch.no_grad()
    def set_code_sample(self, codes: torch.Tensor) -> None:
        """Keep up to ``CODE_SAMPLE_SIZE`` training codes ``(m, latent_dim)`` for :meth:`code_mixture`."""
        m = min(len(codes), CODE_SAMPLE_SIZE)
        self.code_sample.zero_()[:m] = codes[:m].to(self.code_sample)
        self.code_sample_size.fill_(m)
        self._code_mixture = None

    def code_mixture(self) -> Distribution:
        """A Gaussian mixture fitted to the kept training codes (the aggregate posterior).

        Fitted on first use and cached (see :func:`vaelab.models.samplers.fit_code_mixture`); fair
        to an autoencoder, whose codes no prior shapes. Event shape ``(latent_dim,)``.
        """
        if self._code_mixture is None:
            m = int(self.code_sample_size)
            if not 0 <= m <= len(self.code_sample):
                raise ModelFileError(
                    f"this model claims {m} kept training codes, outside 0..{len(self.code_sample)}: its file is "
                    "damaged; refit the model, or load an intact copy"
                )
            self._code_mixture = fit_code_mixture(self.code_sample[:m])
        return self._code_mixture


class ProbabilisticModel(LatentModel):
    """Abstract: a latent model with an encoder distribution q(z|x), trained on a bound of log p(x)."""

    @abstractmethod
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        """q(z|x[, y]): batch shape ``x.shape[:-1]``, event shape ``(latent_dim,)``."""

    def encode_top(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Distribution:
        """q of the top stochastic layer, the one the prior module's p(z) is over (a VampPrior mixes it).

        ``encode(x)`` for a one-level model; a two-level VAE's q(z2|x).
        """
        return self.encode(x, y)

    def embed(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean E[z|x] (a two-level posterior's plug-in mean, see :mod:`.hierarchy`)."""
        return self.encode(x, y).mean

    def exact_log_likelihood(self, x: torch.Tensor) -> torch.Tensor | None:
        """log p(x) in closed form, ``(n,)`` nats, or None where only bounds exist (the default)."""
        return None

    def expected_reconstruction(self, x: torch.Tensor, qz: Distribution) -> torch.Tensor | None:
        """``E_q[-log p(x|z)]`` in closed form, ``(n,)`` nats, or None where it needs Monte Carlo."""
        return None


def log_weight_terms(
    model: ProbabilisticModel,
    x: torch.Tensor,
    z: torch.Tensor,
    qz: Distribution,
    y: torch.Tensor | None = None,
    prior: Distribution | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(log p(x|z), log p(z), log q(z|x))`` in nats for draws ``z`` ``(..., n, latent_dim)`` of ``qz``.

    Each of shape ``z.shape[:-1]``: the parts of :func:`log_importance_weights`, for callers that
    also need the Monte-Carlo KL ``log q - log p`` of the same draws without a second pass.
    ``prior``: ``model.prior()`` when the caller already holds it (a VampPrior costs an encoder pass).
    """
    prior = model.prior() if prior is None else prior
    return model.decode(z, y).log_prob(x), prior.log_prob(z), qz.log_prob(z)


def log_importance_weights(
    model: ProbabilisticModel,
    x: torch.Tensor,
    z: torch.Tensor,
    qz: Distribution,
    y: torch.Tensor | None = None,
    prior: Distribution | None = None,
) -> torch.Tensor:
    """``log p(x|z) + log p(z) - log q(z|x)`` in nats for draws ``z`` ``(..., n, latent_dim)`` of ``qz``.

    Shape ``z.shape[:-1]``. Its mean over z ~ q is the ELBO; ``logsumexp`` over K draws minus
    ``log K`` is the K-sample importance-weighted bound on log p(x) (Burda et al., 2016).
    """
    log_px, log_pz, log_qz = log_weight_terms(model, x, z, qz, y, prior)
    return log_px + log_pz - log_qz


def kl_term(
    qz: Distribution, prior: Distribution, z: torch.Tensor, log_ratio: torch.Tensor | None = None
) -> torch.Tensor:
    """KL(q(z|x) || p(z)) per example, ``(n,)`` nats.

    Closed form where torch registers one for the pair (a Gaussian posterior against the standard
    normal), else the Monte-Carlo estimate ``mean_k [log q(z_k|x) - log p(z_k)]`` over the draws
    ``z`` (``(n, latent_dim)`` or ``(K, n, latent_dim)``), which keeps the ELBO unbiased.
    ``log_ratio``: ``log q(z|x) - log p(z)`` at ``z`` when the caller has it (no second pass).
    """
    try:
        return kl_divergence(qz, prior)
    except NotImplementedError:
        if log_ratio is None:
            log_ratio = qz.log_prob(z) - prior.log_prob(z)
        return log_ratio if z.dim() == len(qz.batch_shape) + 1 else log_ratio.mean(0)
