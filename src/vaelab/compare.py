"""Fit PCA, an autoencoder and a VAE on one dataset and evaluate each on held-out data."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .estimators import PCA, VAE, Autoencoder
from .metrics import FeatureSpace, evaluate

# Columns of the comparison table: (key in summary_row, header).
TABLE_COLUMNS = [
    ("model", "model"),
    ("mse", "recon. MSE"),
    ("elbo", "ELBO (nats)"),
    ("log_likelihood", "log p(x) (nats)"),
    ("rate", "rate KL (nats)"),
    ("distortion", "distortion (nats)"),
    ("path_ratio", "path ratio"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("fit_seconds", "fit (s)"),
]


@dataclass
class ModelResult:
    name: str
    estimator: object
    fit_seconds: float
    metrics: dict


def train_test_split(dataset, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's standard split, or a seeded ``test_fraction`` hold-out when it has none."""
    if dataset.X_test is not None:
        return dataset.X_train, dataset.X_test
    order = np.random.default_rng(seed).permutation(len(dataset.X_train))
    n_test = max(1, int(round(test_fraction * len(order))))
    return dataset.X_train[np.sort(order[n_test:])], dataset.X_train[np.sort(order[:n_test])]


def evaluate_estimator(estimator, X_test, *, X_train=None, n_iw_samples: int = 1000, seed: int = 0, feature_space=None) -> dict:
    """:func:`vaelab.metrics.evaluate` of a fitted estimator on raw data (its model space is used)."""
    A_test = torch.from_numpy(estimator._model_space(X_test))
    A_train = None if X_train is None else torch.from_numpy(estimator._model_space(X_train))
    return evaluate(
        estimator.module_.cpu(), A_test, x_train=A_train, n_iw_samples=n_iw_samples, seed=seed, feature_space=feature_space
    )


def summary_row(name: str, metrics: dict, fit_seconds: float | None = None) -> dict:
    """The numbers of one table row, from :func:`vaelab.metrics.evaluate`'s dict."""
    prior = (metrics.get("completeness") or {}).get("prior") or {}
    return {
        "model": name,
        "mse": metrics["mse"]["value"],
        "elbo": metrics["elbo"]["value"],
        "log_likelihood": metrics["log_likelihood"]["value"],
        "log_likelihood_estimator": metrics["log_likelihood"].get("estimator"),
        "rate": metrics["kl"]["value"],
        "distortion": metrics["reconstruction"]["value"],
        "path_ratio": metrics["continuity"]["path_length_ratio"]["median"],
        "precision": prior.get("precision"),
        "recall": prior.get("recall"),
        "fit_seconds": fit_seconds,
    }


def compare(
    X_train: np.ndarray,
    X_test: np.ndarray,
    *,
    random_state: int = 0,
    n_iw_samples: int = 1000,
    **params,
) -> list[ModelResult]:
    """Fit PCA, Autoencoder and VAE with the same parameters and seed; evaluate each on ``X_test``.

    ``params`` are estimator parameters; each model takes those it has (PCA: latent_dim and the
    preprocessing; the others all of them). All models are measured in one feature space.
    """
    results, feature_space = [], None
    for name, cls in [("PCA", PCA), ("Autoencoder", Autoencoder), ("VAE", VAE)]:
        accepted = cls().get_params()
        estimator = cls(random_state=random_state, **{k: v for k, v in params.items() if k in accepted})
        start = time.perf_counter()
        estimator.fit(X_train)
        fit_seconds = time.perf_counter() - start
        if feature_space is None:
            feature_space = FeatureSpace.fit(torch.from_numpy(estimator._model_space(X_train)))
        metrics = evaluate_estimator(
            estimator, X_test, X_train=X_train, n_iw_samples=n_iw_samples, seed=random_state, feature_space=feature_space
        )
        results.append(ModelResult(name, estimator, fit_seconds, metrics))
    return results
