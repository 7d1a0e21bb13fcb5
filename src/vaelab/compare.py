"""Fit PCA, an autoencoder and a VAE on one dataset and evaluate each on held-out data, like for like.

Every row is scored on the same held-out rows, as the same kind of quantity (a density of the
same values: PCA's Gaussian, and by default a Gaussian decoder with a learned variance for the
networks), in the data's own units (the preprocessing's log-Jacobian included). Options that would
make the rows incomparable — a Bernoulli decoder on grey levels, binarised data beside PCA's
Gaussian on grey levels — are refused. A calibration row scores real training rows as if they
were a model's samples: the completeness a perfect generator would get.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._jsonfile import read_document
from .errors import ConfigError, ModelFileError
from .estimators._base import LatentEstimator
from .estimators.persistence import load
from .estimators.registry import COMPARED
from .metrics import FeatureSpace, calibration, evaluate, to_data_units
from .metrics.completeness import COMPARISON_COMPONENTS
from .metrics.evaluate import Stopwatch

# Columns of the comparison table: (key in summary_row, header).
TABLE_COLUMNS = [
    ("model", "model"),
    ("mse", "recon. MSE (units^2)"),
    ("elbo", "ELBO (nats)"),
    ("log_likelihood", "log p(x) (nats)"),
    ("bits_per_dim", "bits/dim (bits)"),
    ("rate", "rate KL (nats)"),
    ("distortion", "distortion (nats)"),
    ("path_ratio", "path ratio (x)"),
    ("precision", "precision (0-1)"),
    ("recall", "recall (0-1)"),
    ("fit_seconds", "fit (s)"),
]
# The units of the table's columns, in words: printed under it and shown in the report.
TABLE_UNITS = (
    "units: nats per example, in the data's units (the preprocessing's log-Jacobian included); for integer grey "
    "levels (dequantised) log p(x) is the log-probability of the integers, by uniform dequantisation (a lower "
    "bound), and bits/dim is -log2 of it per value, the convention of published 8-bit numbers; recon. MSE in "
    "squared data units per value; path ratio (x): decoded path length over the distance of its ends "
    "(1 = straight); precision and recall: fractions (0-1); fit: wall-clock seconds of the model's fit"
)


@dataclass
class ModelResult:
    name: str
    estimator: LatentEstimator
    fit_seconds: float
    metrics: dict
    stage_seconds: dict[str, float]  # wall-clock seconds per stage, the fit's first
    feature_space: FeatureSpace | None = None  # where completeness was measured


CALIBRATION_ROW = "real data (calibration)"


def check_comparable(params: dict) -> None:
    """Refuse the options under which PCA, the autoencoder and the VAE would score different quantities."""
    if params.get("binarize", "none") != "none":
        raise ConfigError(
            f"binarize={params['binarize']!r} would score the networks on binarised data and PCA on grey levels: "
            "two test sets in one table; compare without --binarize, or fit and evaluate the binarised models alone"
        )
    if params.get("likelihood") == "bernoulli":
        raise ConfigError(
            "likelihood='bernoulli' gives a probability of binary values, not a density of the data that PCA "
            "models; compare with likelihood 'auto' (a Gaussian), 'gaussian' or 'continuous_bernoulli'"
        )


def comparability_notes(metrics_per_model) -> list[str]:
    """The notes of every model's metrics, once each."""
    return list(dict.fromkeys(note for m in metrics_per_model for note in m["notes"]))


