"""Figures comparing latent-variable models: each function returns a :class:`matplotlib.figure.Figure`.

Figures are built on ``Figure`` objects directly, never through pyplot's global state, so nothing is
shown, no backend is switched, and a figure is freed once the caller drops it; ``fig.savefig`` renders
PNGs with Agg. Every function takes fitted estimators (``PCA``, ``Autoencoder``, ``VAE`` or anything
with ``transform`` / ``inverse_transform`` / ``reconstruct`` / ``sample`` and ``module_.latent_dim``)
and data as the estimator's own methods take them: ``X`` is ``(n_samples, n_features)`` or
``(n_samples, *sample_shape)``; outputs are flattened to rows for drawing. For images
``sample_shape`` is ``(channels, height, width)`` with ``channels`` 1 or 3.

What the figures are for: continuity (straight lines between codes decode to smooth interpolations)
and completeness (codes drawn from the prior decode to things that look like data) of a latent space,
as in Kingma & Welling (2014, fig. 4) and the beta-VAE traversals of Higgins et al. (2017).
The latent map (:mod:`vaelab.report.maps`), the training and beta-sweep curves
(:mod:`vaelab.report.curves`) and the figures for tabular data (:mod:`vaelab.report.tabular`) are
re-exported here, so this module lists every figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import ConfigError, DataError
from ._common import FIGURE_WIDTH, STANDARD_NORMAL, as_rows, heading, latent_dim, prior_name
from ._common import data_and_rows as _data
from ._images import check_sample_shape, display_range, draw_mosaic, mosaic_aspect, to_pictures
from .curves import rate_distortion, training_curves
from .maps import latent_map
from .tabular import feature_errors, feature_histograms

__all__ = [
    "latent_map",
    "reconstructions",
    "prior_samples",
    "samples_comparison",
    "interpolations",
    "latent_traversals",
    "training_curves",
    "rate_distortion",
    "feature_errors",
    "feature_histograms",
    "FIGURE_WIDTH",
]


def _mosaic_figure(rows: int, cols: int, sample_shape) -> tuple[Figure, Axes]:
    # The picture gets ~82% of the width (tick labels take the rest); ~0.8 in for a 2-line title.
    height = FIGURE_WIDTH * 0.82 * mosaic_aspect(rows, cols, sample_shape) + 0.8
    fig = Figure(figsize=(FIGURE_WIDTH, max(height, 1.5)), layout="constrained")
    return fig, fig.add_subplot()


def _blank(sample_shape) -> np.ndarray:
    c, h, w = sample_shape
    return np.full((h, w, c), np.nan, dtype=np.float32)


def _grid(pictures: np.ndarray, n_cols: int, sample_shape) -> np.ndarray:
    """``(n, H, W, C)`` to ``(rows, n_cols, H, W, C)``, the last row padded with blanks."""
    rows = math.ceil(len(pictures) / n_cols)
    padding = [_blank(sample_shape)] * (rows * n_cols - len(pictures))
    return np.concatenate([pictures, np.array(padding).reshape(-1, *pictures.shape[1:])]).reshape(
        rows, n_cols, *pictures.shape[1:]
    )


def reconstructions(
    model,
    X,
    sample_shape,
    *,
    name: str | None = None,
    n_images: int = 24,
    n_cols: int = 12,
    value_range: tuple[float, float] | None = None,
    random_state=0,
) -> Figure:
    """Rows of test images (``data``) above their reconstructions, ``model.reconstruct``.

    Parameters
    ----------
    model : fitted estimator
    X : array of shape (n_samples, n_features) or (n_samples, C, H, W)
    sample_shape : (C, H, W)
        The shape of one image, C = 1 (grey) or 3 (RGB).
    n_images, n_cols : int
        A fixed random choice of ``n_images`` images, ``n_cols`` per row.
    value_range : (low, high), optional
        Values drawn black and white; default [0, 1] when ``X`` lies in it, else its range.
    random_state : int
        Seeds the choice of images.
    """
    X, rows = _data(model, X)
    shape = check_sample_shape(sample_shape, rows.shape[1])
    value_range = value_range or display_range(rows)
    rng = np.random.default_rng(random_state)
    index = np.sort(rng.choice(len(X), min(n_images, len(X)), replace=False))
    chosen, rebuilt = rows[index], as_rows(model.reconstruct(X[index]))
    n_cols = min(n_cols, len(chosen))
    originals = _grid(to_pictures(chosen, shape, value_range), n_cols, shape)
    copies = _grid(to_pictures(rebuilt, shape, value_range), n_cols, shape)
    pictures = np.stack([originals, copies], axis=1).reshape(-1, *originals.shape[1:])  # data, rec, data, ...
    fig, ax = _mosaic_figure(len(pictures), n_cols, shape)
    draw_mosaic(ax, pictures, row_labels=["data", "reconstruction"] * len(originals))
    mse = float(np.mean((rebuilt - chosen) ** 2))
    ax.set_title(
        heading(
            name,
            "test images and their reconstructions",
            f"decoder mean at each image's code; mean squared error on these {len(chosen)}: {mse:.4g} "
            "squared data units per value",
        )
    )
    return fig


def prior_samples(
    model,
    sample_shape,
    *,
    name: str | None = None,
    n_samples: int = 48,
    n_cols: int = 12,
    value_range: tuple[float, float] | None = None,
    random_state=0,
) -> Figure:
    """A grid of ``model.sample(n_samples)``: decoder means at codes drawn from the model's prior.

    Parameters are those of :func:`reconstructions`; ``value_range`` defaults to the samples' range,
    so pass the data's to draw both on one scale. ``random_state`` seeds the prior draws.
    """
    samples = as_rows(model.sample(n_samples, random_state=random_state))
    shape = check_sample_shape(sample_shape, samples.shape[1])
    value_range = value_range or display_range(samples)
    n_cols = min(n_cols, n_samples)
    fig, ax = _mosaic_figure(math.ceil(n_samples / n_cols), n_cols, shape)
    draw_mosaic(ax, _grid(to_pictures(samples, shape, value_range), n_cols, shape))
    detail = f"decoder means E[x | z] at z ~ {prior_name(model)}"
    ax.set_title(heading(name, f"{n_samples} samples from the prior", detail))
    return fig


def samples_comparison(
    models: Mapping[str, Any],  # fitted estimators, or anything with their methods (module docstring)
    sample_shape,
    X=None,
    *,
    n_samples: int = 32,
    n_cols: int = 8,
    value_range: tuple[float, float] | None = None,
    random_state=0,
) -> Figure:
    """Prior samples of every model side by side, after a panel of real images from ``X`` when given.

    Parameters
    ----------
    models : dict of str to fitted estimator
        One panel each, titled by the key; every model draws with the same ``random_state``.
    sample_shape : (C, H, W)
    X : array of shape (n_samples, n_features) or (n_samples, C, H, W), optional
        Real images for the first panel; their range sets ``value_range`` when it is not given.
    n_samples, n_cols : int
        Pictures per panel, and per row of a panel.
    """
    if not models:
        raise ConfigError("samples_comparison needs at least one model")
    panels, titles = {}, {}
    if X is not None:
        X = as_rows(X)
        rng = np.random.default_rng(random_state)
        panels["data (test set)"] = X[rng.choice(len(X), min(n_samples, len(X)), replace=False)]
    for name, model in models.items():
        panels[name] = as_rows(model.sample(n_samples, random_state=random_state))
        titles[name] = f"{name}: z ~ {prior_name(model)}"
    n_features = next(iter(panels.values())).shape[1]
    shape = check_sample_shape(sample_shape, n_features)
    value_range = value_range or display_range(X if X is not None else np.concatenate(list(panels.values())))
    n_cols = min(n_cols, n_samples)
    rows = math.ceil(n_samples / n_cols)
    panel_cols = 2 if len(panels) > 1 else 1
    panel_rows = math.ceil(len(panels) / panel_cols)
    panel_height = FIGURE_WIDTH / panel_cols * 0.92 * mosaic_aspect(rows, n_cols, shape) + 0.35
    fig = Figure(figsize=(FIGURE_WIDTH, panel_rows * panel_height + 0.5), layout="constrained")
    axes = fig.subplots(panel_rows, panel_cols, squeeze=False).ravel()
    for ax, (title, rows_) in zip(axes, panels.items(), strict=False):  # spare panels are blanked below
        draw_mosaic(ax, _grid(to_pictures(rows_, shape, value_range), n_cols, shape))
        ax.set_title(titles.get(title, title), fontsize="medium")
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    fig.suptitle("Completeness: do decoded samples of each model's prior look like the data?")
    return fig


def _pairs(n: int, n_pairs: int, y, rng) -> list[tuple[int, int]]:
    """``n_pairs`` index pairs; with labels, the two ends of a pair differ in label where possible."""
    starts = rng.permutation(n)[: min(n_pairs, n)]
    pairs = []
    for a in starts:
        candidates = np.flatnonzero(np.asarray(y) != y[a]) if y is not None else np.array([], dtype=int)
        if len(candidates) == 0:
            candidates = np.delete(np.arange(n), a) if n > 1 else np.array([a])
        pairs.append((int(a), int(rng.choice(candidates))))
    return pairs


def interpolations(
    model,
    X,
    sample_shape,
    *,
    y=None,
    name: str | None = None,
    n_pairs: int = 6,
    n_steps: int = 10,
    value_range: tuple[float, float] | None = None,
    random_state=0,
) -> Figure:
    """Decoded straight lines between the codes of pairs of test images, one pair per row.

    Each row shows image A, the decoder means at ``(1 - t) z_A + t z_B`` for ``n_steps`` values of
    t from 0 to 1, then image B. With labels ``y``, pairs join different labels where possible.
    A continuous latent space decodes these paths to gradual, plausible changes.

    Parameters
    ----------
    y : array of shape (n_samples,), optional
        Labels of ``X``: rows are labelled "a -> b".
    n_pairs, n_steps : int
        Rows, and decoded points per row (at least 2: t = 0 and t = 1).

    The others are those of :func:`reconstructions`.
    """
    X, rows = _data(model, X)
    if y is not None and np.shape(y) != (len(X),):
        raise DataError(f"y must have shape ({len(X)},) to label X, got {np.shape(y)}")
    shape = check_sample_shape(sample_shape, rows.shape[1])
    value_range = value_range or display_range(rows)
    if n_steps < 2:
        raise ConfigError(f"n_steps must be at least 2 (the two ends), got {n_steps}")
    pairs = _pairs(len(X), n_pairs, y, np.random.default_rng(random_state))
    a, b = (np.array(ends) for ends in zip(*pairs, strict=True))
    Za, Zb = model.transform(X[a]), model.transform(X[b])  # (p, k) each
    t = np.linspace(0.0, 1.0, n_steps, dtype=np.float32)[None, :, None]
    path = ((1 - t) * Za[:, None] + t * Zb[:, None]).reshape(-1, Za.shape[1])  # (p * n_steps, k)
    decoded = to_pictures(as_rows(model.inverse_transform(path)), shape, value_range)
    decoded = decoded.reshape(len(pairs), n_steps, *decoded.shape[1:])  # (p, n_steps, H, W, C)
    ends = [to_pictures(rows[idx], shape, value_range)[:, None] for idx in (a, b)]
    pictures = np.concatenate([ends[0], decoded, ends[1]], axis=1)
    fig, ax = _mosaic_figure(len(pairs), n_steps + 2, shape)
    labels = {0: "image A", 1: "t = 0", n_steps: "t = 1", n_steps + 1: "image B"}
    row_labels = [f"{y[i]} \u2192 {y[j]}" for i, j in pairs] if y is not None else None
    draw_mosaic(ax, pictures, row_labels=row_labels, col_labels=labels)
    ax.set_title(
        heading(
            name,
            "interpolations between test images",
            "decoded straight lines (1 - t) z_A + t z_B between the two codes",
        )
    )
    return fig


def latent_traversals(
    model,
    sample_shape,
    *,
    X=None,
    reference: str = "prior",
    name: str | None = None,
    values: Sequence[float] | None = None,
    max_dims: int = 10,
    value_range: tuple[float, float] | None = None,
) -> Figure:
    """One row per latent dimension: decode codes that move along it, the others held fixed.

    Parameters
    ----------
    reference : {"prior", "codes"}
        ``"prior"``: start from z = 0 and set z_j to each of ``values`` (prior standard deviations;
        right for models with a N(0, I) prior, probabilistic PCA and the default VAE; the title names
        a learned prior, around which these steps are only a scale). ``"codes"``: start
        from the mean of the codes of ``X`` and move z_j by ``values`` times their standard deviation
        (for an autoencoder, whose codes have no reference scale).
    values : sequence of float
        Default: nine values from -3 to 3.
    max_dims : int
        With more latent dimensions, the ``max_dims`` whose codes of ``X`` vary most are shown
        (for a VAE, the active units), or the first ``max_dims`` when ``X`` is not given.
    """
    k = latent_dim(model)
    steps = np.linspace(-3.0, 3.0, 9) if values is None else np.asarray(values, dtype=np.float64)
    Z = None if X is None else model.transform(_data(model, X)[0]).astype(np.float64)
    if reference == "prior":
        centre, scale = np.zeros(k), np.ones(k)
        prior = prior_name(model)
        detail = f"z_j from {steps[0]:+g} to {steps[-1]:+g} prior sd, other coordinates at 0 (the prior mean)"
        if prior != STANDARD_NORMAL:
            detail = (
                f"z_j from {steps[0]:+g} to {steps[-1]:+g} (sd of N(0, I), for scale: the model's prior is {prior}), "
                "other coordinates at 0"
            )
    elif reference == "codes":
        if Z is None:
            raise ConfigError("reference='codes' needs X, the data whose codes set the centre and the scale")
        centre, scale = Z.mean(0), Z.std(0)
        detail = f"z_j = mean \u00b1 {steps[-1]:g} sd of the test codes; other coordinates at the mean code"
    else:
        raise ConfigError(f"unknown reference {reference!r}; choose 'prior' or 'codes'")
    dims = np.arange(k)
    if k > max_dims:
        dims = np.sort(np.argsort(-Z.var(0))[:max_dims]) if Z is not None else dims[:max_dims]
        detail += f"; the {max_dims} of {k} dimensions whose codes vary most"
    codes = np.repeat(centre[None, None], len(dims), axis=0).repeat(len(steps), axis=1)  # (rows, steps, k)
    for row, j in enumerate(dims):
        codes[row, :, j] = centre[j] + steps * scale[j]
    decoded = as_rows(model.inverse_transform(codes.reshape(-1, k).astype(np.float32)))
    shape = check_sample_shape(sample_shape, decoded.shape[1])
    value_range = value_range or display_range(decoded)
    pictures = to_pictures(decoded, shape, value_range).reshape(len(dims), len(steps), *_blank(shape).shape)
    fig, ax = _mosaic_figure(len(dims), len(steps), shape)
    draw_mosaic(
        ax, pictures, row_labels=[f"z{j + 1}" for j in dims], col_labels={i: f"{v:+g}" for i, v in enumerate(steps)}
    )
    ax.set_title(heading(name, "latent traversals", detail))
    return fig
