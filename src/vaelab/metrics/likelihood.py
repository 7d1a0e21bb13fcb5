"""Likelihood metrics: importance-sampled log p(x), the ELBO and its terms, bits/dim, active units.

All values are per example, in nats, higher is better for (log-)likelihoods.

* :func:`iw_log_likelihood` — the K-sample importance-weighted estimate of Burda, Grosse &
  Salakhutdinov (2016), "Importance Weighted Autoencoders", ICLR::

      log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),    z_k ~ q(z|x).

  Its expectation is a lower bound on log p(x) that increases with K and reaches log p(x) as
  K -> infinity; the bias is about ``-(1/ESS - 1/K) / 2`` nats (delta method), so a proposal far from
  the posterior needs a large K. With the exact posterior as proposal every weight equals p(x) and
  the estimate is exact for any K. Exactly K samples are drawn and the sum is divided by K.
* :func:`elbo` — the evidence lower bound (Kingma & Welling, 2014, "Auto-Encoding Variational
  Bayes", ICLR): ``E_q[log p(x|z)] - KL(q(z|x) || p(z))``, the K = 1 case of the bound above.
* :func:`active_units` — Burda et al. (2016), section 5.2: latent dimension ``u`` is active when
  ``Cov_x(E_{q(z|x)}[z_u]) > 0.01``.

The sampling is seeded per example, by its content, and per sample (see :mod:`vaelab.metrics._common`):
the same seed gives the same number for an example whatever the rows around it, ``batch_size`` and
``chunk_size``, and memory does not grow with K.

Conditional models (``encode(x, y)``, ``decode(z, y)``) take class indices ``y`` of shape ``(n,)``;
the metrics then estimate log p(x | y) and pass ``y`` with ``x`` batch by batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.distributions import Distribution

from ..errors import ConfigError
from ..models import LatentModel, ProbabilisticModel, kl_term, log_weight_terms
from ._common import (
    as_data,
    as_labels,
    check_int,
    check_positive,
    check_seed,
    example_keys,
    noise_chunks,
    reparameterise,
)

_BATCH_SIZE = 64  # examples per pass (a multiple of the 16-example noise tile wastes no draws)
# Posterior samples per pass; a pass decodes batch_size * chunk_size rows. At 2048 rows the
# decoder's full-width temporaries (6 MiB each at 784 features) stay in cache and are reused by the
# allocator; at 8192 rows (chunk 128) K = 1000 evaluation ran 1.5x slower on a 2-core CPU.
_CHUNK_SIZE = 32
# ...but a pass keeps the decoder's widest layer under about this many values (16 MiB of float32):
# larger temporaries pass glibc's 32 MiB mmap ceiling and are page-faulted in afresh on every pass
# (a 32-64-channel conv decoder on 28x28 images ran 1.8x slower at chunk 32 than at 8).
_PASS_VALUES = 1 << 22


@dataclass(frozen=True)
class ImportanceSampledLogLikelihood:
    """The result of :func:`iw_estimate`; every tensor has shape ``(n,)``."""

    log_likelihood: torch.Tensor  # log (1/K) sum_k w_k, nats; a stochastic lower bound on log p(x)
    effective_sample_size: torch.Tensor  # (sum_k w_k)^2 / sum_k w_k^2, in [1, K]
    standard_error: torch.Tensor  # delta-method Monte Carlo error, sqrt(1/ESS - 1/K), nats
    n_samples: int  # K, the number of samples drawn and divided by
    # The ELBO from the same K draws, (1/K) sum_k log w_k: never above log_likelihood (Jensen, per
    # example), so the two can be printed side by side without noise inverting their order.
    elbo: torch.Tensor
    elbo_standard_error: torch.Tensor  # sd_k(log w_k) / sqrt(K), nats
    kl: torch.Tensor  # KL(q(z|x) || p(z)): closed form where registered, else Monte Carlo over the K draws


@dataclass(frozen=True)
class ElboTerms:
    """Per-example terms of the ELBO, each ``(n,)`` in nats; ``elbo = -(reconstruction + kl)``."""

    elbo: torch.Tensor  # lower bound on log p(x), higher is better
    reconstruction: torch.Tensor  # E_q[-log p(x|z)], the distortion, lower is better
    kl: torch.Tensor  # KL(q(z|x) || p(z)), the rate


def _require_encoder(model: LatentModel, metric: str) -> ProbabilisticModel:
    if not isinstance(model, ProbabilisticModel):
        raise ConfigError(
            f"{metric} needs a model with encode(x) -> q(z|x) (a VAE or PPCA); "
            f"{type(model).__name__} has none (a deterministic autoencoder defines no density)"
        )
    return model


def _labels(model: LatentModel, y, n: int) -> tuple[torch.Tensor, ...]:
    """The extra arguments of ``encode`` and ``decode``: ``()``, or ``(y,)`` as checked class indices."""
    return () if y is None else (as_labels(model, y, n),)


def _posterior_batches(
    model: ProbabilisticModel,
    x: torch.Tensor,
    labels: tuple[torch.Tensor, ...],
    n_samples: int,
    seed: int,
    batch_size: int,
    chunk_size: int | None,
) -> Iterator[tuple[slice, torch.Tensor, tuple[torch.Tensor, ...], Distribution, Iterator[torch.Tensor]]]:
    """Yield ``(rows, x[rows], labels[rows], q(z|x[rows]), chunks)``, batch by batch.

    ``chunks`` yields reparameterised draws ``z`` of shape ``(c, b, latent_dim)``, exactly ``n_samples``
    draws per example over all chunks, the noise drawn chunk by chunk.
    """
    if chunk_size is None:
        chunk_size = _auto_chunk_size(model, labels, batch_size)
    for start in range(0, len(x), batch_size):
        rows = slice(start, min(start + batch_size, len(x)))
        xb, lb = x[rows], tuple(label[rows] for label in labels)
        qz = model.encode(xb, *lb)
        eps = noise_chunks(example_keys(xb, seed), n_samples, chunk_size, qz.event_shape[-1], x.device)
        yield rows, xb, lb, qz, (reparameterise(qz, e) for e in eps)


def _check_sampling(n_samples, seed, batch_size, chunk_size) -> tuple[int, int, int, int | None]:
    return (
        check_int("n_samples", n_samples, 1),
        check_seed(seed),
        check_int("batch_size", batch_size, 1),
        None if chunk_size is None else check_int("chunk_size", chunk_size, 1),
    )


def _widest_decoder_layer(model: LatentModel, labels: tuple[torch.Tensor, ...]) -> int:
    """Values per row in the largest output of any submodule while decoding: one probe row."""
    widths = [1]

    def record(module, inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            widths.append(output.numel())

    handles = [m.register_forward_hook(record) for m in model.modules()]
    try:
        model.decode(model.prior().mean[None], *(label[:1] for label in labels))
    finally:
        for handle in handles:
            handle.remove()
    return max(widths)


def _auto_chunk_size(model: LatentModel, labels: tuple[torch.Tensor, ...], batch_size: int) -> int:
    """Samples per pass: ``_CHUNK_SIZE``, fewer when the decoder's widest layer would pass ``_PASS_VALUES``."""
    return max(1, min(_CHUNK_SIZE, _PASS_VALUES // (batch_size * _widest_decoder_layer(model, labels))))


@torch.no_grad()
def iw_estimate(
    model: LatentModel,
    x,
    n_samples: int = 1000,
    *,
    seed: int = 0,
    batch_size: int = _BATCH_SIZE,
    chunk_size: int | None = None,
    y=None,
) -> ImportanceSampledLogLikelihood:
    """Importance-sampled log p(x) with its effective sample size and Monte Carlo standard error.

    Parameters
    ----------
    model : LatentModel
        Needs ``encode(x) -> q(z|x)`` (diagonal Gaussian, or two-level), ``decode(z) -> p(x|z)`` and ``prior()``.
    x : tensor or array, shape (n, n_features)
    n_samples : int
        K, the number of posterior samples per example (drawn and divided by).
    seed : int
        Same seed, same numbers, whatever ``batch_size``, ``chunk_size`` and device.
    batch_size, chunk_size : int
        Examples and samples per pass (``chunk_size=None``: 32, or fewer when the decoder's widest
        layer would exceed 4 Mi values per pass). Peak memory is one decoder pass over ``batch_size *
        chunk_size`` rows plus ``64 * batch_size * latent_dim`` floats of noise; the noise is drawn
        and the weights combined (by a running log-sum-exp) chunk by chunk, so memory does not grow
        with ``n_samples``.
    y : tensor or array of int, shape (n,), optional
        Class indices for a conditional model, passed as ``encode(x, y)`` and ``decode(z, y)``;
        the estimate is then of log p(x | y).

    Returns
    -------
    ImportanceSampledLogLikelihood
        Per-example ``(n,)`` tensors in nats. The log-likelihood is biased low by about
        ``(1/ESS - 1/K) / 2``; the standard error is a delta-method estimate and is itself
        unreliable when the weights are heavy-tailed (small ESS).
    """
    model = _require_encoder(model, "iw_log_likelihood")
    n_samples, seed, batch_size, chunk_size = _check_sampling(n_samples, seed, batch_size, chunk_size)
    x = as_data(model, x)
    labels = _labels(model, y, len(x))
    prior = model.prior()
    # running log-sum-exp of w and of w^2 over sample chunks, in float64: (n,) each
    lse = torch.full((len(x),), -math.inf, dtype=torch.float64, device=x.device)
    lse2 = lse.clone()
    # running sums of log w and of (log w - first chunk's mean)^2, for the ELBO and its spread
    total, shift, square = torch.zeros_like(lse), torch.zeros_like(lse), torch.zeros_like(lse)
    kl = torch.zeros_like(lse)
    for rows, xb, lb, qz, chunks in _posterior_batches(model, x, labels, n_samples, seed, batch_size, chunk_size):
        for i, z in enumerate(chunks):  # (c, b, latent_dim)
            log_px, log_pz, log_qz = log_weight_terms(model, xb, z, qz, lb[0] if lb else None, prior=prior)
            log_w = (log_px + log_pz - log_qz).double()  # (c, b)
            lse[rows] = torch.logaddexp(lse[rows], torch.logsumexp(log_w, 0))
            lse2[rows] = torch.logaddexp(lse2[rows], torch.logsumexp(2 * log_w, 0))
            if i == 0:
                shift[rows] = log_w.mean(0)  # centring keeps the variance sum exact in float64
            total[rows] += log_w.sum(0)
            square[rows] += (log_w - shift[rows]).square().sum(0)
            kl[rows] += kl_term(qz, prior, z, log_qz - log_pz).double() * (len(z) / n_samples)
    ess = torch.exp(2 * lse - lse2)
    standard_error = (1 / ess - 1 / n_samples).clamp_min(0).sqrt()
    elbo_mean = total / n_samples
    variance = (square / n_samples - (elbo_mean - shift).square()).clamp_min(0) * (n_samples / max(n_samples - 1, 1))
    return ImportanceSampledLogLikelihood(
        (lse - math.log(n_samples)).float(),
        ess.float(),
        standard_error.float(),
        n_samples,
        elbo_mean.float(),
        (variance / n_samples).sqrt().float(),
        kl.float(),
    )


def iw_log_likelihood(
    model: LatentModel,
    x,
    n_samples: int = 1000,
    *,
    seed: int = 0,
    batch_size: int = _BATCH_SIZE,
    chunk_size: int | None = None,
    y=None,
) -> torch.Tensor:
    """Importance-sampled log p(x) in nats, shape ``(n,)``; see :func:`iw_estimate` for the parameters.

    ``log (1/K) sum_k w_k`` with ``K = n_samples`` draws from ``q(z|x)``: a stochastic lower bound on
    log p(x) (Burda et al., 2016) that tightens as K grows. Higher is better.
    """
    return iw_estimate(model, x, n_samples, seed=seed, batch_size=batch_size, chunk_size=chunk_size, y=y).log_likelihood


@torch.no_grad()
def elbo(
    model: LatentModel,
    x,
    n_samples: int = 1,
    *,
    seed: int = 0,
    batch_size: int = _BATCH_SIZE,
    chunk_size: int | None = None,
    y=None,
) -> ElboTerms:
    """The evidence lower bound and its terms, per example in nats.

    Parameters
    ----------
    model : LatentModel
        Needs ``encode``, ``decode`` and ``prior`` (a VAE or PPCA).
    x : tensor or array, shape (n, n_features)
    n_samples : int
        Posterior samples averaged in the reconstruction term (1: the training objective's estimate).
    seed, batch_size, chunk_size, y
        As in :func:`iw_estimate`.

    Returns
    -------
    ElboTerms
        ``elbo``, ``reconstruction`` (``E_q[-log p(x|z)]``, Monte Carlo over ``n_samples``) and ``kl``
        (closed form when torch registers it, else Monte Carlo over the same samples), each ``(n,)``.
    """
    model = _require_encoder(model, "elbo")
    n_samples, seed, batch_size, chunk_size = _check_sampling(n_samples, seed, batch_size, chunk_size)
    x = as_data(model, x)
    labels = _labels(model, y, len(x))
    prior = model.prior()
    reconstruction = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    kl = torch.zeros_like(reconstruction)
    for rows, xb, lb, qz, chunks in _posterior_batches(model, x, labels, n_samples, seed, batch_size, chunk_size):
        exact = model.expected_reconstruction(xb, qz)  # closed form (PPCA): then ELBO = log p(x) to rounding
        if exact is not None:
            reconstruction[rows] = exact.double() * n_samples
        for z in chunks:  # (c, b, latent_dim)
            if exact is None:
                reconstruction[rows] -= model.decode(z, *lb).log_prob(xb).double().sum(0)
            # closed form where registered (each chunk adds its share of it), else Monte Carlo
            kl[rows] += kl_term(qz, prior, z).double() * (len(z) / n_samples)
    reconstruction /= n_samples
    return ElboTerms((-(reconstruction + kl)).float(), reconstruction.float(), kl.float())


def bits_per_dim(log_likelihood_nats, n_dims: int):
    """Convert log-likelihoods in nats per example to bits per dimension: ``-ll / (n_dims ln 2)``.

    Lower is better. Works on floats, arrays and tensors (same shape out). For a continuous density
    on rescaled data this is *not* comparable to discrete 8-bit results, which add a quantisation
    term (log 256 per dimension for data scaled to [0, 1] with uniform dequantisation).
    """
    n_dims = check_int("n_dims", n_dims, 1)
    return -log_likelihood_nats / (n_dims * math.log(2))


@torch.no_grad()
def posterior_mean_variance(model: LatentModel, x, batch_size: int = 1024, *, y=None) -> torch.Tensor:
    """``Var_x(E[z|x])`` per latent dimension over the rows of ``x``: shape ``(latent_dim,)``.

    The posterior mean is ``encode(x).mean`` when the model has an encoder distribution (VAE; for
    PPCA the exact posterior mean, not ``embed``'s argmax of p(x|z)), else ``embed(x)`` (autoencoder
    codes, whose scale no prior fixes). Unbiased variance; needs at least two rows. ``y``: class
    indices ``(n,)`` for a conditional model, passed after ``x``.
    """
    x = as_data(model, x, min_rows=2)
    batch_size = check_int("batch_size", batch_size, 1)
    labels = _labels(model, y, len(x))
    means = []
    for start in range(0, len(x), batch_size):
        rows = slice(start, start + batch_size)
        args = (x[rows], *(label[rows] for label in labels))
        means.append(model.encode(*args).mean if isinstance(model, ProbabilisticModel) else model.embed(*args))
    return torch.cat(means).double().var(0).float()


def active_units(model: LatentModel, x, threshold: float = 0.01, batch_size: int = 1024, *, y=None) -> int:
    """Number of active latent dimensions (Burda et al., 2016): ``Var_x(E[z|x]) > threshold``.

    Parameters
    ----------
    model : LatentModel
        A VAE, PPCA or autoencoder (see :func:`posterior_mean_variance`).
    x : tensor or array, shape (n, n_features), n >= 2
    threshold : float
        0.01 in the paper, meaningful on the prior's unit scale.
    y : tensor or array of int, shape (n,), optional
        Class indices for a conditional model.
    """
    threshold = check_positive("threshold", threshold)
    return int((posterior_mean_variance(model, x, batch_size, y=y) > threshold).sum())
