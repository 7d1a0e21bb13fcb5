"""What the explorer serves: fitted models, their codes of test data, and decodes on request.

Everything here reads the models through vaelab's public estimator API (``vaelab.load``,
``transform``, ``inverse_transform``, ``sample``, ``sample_shape_``, ``preprocessing_``) and the
prior through ``module_.prior()``, so it keeps working while the estimators change inside.
Requests arrive as parsed JSON; every check of them raises :class:`RequestError` with a message
the server sends back as an HTTP 400.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import ConfigError, VaelabError

if TYPE_CHECKING:  # the explorer takes fitted estimators; importing them here is for the annotation only
    from ..estimators import LatentEstimator

MAX_CODES = 256  # codes per decode request: a whole traversal or path, never a flood
MAX_ABS_CODE = 1e4  # far beyond any fitted code; larger values are a malformed request, not a place to look
MAX_SAMPLES = 64
PATH_STEPS = 64  # segments of a decoded interpolation path: the metrics' default n_steps
PRIOR_DRAWS = 20_000  # for the moments of priors without a closed-form covariance


class RequestError(VaelabError, ValueError):
    """A request the explorer cannot answer as sent (the server replies 400 with this message)."""


@dataclass
class ExploredModel:
    """One fitted model and what the page needs to draw its latent space."""

    name: str
    estimator: LatentEstimator
    codes: np.ndarray  # (n_points, latent_dim) float64: transform of the test points
    classes: list | None  # a conditional model's labels, else None
    prior_mean: np.ndarray  # (latent_dim,)
    prior_cov: np.ndarray  # (latent_dim, latent_dim)
    pca_axes: np.ndarray  # (2, latent_dim) orthonormal rows: the codes' two principal directions

    @property
    def latent_dim(self) -> int:
        return self.codes.shape[1]


def find_runs(paths: list[str]) -> dict[str, Path]:
    """Model directories named by ``paths``: each a fitted model (``config.json``) or a folder of them.

    A comparison's directory (holding ``models/``) and its ``models/`` folder both give every
    model inside. Names are the folder names, made unique with a ``-2``, ``-3`` suffix.
    """
    found: dict[str, Path] = {}
    for given in paths:
        path = Path(given)
        if (path / "config.json").is_file():
            dirs = [path]
        else:
            folder = path / "models" if (path / "models").is_dir() else path
            dirs = sorted(p for p in folder.iterdir() if (p / "config.json").is_file()) if folder.is_dir() else []
        if not dirs:
            raise ConfigError(f"{given}: not a fitted model directory (no config.json) nor a folder of them")
        for d in dirs:
            name, k = d.resolve().name, 2
            while name in found:
                name, k = f"{d.resolve().name}-{k}", k + 1
            found[name] = d
    return found


def _prior_moments(estimator, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean (k,) and covariance (k, k) of the model's prior p(z), for its sigma ellipses."""
    with torch.no_grad():
        prior = estimator.module_.prior()
        try:
            mean = prior.mean.double().cpu().numpy()
            if hasattr(prior, "covariance_matrix"):
                cov = prior.covariance_matrix.double().cpu().numpy()
            elif isinstance(prior, (torch.distributions.Independent, torch.distributions.Normal)):
                cov = np.diag(prior.variance.double().cpu().numpy())  # independent coordinates
            else:
                raise NotImplementedError
        except NotImplementedError:  # e.g. a mixture prior: moment-match it by sampling
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                draws = prior.sample((PRIOR_DRAWS,)).double().cpu().numpy()
            mean, cov = draws.mean(0), np.atleast_2d(np.cov(draws, rowvar=False))
    return mean, cov


def _pca_axes(codes: np.ndarray) -> np.ndarray:
    """The two leading principal directions of ``codes`` (n, k) as rows (2, k); zero rows past k."""
    k = codes.shape[1]
    axes = np.zeros((2, k))
    if k <= 2 or len(codes) < 2:
        axes[: min(k, 2)] = np.eye(k)[:2]
        return axes
    _, _, vt = np.linalg.svd(codes - codes.mean(0), full_matrices=False)
    vt = vt[:2] * np.sign(vt[:2, np.abs(vt[:2]).argmax(1)].diagonal())[:, None]  # deterministic signs
    axes[:] = vt
    return axes


def path_ratio(path: np.ndarray) -> float | None:
    """Decoded path length over the distance of its decoded ends, as :func:`vaelab.metrics.path_length_ratio`.

    Parameters
    ----------
    path : ndarray, shape (n_steps + 1, n_features)
        Decoder means along a latent line, in model space (or a uniform rescaling of it).

    Returns
    -------
    float or None
        ``sum_t ||m_{t+1} - m_t|| / ||m_T - m_0||``, >= 1; None when the two ends coincide.
    """
    path = path.astype(np.float64)
    chord = float(np.linalg.norm(path[-1] - path[0]))
    length = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
    return length / chord if chord > 0 else None


