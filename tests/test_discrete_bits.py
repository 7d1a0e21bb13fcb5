"""Bits/dim of integer (8-bit) data in the standard discrete convention: the uniformly dequantised bound."""

import math

import numpy as np
import pytest
from sklearn.decomposition import PCA as SklearnPCA

from vaelab import PCA, VAE
from vaelab.compare import evaluate_estimator, integer_levels
from vaelab.data import load

pytestmark = pytest.mark.filterwarnings("ignore::vaelab.ConvergenceWarning")  # few-epoch models on purpose


@pytest.fixture(scope="module")
def eight_bit():
    """Low-rank 8-bit data: 300 training and 60 test rows of 20 values in 0..255."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(360, 3)) @ rng.normal(size=(3, 20)) * 25
    X = np.clip(np.round(128 + latent + rng.normal(scale=8, size=latent.shape)), 0, 255).astype(np.uint8)
    return X[:300], X[300:]


def test_ppca_discrete_bits_per_dim_equals_the_analytic_dequantised_density(eight_bit):
    X_train, X_test = eight_bit
    model = PCA(latent_dim=3, preprocessing="scale", pixel_max=255).fit(X_train)
    entry = evaluate_estimator(model, X_test, X_train=X_train, n_iw_samples=1, seed=4)["bits_per_dim_discrete"]
    # Oracle: scikit-learn's PPCA of the raw values at v = (x + u) * 255/256, plus that map's log-Jacobian,
    # is a density of x + u in raw 0..256 units; bits/dim is minus its mean log over D ln 2.
    u = np.random.default_rng(4).random(X_test.shape)
    v = (X_test + u) * (255 / 256)
    log_density = SklearnPCA(3).fit(X_train.astype(np.float64)).score_samples(v) + 20 * math.log(255 / 256)
    assert entry["value"] == pytest.approx(-log_density.mean() / (20 * math.log(2)), rel=1e-6)
    assert entry["unit"] == "bits/dim" and entry["estimator"] == "exact"
    assert entry["protocol"].startswith("8-bit discrete convention, uniform dequantisation")
    assert "log2(256) = 8" in entry["protocol"]


def test_only_integer_data_get_the_discrete_number(eight_bit):
    X_train, X_test = eight_bit
    digits = load("digits")
    on_digits = PCA(latent_dim=2, preprocessing="scale", pixel_max=16).fit(digits.X_train)
    assert integer_levels(on_digits, digits.X_test) == 17
    assert integer_levels(PCA(latent_dim=2, preprocessing="standardize").fit(X_train), X_test) == 256
    floats = X_train / 3.7
    assert integer_levels(PCA(latent_dim=2).fit(floats), floats) is None
    binarised = VAE(latent_dim=2, hidden=(8,), epochs=1, preprocessing="scale", binarize="threshold").fit(X_train)
    assert integer_levels(binarised, X_test) is None
    metrics = evaluate_estimator(PCA(latent_dim=2).fit(floats), floats[:40], X_train=floats, n_iw_samples=1)
    assert "bits_per_dim_discrete" not in metrics
    assert "not the 8-bit discrete convention" in metrics["bits_per_dim"]["unit"]


def test_a_vae_reports_the_importance_sampled_bound(eight_bit):
    X_train, X_test = eight_bit
    vae = VAE(latent_dim=2, hidden=(16,), epochs=3, preprocessing="scale", pixel_max=255, random_state=0)
    entry = evaluate_estimator(vae.fit(X_train), X_test, X_train=X_train, n_iw_samples=8)["bits_per_dim_discrete"]
    assert entry["estimator"].startswith("importance-sampled (K=8)") and math.isfinite(entry["value"])
