"""The reconstruction-regularisation trade-off: one VAE per KL weight beta, each evaluated.

Rate (KL(q(z|x) || p(z))) and distortion (E_q[-log p(x|z)]) in nats per example trace the
rate-distortion curve of Alemi et al. (2018), "Fixing a Broken ELBO": beta < 1 buys lower
distortion with a higher rate, beta > 1 the reverse; beta = 1 trains on the ELBO itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._jsonfile import read_document
from .compare import fit_and_evaluate, summary_row
from .errors import ConfigError, ModelFileError
from .estimators import VAE

SWEEP_FILE = "sweep.json"
FORMAT = "vaelab-sweep"
FORMAT_VERSION = 1  # the layout of sweep.json; described by sweep.schema.json beside this module
MODELS_DIR = "models"
UNITS = {"rate, distortion, elbo, log_likelihood": "nats per example"}

SWEEP_COLUMNS = [
    ("beta", "beta"),
    ("rate", "rate KL (nats)"),
    ("distortion", "distortion (nats)"),
    ("elbo", "ELBO (nats)"),
    ("log_likelihood", "log p(x) (nats)"),
    ("active_units", "active units"),
    ("path_ratio", "path ratio"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("fit_seconds", "fit (s)"),
]


def beta_sweep(
    X_train: np.ndarray,
    X_test: np.ndarray,
    betas: Sequence[float],
    *,
    random_state: int = 0,
    n_iw_samples: int = 1000,
    **params,
) -> tuple[list[dict], dict[str, VAE]]:
    """Fit one VAE per beta (same seed, data and parameters) and evaluate each on ``X_test``.

    Returns one row per beta (the numbers of :data:`SWEEP_COLUMNS`, nats per example, plus the
    full metrics under ``"metrics"``) and the fitted models by name ``"beta=B"``.
    """
    betas = [float(b) for b in betas]
    if not betas or any(not np.isfinite(b) or b <= 0 for b in betas):
        raise ConfigError(f"betas must be positive numbers, got {betas}; e.g. 0.25,0.5,1,2,4")
    rows, models, feature_space = [], {}, None
    for beta in betas:
        name = f"beta={beta:g}"
        estimator = VAE(beta=beta, random_state=random_state, **params)
        result = fit_and_evaluate(name, estimator, X_train, X_test, n_iw_samples, random_state, feature_space)
        feature_space = result.feature_space
        row = summary_row(name, result.metrics, result.fit_seconds)
        rows.append(
            {"beta": beta, **row, "active_units": result.metrics["active_units"]["value"], "metrics": result.metrics}
        )
        models[name] = estimator
    return rows, models


def write_sweep(out_dir, rows: list[dict], models: dict[str, VAE], *, data: dict, settings: dict) -> Path:
    """Save every model under ``out_dir/models/NAME`` and the rows of :func:`beta_sweep` to ``out_dir/sweep.json``.

    ``data`` records where the data came from; ``settings`` the parameters that made the numbers.
    """
    out_dir = Path(out_dir)
    for name, model in models.items():
        model.save(out_dir / MODELS_DIR / name)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "data": data,
        "settings": settings,
        "units": UNITS,
        "points": rows,
    }
    path = out_dir / SWEEP_FILE
    path.write_text(json.dumps(document, indent=2, allow_nan=False))
    return path


def read_sweep(out_dir) -> dict:
    """The document of a sweep written by :func:`write_sweep` (``vaelab sweep --out``), its fields checked."""
    path = Path(out_dir) / SWEEP_FILE
    document = read_document(path, FORMAT, "sweep")
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has format_version {document.get('format_version')!r}; this vaelab reads {FORMAT_VERSION}"
        )
    for field, kind in {"data": dict, "settings": dict, "points": list}.items():
        if not isinstance(document.get(field), kind):
            raise ModelFileError(f"{path}: field {field!r} is missing or not a {kind.__name__}; the file is damaged")
    for point in document["points"]:
        if (
            not isinstance(point, dict)
            or not isinstance(point.get("beta"), (int, float))
            or isinstance(point.get("beta"), bool)
        ):
            raise ModelFileError(f"{path}: every point must be an object with a numeric beta; the file is damaged")
    return document
