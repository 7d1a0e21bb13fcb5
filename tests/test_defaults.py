"""The defaults are trained well and compare like for like (issue 13): oracles on real and synthetic data."""

import numpy as np
import pytest

from vaelab import PCA, VAE


def _linear_gaussian(n: int, seed: int) -> np.ndarray:
    """x = W z + mu + 0.5 eps, z ~ N(0, I_2), in 6 dimensions: a PPCA model exactly."""
    fixed = np.random.default_rng(0)
    W, mu = fixed.normal(size=(6, 2)) * np.array([3.0, 1.0]), fixed.normal(size=6)
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 2)) @ W.T + mu + 0.5 * rng.normal(size=(n, 6))).astype(np.float32)


@pytest.mark.slow
def test_a_linear_gaussian_vae_with_default_training_reaches_exact_ppca():
    X, X_test = _linear_gaussian(3000, 1), _linear_gaussian(2000, 2)
    # default preprocessing (standardised, for a table) and training; both scored in the data's units
    exact = PCA(latent_dim=2).fit(X).score(X_test)
    vae = VAE(latent_dim=2, hidden=(), likelihood="gaussian_shared", random_state=0).fit(X)
    # K = 2000 importance samples with a near-exact posterior: the estimate's own bias is ~1e-4 nats
    assert vae.score(X_test, n_samples=2000) > exact - 0.02


@pytest.mark.slow
def test_the_default_digits_comparison_reads_top_to_bottom():
    from vaelab.compare import calibration_row, compare
    from vaelab.data import load
    from vaelab.data.splits import held_out_split

    split = held_out_split(load("digits"))
    results = compare(split.X_train, split.X_test, random_state=0, preprocessing="scale", pixel_max=16.0)
    rows = {r.name: r.metrics for r in results}
    pca, vae, ae = rows["PCA"], rows["VAE"], rows["Autoencoder"]
    assert vae["log_likelihood"]["value"] > pca["log_likelihood"]["value"]
    for metrics in (pca, vae):
        assert metrics["elbo"]["value"] <= metrics["log_likelihood"]["value"]
        assert metrics["units"]["space"] == "data" and metrics["units"]["dequantised_levels"] == 17
    assert pca["elbo"]["value"] == pytest.approx(pca["log_likelihood"]["value"], abs=1e-3)
    calibration = calibration_row(results, split.X_train, split.X_test)
    assert min(calibration[k] for k in ("precision", "recall", "coverage")) >= 0.9 and calibration["density"] >= 0.9
    # the KL term is what makes prior samples meaningful: the autoencoder's fall off the data
    vae_prior, ae_prior = vae["completeness"]["prior"], ae["completeness"]["prior"]
    assert vae_prior["precision"] > ae_prior["precision"] + 0.05
    assert vae_prior["density"] > ae_prior["density"] + 0.1 and vae_prior["coverage"] > ae_prior["coverage"] + 0.1
