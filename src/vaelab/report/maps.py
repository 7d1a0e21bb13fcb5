"""The latent map: a scatter of a fitted model's codes, coloured by label (re-exported by :mod:`.figures`).

Two-dimensional codes are drawn against the prior's 1, 2 and 3 sd circles, as in Kingma & Welling
(2014, fig. 4); larger codes are projected by a PCA of the codes, and the title says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from ..errors import DataError
from ._common import FIGURE_WIDTH, STANDARD_NORMAL, heading, prior_name
from ._common import data_and_rows as _data

__all__ = ["latent_map", "MAX_POINTS"]

MAX_POINTS = 5000  # points drawn in a latent map; more are subsampled (a fixed random subset)
_MAX_CLASSES = 20  # labels with more distinct values than this are coloured on a continuous scale


def _is_discrete(y: np.ndarray) -> bool:
    if y.dtype.kind in "biuUSO":
        return True
    return y.dtype.kind == "f" and bool(np.all(y == np.round(y))) and len(np.unique(y)) <= _MAX_CLASSES


def _marker_size(n: int) -> float:
    return float(np.clip(3000 / n, 5, 30))  # points^2: small for thousands of points, visible for fifty


def _scatter_by_label(fig: Figure, ax: Axes, P: np.ndarray, y: np.ndarray | None) -> None:
    """Scatter 2-D points ``P`` (n, 2) coloured by ``y``: a legend for classes, a colour bar otherwise."""
    style: dict[str, Any] = {"s": _marker_size(len(P)), "alpha": 0.75, "linewidths": 0}
    if y is None:
        ax.scatter(P[:, 0], P[:, 1], color="C0", **style)
        return
    classes, index = np.unique(y, return_inverse=True)
    if _is_discrete(y) and len(classes) <= _MAX_CLASSES:
        palette = colormaps["tab10" if len(classes) <= 10 else "tab20"]  # palette(i): its i-th colour
        for i, cls in enumerate(classes):
            mask = index == i
            ax.scatter(P[mask, 0], P[mask, 1], color=palette(i), label=str(cls), **style)
        ax.legend(
            title="label",
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            frameon=False,
            markerscale=max(1.0, 20 / style["s"]),
        )
        return
    values = y.astype(np.float64) if y.dtype.kind in "biuf" else index
    points = ax.scatter(P[:, 0], P[:, 1], c=values, cmap="viridis", **style)
    fig.colorbar(points, ax=ax, label="label")


def latent_map(model, X, y=None, *, name: str | None = None, max_points: int = MAX_POINTS, random_state=0) -> Figure:
    """Scatter of the codes ``model.transform(X)``, coloured by the labels ``y`` when given.

    Two-dimensional codes are drawn as they are, with dashed circles at 1, 2 and 3 standard
    deviations of N(0, I): a generative model with that prior should fill them (completeness); for a
    learned prior (VampPrior, mixture) the title names it and the circles are only a scale.
    Codes with more than two dimensions are projected onto their first two principal components
    (the title says so, with the share of variance kept); one-dimensional codes are drawn against the
    label (or a random jitter when there is none).

    Parameters
    ----------
    model : fitted estimator
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,), optional
        Labels: classes get a legend, continuous values a colour bar.
    max_points : int
        A fixed random subset of this many points is drawn when ``X`` has more rows.
    random_state : int
        Seeds the subset and the jitter.
    """
    X, _ = _data(model, X)
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise DataError(f"y must have shape ({len(X)},) to label X, got {y.shape}")
    rng = np.random.default_rng(random_state)
    if len(X) > max_points:
        keep = np.sort(rng.choice(len(X), max_points, replace=False))
        X, y = X[keep], (None if y is None else y[keep])
    Z = model.transform(X).astype(np.float64)  # (n, k)
    k = Z.shape[1]
    prior = prior_name(model)
    circles = f"the prior {prior}" if prior == STANDARD_NORMAL else f"N(0, I), for scale (the model's prior is {prior})"
    fig = Figure(figsize=(FIGURE_WIDTH, 6.2), layout="constrained")
    ax = fig.add_subplot()
    what = f"latent map of {len(Z)} points" + (", coloured by label" if y is not None else "")
    if k == 1:
        vertical: np.ndarray  # (n,): the label, or a jitter, drawn against the 1-D code
        if y is not None and _is_discrete(y) and len(np.unique(y)) <= _MAX_CLASSES:
            classes, index = np.unique(y, return_inverse=True)
            vertical = index + rng.uniform(-0.3, 0.3, len(Z))
            ax.set_yticks(range(len(classes)), [str(c) for c in classes])
            ax.set_ylabel("label (with jitter)")
        elif y is not None:
            vertical = y.astype(np.float64) if y.dtype.kind in "biuf" else np.unique(y, return_inverse=True)[1]
            ax.set_ylabel("label")
        else:
            vertical = rng.uniform(-1, 1, len(Z))
            ax.set_yticks([])
            ax.set_ylabel("random jitter")
        ax.axvspan(-2, 2, color="0.92", zorder=0)
        ax.scatter(Z[:, 0], vertical, color="C0", s=_marker_size(len(Z)), alpha=0.6, linewidths=0)
        ax.set_xlabel("z (the 1-D code)")
        detail = "1-D codes on the horizontal axis; grey band: \u00b12 sd of " + circles.replace("N(0, I)", "N(0, 1)")
    else:
        if k == 2:
            P, centre = Z, np.zeros(2)
            detail = f"2-D codes; dashed circles: 1, 2, 3 sd of {circles}"
            ax.set_xlabel("z1")
            ax.set_ylabel("z2")
        else:
            mean = Z.mean(0)
            _, s, Vt = np.linalg.svd(Z - mean, full_matrices=False)
            Vt = Vt[:2] * np.sign(Vt[:2, [0]] + (Vt[:2, [0]] == 0))  # fixed signs: deterministic output
            P, centre = (Z - mean) @ Vt.T, -mean @ Vt.T
            kept = float((s[:2] ** 2).sum() / max((s**2).sum(), 1e-300))
            detail = (
                f"{k}-D codes PROJECTED to 2-D by PCA of the codes ({kept:.0%} of their variance)\n"
                f"dashed circles: 1, 2, 3 sd of {circles}"
            )
            ax.set_xlabel("principal component 1 of the codes")
            ax.set_ylabel("principal component 2 of the codes")
        for radius in (1, 2, 3):
            ax.add_patch(
                Circle(
                    (float(centre[0]), float(centre[1])),
                    radius,
                    fill=False,
                    linestyle="--",
                    linewidth=0.8,
                    color="0.45",
                    zorder=0,
                )
            )
        _scatter_by_label(fig, ax, P, y)
        ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(heading(name, what, detail))
    return fig
