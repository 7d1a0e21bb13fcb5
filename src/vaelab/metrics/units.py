"""Numbers in the data's units: densities moved from model space to the raw values.

:func:`to_data_units` adds the preprocessing's log-Jacobian to :func:`vaelab.metrics.evaluate`'s
densities. For integer grey levels scored dequantised (a point drawn in each integer's bin,
:mod:`vaelab.data.preprocessing`) the result is the standard discrete convention: a lower bound
on the log-probability of the integers, and bits/dim comparable with published 8-bit numbers
(Theis, van den Oord & Bethge, 2016, "A note on the evaluation of generative models", ICLR).
"""

from __future__ import annotations

import math

from .likelihood import bits_per_dim


def dequantised_protocol(levels: int) -> str:
    """How the log-likelihood of integer data with ``levels`` values (0..levels-1) was scored, in words."""
    name = "the 8-bit convention" if levels == 256 else f"the discrete convention for {levels} levels"
    return (
        f"{name}: log P(x) of the integers x in 0..{levels - 1} by uniform dequantisation (Theis et al., 2016), "
        f"the density at x + u for one u ~ U[0, 1)^D per example (keyed on the example and the seed), in raw "
        f"units (the model's values are (x + u) / {levels}): a lower bound, log P(x) >= E_u log p(x + u)"
    )


def to_data_units(report: dict, log_det_jacobian: float | None, mse: float | None = None, levels=None) -> dict:
    """:func:`evaluate`'s ``report`` with its densities moved from model space to the data's units.

    ``log p_data(x) = log p_model(t(x)) + log|det dt/dx|`` for the preprocessing ``t``: the
    log-likelihood and the ELBO gain ``log_det_jacobian`` (nats per example), the distortion
    loses it, the rate (a KL between codes) is unchanged. ``None`` (binarised data, a discrete
    map) leaves the numbers as probabilities of the binarised values. ``mse``: the reconstruction
    error in the data's squared units, replacing the model-space one. ``levels``: the report was
    scored on dequantised integers with this many values (``Preprocessing.levels``), so the
    log-likelihood bounds their log-probability and bits/dim is the discrete convention.
    """
    if levels is not None:
        protocol = dequantised_protocol(levels)
        raw = f"nats per example, of the dequantised values x + u in raw units ({protocol})"
        units = {
            "log_likelihood": "nats per example: the log-probability of the integer data, a lower bound; " + protocol,
            "elbo": "nats per example: a lower bound on the log-probability of the integer data; " + protocol,
            "reconstruction": raw,
        }
        bpd_unit = f"bits/dim of the integer data ({protocol}; uniform over the levels: {math.log2(levels):.4g})"
    else:
        unit = "nats per example, in the data's units" + (
            "" if log_det_jacobian is None else " (the preprocessing's log-Jacobian included)"
        )
        units = dict.fromkeys(("log_likelihood", "elbo", "reconstruction"), unit)
        bpd_unit = "bits/dim of the data's density (continuous: not the 8-bit discrete convention)"
    report = {
        **report,
        "units": {"space": "data", "log_det_jacobian_nats": log_det_jacobian, "dequantised_levels": levels},
    }
    shift = 0.0 if log_det_jacobian is None else log_det_jacobian
    for key, sign in (("log_likelihood", 1), ("elbo", 1), ("reconstruction", -1)):
        entry = dict(report[key])
        if entry.get("value") is not None:
            entry["value"] += sign * shift
            entry["unit"] = units[key]
        report[key] = entry
    if report["log_likelihood"].get("value") is not None:
        n_dims = report["n_features"]
        report["bits_per_dim"] = {
            **report["bits_per_dim"],
            "value": float(bits_per_dim(report["log_likelihood"]["value"], n_dims)),
            "unit": bpd_unit,
        }
    if mse is not None:
        report["mse"] = {**report["mse"], "value": mse, "unit": "squared data units per feature", "sem": None}
    return report
