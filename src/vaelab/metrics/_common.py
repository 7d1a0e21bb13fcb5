"""Private helpers shared by the metrics: input checks, seeded noise, chunked decoding.

Randomness is drawn on the CPU, so the numbers a metric returns never depend on batch or chunk
sizes or on the device the model runs on (up to floating-point error):

* :func:`standard_normal` gives example ``i`` its own ``torch.Generator``, seeded from
  ``SeedSequence(s)``'s ``i``-th word (a few draws per example: continuity's directions);
* :func:`noise_chunks` draws the ``(n_examples, n_samples)`` noise of the importance-sampled metrics
  per example, keyed on the example's *content* and the seed (:func:`example_keys`), in blocks of
  64 samples. An example's estimate is therefore the same whether it is scored alone, in a subset
  or in any order; one block of 64 samples is held at a time, so memory does not grow with K.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.distributions import Distribution, Independent, Normal

from ..errors import ConfigError, DataError
from ..models import LatentModel, TwoLevelGaussian


def check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < np.inf:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def model_device(model: torch.nn.Module) -> torch.device:
    tensor: torch.Tensor | None = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return torch.device("cpu") if tensor is None else tensor.device


def as_data(model: LatentModel, x, name: str = "x", min_rows: int = 1) -> torch.Tensor:
    """``x`` as a float32 ``(n, n_features)`` tensor on the model's device (the caller's is not modified)."""
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.float()
    if x.ndim != 2 or x.shape[0] < min_rows:
        raise DataError(
            f"{name} must be 2-D (n_samples, n_features) with at least {min_rows} row(s), got shape {tuple(x.shape)}"
        )
    event_shape = model.likelihood.event_shape
    if tuple(x.shape[1:]) != tuple(event_shape):
        raise DataError(f"{name} has {x.shape[1]} features, but the model was built for {event_shape[0]}")
    if not torch.isfinite(x).all():
        raise DataError(f"{name} contains NaN or infinite values; remove or impute them first")
    return x.to(device=model_device(model), dtype=torch.float32)


def as_codes(model: LatentModel, z, name: str = "z") -> torch.Tensor:
    """``z`` as a float32 ``(n, latent_dim)`` tensor on the model's device."""
    z = torch.as_tensor(z)
    latent_dim = model.latent_dim
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] != latent_dim:
        raise DataError(f"{name} must have shape (n, {latent_dim}), got {tuple(z.shape)}")
    return z.to(device=model_device(model), dtype=torch.float32)


def check_seed(seed) -> int:
    return check_int("seed", seed, 0)


def example_seeds(seed: int, n: int) -> list[int]:
    """One 64-bit seed per example; ``example_seeds(s, m)`` is a prefix of ``example_seeds(s, n)``."""
    return np.random.SeedSequence(seed).generate_state(n, dtype=np.uint64).tolist()


def standard_normal(seeds: list[int], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Standard normal noise of shape ``(len(seeds), *shape)``; row ``i`` depends on ``seeds[i]`` only."""
    rows = [torch.randn(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
    return torch.stack(rows).to(device)


_BLOCK_SAMPLES = 64  # samples per generator: changing it changes every number


def example_keys(x: torch.Tensor, seed: int) -> list[bytes]:
    """A 16-byte key per row of ``x`` ``(n, d)``: a keyed hash of the row's float32 bytes and ``seed``."""
    rows = x.detach().to("cpu", torch.float32).contiguous().numpy()
    salt = int(seed).to_bytes(8, "little")
    return [hashlib.blake2b(row.tobytes(), digest_size=16, key=salt).digest() for row in rows]


def _noise_block(key: bytes, block: int, width: int) -> torch.Tensor:
    """Samples ``[64 * block, 64 * (block + 1))`` of one example's noise: shape ``(64, width)``."""
    # torch's CPU generator keeps only the low 32 bits of a seed, so derive exactly 32 bits.
    word = int.from_bytes(hashlib.blake2b(block.to_bytes(8, "little"), digest_size=4, key=key).digest(), "little")
    return torch.randn((_BLOCK_SAMPLES, width), generator=torch.Generator().manual_seed(word))


def noise_chunks(
    keys: list[bytes], n_samples: int, chunk_size: int, width: int, device: torch.device
) -> Iterator[torch.Tensor]:
    """Standard normal noise for the examples with ``keys`` (see :func:`example_keys`), in sample chunks.

    Yields ``(c, b, width)`` tensors, ``c <= chunk_size``, ``b = len(keys)``, whose concatenation
    over chunks is ``(n_samples, b, width)``. Entry ``[k, i]`` depends only on ``keys[i]`` and the
    sample ``k``. Holds about one chunk and one block of 64 samples per example at a time.
    """
    pending, held = [], 0
    for block in range(math.ceil(n_samples / _BLOCK_SAMPLES)):
        row = torch.stack([_noise_block(key, block, width) for key in keys], dim=1)  # (64, b, width)
        row = row[: n_samples - block * _BLOCK_SAMPLES]
        while len(row):
            take = min(chunk_size - held, len(row))
            pending.append(row[:take])
            held, row = held + take, row[take:]
            if held == chunk_size:
                yield torch.cat(pending).to(device)
                pending, held = [], 0
    if pending:
        yield torch.cat(pending).to(device)


def as_labels(model: LatentModel, y, n: int) -> torch.Tensor:
    """Class indices ``y`` as an int64 ``(n,)`` tensor on the model's device (for a conditional model)."""
    y = torch.as_tensor(y)
    if y.ndim != 1 or len(y) != n or y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise DataError(
            f"y must be integer class indices of shape ({n},), got dtype {y.dtype} and shape {tuple(y.shape)}"
        )
    return y.to(device=model_device(model), dtype=torch.int64)


def normal_parameters(dist: Distribution) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loc, scale)`` of a diagonal Gaussian: ``Normal`` or ``Independent(Normal)``."""
    base = dist.base_dist if isinstance(dist, Independent) else dist
    if not isinstance(base, Normal):
        raise ConfigError(
            f"this metric needs a diagonal Gaussian (Independent(Normal)) q(z|x) or prior, got {type(base).__name__}"
        )
    return base.loc, base.scale


def reparameterise(qz: Distribution, eps: torch.Tensor) -> torch.Tensor:
    """Draws of q(z|x) from standard-normal noise ``eps`` ``(..., n, latent_dim)``, same shape.

    ``loc + scale * eps`` for a diagonal Gaussian; layer by layer for a two-level posterior.
    """
    if isinstance(qz, TwoLevelGaussian):
        return qz.from_noise(eps)
    loc, scale = normal_parameters(qz)
    return loc + scale * eps


def decode_mean(model: LatentModel, z: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Decoder means ``E[x|z]`` of codes ``z`` (n, latent_dim) -> (n, n_features), in chunks of rows."""
    return torch.cat([model.decode(z[i : i + batch_size]).mean for i in range(0, len(z), batch_size)])


def embed(model: LatentModel, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``model.embed`` over ``x`` (n, n_features) in chunks of rows: (n, latent_dim)."""
    return torch.cat([model.embed(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
