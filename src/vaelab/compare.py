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


def held_out_metrics(estimator, X_test: np.ndarray) -> dict:
    """Reconstruction error (mean squared error per feature) and log-likelihood (nats per example)."""
    mse = float(np.mean((estimator.reconstruct(X_test) - X_test) ** 2))
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
    latent_dim: int = 2,
    epochs: int = 50,
    random_state: int = 0,
    verbose: int = 0,
    **neural_params,
) -> list[ModelResult]:
    """Fit PCA, Autoencoder and VAE at the same latent size and seed; evaluate each on ``X_test``."""
    candidates = {
        "PCA": PCA(latent_dim=latent_dim, random_state=random_state),
        "Autoencoder": Autoencoder(latent_dim=latent_dim, epochs=epochs, random_state=random_state, verbose=verbose, **neural_params),
        "VAE": VAE(latent_dim=latent_dim, epochs=epochs, random_state=random_state, verbose=verbose, **neural_params),
    }
    results = []
    for name, estimator in candidates.items():
        start = time.perf_counter()
        estimator.fit(X_train)
        result = ModelResult(name, estimator, time.perf_counter() - start)
        result.metrics = held_out_metrics(estimator, X_test)
        results.append(result)
    return results
