"""Continuity of a decoder: how smoothly data change as one moves through the latent space.

* :func:`path_length_ratio` — decode the straight latent line between the codes of two examples
  and compare the length of the decoded curve with the distance between its decoded end points.
  1 means the decoder maps the line to a straight line (exactly 1 for a linear decoder); large
  values mean the decoded path detours, e.g. through a jump. This is the discrete version of the
  curve-length comparisons used to study latent geometry (Arvanitidis, Hansen & Hauberg, 2018,
  "Latent Space Oddity: on the Curvature of Deep Generative Models", ICLR).
* :func:`decoder_lipschitz` — a finite-difference estimate of the local Lipschitz constant of the
  decoder mean, ``||dec(z + eps u) - dec(z)|| / eps`` over random unit directions ``u``; compare
  ``z`` near encoded data with ``z`` from the prior to see whether the decoder stays tame where
  samples come from. Its units are data units per latent unit, so it depends on the scale of the
  code (fixed by the prior for a VAE or PPCA, arbitrary for a deterministic autoencoder).
* :func:`summarize` — median and 90th percentile of such per-example values.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..models import LatentModel
from ._common import as_codes, as_data, check_int, check_positive, check_seed, example_seeds, standard_normal

_BATCH_SIZE = 256  # pairs or codes per decoder pass


@torch.no_grad()
def path_length_ratio(
    model: LatentModel, x_a, x_b, n_steps: int = 64, *, batch_size: int = _BATCH_SIZE
) -> torch.Tensor:
    """Decoded path length over decoded end-point distance for straight latent lines, per pair.

    Parameters
    ----------
    model : LatentModel
        Needs ``embed(x)`` and ``decode(z)`` (any vaelab module).
    x_a, x_b : tensor or array, shape (n_pairs, n_features)
        The end points; the line runs from ``embed(x_a)`` to ``embed(x_b)``.
    n_steps : int
        Segments of the line; the decoder mean is evaluated at ``n_steps + 1`` evenly spaced codes.
    batch_size : int
        Pairs per pass (a pass decodes ``(n_steps + 1) * batch_size`` rows).

    Returns
    -------
    torch.Tensor, shape (n_pairs,)
        ``sum_t ||m(z_{t+1}) - m(z_t)|| / ||m(z_T) - m(z_0)||`` with ``m`` the decoder mean: >= 1
        (up to float error), 1 for a decoder that maps lines to lines. The end points are the
        *decoded* codes, not the data, so reconstruction error does not enter. NaN where the two
        decoded end points coincide.
    """
    n_steps = check_int("n_steps", n_steps, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    x_a, x_b = as_data(model, x_a, "x_a"), as_data(model, x_b, "x_b")
    if x_a.shape != x_b.shape:
        raise DataError(f"x_a and x_b must have the same shape, got {tuple(x_a.shape)} and {tuple(x_b.shape)}")
    t = torch.linspace(0, 1, n_steps + 1, device=x_a.device)[:, None, None]  # (T, 1, 1)
    ratios = []
    for i in range(0, len(x_a), batch_size):
        z_a, z_b = model.embed(x_a[i : i + batch_size]), model.embed(x_b[i : i + batch_size])  # (b, l)
        path = model.decode(z_a + t * (z_b - z_a)).mean.double()  # (T, b, n_features)
        length = (path[1:] - path[:-1]).norm(dim=-1).sum(0)  # (b,)
        chord = (path[-1] - path[0]).norm(dim=-1)  # (b,)
        ratios.append(torch.where(chord > 0, length / chord, torch.nan))
    return torch.cat(ratios).float()


@torch.no_grad()
def decoder_lipschitz(
    model: LatentModel,
    z,
    eps: float = 1e-2,
    n_directions: int = 16,
    *,
    reduce: Literal["max", "mean"] = "max",
    seed: int = 0,
    batch_size: int = _BATCH_SIZE,
) -> torch.Tensor:
    """Local Lipschitz estimate of the decoder mean around each code, by finite differences.

    Parameters
    ----------
    model : LatentModel
        Needs ``decode(z)``.
    z : tensor or array, shape (n, latent_dim)
        Codes to probe: e.g. ``model.embed(x)`` (around data) or prior samples.
    eps : float
        Step length in latent units.
    n_directions : int
        Random unit directions ``u`` per code (uniform on the sphere, seeded per code).
    reduce : {"max", "mean"}
        ``"max"`` over directions: a lower bound on the local Lipschitz constant (the largest
        singular value of the Jacobian, as eps -> 0) that tightens with more directions.
        ``"mean"``: the typical stretch, about ``||J||_F / sqrt(latent_dim)``.
    seed : int
        Same seed, same directions, whatever ``batch_size``.
    batch_size : int
        Codes per pass (a pass decodes ``batch_size * (n_directions + 1)`` rows).

    Returns
    -------
    torch.Tensor, shape (n,)
        ``||m(z + eps u) - m(z)|| / eps`` reduced over ``u``, in data units per latent unit.
    """
    eps = check_positive("eps", eps)
    n_directions = check_int("n_directions", n_directions, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if reduce not in ("max", "mean"):
        raise ConfigError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    z = as_codes(model, z)
    seeds = example_seeds(check_seed(seed), len(z))
    out = []
    for i in range(0, len(z), batch_size):
        zb = z[i : i + batch_size]  # (b, l)
        u = standard_normal(seeds[i : i + batch_size], (n_directions, z.shape[1]), z.device)  # (b, m, l)
        u = u / u.norm(dim=-1, keepdim=True)
        centre = model.decode(zb).mean.double()  # (b, n_features)
        moved = model.decode(zb[:, None] + eps * u).mean.double()  # (b, m, n_features)
        stretch = (moved - centre[:, None]).norm(dim=-1) / eps  # (b, m)
        out.append(stretch.amax(1) if reduce == "max" else stretch.mean(1))
    return torch.cat(out).float()


def summarize(values) -> dict:
    """Median and 90th percentile of per-example values, ignoring NaN.

    Returns
    -------
    dict
        ``{"median": float | None, "p90": float | None, "n": int, "n_nan": int}``; None when every
        value is NaN. JSON-serialisable.
    """
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    nan = torch.isnan(values)
    finite = values[~nan]
    if len(finite) == 0:
        return {"median": None, "p90": None, "n": len(values), "n_nan": int(nan.sum())}
    median, p90 = torch.quantile(finite, torch.tensor([0.5, 0.9], dtype=torch.float64)).tolist()
    return {"median": _json_float(median), "p90": _json_float(p90), "n": len(values), "n_nan": int(nan.sum())}


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
