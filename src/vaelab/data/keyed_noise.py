"""Uniform noise keyed on each example's values and a seed, never on its position.

A fixed draw (static binarisation, the dequantisation noise of a scored example) must give an
example the same noise in every batch, order, subset and process, without knowing its index; so
the noise is a hash of the example itself. (Exact duplicate examples therefore share one draw.)
"""

from __future__ import annotations

import numpy as np


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (numpy integer arithmetic wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def static_uniforms(P: np.ndarray, seed: int) -> np.ndarray:
    """Uniforms in [0, 1) that depend only on ``seed`` and each row's values (a hash of the whole row).

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_features), float32
    seed : int

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64
    """
    seed_key = np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)  # Python ints: no overflow warning
    cols = _mix(np.arange(P.shape[1], dtype=np.uint64) + seed_key)  # (d,)
    bits = np.ascontiguousarray(P, dtype=np.float32).view(np.uint32).astype(np.uint64)
    row_key = _mix(bits ^ cols).sum(axis=1, dtype=np.uint64)  # (n,), a hash of the whole row
    z = _mix(row_key[:, None] ^ _mix(cols))  # (n, d)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
