"""Figures for tabular data: per-feature reconstruction error, and samples against data per feature.

Like :mod:`vaelab.report.figures`, each function returns a :class:`matplotlib.figure.Figure` built
without pyplot. ``X`` is ``(n_samples, n_features)``, as the estimator's own methods take it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import DataError
from ._common import FIGURE_WIDTH, as_rows, heading, prior_name
from ._common import data_and_rows as _data


def _feature_names(feature_names: Sequence[str] | None, n_features: int) -> list[str]:
    if feature_names is None:
        return [f"x{i + 1}" for i in range(n_features)]
    names = [str(f) for f in feature_names]
    if len(names) != n_features:
        raise DataError(f"feature_names has {len(names)} names, but the data have {n_features} features")
    return names


def feature_errors(
    model, X, *, feature_names: Sequence[str] | None = None, name: str | None = None, max_features: int = 30
) -> Figure:
    """Horizontal bars of the mean squared reconstruction error of each feature on ``X``.

    A black tick marks each feature's variance: the error of always predicting its mean, so a bar
    reaching its tick means the model explains nothing of that feature. With more than
    ``max_features`` features, those with the largest error are shown (the title says so).
    """
    raw, X = _data(model, X)
    names = _feature_names(feature_names, X.shape[1])
    error = np.asarray(np.mean((as_rows(model.reconstruct(raw)) - X) ** 2, axis=0, dtype=np.float64))  # (d,)
    variance = X.var(0, dtype=np.float64)
    shown = np.arange(X.shape[1])
    detail = "black ticks: variance of the feature (the error of predicting its mean)"
    if len(shown) > max_features:
        shown = np.sort(np.argsort(-error)[:max_features])
        detail = f"the {max_features} of {X.shape[1]} features with the largest error; " + detail
    fig = Figure(figsize=(FIGURE_WIDTH, 1.5 + 0.26 * len(shown)), layout="constrained")
    ax = fig.add_subplot()
    rows = np.arange(len(shown))
    ax.barh(rows, error[shown], color="C0", label="mean squared error")
    ax.scatter(variance[shown], rows, marker="|", s=250, color="black", label="variance")
    ax.set_yticks(rows, [names[i] for i in shown])
    ax.invert_yaxis()  # first feature on top
    ax.set_xlim(left=0)
    ax.set_xlabel("mean squared error on the test set (squared data units)")
    ax.legend(frameon=False, loc="lower right", fontsize="small")
    ax.set_title(heading(name, "reconstruction error per feature", detail))
    return fig


def feature_histograms(
    model,
    X,
    *,
    feature_names: Sequence[str] | None = None,
    name: str | None = None,
    n_features: int = 4,
    n_samples: int | None = None,
    random_state=0,
) -> Figure:
    """Histograms of data and of prior samples for the ``n_features`` features of largest variance.

    ``model.sample`` returns decoder means E[x | z] at codes z from its prior, without the decoder's noise, so
    the samples may be narrower than the data even for a good model. ``n_samples`` defaults to the
    number of rows of ``X``, within [500, 5000].
    """
    _, X = _data(model, X)
    names = _feature_names(feature_names, X.shape[1])
    n_samples = n_samples or int(np.clip(len(X), 500, 5000))
    samples = as_rows(model.sample(n_samples, random_state=random_state))
    chosen = np.argsort(-X.var(0))[: min(n_features, X.shape[1])]
    n_cols = 1 if len(chosen) == 1 else 2
    n_rows = math.ceil(len(chosen) / n_cols)
    fig = Figure(figsize=(FIGURE_WIDTH, 2.7 * n_rows + 0.8), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, j in zip(axes, chosen, strict=False):  # a last odd panel is blanked below
        edges = np.histogram_bin_edges(np.concatenate([X[:, j], samples[:, j]]), bins=30)
        ax.hist(X[:, j], bins=edges, density=True, color="0.7", label="test data")
        ax.hist(
            samples[:, j],
            bins=edges,
            density=True,
            histtype="step",
            linewidth=1.5,
            color="C1",
            label="prior samples (decoder means)",
        )
        ax.set_title(names[j], fontsize="medium")
        ax.set_ylabel("density")
    for ax in axes[len(chosen) :]:
        ax.set_axis_off()
    axes[0].legend(frameon=False, fontsize="small")
    fig.suptitle(
        heading(
            name,
            f"data and prior samples, the {len(chosen)} features of largest variance",
            f"samples are E[x | z] at z ~ {prior_name(model)}, without decoder noise: expect them narrower",
        )
    )
    return fig
