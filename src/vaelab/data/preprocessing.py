"""`Preprocessing`: the fitted map from raw values to model space, stored with each model.

* ``"scale"``: ``x / pixel_max``, images to [0, 1].
* ``"standardize"``: ``(x - mean) / std`` per feature, fitted on the training data.
* ``"none"``: values as they are (cast to float32).
* ``"auto"`` (a choice at fit time, never stored): ``"scale"`` for image-like data whose
  full-scale value is known, ``"standardize"`` otherwise; see `auto_kind`.

Binarisation (only after ``"scale"``) turns grey levels into {0, 1}: ``"threshold"``
(``x > threshold``), ``"static"`` (one fixed Bernoulli draw per example, as in the statically
binarised MNIST of Salakhutdinov & Murray, 2008) or ``"dynamic"`` (a fresh draw every epoch;
flagged here, applied by the trainer, so `transform` returns the probabilities).

Uniform dequantisation (``dequantize=True``, only after ``"scale"`` of integers 0..M) treats each
integer x as the bin [x, x + 1) of a continuous variable, mapped to [0, 1) by dividing by M + 1:
`transform` gives the bin's centre (x + 1/2) / (M + 1), ``transform(X, noise=True)`` a point drawn
uniformly in the bin and keyed on the example (`keyed_noise`), the values a density is scored at;
the trainer draws a fresh point every batch. A density p of those values bounds the probability of
the integers: log P(x) >= E_u log p((x + u) / (M + 1)) - D log(M + 1) (Theis, van den Oord &
Bethge, 2016, "A note on the evaluation of generative models"), so a continuous model cannot win
by putting narrow peaks on the integers.

Every method works on any slice of a (possibly memory-mapped) array and never modifies its input.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Literal

import numpy as np

from ..errors import ConfigError, DataError
from ._arrays import check_numeric, floored_std, image_pixel_max, mean_std
from ._choices import (
    BINARIZE,
    CHOICES,
    DEQUANTIZE,
    KINDS,
    Binarize,
    Dequantize,
    auto_kind,
    is_integer,
    is_real,
    scaled_integers,
)
from .images import ImageFolder
from .keyed_noise import static_uniforms


def _as_batch(X, where: str) -> np.ndarray:
    if not isinstance(X, ImageFolder):  # a lazy image folder is decoded chunk by chunk below
        X = np.asarray(X)  # no copy: memory-mapped slices stay on disk until read below
    check_numeric(X, where)
    if X.ndim < 2:
        raise DataError(f"{where}: X has shape {X.shape}; pass a batch of shape (n_samples, ...)")
    return X


@dataclass(frozen=True)
class Preprocessing:
    """A fitted, JSON-safe map between raw values and model space.

    Build it with `fit` (or `from_dict`); the constructor validates every field.
    """

    kind: Literal["none", "scale", "standardize"]
    # "static" is applied by transform; "dynamic" only tells the trainer to draw each epoch.
    binarize: Binarize = "none"
    pixel_max: float | None = None  # scale: raw full-scale value; None for other kinds
    mean: tuple[float, ...] | None = None  # standardize: per-feature mean, length n_features
    std: tuple[float, ...] | None = None  # standardize: per-feature std, floored, all > 0
    threshold: float = 0.5  # binarize="threshold": 1 where the scaled value is above it
    seed: int = 0  # binarize="static" and dequantize: picks the fixed draws
    dequantize: bool = False  # integers 0..pixel_max as bins of width 1 (see the module docstring)

    def __post_init__(self) -> None:
        def bad(field: str, need: str) -> ConfigError:
            return ConfigError(f"Preprocessing.{field} must be {need}; got {getattr(self, field)!r}")

        if self.kind not in KINDS:
            raise bad("kind", f"one of {', '.join(KINDS)}")
        if self.binarize not in BINARIZE:
            raise bad("binarize", f"one of {', '.join(BINARIZE)}")
        if self.binarize != "none" and self.kind != "scale":
            raise ConfigError(
                f"binarize={self.binarize!r} needs preprocessing='scale' (binarising needs values in "
                f"[0, 1]); got preprocessing={self.kind!r}: pass preprocessing='scale' or binarize='none'"
            )
        if self.kind == "scale":
            if not (is_real(self.pixel_max) and self.pixel_max > 0):
                raise bad("pixel_max", "a positive finite number for kind='scale'")
            object.__setattr__(self, "pixel_max", float(self.pixel_max))
        elif self.pixel_max is not None:
            raise bad("pixel_max", f"None for kind={self.kind!r}")
        if not isinstance(self.dequantize, bool):
            raise bad("dequantize", "true or false")
        if self.dequantize and not (self.kind == "scale" and self.binarize == "none" and is_integer(self.pixel_max)):
            raise ConfigError(
                "dequantize needs preprocessing='scale' with an integer pixel_max and binarize='none' (it treats "
                f"the integers 0..pixel_max as bins); got kind={self.kind!r}, pixel_max={self.pixel_max!r}, "
                f"binarize={self.binarize!r}"
            )
        for name in ("mean", "std"):
            value = getattr(self, name)
            if self.kind != "standardize":
                if value is not None:
                    raise bad(name, f"None for kind={self.kind!r}")
                continue
            if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") or len(value) == 0:
                raise bad(name, "a non-empty list of numbers for kind='standardize'")
            if not all(is_real(v) for v in value):
                raise bad(name, "a list of finite numbers")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if self.kind == "standardize" and self.mean is not None and self.std is not None:  # set just above
            if len(self.mean) != len(self.std):
                raise bad("std", f"as long as mean ({len(self.mean)} values), not {len(self.std)}")
            if min(self.std) <= 0:
                raise bad("std", "all positive")
        if not (is_real(self.threshold) and 0 < self.threshold < 1):
            raise bad("threshold", "a number strictly between 0 and 1")
        if not (isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool) and 0 <= self.seed < 2**63):
            raise bad("seed", "an integer in [0, 2**63)")
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "seed", int(self.seed))

    # -- fitting --------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        X,
        *,
        kind: Literal["auto", "none", "scale", "standardize"],
        binarize: Binarize = "none",
        pixel_max: float | None = None,
        threshold: float = 0.5,
        seed: int = 0,
        dequantize: Dequantize = "none",
        moments: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Preprocessing:
        """Fit on training data, reading it in chunks (memory-mapped arrays stay on disk).

        Parameters
        ----------
        X : array of shape (n_samples, ...)
            Raw training values: ``(n, d)`` tables or ``(n, C, H, W)`` images.
        kind : {"auto", "none", "scale", "standardize"}
            The user's ``preprocessing`` parameter. ``"auto"`` resolves by `auto_kind` (pixel_max
            told from the values when not given) and the result records the concrete kind.
        binarize : {"none", "threshold", "static", "dynamic"}
            Only with ``"scale"``.
        pixel_max : float, optional
            Required for ``"scale"`` (use ``Dataset.pixel_max``); ignored by ``"standardize"``
            and ``"none"``. Values must lie in [0, pixel_max].
        threshold, seed
            For ``binarize="threshold"`` and ``"static"``; ``seed`` also keys the dequantisation noise.
        dequantize : {"auto", "uniform", "none"}
            ``"uniform"``: the values are integers 0..pixel_max, treated as bins (module docstring);
            ``"auto"``: so when ``"scale"`` meets integers with an integer ``pixel_max`` >= 2 (grey
            levels, e.g. 8-bit images) and no binarisation.
        moments : (mean, std), optional
            The per-feature mean and population std of ``X`` (n_features,), when the caller has them:
            ``"standardize"`` then makes no pass of its own over the data.

        Returns
        -------
        Preprocessing
        """
        if kind not in CHOICES:
            raise ConfigError(f"preprocessing must be one of {', '.join(map(repr, CHOICES))}; got {kind!r}")
        if binarize not in BINARIZE:
            raise ConfigError(f"binarize must be one of {', '.join(map(repr, BINARIZE))}; got {binarize!r}")
        if dequantize not in DEQUANTIZE:
            raise ConfigError(f"dequantize must be one of {', '.join(map(repr, DEQUANTIZE))}; got {dequantize!r}")
        X = _as_batch(X, "Preprocessing.fit")
        if len(X) == 0:
            raise DataError("Preprocessing.fit: X has no samples")
        asked = kind
        if kind == "auto":
            # (n, H, W) is grey images, as everywhere in vaelab.data
            sample_shape = {3: (1, *X.shape[1:]), 4: tuple(X.shape[1:])}.get(X.ndim, (math.prod(X.shape[1:]),))
            if pixel_max is None and (len(sample_shape) == 3 or X.dtype == np.uint8):
                pixel_max = image_pixel_max(X)
            kind = auto_kind(sample_shape, X.dtype, pixel_max)
        if dequantize == "uniform" and kind != "scale":
            raise ConfigError(
                f"dequantize='uniform' treats integers 0..pixel_max as bins, which needs preprocessing='scale' "
                f"(got {kind!r}); pass preprocessing='scale' with pixel_max, or dequantize='none'"
            )
        if binarize != "none" and kind != "scale":
            why = (
                f"preprocessing='auto' chose {kind!r}: the data are not images or uint8 of a known range"
                if asked == "auto"
                else f"preprocessing={kind!r}"
            )
            raise ConfigError(
                f"binarize={binarize!r} needs preprocessing='scale' (binarising needs values in "
                f"[0, 1]), but {why}; pass preprocessing='scale' with pixel_max, or binarize='none'"
            )
        if kind == "scale":
            if pixel_max is None:
                raise ConfigError(
                    "preprocessing='scale' needs pixel_max (the raw full-scale value, e.g. 255 for "
                    "8-bit images; it is unknown for tables and for images of unknown range); "
                    "pass pixel_max, or use preprocessing='standardize'"
                )
            fitted = cls("scale", binarize, pixel_max, threshold=threshold, seed=seed)  # checks pixel_max
            if scaled_integers(X, float(pixel_max), binarize, dequantize):
                return dataclasses.replace(fitted, dequantize=True)
            return fitted
        if kind == "standardize":
            mean, std = mean_std(X) if moments is None else (moments[0], floored_std(*moments))
            return cls("standardize", binarize, None, tuple(mean), tuple(std), threshold, seed)
        return cls("none", binarize, None, threshold=threshold, seed=seed)

    # -- applying -------------------------------------------------------------------------
    @property
    def levels(self) -> int | None:
        """Integer values each feature takes when dequantised (``pixel_max + 1``: 256 for 8-bit data), else None."""
        return int(self.pixel_max) + 1 if self.dequantize and self.pixel_max is not None else None

    @property
    def n_features(self) -> int | None:
        """Features the fitted mean/std expect; None when any width is accepted."""
        return None if self.mean is None else len(self.mean)

    @cached_property
    def _mean_std_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.mean, dtype=np.float32), np.asarray(self.std, dtype=np.float32)

    def _flat_copy(self, X, where: str, dtype=np.float32) -> np.ndarray:
        """A ``dtype`` copy of ``X`` viewed as (n, d): never the caller's memory."""
        X = _as_batch(X, where)
        out = np.array(X, dtype=dtype, copy=True)  # reads only this slice of a memmap
        flat = out.reshape(len(out), -1)
        if self.n_features is not None and flat.shape[1] != self.n_features:
            raise DataError(
                f"{where}: X has {flat.shape[1]} features per sample (shape {X.shape}), but this "
                f"preprocessing was fitted on {self.n_features}"
            )
        return flat

    def transform(self, X, dtype=np.float32, *, noise: bool = False) -> np.ndarray:
        """Raw values -> model space.

        Parameters
        ----------
        X : array of shape (n_samples, ...)
            Any slice of the raw data (a memory-mapped slice is read, never written).
        dtype : float32 or float64
            Of the result (float64 where an exact likelihood needs it, e.g. PCA on float64 data).

        noise : bool
            With ``dequantize``: a point drawn uniformly in each value's bin, keyed on the example and
            ``seed`` (the values a density scores), instead of the bin's centre. Ignored otherwise.

        Returns
        -------
        ndarray of the same shape, ``dtype``
            In [0, 1] after ``"scale"`` (in (0, 1) dequantised); {0, 1} after ``"threshold"``/``"static"``.
        """
        shape = np.shape(X)
        flat = self._flat_copy(X, "Preprocessing.transform", dtype)
        if self.dequantize:
            flat += static_uniforms(flat, self.seed).astype(flat.dtype) if noise else flat.dtype.type(0.5)
            flat /= flat.dtype.type(self.levels)
        elif self.kind == "scale":
            flat /= flat.dtype.type(self.pixel_max)
        elif self.kind == "standardize":
            mean, std = self._mean_std_arrays
            flat -= mean if flat.dtype == np.float32 else np.asarray(self.mean, dtype=flat.dtype)
            flat /= std if flat.dtype == np.float32 else np.asarray(self.std, dtype=flat.dtype)
        if self.binarize == "threshold":
            flat = (flat > self.threshold).astype(dtype)
        elif self.binarize == "static":
            flat = (static_uniforms(flat, self.seed) < flat).astype(dtype)
        return flat.reshape(shape)

    def inverse_transform(self, X) -> np.ndarray:
        """Model space -> raw units (binarised values come back as 0 or ``pixel_max``).

        Parameters
        ----------
        X : array of shape (n_samples, ...)

        Returns
        -------
        ndarray of the same shape, float32
        """
        shape = np.shape(X)
        flat = self._flat_copy(X, "Preprocessing.inverse_transform")
        if self.dequantize:  # a bin's centre maps back to its integer
            flat *= np.float32(self.levels)
            flat -= np.float32(0.5)
        elif self.kind == "scale":
            flat *= np.float32(self.pixel_max)
        elif self.kind == "standardize":
            mean, std = self._mean_std_arrays
            flat *= std
            flat += mean
        return flat.reshape(shape)

    def affine(self, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        """``(offset, scale)``, each (n_features,) float64: `transform` without noise is ``(x - offset) / scale``.

        Every kind is such a map (binarisation, applied after it, is not affine): ``(0, 1)`` for
        ``"none"``, ``(0, pixel_max)`` for ``"scale"``, ``(-1/2, pixel_max + 1)`` dequantised,
        ``(mean, std)`` for ``"standardize"``. PCA maps the moments of raw data with it, instead of
        preprocessing a copy of the data.
        """
        if self.binarize != "none":
            raise ConfigError(f"binarize={self.binarize!r} is not an affine map of the raw values")
        offset, scale = np.zeros(n_features), np.ones(n_features)
        if self.kind == "standardize" and self.mean is not None and self.std is not None:
            if n_features != len(self.mean):
                raise DataError(f"n_features is {n_features}, but this preprocessing was fitted on {len(self.mean)}")
            offset[:], scale[:] = self.mean, self.std
        elif self.levels is not None:
            offset[:], scale[:] = -0.5, self.levels
        elif self.kind == "scale" and self.pixel_max is not None:
            scale[:] = self.pixel_max
        return offset, scale

    # -- change of variables --------------------------------------------------------------
    def log_abs_det_jacobian(self, n_features: int | None = None) -> float | None:
        """``log |det d(model value) / d(raw value)|`` per example, in nats; None for binarised data.

        A density the model gives in model space becomes one in the data's (raw) units by
        ``log p_raw(x) = log p_model(transform(x)) + log_abs_det_jacobian(n_features)``. Every
        kind is an affine map, so the term is the same for every example:
        ``-n_features * log(pixel_max)`` for ``"scale"`` (``log(pixel_max + 1)`` dequantised: then
        the result, at ``transform(X, noise=True)``, is a bound on the integers' log-probability),
        ``-sum(log std)`` for ``"standardize"``, 0 for ``"none"``.

        Parameters
        ----------
        n_features : int, optional
            Values per example, ``prod(sample_shape)``; required for ``"scale"`` (which applies
            to any width), checked against the fitted width for ``"standardize"``.

        Returns
        -------
        float or None
            In nats per example. None when ``binarize`` is not ``"none"``: binarising is a
            discrete map, so the model gives a probability mass of the binarised values and there
            is no density of the raw values to convert to.
        """
        if n_features is not None and (
            not isinstance(n_features, numbers.Integral) or isinstance(n_features, bool) or n_features < 1
        ):
            raise ConfigError(f"n_features must be a positive integer; got {n_features!r}")
        if self.binarize != "none":
            return None
        if self.kind == "none":
            return 0.0
        if self.kind == "standardize":
            if n_features is not None and n_features != len(self.std):
                raise DataError(
                    f"n_features is {n_features}, but this preprocessing was fitted on {len(self.std)} features"
                )
            return -float(np.sum(np.log(np.asarray(self.std, dtype=np.float64))))
        if n_features is None:
            raise ConfigError("preprocessing='scale' applies to any width: pass n_features (values per example)")
        return -int(n_features) * math.log(self.levels or self.pixel_max)

    # -- saving ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-safe dict (mean/std as lists); `from_dict` reads it back."""
        d = asdict(self)
        for name in ("mean", "std"):
            d[name] = None if d[name] is None else list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Preprocessing:
        """Rebuild from `to_dict` output, checking every field (ConfigError names a bad one)."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"preprocessing must be a dict; got {type(d).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ConfigError(f"preprocessing has unknown field(s) {unknown}; known: {known}")
        if "kind" not in d:
            raise ConfigError("preprocessing has no 'kind' field")
        return cls(**d)


def default_preprocessing(dataset) -> str:
    """What ``preprocessing="auto"`` resolves to for a loaded `Dataset` (`auto_kind` on its fields)."""
    return auto_kind(dataset.sample_shape, dataset.X_train.dtype, dataset.pixel_max)
