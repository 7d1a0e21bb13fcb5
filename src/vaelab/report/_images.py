"""Image helpers for the report figures: flat rows to pictures, pictures to one tiled mosaic.

A grid is drawn as a single ``imshow`` of a tiled array rather than one axes per picture, so a
figure of a hundred pictures stays quick to draw and small to store.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes

from ..errors import DataError

GAP = 1  # pixels of background between neighbouring pictures of a mosaic
_GAP_COLOUR = 1.0  # white, on the [0, 1] display scale


def check_sample_shape(sample_shape, n_features: int) -> tuple[int, int, int]:
    """Validate ``sample_shape`` as ``(channels, height, width)`` holding ``n_features`` values."""
    try:
        shape = tuple(int(s) for s in sample_shape)
    except (TypeError, ValueError):
        raise DataError(f"sample_shape must be a tuple (channels, height, width), got {sample_shape!r}") from None
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
        raise DataError(
            f"sample_shape must be (channels, height, width) with 1 or 3 channels, got {sample_shape!r}; "
            "pass None for tabular data"
        )
    if math.prod(shape) != n_features:
        raise DataError(
            f"sample_shape {shape} holds {math.prod(shape)} values, but the data have {n_features} features"
        )
    return shape


def display_range(X: np.ndarray) -> tuple[float, float]:
    """``(low, high)`` mapped to black and white: ``(0, 1)`` when ``X`` lies in [0, 1], else its range."""
    low, high = float(np.min(X)), float(np.max(X))
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    return (low, high) if high > low else (low, low + 1.0)


def to_pictures(X: np.ndarray, sample_shape, value_range: tuple[float, float]) -> np.ndarray:
    """Rows ``(n, C*H*W)`` to pictures ``(n, H, W, C)`` on the display scale [0, 1] (clipped)."""
    c, h, w = sample_shape
    low, high = value_range
    pictures = np.asarray(X, dtype=np.float32).reshape(len(X), c, h, w).transpose(0, 2, 3, 1)
    return np.clip((pictures - low) / (high - low), 0.0, 1.0)


def mosaic(pictures: np.ndarray) -> np.ndarray:
    """Tile ``(rows, cols, H, W, C)`` pictures into one ``(rows*(H+GAP)-GAP, cols*(W+GAP)-GAP, C)`` array.

    Gaps hold NaN, drawn in the background colour by :func:`draw_mosaic`.
    """
    rows, cols, h, w, c = pictures.shape
    padded = np.pad(pictures, ((0, 0), (0, 0), (0, GAP), (0, GAP), (0, 0)), constant_values=np.nan)
    tiled = padded.transpose(0, 2, 1, 3, 4).reshape(rows * (h + GAP), cols * (w + GAP), c)
    return tiled[:-GAP, :-GAP]


def draw_mosaic(
    ax: Axes,
    pictures: np.ndarray,
    *,
    row_labels: list[str] | None = None,
    col_labels: dict[int, str] | None = None,
) -> None:
    """Draw ``(rows, cols, H, W, C)`` pictures as one image on ``ax``, with optional tick labels.

    ``col_labels`` maps a column index to its label; unlabelled columns get no tick.
    """
    rows, cols, h, w, c = pictures.shape
    tiled = mosaic(pictures)
    if c == 1:
        cmap = colormaps["gray"].with_extremes(bad=(_GAP_COLOUR,) * 3)
        ax.imshow(tiled[..., 0], cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(np.nan_to_num(tiled, nan=_GAP_COLOUR), interpolation="nearest")
    ax.set_yticks([r * (h + GAP) + (h - 1) / 2 for r in range(rows)] if row_labels else [])
    if row_labels:
        ax.set_yticklabels(row_labels)
    columns = sorted((col_labels or {}).items())
    ax.set_xticks([k * (w + GAP) + (w - 1) / 2 for k, _ in columns])
    ax.set_xticklabels([label for _, label in columns])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def mosaic_aspect(rows: int, cols: int, sample_shape) -> float:
    """Height / width of the mosaic of ``rows`` x ``cols`` pictures."""
    _, h, w = sample_shape
    return (rows * (h + GAP) - GAP) / (cols * (w + GAP) - GAP)
