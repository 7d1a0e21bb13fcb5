"""The reconstruction-regularisation trade-off: one VAE per KL weight beta, each evaluated.

Rate (KL(q(z|x) || p(z))) and distortion (E_q[-log p(x|z)]) in nats per example trace the
rate-distortion curve of Alemi et al. (2018), "Fixing a Broken ELBO": beta < 1 buys lower
distortion with a higher rate, beta > 1 the reverse; beta = 1 trains on the ELBO itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from .compare import evaluate_estimator, summary_row
from .errors import ConfigError
from .estimators import VAE
from .metrics import FeatureSpace

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
        estimator = VAE(beta=beta, random_state=random_state, **params)
        start = time.perf_counter()
        estimator.fit(X_train)
        fit_seconds = time.perf_counter() - start
        if feature_space is None:
            feature_space = FeatureSpace.fit(torch.from_numpy(estimator._model_space(X_train)))
        metrics = evaluate_estimator(
            estimator, X_test, X_train=X_train, n_iw_samples=n_iw_samples, seed=random_state, feature_space=feature_space
        )
        name = f"beta={beta:g}"
        row = summary_row(name, metrics, fit_seconds)
        rows.append({"beta": beta, **row, "active_units": metrics["active_units"]["value"], "metrics": metrics})
        models[name] = estimator
    return rows, models
