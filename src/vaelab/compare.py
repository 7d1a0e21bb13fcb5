"""Fit PCA, an autoencoder and a VAE on one dataset and evaluate each on held-out data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .estimators import PCA, VAE, Autoencoder


@dataclass
class ModelResult:
    name: str
    estimator: object
    fit_seconds: float
    metrics: dict = field(default_factory=dict)


def train_test_split(dataset, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's standard split, or a seeded ``test_fraction`` hold-out when it has none."""
    if dataset.X_test is not None:
        return dataset.X_train, dataset.X_test
    order = np.random.default_rng(seed).permutation(len(dataset.X_train))
    n_test = max(1, int(round(test_fraction * len(order))))
    return dataset.X_train[np.sort(order[n_test:])], dataset.X_train[np.sort(order[:n_test])]


def held_out_metrics(estimator, X_test: np.ndarray) -> dict:
    """Reconstruction error (mean squared error per feature) and log-likelihood (nats per example)."""
    # Squared error in model space (e.g. pixels in [0, 1]), so that data sets compare.
    X_model = estimator.preprocessing_.transform(X_test)
    mse = float(np.mean((estimator.preprocessing_.transform(estimator.reconstruct(X_test)) - X_model) ** 2))
    if isinstance(estimator, PCA):
        ll, kind = estimator.score(X_test), "exact"
    elif isinstance(estimator, VAE):
        ll, kind = estimator.score(X_test), "ELBO (lower bound)"
    else:
        ll, kind = None, "none: an autoencoder defines no density"
    return {"mse": mse, "log_likelihood": ll, "log_likelihood_kind": kind}


def compare(
    X_train: np.ndarray,
    X_test: np.ndarray,
    *,
    random_state: int = 0,
    **params,
) -> list[ModelResult]:
    """Fit PCA, Autoencoder and VAE with the same parameters and seed; evaluate each on ``X_test``.

    ``params`` are estimator parameters; each model takes those it has (PCA: latent_dim and
    preprocessing; the others all of them).
    """
    candidates = {}
    for name, cls in [("PCA", PCA), ("Autoencoder", Autoencoder), ("VAE", VAE)]:
        accepted = cls().get_params()
        candidates[name] = cls(random_state=random_state, **{k: v for k, v in params.items() if k in accepted})
    results = []
    for name, estimator in candidates.items():
        start = time.perf_counter()
        estimator.fit(X_train)
        result = ModelResult(name, estimator, time.perf_counter() - start)
        result.metrics = held_out_metrics(estimator, X_test)
        results.append(result)
    return results