def evaluate_estimator(
    estimator, X_test, *, X_train=None, n_iw_samples: int = 1000, seed: int = 0, feature_space=None, clock=None
) -> dict:
    """:func:`vaelab.metrics.evaluate` of a fitted estimator on raw data (its model space is used).

    In the data's units (:func:`vaelab.metrics.to_data_units`); every density is scored at the
    estimator's scored values (``to_model_space(X, scored=True)``: for dequantised integer data, a
    point in each integer's bin, the same for every model fitted with the same seed). ``clock`` (a
    :class:`~vaelab.metrics.evaluate.Stopwatch`) gets a lap per stage: ``model_space``
    (preprocessing the rows), evaluate's, and ``mse_in_data_units``.
    """
    if estimator.conditioning.conditional:
        raise ConfigError(
            "the comparison metrics are for unconditional models; measure a ConditionalVAE with "
            "score_samples(X, y) (log p(x|y), nats) and sample(n, y=...)"
        )
    clock = clock or Stopwatch()
    A_test = torch.from_numpy(estimator.to_model_space(X_test, scored=True))
    # The training rows serve only to fit a feature space and a code mixture: not needed (nor their
    # pass through the preprocessing) when the feature space is given and the model kept its codes.
    needs_train = X_train is not None and (feature_space is None or not int(estimator.module_.code_sample_size))
    A_train = torch.from_numpy(estimator.to_model_space(X_train, scored=True)) if needs_train else None
    clock.lap("model_space")
    metrics = evaluate(
        estimator.module_.cpu(),
        A_test,
        x_train=A_train,
        n_iw_samples=n_iw_samples,
        seed=seed,
        feature_space=feature_space,
        clock=clock,
    )
    raw = np.asarray(X_test, dtype=np.float64)
    mse = float(np.mean((estimator.reconstruct(X_test).astype(np.float64).reshape(raw.shape) - raw) ** 2))
    log_det = estimator.preprocessing_.log_abs_det_jacobian(estimator.n_features_in_)
    metrics = to_data_units(metrics, log_det, mse, levels=estimator.preprocessing_.levels)
    clock.lap("mse_in_data_units")
    return metrics


