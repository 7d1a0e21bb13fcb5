"""One call that measures a model every way vaelab knows, as a JSON-serialisable dict with units.

``evaluate(model, x_test, x_train=...)`` gathers the likelihood metrics (exact for PPCA,
importance-sampled for a VAE, none for a deterministic autoencoder), reconstruction error, active
units, continuity and completeness; see :mod:`vaelab.metrics.likelihood`,
:mod:`vaelab.metrics.continuity` and :mod:`vaelab.metrics.completeness` for the definitions and
papers. Every number is a mean over the rows of ``x_test`` unless said otherwise; a number that
does not exist for a model is ``None`` with a ``"reason"``, and caveats go in ``"notes"``.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np
import torch

from ..models import LatentModel, ProbabilisticModel
from ._common import as_data, check_int, check_seed, embed
from .completeness import COMPARISON_COMPONENTS, SAMPLERS, FeatureSpace, Sampler, prior_sample_quality, sample_codes
from .continuity import decoder_lipschitz, path_length_ratio, summarize
from .likelihood import bits_per_dim, elbo, iw_estimate, posterior_mean_variance

_SEED_NAMES = ("iw", "elbo", "pairs", "lipschitz_data", "lipschitz_samples", "prior", "gmm")
_PATH_STEPS = 64  # segments of each latent line in the path length ratio
_NO_DENSITY = "a deterministic autoencoder defines no density p(x) and no posterior q(z|x)"


class Stopwatch:
    """Wall-clock seconds per stage: ``lap(name)`` books the time since the previous lap (or the start)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


def stat(values: torch.Tensor, unit: str, **extra) -> dict:
    """Mean over examples with its standard error across examples (sampling of the test set)."""
    values = values.double()
    sem = values.std() / math.sqrt(len(values)) if len(values) > 1 else torch.tensor(math.nan)
    return {"value": float(values.mean()), "sem": float(sem), "unit": unit, **extra}


def _missing(unit: str, reason: str) -> dict:
    return {"value": None, "unit": unit, "reason": reason}


def json_safe(obj):
    """Python scalars only; NaN and infinities become None (strict JSON has neither)."""
    if isinstance(obj, dict):
        return {str(key): json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating, torch.Tensor)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


@torch.no_grad()
def log_likelihood_values(
    model: LatentModel, x: torch.Tensor, n_iw_samples: int, seed: int
) -> tuple[torch.Tensor, str]:
    """log p(x) ``(n,)`` in nats (exact where the model has a closed form), and how it was computed."""
    exact = _exact_log_likelihood(model, x)
    if exact is not None:
        return exact, "exact"
    if not isinstance(model, ProbabilisticModel):
        raise TypeError(_NO_DENSITY)
    iw = iw_estimate(model, x, check_int("n_iw_samples", n_iw_samples, 1), seed=check_seed(seed))
    return iw.log_likelihood, f"importance-sampled (K={n_iw_samples}): its bits/dim is an upper bound in expectation"


@torch.no_grad()
def _exact_log_likelihood(model: LatentModel, x: torch.Tensor) -> torch.Tensor | None:
    """Exact log p(x) ``(n,)`` in nats, 4096 rows at a time; None for a model without a closed form."""
    if not isinstance(model, ProbabilisticModel) or model.exact_log_likelihood(x[:1]) is None:
        return None
    parts = [model.exact_log_likelihood(x[i : i + 4096]) for i in range(0, len(x), 4096)]
    return torch.cat([p for p in parts if p is not None])


