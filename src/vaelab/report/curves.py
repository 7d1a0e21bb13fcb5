"""Line plots of training and of a beta sweep; each function returns a :class:`matplotlib.figure.Figure`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import DataError
from ._common import FIGURE_WIDTH, heading


def training_curves(model, *, name: str | None = None) -> Figure:
    """Reconstruction and KL terms per epoch (nats per example), training and validation, from ``history_``.

    The KL panel is left out when the KL term is zero throughout (an autoencoder). A dotted line
    marks the epoch whose weights were kept (early stopping).
    """
    history = getattr(model, "history_", None)
    if history is None:
        raise DataError(f"{type(model).__name__} has no history_: it was not trained by gradient steps")
    terms = [("reconstruction", "reconstruction: -log p(x | z)")]
    if any(v != 0 for v in history["train"].get("kl", [])):
        terms.append(("kl", "KL(q(z | x) || p(z))"))
    fig = Figure(figsize=(FIGURE_WIDTH, 3.8), layout="constrained")
    axes = fig.subplots(1, len(terms), squeeze=False).ravel()
    for ax, (key, label) in zip(axes, terms, strict=True):
        for split, style in (("train", "-"), ("validation", "--")):
            curve = history.get(split, {}).get(key, [])
            if curve:
                ax.plot(np.arange(1, len(curve) + 1), curve, style, label=split)
        best = history.get("best_epoch")
        if best:
            ax.axvline(best, color="0.4", linestyle=":", linewidth=1, label=f"kept (epoch {best})")
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example (model space)")
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle(heading(name, "training curves"))
    return fig


def check_sweep(sweep: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Validate a beta sweep; returns its ``(beta, rate, distortion)`` rows sorted by rate, ``(m, 3)``."""
    points = []
    for i, entry in enumerate(sweep):
        if not isinstance(entry, Mapping) or {"beta", "rate", "distortion"} - set(entry):
            raise DataError(f"sweep entry {i} is {entry!r}; each needs 'beta', 'rate' and 'distortion'")
        try:
            point = tuple(float(entry[key]) for key in ("beta", "rate", "distortion"))
        except (TypeError, ValueError):
            point = (math.nan,)
        if not all(map(math.isfinite, point)):
            raise DataError(f"sweep entry {i} needs finite numbers, got {dict(entry)!r}")
        points.append(point)
    if not points:
        raise DataError("the sweep is empty; pass at least one {'beta', 'rate', 'distortion'} entry")
    return np.array(sorted(points, key=lambda p: p[1]))


def rate_distortion(sweep: Sequence[Mapping[str, float]], *, name: str | None = None) -> Figure:
    """Distortion against rate over a beta sweep: a list of ``{"beta", "rate", "distortion"}`` dicts.

    Rate is KL(q(z|x) || p(z)) and distortion -E_q log p(x|z), both in nats per example. The dashed
    line R + D = min marks the best ELBO in the sweep (Alemi et al., 2018).
    """
    beta, rate, distortion = check_sweep(sweep).T
    fig = Figure(figsize=(FIGURE_WIDTH, 5.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(rate, distortion, "o-", color="C0")
    for b, r, d in zip(beta, rate, distortion, strict=True):
        ax.annotate(f"\u03b2 = {b:g}", (r, d), textcoords="offset points", xytext=(6, 6), fontsize="small")
    best = float(np.min(rate + distortion))
    right = 1.15 * max(float(rate.max()), 1e-3)
    span = np.array([0.0, right])
    ax.plot(span, best - span, "--", color="0.5", linewidth=1, label=f"R + D = {best:.4g} (best ELBO in the sweep)")
    ax.set_xlim(0, right)
    margin = 0.15 * max(float(np.ptp(distortion)), 1.0)
    ax.set_ylim(distortion.min() - margin, distortion.max() + margin)
    ax.set_xlabel("rate R = KL(q(z | x) || p(z)), nats per example")
    ax.set_ylabel("distortion D = -log p(x | z), nats per example")
    ax.legend(frameon=False)
    detail = "each point trades rate for distortion; \u03b2 = 1 trains on the ELBO itself"
    ax.set_title(heading(name, "rate\u2013distortion over a \u03b2 sweep", detail))
    return fig