def interpolate(z_a: np.ndarray, z_b: np.ndarray, t: np.ndarray, mode: str) -> np.ndarray:
    """Codes between ``z_a`` and ``z_b`` (k,) at fractions ``t`` (m,): ``(m, k)``.

    ``"linear"``: the straight line. ``"spherical"``: slerp about the origin (the prior's mean),
    which keeps the norm of codes between two typical prior draws typical (White, 2016,
    "Sampling Generative Networks"); it falls back to the line when the codes are (anti)parallel.
    """
    t = t[:, None]
    if mode == "linear":
        return (1 - t) * z_a + t * z_b
    na, nb = np.linalg.norm(z_a), np.linalg.norm(z_b)
    cos = float(np.dot(z_a, z_b) / (na * nb)) if na > 0 and nb > 0 else 1.0
    omega = math.acos(min(1.0, max(-1.0, cos)))
    if math.sin(omega) < 1e-6:
        return (1 - t) * z_a + t * z_b
    return (np.sin((1 - t) * omega) * z_a + np.sin(t * omega) * z_b) / math.sin(omega)


class Explorer:
    """The models under exploration and the test points shown on their maps.

    Parameters
    ----------
    models : dict of str to fitted estimator
    X : ndarray, shape (n_points, *sample_shape)
        Test points, in the data's raw units.
    y : ndarray of shape (n_points,) or None
        Their labels: colours on the map, and the class a conditional model encodes them with.
    data_name : str
    is_image : bool
        Images are drawn as images, anything else as feature values beside their ranges.
    """

    def __init__(self, models: dict, X: np.ndarray, y: np.ndarray | None, *, data_name: str, is_image: bool):
        from ..estimators import ConditionalVAE

        if not models:
            raise ConfigError("no models to explore")
        self.X, self.y, self.data_name, self.is_image = X, y, data_name, is_image
        self.n_features = math.prod(X.shape[1:])
        self._lock = threading.Lock()  # one model call at a time: the GMM sampler seeds torch's global RNG
        self.models: dict[str, ExploredModel] = {}
        for name, est in models.items():
            shape = tuple(est.sample_shape_)
            if math.prod(shape) != self.n_features:
                raise ConfigError(f"model {name} was fitted on samples of shape {shape}; the data's are {X.shape[1:]}")
            conditional = isinstance(est, ConditionalVAE)
            if conditional and y is None:
                raise ConfigError(
                    f"model {name} is conditional: its codes need the data's labels, and these data have none"
                )
            X_model = X.reshape(len(X), *shape)
            codes = (est.transform(X_model, y) if conditional else est.transform(X_model)).astype(np.float64)
            if not np.isfinite(codes).all():
                raise ConfigError(f"model {name} encodes some of the data to NaN or infinite codes: nothing to map")
            mean, cov = _prior_moments(est)
            classes = est.classes_.tolist() if conditional else None
            self.models[name] = ExploredModel(name, est, codes, classes, mean, cov, _pca_axes(codes))
        self.display_range = self._display_range()

    def _display_range(self) -> tuple[float, float]:
        """Raw values shown black and white: ``[0, pixel_max]`` for scaled images, else the data's range."""
        for m in self.models.values():
            prep = m.estimator.preprocessing_
            if prep.kind == "scale" and prep.pixel_max is not None:  # kind "scale" always has one
                return 0.0, float(prep.pixel_max)
        lo, hi = float(np.min(self.X)), float(np.max(self.X))
        return lo, (hi if hi > lo else lo + 1.0)

    # ------------------------------------------------------------------ what the page loads first
    def state(self) -> dict:
        """Everything static the page draws: models, codes, prior moments, the data's shape and ranges."""
        flat = self.X.reshape(len(self.X), -1).astype(np.float64)
        labels = None if self.y is None else [v.item() if hasattr(v, "item") else v for v in self.y]
        return {
            "data": {
                "name": self.data_name,
                "kind": "image" if self.is_image else "table",
                "sample_shape": list(self.X.shape[1:]),
                "n_points": len(self.X),
                "labels": labels,
                "display_range": list(self.display_range),
                "feature_min": flat.min(0).tolist(),
                "feature_max": flat.max(0).tolist(),
            },
            "models": [
                {
                    "name": m.name,
                    "kind": type(m.estimator).__name__,
                    "latent_dim": m.latent_dim,
                    "classes": m.classes,
                    "codes": np.round(m.codes, 5).tolist(),
                    "prior_mean": m.prior_mean.tolist(),
                    "prior_cov": m.prior_cov.tolist(),
                    "pca_axes": m.pca_axes.tolist(),
                }
                for m in self.models.values()
            ],
            "limits": {
                "max_codes": MAX_CODES,
                "max_abs_code": MAX_ABS_CODE,
                "max_samples": MAX_SAMPLES,
                "path_steps": PATH_STEPS,
            },
        }

    # ------------------------------------------------------------------ request checks
    def _model(self, request: dict) -> ExploredModel:
        name = request.get("model")
        if not isinstance(name, str) or name not in self.models:
            raise RequestError(f"unknown model {name!r}; this explorer has {sorted(self.models)}")
        return self.models[name]

    @staticmethod
    def _label(model: ExploredModel, request: dict):
        label = request.get("label")
        if model.classes is None:
            if label is not None:
                raise RequestError(f"model {model.name} is not conditional: send no label")
            return None
        if label is None:
            return model.classes[0]
        if isinstance(label, bool) or label not in model.classes:
            raise RequestError(f"label {label!r} is not a class of model {model.name}; its classes are {model.classes}")
        return model.classes[model.classes.index(label)]  # the class itself: 7, never 7.0

    @staticmethod
    def _int(request: dict, key: str, low: int, high: int, default: int | None = None) -> int:
        value = request.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RequestError(f"{key} must be an integer in [{low}, {high}], got {value!r}")
        return value

    @staticmethod
    def _codes(model: ExploredModel, codes) -> np.ndarray:
        """A list of codes, each ``latent_dim`` finite numbers of modest size, as float32 (m, k)."""
        k = model.latent_dim
        if not isinstance(codes, list) or not 1 <= len(codes) <= MAX_CODES:
            raise RequestError(f"codes must be a list of 1 to {MAX_CODES} codes")
        for code in codes:
            if not isinstance(code, list) or len(code) != k:
                got = len(code) if isinstance(code, list) else type(code).__name__
                raise RequestError(f"every code of model {model.name} must be a list of {k} numbers, got {got}")
            for v in code:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise RequestError(f"code values must be numbers, got {v!r}")
                if not (math.isfinite(v) and abs(v) <= MAX_ABS_CODE):
                    raise RequestError(f"code values must be finite and within +-{MAX_ABS_CODE:g}, got {v!r}")
        return np.asarray(codes, dtype=np.float32)

    def _decode(self, model: ExploredModel, Z: np.ndarray, label) -> np.ndarray:
        """Decoder means of codes ``Z`` (m, k), in the data's units, flattened to (m, n_features)."""
        with self._lock:
            if label is None:
                values = model.estimator.inverse_transform(Z)
            else:
                values = model.estimator.inverse_transform(Z, label)
        return values.reshape(len(Z), -1)

    @staticmethod
    def _json_values(values: np.ndarray) -> list:
        # 5 decimals: finer than an 8-bit pixel or a printed feature value, a third of float repr's bytes
        return np.round(values.astype(np.float64), 5).tolist()

    # ------------------------------------------------------------------ endpoints
    def decode(self, request: dict) -> dict:
        """``{"model", "codes": [[k numbers], ...], "label"?}`` -> ``{"values": (m, n_features)}``."""
        model = self._model(request)
        Z = self._codes(model, request.get("codes"))
        return {"values": self._json_values(self._decode(model, Z, self._label(model, request)))}

    def interpolation(self, request: dict) -> dict:
        """The decoded path between test points ``a`` and ``b``, and its path-length ratio.

        ``{"model", "a", "b", "mode": "linear" | "spherical", "label"?}`` -> the ``PATH_STEPS + 1``
        codes and decoded frames (frame 0 is ``a``'s reconstruction, the last ``b``'s), the two
        test points themselves, and ``ratio`` over those frames.
        """
        model = self._model(request)
        n = len(self.X) - 1
        a, b = self._int(request, "a", 0, n), self._int(request, "b", 0, n)
        mode = request.get("mode", "linear")
        if mode not in ("linear", "spherical"):
            raise RequestError(f"mode must be 'linear' or 'spherical', got {mode!r}")
        label = self._label(model, request)
        codes = interpolate(model.codes[a], model.codes[b], np.linspace(0, 1, PATH_STEPS + 1), mode)
        frames = self._decode(model, codes.astype(np.float32), label)
        prep = model.estimator.preprocessing_
        # The metric's units are model space; "scale" and "none" differ from raw units by one factor
        # (the ratio does not change), standardised features each by their own, so map those back.
        path = prep.transform(frames) if prep.kind == "standardize" else frames
        flat = self.X.reshape(len(self.X), -1)
        return {
            "codes": np.round(codes, 6).tolist(),
            "values": self._json_values(frames),
            "ends": self._json_values(flat[[a, b]]),
            "ratio": path_ratio(path),
            "mode": mode,
        }

    def samples(self, request: dict) -> dict:
        """``{"model", "sampler": "prior" | "gmm", "seed", "n", "label"?}`` -> decoded samples and the seed used."""
        model = self._model(request)
        sampler = request.get("sampler", "prior")
        if sampler not in ("prior", "gmm"):
            raise RequestError(f"sampler must be 'prior' or 'gmm', got {sampler!r}")
        seed = self._int(request, "seed", 0, 2**32 - 1, default=0)
        n = self._int(request, "n", 1, MAX_SAMPLES, default=16)
        label = self._label(model, request)
        with self._lock:
            est = model.estimator
            if label is None:
                values = est.sample(n, random_state=seed, sampler=sampler)
            else:
                values = est.sample(n, y=label, random_state=seed, sampler=sampler)
        return {"values": self._json_values(values.reshape(n, -1)), "seed": seed, "sampler": sampler}
