"""Uniform dequantisation of integer grey levels: the bins, the keyed noise, PPCA's exact fit, the units."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA as SklearnPCA

from vaelab import PCA, VAE
from vaelab.compare import evaluate_estimator
from vaelab.data import Preprocessing, load
from vaelab.errors import ConfigError, DataError
from vaelab.estimators.neural import stored_rows

pytestmark = pytest.mark.filterwarnings("ignore::vaelab.ConvergenceWarning")  # few-epoch models on purpose


@pytest.fixture(scope="module")
def eight_bit():
    """Low-rank 8-bit data: 300 training and 60 test rows of 20 values in 0..255."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(360, 3)) @ rng.normal(size=(3, 20)) * 25
    X = np.clip(np.round(128 + latent + rng.normal(scale=8, size=latent.shape)), 0, 255).astype(np.uint8)
    return X[:300], X[300:]


def test_each_integer_is_a_bin_whose_centre_maps_back_to_it():
    X = np.arange(17, dtype=np.float64).reshape(1, 17).repeat(5, axis=0)  # every level of digits, 5 rows
    X[1:] = np.random.default_rng(0).integers(0, 17, size=(4, 17))
    pre = Preprocessing.fit(X, kind="scale", pixel_max=16, dequantize="auto", seed=3)
    assert pre.dequantize and pre.levels == 17
    np.testing.assert_array_equal(pre.transform(X, np.float64), (X + 0.5) / 17)
    np.testing.assert_allclose(pre.inverse_transform(pre.transform(X)), X, atol=1e-5)
    scored = pre.transform(X, np.float64, noise=True)
    np.testing.assert_array_equal(np.floor(scored * 17), X)  # a point inside each integer's own bin
    assert not np.array_equal(scored, pre.transform(X, np.float64))
    # keyed on the example, not its position: a subset or a reordering gets the same points
    np.testing.assert_array_equal(pre.transform(X[2:4], np.float64, noise=True), scored[2:4])
    np.testing.assert_array_equal(pre.transform(X[::-1], np.float64, noise=True), scored[::-1])
    assert pre.log_abs_det_jacobian(17) == pytest.approx(-17 * math.log(17))
    assert Preprocessing.from_dict(pre.to_dict()) == pre


def test_auto_dequantises_grey_levels_only(eight_bit):
    X_train, _ = eight_bit
    assert Preprocessing.fit(X_train, kind="auto", dequantize="auto").levels == 256
    assert Preprocessing.fit(X_train, kind="auto", dequantize="none").levels is None
    digits = load("digits").X_train  # float64 integers 0..16
    assert Preprocessing.fit(digits, kind="scale", pixel_max=16, dequantize="auto").levels == 17
    assert not Preprocessing.fit(digits / 3.7, kind="scale", pixel_max=5, dequantize="auto").dequantize
    assert not Preprocessing.fit(digits, kind="standardize", dequantize="auto").dequantize
    binary = (digits > 8).astype(np.float64)
    assert not Preprocessing.fit(binary, kind="scale", pixel_max=1, dequantize="auto").dequantize
    assert not Preprocessing.fit(X_train, kind="scale", pixel_max=255, binarize="static", dequantize="auto").dequantize
    with pytest.raises(DataError, match="not all integers"):
        Preprocessing.fit(digits / 3.7, kind="scale", pixel_max=5, dequantize="uniform")
    with pytest.raises(ConfigError, match="needs preprocessing='scale'"):
        Preprocessing.fit(digits, kind="standardize", dequantize="uniform")
    with pytest.raises(ConfigError, match="binarize='none'"):
        Preprocessing("scale", "threshold", 255.0, dequantize=True)


def test_the_trainer_draws_a_fresh_point_in_each_bin(eight_bit):
    X_train, _ = eight_bit
    pre = Preprocessing.fit(X_train, kind="scale", pixel_max=255, dequantize="auto")
    for X in (X_train, X_train.astype(np.float64)):  # 8-bit rows scaled per batch; float rows stored as centres
        rows, prepare, value_range = stored_rows(X, pre, torch.device("cpu"))
        first, second = prepare(rows[:50]), prepare(rows[:50])
        np.testing.assert_array_equal(np.floor(first.double().numpy() * 256), X_train[:50])
        assert not torch.equal(first, second) and value_range == (0.0, 1.0)