def summary_row(name: str, metrics: dict, fit_seconds: float | None = None) -> dict:
    """The numbers of one table row, from :func:`vaelab.metrics.evaluate`'s dict."""
    prior = (metrics.get("completeness") or {}).get("prior") or {}
    return {
        "model": name,
        "mse": metrics["mse"]["value"],
        "elbo": metrics["elbo"]["value"],
        "log_likelihood": metrics["log_likelihood"]["value"],
        "log_likelihood_estimator": metrics["log_likelihood"].get("estimator"),
        "bits_per_dim": metrics["bits_per_dim"].get("value"),
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
    check_comparable(params)
    results, feature_space = [], None
    for name, cls in COMPARED.items():
        accepted = cls.params.names
        estimator = cls(random_state=random_state, **{k: v for k, v in params.items() if k in accepted})
        result = fit_and_evaluate(name, estimator, X_train, X_test, n_iw_samples, random_state, feature_space)
        feature_space = feature_space or result.feature_space
        results.append(result)
    return results


def calibration_row(results: list[ModelResult], X_train, X_test, *, k: int = 5, seed: int = 0) -> dict | None:
    """Precision, recall, density and coverage of real training rows taken as samples.

    See :func:`vaelab.metrics.calibration`.

    As many training rows as test rows (seeded), in the feature space the models were measured in:
    the numbers a generator that samples the data distribution itself would get. None when there
    are too few held-out rows for k neighbours (as for the models' own completeness).
    """
    first = results[0]
    if len(X_test) <= k or len(X_train) <= k:
        return None
    start = time.perf_counter()
    if first.feature_space is None:
        raise ConfigError(
            f"the calibration row is measured in the feature space of the models' completeness, and "
            f"the result for {first.name} has none; fit it with fit_and_evaluate"
        )
    rows = np.sort(np.random.default_rng(seed).permutation(len(X_train))[: len(X_test)])
    reference = torch.from_numpy(first.estimator.to_model_space(np.asarray(X_train)[rows], scored=True))
    real = torch.from_numpy(first.estimator.to_model_space(X_test, scored=True))
    result = calibration(reference, real, first.feature_space, k).to_dict()
    seconds = time.perf_counter() - start
    return {"model": CALIBRATION_ROW, "k": k, "n_reference": len(rows), **result, "seconds": seconds}


def table_rows(results: list[ModelResult], calibration: dict | None = None) -> list[dict]:
    """The rows of the comparison table: one per model, then the calibration row."""
    return with_calibration([summary_row(r.name, r.metrics, r.fit_seconds) for r in results], calibration)


def with_calibration(rows: list[dict], calibration: dict | None) -> list[dict]:
    """``rows`` (one per model), then the calibration row when there is one (metrics.json's ``calibration``)."""
    if calibration is None:
        return list(rows)
    return [
        *rows,
        {key: None for key, _ in TABLE_COLUMNS}
        | {"model": CALIBRATION_ROW, "precision": calibration["precision"], "recall": calibration["recall"]},
    ]


def fit_and_evaluate(name, estimator, X_train, X_test, n_iw_samples: int, seed: int, feature_space=None) -> ModelResult:
    """Fit ``estimator`` and evaluate it; the completeness feature space is fitted if not given.

    ``fit_seconds`` is the wall-clock time of ``estimator.fit`` alone; ``stage_seconds`` times it
    and every later stage, ``feature_space`` included where it was fitted here.
    """
    clock = Stopwatch()
    estimator.fit(X_train)
    clock.lap("fit")
    if feature_space is None:
        A_train = torch.from_numpy(estimator.to_model_space(X_train, scored=True))
        feature_space = FeatureSpace.fit(A_train, min(COMPARISON_COMPONENTS, *A_train.shape))
        clock.lap("feature_space")
    metrics = evaluate_estimator(
        estimator,
        X_test,
        X_train=X_train,
        n_iw_samples=n_iw_samples,
        seed=seed,
        feature_space=feature_space,
        clock=clock,
    )
    return ModelResult(name, estimator, clock.seconds["fit"], metrics, clock.seconds, feature_space)


METRICS_FILE = "metrics.json"
MODELS_DIR = "models"


def write_comparison(
    out_dir, results: list[ModelResult], *, data: dict, settings: dict, calibration: dict | None = None
) -> Path:
    """Save every model under ``out_dir/models/NAME`` and all numbers to ``out_dir/metrics.json``.

    ``data`` records where the data came from (so a report can be redrawn without refitting);
    ``settings`` the parameters that made the numbers.
    """
    out_dir = Path(out_dir)
    for r in results:
        r.estimator.save(out_dir / MODELS_DIR / r.name)
    document = {
        "format": "vaelab-comparison",
        "format_version": 1,
        "data": data,
        "settings": settings,
        "units": {
            "log-likelihoods, ELBO, distortion": (
                "nats per example, in the data's units (the preprocessing's log-Jacobian included)"
            ),
            "rate": "nats per example (a KL between codes: the same in any data units)",
            "mse": "squared data units per feature",
            "fit_seconds": "wall-clock seconds of the model's fit call",
            "stage_seconds": (
                "wall-clock seconds of each stage, per model: fit, then each metric (log_likelihood: for a VAE "
                "its importance-sampling pass also gives the ELBO, rate and distortion); calibration.seconds "
                "for the calibration row"
            ),
        },
        "calibration": calibration,
        "table": [summary_row(r.name, r.metrics, r.fit_seconds) for r in results],
        "models": {r.name: _model_entry(r) for r in results},
    }
    path = out_dir / METRICS_FILE
    path.write_text(json.dumps(document, indent=2, allow_nan=False))
    return path


def _model_entry(result: ModelResult) -> dict:
    """A model's part of metrics.json: its fit time, every stage's time (the fit's first), and its metrics."""
    return {"fit_seconds": result.fit_seconds, "stage_seconds": result.stage_seconds, "metrics": result.metrics}


def read_comparison(out_dir) -> tuple[dict, dict]:
    """The metrics document and the fitted models ``{name: estimator}`` of a saved comparison."""
    out_dir = Path(out_dir)
    path = out_dir / METRICS_FILE
    document = read_document(path, "vaelab-comparison", "compare")
    shapes = {"data": dict, "settings": dict, "table": list, "models": dict}
    for field, kind in shapes.items():
        if not isinstance(document.get(field), kind):
            raise ModelFileError(f"{path}: field {field!r} is missing or not a {kind.__name__}; the file is damaged")
    if not isinstance(document["data"].get("source"), str):
        raise ModelFileError(f"{path}: data.source must name the data set or file the models were fitted on")
    models = {name: load(out_dir / MODELS_DIR / name) for name in document["models"]}
    return document, models
