"""Decoder likelihoods p(x | z): small modules turning decoder outputs into distributions.

Each likelihood maps the decoder's raw output, shaped ``(..., *event_shape)``, to a
``torch.distributions`` object whose ``log_prob`` sums over the event dimensions (nats per
example) and whose ``mean`` is the reconstruction in data space. Models, metrics and sampling
share these objects, so the choice of likelihood is a parameter, never a copy of a model.

``log_prob`` is the hot path of training and of importance-sampled evaluation: it runs over every
feature of every decoded row. torch's versions materialise several full-size temporaries (the
Bernoulli's ``1 - x``, a log-sigmoid buffer, an expanded scale squared and logged), so each
likelihood computes it directly from the decoder output in a few elementwise passes; the tests
compare it with torch's, and every other method (``mean``, ``sample``, ...) is torch's own.

* ``"bernoulli"``: for binary data. On grey levels in [0, 1] its ``log_prob`` is the negative
  binary cross-entropy, which is *not* a normalised density (the usual, and loose, practice).
* ``"continuous_bernoulli"``: the normalised density on [0, 1] (Loaiza-Ganem & Cunningham, 2019),
  the honest choice for grey-level pixels.
* ``"gaussian"``: a Normal with mean from the decoder and a learned standard deviation per
  feature, floored at ``min_scale`` so that constant features cannot drive the density to infinity;
  ``"gaussian_shared"`` learns one for all features and ``"gaussian_fixed"`` keeps it at 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import (
    Bernoulli,
    ContinuousBernoulli,
    Distribution,
    Independent,
    Normal,
)
from torch.nn import functional as F

from .errors import ConfigError, DataError


class _DecodedDistribution(Independent):
    """torch's ``Independent(base, event_dims)`` with the likelihood's own ``log_prob``."""

    def __init__(self, base: Distribution, event_dims: int, log_prob: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__(base, event_dims, validate_args=False)
        self._log_prob = log_prob

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return self._log_prob(value)


class Likelihood(nn.Module):
    """Abstract base: ``forward(params) -> Distribution`` over ``event_shape``.

    Subclasses define ``_base`` (torch's per-feature distribution) and ``log_prob``.
    """

    name: str = ""

    def __init__(self, event_shape: tuple[int, ...]):
        super().__init__()
        self.event_shape = tuple(event_shape)

    def forward(self, params: torch.Tensor) -> Distribution:
        return _DecodedDistribution(self._base(params), len(self.event_shape), lambda x: self.log_prob(params, x))

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | params) in nats, summed over the event: shape ``broadcast(params, x).shape[:-event_dims]``."""
        raise NotImplementedError

    def _base(self, params: torch.Tensor) -> Distribution:
        raise NotImplementedError

    def _event_sum(self, t: torch.Tensor) -> torch.Tensor:
        return t.sum(dim=tuple(range(-len(self.event_shape), 0)))

    def check_support(self, low: float, high: float) -> None:
        """Raise :class:`DataError` when data spanning ``[low, high]`` lie outside the support."""

    def initialise(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation from model-space training rows ``x`` ``(m, n_features)``."""


class _UnitIntervalLikelihood(Likelihood):
    def check_support(self, low: float, high: float) -> None:
        if low < 0.0 or high > 1.0:
            raise DataError(
                f"likelihood={self.name!r} needs data in [0, 1], but X ranges over "
                f"[{low:.4g}, {high:.4g}]; scale the data to [0, 1] or use likelihood='gaussian'"
            )


class BernoulliLikelihood(_UnitIntervalLikelihood):
    """Independent Bernoulli per feature, parameterised by logits."""

    name = "bernoulli"

    def _base(self, params: torch.Tensor) -> Distribution:
        return Bernoulli(logits=params, validate_args=False)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -self._event_sum(_bernoulli_nll(params, x))


class ContinuousBernoulliLikelihood(_UnitIntervalLikelihood):
    """Independent continuous Bernoulli per feature: a normalised density on [0, 1]."""

    name = "continuous_bernoulli"

    def _base(self, params: torch.Tensor) -> Distribution:
        return ContinuousBernoulli(logits=params, validate_args=False)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._event_sum(_continuous_bernoulli_log_norm(params) - _bernoulli_nll(params, x))


class GaussianLikelihood(Likelihood):
    """Independent Normal per feature with a learned standard deviation.

    ``shared=False`` learns one standard deviation per feature, ``shared=True`` one for all.
    """

    name = "gaussian"

    def __init__(self, event_shape: tuple[int, ...], shared: bool = False, min_scale: float = 1e-3):
        super().__init__(event_shape)
        self.min_scale = min_scale
        self.raw_scale = nn.Parameter(torch.zeros(() if shared else self.event_shape))
        self.set_scale(torch.tensor(1.0))

    @property
    def scale(self) -> torch.Tensor:
        """Standard deviation: shape ``event_shape``, or ``()`` when shared."""
        return nn.functional.softplus(self.raw_scale) + self.min_scale

    @torch.no_grad()
    def set_scale(self, scale: torch.Tensor) -> None:
        """Set the standard deviation (must exceed ``min_scale``)."""
        if self.raw_scale.is_meta:
            # a module built on the meta device, to be loaded, has no values to set; and on meta
            # tensors torch runs these ops through Python decompositions that import torch._dynamo
            return
        excess = (scale.to(self.raw_scale) - self.min_scale).clamp_min(torch.finfo(self.raw_scale.dtype).tiny)
        # inverse softplus, written to stay finite for large values
        self.raw_scale.copy_(excess + torch.log(-torch.expm1(-excess)))

    @torch.no_grad()
    def initialise(self, x: torch.Tensor) -> None:
        """Start the standard deviation at the data's (per feature, or pooled when shared).

        A decoder starts near the mean of the data, so the residuals start at about the data's
        spread: starting sigma there (not at 1 on data of any scale) saves the many steps a
        softplus parameter needs to travel, which small data sets never get.
        """
        if not self.raw_scale.requires_grad or len(x) < 2:
            return  # a fixed variance stays fixed; one row has no spread
        spread = x.double().std(0) if self.raw_scale.dim() else x.double().std(0).square().mean().sqrt()
        self.set_scale(spread.clamp_min(2 * self.min_scale).to(self.raw_scale).reshape(self.raw_scale.shape))

    def _base(self, params: torch.Tensor) -> Distribution:
        return Normal(params, self.scale.expand_as(params), validate_args=False)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale
        # The normaliser depends on the scale only: summed over the event once, not per row.
        n_features = math.prod(self.event_shape)
        log_norm = scale.log().expand(self.event_shape).sum() + 0.5 * n_features * math.log(2 * math.pi)
        return -0.5 * self._event_sum(((x - params) / scale).square()) - log_norm


def _bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-feature ``-log Bernoulli(x; logits) = softplus(logits) - x * logits``, stable for any logits."""
    return torch.addcmul(F.softplus(logits), x, logits, value=-1)  # one pass for the product and difference


def _continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """Per-feature log C of the continuous Bernoulli (Loaiza-Ganem & Cunningham, 2019), from its logits.

    With ``p = sigmoid(l)``, ``C = 2 artanh(1 - 2p) / (1 - 2p) = l / tanh(l / 2)``: finite for every
    ``l``, where torch's form in ``p`` saturates beyond |l| ~ 16 in float32. Near 0 the ratio is 0 / 0
    and its gradient cancels, so |l| < 0.5 uses the series ``log 2 + l^2/12 - 7 l^4/1440 + 31 l^6/90720``
    (next term 1e-7 there).
    """
    small = logits.abs() < 0.5
    u = logits.square()
    series = math.log(2) + u * (1 / 12 + u * (-7 / 1440 + u * (31 / 90720)))
    safe = torch.where(small, 1.0, logits)
    return torch.where(small, series, (safe / torch.tanh(safe / 2)).log())


def _fixed_unit_gaussian(event_shape: tuple[int, ...]) -> GaussianLikelihood:
    likelihood = GaussianLikelihood(event_shape, shared=True, min_scale=0.0)
    likelihood.set_scale(torch.tensor(1.0))
    likelihood.raw_scale.requires_grad_(False)  # sigma = 1 always: -log p is half the squared error + const
    return likelihood


_BY_NAME: dict[str, Callable[[tuple[int, ...]], Likelihood]] = {
    "bernoulli": BernoulliLikelihood,
    "continuous_bernoulli": ContinuousBernoulliLikelihood,
    "gaussian": GaussianLikelihood,
    "gaussian_shared": lambda shape: GaussianLikelihood(shape, shared=True),
    "gaussian_fixed": _fixed_unit_gaussian,
}
LIKELIHOODS = tuple(_BY_NAME)


def choose_likelihood(name: str, binary: bool) -> str:
    """``name``, or what ``"auto"`` stands for: ``"bernoulli"`` for binary data, else ``"gaussian"``.

    A Gaussian with a learned variance per feature is a proper density of any real values, in
    the same family as PPCA's: with it PCA, the autoencoder and the VAE all score the same data
    as densities of the same values, so their log-likelihoods compare like for like.
    """
    if name != "auto":
        return name
    return "bernoulli" if binary else "gaussian"


def make_likelihood(name: str, event_shape: tuple[int, ...]) -> Likelihood:
    """Build the likelihood called ``name`` for data of shape ``event_shape``.

    ``"gaussian"`` learns one standard deviation per feature, ``"gaussian_shared"`` one for all
    features, ``"gaussian_fixed"`` keeps it at 1 (the squared-error loss, made a density).
    """
    if not isinstance(name, str) or name not in _BY_NAME:
        raise ConfigError(f"unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}")
    return _BY_NAME[name](tuple(event_shape))