def test_ppca_fits_the_dequantised_moments_exactly(eight_bit):
    """Oracle: x + u, u uniform on each bin, adds 1 / (12 * 256^2) to every eigenvalue of the bin centres'
    covariance; the PPCA of those moments, scored at the keyed point of each test row, by scipy."""
    X_train, X_test = eight_bit
    model = PCA(latent_dim=3, random_state=0).fit(X_train)
    centres = (X_train.astype(np.float64) + 0.5) / 256
    reference = SklearnPCA(3).fit(centres)
    bin_variance = 1 / (12 * 256**2)
    np.testing.assert_allclose(np.abs(model.components_ @ reference.components_.T), np.eye(3), atol=1e-5)
    assert model.noise_variance_ == pytest.approx(reference.noise_variance_ + bin_variance, rel=1e-5)
    W = reference.components_.T * np.sqrt(reference.explained_variance_ + bin_variance - model.noise_variance_)
    cov = W @ W.T + model.noise_variance_ * np.eye(20)
    points = model.preprocessing_.transform(X_test, np.float64, noise=True)
    expected = multivariate_normal(reference.mean_, cov).logpdf(points)
    np.testing.assert_allclose(model.score_samples(X_test, space="model"), expected, rtol=1e-5)
    shift = model.score_samples(X_test) - model.score_samples(X_test, space="model")
    np.testing.assert_allclose(shift, -20 * math.log(256))


def test_the_dequantised_density_is_a_probability_of_the_integers():
    """Sum over every integer pair x of E_u p(x + u) (raw units) is the density's mass on [0, 4)^2: <= 1,
    and near 1 for a density that lives there. A wrong log-Jacobian would be off by a factor of 16 per 4^2."""
    rng = np.random.default_rng(1)
    X = np.clip(np.round(1.5 + rng.normal(size=(400, 1)) * [[0.6, 0.5]] + rng.normal(scale=0.3, size=(400, 2))), 0, 3)
    model = PCA(latent_dim=1, preprocessing="scale", pixel_max=3, random_state=0).fit(X)
    grid = np.stack(np.meshgrid(np.arange(4), np.arange(4)), -1).reshape(-1, 2).astype(np.float64)
    u = rng.random((20_000, 1, 2))
    points = torch.from_numpy(((grid[None] + u) / 4).reshape(-1, 2))
    log_density = model.module_.exact_log_likelihood(points).numpy() + model.preprocessing_.log_abs_det_jacobian(2)
    mass = np.exp(log_density).reshape(20_000, 16).mean(axis=0).sum()
    assert 0.9 < mass < 1.0


def test_a_comparison_reports_the_probability_of_the_integers(eight_bit):
    X_train, X_test = eight_bit
    vae = VAE(latent_dim=2, hidden=(16,), epochs=3, random_state=0).fit(X_train)
    metrics = evaluate_estimator(vae, X_test, X_train=X_train, n_iw_samples=8)
    assert metrics["units"]["dequantised_levels"] == 256
    assert "log-probability of the integer data" in metrics["log_likelihood"]["unit"]
    assert "the 8-bit convention" in metrics["bits_per_dim"]["unit"]
    ll = metrics["log_likelihood"]["value"]
    assert metrics["bits_per_dim"]["value"] == pytest.approx(-ll / (20 * math.log(2)))
    assert metrics["elbo"]["value"] <= ll < 0  # a probability of integers is at most 1
    np.testing.assert_allclose(vae.score_samples(X_test[10:20]), vae.score_samples(X_test)[10:20], rtol=1e-6)


def test_a_bernoulli_decoder_is_not_dequantised(eight_bit):
    X_train, _ = eight_bit
    model = VAE(latent_dim=2, hidden=(8,), likelihood="bernoulli", epochs=1, random_state=0).fit(X_train)
    assert not model.preprocessing_.dequantize  # grey levels as probabilities: there are no bins to fill
    with pytest.raises(ConfigError, match="likelihood='bernoulli'"):
        VAE(likelihood="bernoulli", dequantize="uniform", epochs=1).fit(X_train)


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "none"},
        {"kind": "scale", "pixel_max": 255, "dequantize": "none"},
        {"kind": "scale", "pixel_max": 255, "dequantize": "uniform"},
        {"kind": "standardize"},
    ],
)
def test_transform_is_the_affine_map_pca_uses(eight_bit, options):
    X_train, X_test = eight_bit
    pre = Preprocessing.fit(X_train, **options)
    offset, scale = pre.affine(20)
    np.testing.assert_allclose(pre.transform(X_test, np.float64), (X_test - offset) / scale, rtol=1e-12)


def test_a_density_spike_on_constant_features_is_told_and_dequantising_removes_it():
    import warnings

    from vaelab import DegenerateDensityWarning

    digits = load("digits").X_train.reshape(-1, 64)  # some border pixels are 0 in every training image
    with pytest.warns(DegenerateDensityWarning, match=r"features have a decoder standard deviation at its floor"):
        VAE(latent_dim=2, hidden=(8,), epochs=1, preprocessing="standardize", random_state=0).fit(digits)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateDensityWarning)
        VAE(latent_dim=2, hidden=(8,), epochs=1, preprocessing="scale", pixel_max=16, random_state=0).fit(digits)
