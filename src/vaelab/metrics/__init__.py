"""Metrics of latent-variable models: pure functions of a torch module, per example, in nats.

Likelihoods (higher is better): :func:`iw_log_likelihood`, :func:`elbo`, :func:`bits_per_dim`;
latent usage: :func:`active_units`; continuity: :func:`path_length_ratio`,
:func:`decoder_lipschitz`, :func:`summarize`; completeness: :func:`precision_recall`,
:func:`density_coverage` (both at once: :func:`prdc`) in a :class:`FeatureSpace`, and
:func:`prior_sample_quality` for decoded samples; and :func:`evaluate`, which reports them all as a
JSON-serialisable dict with units.
"""

from .completeness import (
    Completeness,
    FeatureSpace,
    calibration,
    density_coverage,
    prdc,
    precision_recall,
    prior_sample_quality,
    sample_codes,
)
from .continuity import decoder_lipschitz, path_length_ratio, summarize
from .evaluate import evaluate
from .likelihood import (
    ElboTerms,
    ImportanceSampledLogLikelihood,
    active_units,
    bits_per_dim,
    elbo,
    iw_estimate,
    iw_log_likelihood,
    posterior_mean_variance,
)
from .units import to_data_units

__all__ = [
    "Completeness",
    "ElboTerms",
    "FeatureSpace",
    "ImportanceSampledLogLikelihood",
    "active_units",
    "bits_per_dim",
    "decoder_lipschitz",
    "density_coverage",
    "elbo",
    "evaluate",
    "to_data_units",
    "iw_estimate",
    "iw_log_likelihood",
    "path_length_ratio",
    "posterior_mean_variance",
    "prdc",
    "precision_recall",
    "prior_sample_quality",
    "calibration",
    "sample_codes",
    "summarize",
]
