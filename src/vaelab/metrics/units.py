"""Numbers in the data's units: densities moved from model space to the raw values, and discrete bits/dim.

:func:`to_data_units` adds the preprocessing's log-Jacobian to :func:`vaelab.metrics.evaluate`'s
densities; :func:`dequantised_bits_per_dim` gives integer (e.g. 8-bit) data the standard discrete
convention, the uniformly dequantised bound of Theis, van den Oord & Bethge (2016), "A note on the
evaluation of generative models", ICLR.
"""

from __future__ import annotations

import math

import torch

from ..models import LatentModel
from ._common import as_data
from .evaluate import json_safe, log_likelihood_values, stat
from .likelihood import bits_per_dim


def to_data_units(report: dict, log_det_jacobian: float | None, mse: float | None = None) -> dict:
    """:func:`evaluate`'s ``report`` with its densities moved from model space to the data's units.

    ``log p_data(x) = log p_model(t(x)) + log|det dt/dx|`` for the preprocessing ``t``: the
    log-likelihood and the ELBO gain ``log_det_jacobian`` (nats per example), the distortion
    loses it, the rate (a KL between codes) is unchanged. ``None`` (binarised data, a discrete
    map) leaves the numbers as probabilities of the binarised values. ``mse``: the reconstruction
    error in the data's squared units, replacing the model-space one.
    """
    report = {**report, "units": {"space": "data", "log_det_jacobian_nats": log_det_jacobian}}
    shift = 0.0 if log_det_jacobian is None else log_det_jacobian
    for key, sign in (("log_likelihood", 1), ("elbo", 1), ("reconstruction", -1)):
        entry = dict(report[key])
        if entry.get("value") is not None:
            entry["value"] += sign * shift
            entry["unit"] = "nats per example, in the data's units" + (
                "" if log_det_jacobian is None else " (the preprocessing's log-Jacobian included)"
            )
        report[key] = entry
    if report["log_likelihood"].get("value") is not None:
        n_dims = report["n_features"]
        report["bits_per_dim"] = {
            **report["bits_per_dim"],
            "value": float(bits_per_dim(report["log_likelihood"]["value"], n_dims)),
            "unit": "bits/dim of the data's density (continuous: not the 8-bit discrete convention)",
        }
    if mse is not None:
        report["mse"] = {**report["mse"], "value": mse, "unit": "squared data units per feature", "sem": None}
    return report


def discrete_protocol(levels: int) -> str:
    """The words of :func:`dequantised_bits_per_dim`'s protocol for integer data with ``levels`` values."""
    top, name = levels - 1, "8-bit discrete convention" if levels == 256 else f"discrete convention for {levels} levels"
    return (
        f"{name}, uniform dequantisation (Theis et al., 2016): -E_u log2 p(x + u) / D for the integer values x in "
        f"0..{top} and one u ~ U[0, 1)^D per example (seeded), the density p in raw 0..{levels} units: an upper "
        "bound on -log2 P(x) / D, the integer data's probability (log P(x) >= E_u log p(x + u)); x + u is scaled "
        f"by {top}/{levels} into the model's range, that log-Jacobian D ln({levels}/{top}) included. Offset: the "
        f"bits/dim of the density of (x + u) / {levels} on [0, 1) plus log2({levels}) = {math.log2(levels):.4g}"
    )


@torch.no_grad()
def dequantised_bits_per_dim(
    model: LatentModel, x_dequantised, log_det_jacobian: float, levels: int, *, n_iw_samples: int = 1000, seed: int = 0
) -> dict:
    """Bits/dim of integer data in the standard discrete convention (8-bit: ``levels=256``), with its protocol.

    Parameters
    ----------
    model : LatentModel
        A probabilistic module (PPCA: exact; a VAE: importance-sampled, K = ``n_iw_samples``).
    x_dequantised : tensor or array, shape (n, n_features)
        The model-space values of ``(x + u) * (levels - 1) / levels`` for the integer data ``x``
        (0..levels-1) and uniform noise ``u`` in [0, 1): inside the range of the raw values.
    log_det_jacobian : float
        ``log |det|`` of the map from raw values to model space (nats per example), as for
        :func:`to_data_units`.
    levels : int
        Values each integer can take: 256 for 8-bit data, 17 for scikit-learn's digits (0..16).

    Returns
    -------
    dict
        ``value`` in bits/dim (lower is better), with ``unit``, ``protocol`` (:func:`discrete_protocol`),
        ``estimator`` and ``sem`` (standard error across examples).
    """
    x = as_data(model, x_dequantised, "x_dequantised", min_rows=1)
    d, top = x.shape[1], levels - 1
    ll, estimator = log_likelihood_values(model, x, n_iw_samples, seed)
    log_density = ll.double() + log_det_jacobian + d * math.log(top / levels)  # of x + u, in raw units
    entry = stat(bits_per_dim(log_density, d), "bits/dim", estimator=estimator, protocol=discrete_protocol(levels))
    return json_safe(entry)