@torch.no_grad()
def evaluate(
    model: LatentModel,
    x_test,
    *,
    x_train=None,
    n_iw_samples: int = 1000,
    seed: int = 0,
    feature_space: FeatureSpace | None = None,
    k: int = 5,
    n_pairs: int = 256,
    n_lipschitz: int = 512,
    n_directions: int = 16,
    eps: float = 1e-2,
    batch_size: int = 64,
    chunk_size: int | None = None,
    clock: Stopwatch | None = None,
) -> dict:
    """Every vaelab metric of ``model`` on ``x_test``, with units: a JSON-serialisable dict.

    Parameters
    ----------
    model : LatentModel
        A vaelab module (``PPCA``, ``VAE``, ``Autoencoder``), e.g. ``estimator.module_``, in eval mode.
    x_test : tensor or array, shape (n_test, n_features)
        Held-out data; n_test >= 2.
    x_train : tensor or array, shape (n_train, n_features), optional
        Fits the completeness feature space (unless ``feature_space`` is given), and the
        ``"gmm"`` sampler's mixture for a model that keeps no training codes. Without it and
        without ``feature_space`` the completeness section is None.
    n_iw_samples : int
        K for the importance-sampled log-likelihood (VAE only); the ELBO, the rate and the
        distortion are Monte-Carlo averages over the same K draws, so ELBO <= log p(x) in every row.
    seed : int
        Seeds every random choice (child seeds per metric): same seed, same dict.
    feature_space : FeatureSpace, optional
        Share one across models to compare their completeness.
    k : int
        Neighbours for precision/recall/density/coverage.
    n_pairs : int
        Random pairs of test examples for the path length ratio (at most n_test // 2).
    n_lipschitz, n_directions, eps
        Codes probed around data and around samples, directions per code and step length for
        :func:`~vaelab.metrics.continuity.decoder_lipschitz` (max over directions).
    batch_size, chunk_size : int
        Examples and posterior samples per pass of the sampling metrics (memory only).
    clock : Stopwatch, optional
        Gets one lap per stage, in wall-clock seconds (kept out of the dict, which the seed fixes):
        ``log_likelihood`` (for a VAE its importance-sampling pass also gives the ELBO, rate and
        distortion), ``reconstruction``, ``elbo``, ``active_units``, ``continuity``, ``completeness``.

    Returns
    -------
    dict
        Keys ``model``, ``likelihood``, ``n_examples``, ``n_features``, ``latent_dim``, ``seed``,
        ``log_likelihood``, ``elbo``, ``reconstruction``, ``kl``, ``bits_per_dim``, ``mse``,
        ``active_units``, ``continuity``, ``completeness``, ``notes``. Scalar entries are
        ``{"value", "unit", ...}`` with ``"sem"`` the standard error of the mean across test
        examples (Monte Carlo error of the estimator is given separately where there is one).
        Log-likelihoods are in nats per example, higher is better.
    """
    seed = check_seed(seed)
    n_iw_samples = check_int("n_iw_samples", n_iw_samples, 1)
    lap = clock.lap if clock is not None else (lambda stage: None)
    x = as_data(model, x_test, "x_test", min_rows=2)
    x_fit = None if x_train is None else as_data(model, x_train, "x_train", min_rows=2)
    seeds = dict(zip(_SEED_NAMES, np.random.SeedSequence(seed).generate_state(len(_SEED_NAMES)).tolist(), strict=True))
    n, d = x.shape
    probabilistic = isinstance(model, ProbabilisticModel)
    likelihood_name = model.likelihood.name or None
    notes: list[str] = []
    exact = _exact_log_likelihood(model, x)

    # -- likelihoods: exact (PPCA), importance-sampled (VAE) or none (autoencoder)
    if exact is not None:
        ll = exact
        log_likelihood = stat(ll, "nats", estimator="exact")
    elif probabilistic:
        iw = iw_estimate(model, x, n_iw_samples, seed=seeds["iw"], batch_size=batch_size, chunk_size=chunk_size)
        ll = iw.log_likelihood
        log_likelihood = stat(
            ll,
            "nats",
            estimator=f"importance-sampled (K={n_iw_samples})",
            monte_carlo_standard_error=float(iw.standard_error.double().pow(2).sum().sqrt() / n),
            effective_sample_size_median=float(iw.effective_sample_size.median()),
        )
        notes.append(
            "the importance-sampled log-likelihood is a stochastic lower bound: biased low by about "
            "(1/ESS - 1/K)/2 nats per example (Burda et al., 2016)"
        )
    else:
        ll = None
        log_likelihood = {**_missing("nats", _NO_DENSITY), "estimator": None}
    lap("log_likelihood")

    # deterministic reconstruction through the code: decoder mean and -log p(x | embed(x)), (n, d) and (n,)
    decoded_parts, nll_parts = [], []
    for i in range(0, n, 4096):
        px = model.decode(model.embed(x[i : i + 4096]))
        decoded_parts.append(px.mean)
        nll_parts.append(-px.log_prob(x[i : i + 4096]))
    decoded, reconstruction_at_code = torch.cat(decoded_parts), torch.cat(nll_parts)
    lap("reconstruction")
    if exact is not None:  # the exact posterior: closed-form terms, and ELBO = log p(x)
        terms = elbo(model, x, 1, seed=seeds["elbo"], batch_size=batch_size, chunk_size=chunk_size)
        elbo_entry = stat(
            terms.elbo, "nats", estimator="exact (closed form; equals log p(x), the posterior being exact)"
        )
        reconstruction = stat(terms.reconstruction, "nats", definition="E_q[-log p(x|z)] (distortion), closed form")
        kl = stat(terms.kl, "nats", definition="KL(q(z|x) || p(z)) (rate), closed form")
    elif probabilistic:
        elbo_entry = stat(
            iw.elbo,
            "nats",
            estimator=f"Monte Carlo over the K={n_iw_samples} draws of log p(x): (1/K) sum_k log w_k",
            monte_carlo_standard_error=float(iw.elbo_standard_error.double().pow(2).sum().sqrt() / n),
        )
        reconstruction = stat(-(iw.elbo + iw.kl), "nats", definition="E_q[-log p(x|z)] (distortion) = -ELBO - rate")
        kl = stat(iw.kl, "nats", definition="KL(q(z|x) || p(z)) (rate); closed form where one exists, else Monte Carlo")
    else:
        elbo_entry = _missing("nats", _NO_DENSITY)
        reconstruction = stat(reconstruction_at_code, "nats", definition="-log p(x|z) at the code z = embed(x)")
        kl = _missing("nats", _NO_DENSITY)
    lap("elbo")

    if ll is None:
        bpd = _missing("bits/dim", _NO_DENSITY)
    else:
        bpd = {
            "value": float(bits_per_dim(ll.double().mean(), d)),
            "unit": "bits/dim of the model-space density (continuous: not the 8-bit discrete convention)",
            "from": "log_likelihood",
        }
    mse = stat((decoded - x).pow(2).mean(1), "squared data units per feature", definition="decode(embed(x)).mean vs x")

    variances = posterior_mean_variance(model, x)
    active = {
        "value": int((variances > 0.01).sum()),
        "of": int(variances.numel()),
        "threshold": 0.01,
        "unit": "dimensions",
        "variance_of_posterior_mean": variances.tolist(),
    }
    lap("active_units")

    # -- continuity
    order = np.random.default_rng(seeds["pairs"]).permutation(n)
    m = min(n_pairs, n // 2)
    ratio = path_length_ratio(model, x[order[:m]], x[order[m : 2 * m]], _PATH_STEPS, batch_size=batch_size)
    z_data = embed(model, x[order[: min(n_lipschitz, n)]], 4096)
    lipschitz = functools.partial(
        decoder_lipschitz, model, eps=eps, n_directions=n_directions, batch_size=4 * batch_size
    )
    around_data = summarize(lipschitz(z_data, seed=seeds["lipschitz_data"]))
    has_codes = int(model.code_sample_size) > 0 or x_fit is not None
    sampler: Sampler | None = "prior" if probabilistic else ("gmm" if has_codes else None)
    if sampler is None:
        around_samples = {
            "sampler": None,
            "reason": "an autoencoder has no prior; fit it with vaelab (which keeps codes) or pass x_train",
        }
    else:
        z_samples = sample_codes(model, n_lipschitz, seeds["lipschitz_samples"], sampler, x_train=x_fit)
        around_samples = {
            "sampler": sampler,
            **summarize(lipschitz(z_samples, seed=seeds["lipschitz_samples"])),
        }
    continuity = {
        "path_length_ratio": {**summarize(ratio), "unit": "ratio (1 = straight)", "n_steps": _PATH_STEPS},
        "decoder_lipschitz": {
            "unit": "data units per latent unit",
            "eps": eps,
            "n_directions": n_directions,
            "reduce": "max",
            "around_data": around_data,
            "around_samples": around_samples,
        },
    }
    lap("continuity")

    # -- completeness
    if feature_space is None and x_fit is not None:
        feature_space = FeatureSpace.fit(x_fit.cpu(), min(COMPARISON_COMPONENTS, *x_fit.shape))
    completeness: dict[str, Any]
    if feature_space is None:
        completeness = {"value": None, "reason": "needs x_train (to fit the feature space) or a feature_space"}
    elif n <= k:
        completeness = {"value": None, "reason": f"needs more than k={k} test examples, got {n}"}
    else:
        completeness = {
            "feature_space": feature_space.to_dict(),
            "k": k,
            "n_samples": n,
            "samples": "draws from p(x|z) at sampled codes z, against x_test",
        }
        for name in SAMPLERS:
            # An autoencoder's prior samples are kept on purpose: their poor quality next to a
            # VAE's is what the KL regulariser buys.
            if name == "gmm" and not has_codes:
                completeness[name] = {
                    "value": None,
                    "reason": "needs kept training codes or x_train to fit the mixture",
                }
            else:
                result = prior_sample_quality(model, x, feature_space, n, seeds[name], name, x_train=x_fit, k=k)
                completeness[name] = result.to_dict()
    lap("completeness")

    # -- caveats
    if likelihood_name == "bernoulli":
        binary = bool(((x == 0) | (x == 1)).all())
        if not binary:
            notes.append(
                "likelihood='bernoulli' on non-binary data (values other than 0 and 1): log p(x|z) is "
                "a negative binary cross-entropy, not a normalised density, so the likelihoods, ELBO "
                "and bits/dim are not comparable with other likelihoods or published results; use "
                "'continuous_bernoulli' or binarise the data"
            )
    if not probabilistic:
        notes.append(
            "autoencoder codes have no prior scale: the active-unit threshold (0.01) and the Lipschitz "
            "values (per latent unit) are not comparable with a VAE's; the path length ratio is scale-free"
        )

    return json_safe(
        {
            "model": type(model).__name__,
            "likelihood": likelihood_name,
            "n_examples": n,
            "n_features": d,
            "latent_dim": model.latent_dim,
            "seed": seed,
            "log_likelihood": log_likelihood,
            "elbo": elbo_entry,
            "reconstruction": reconstruction,
            "kl": kl,
            "bits_per_dim": bpd,
            "mse": mse,
            "active_units": active,
            "continuity": continuity,
            "completeness": completeness,
            "notes": notes,
        }
    )
