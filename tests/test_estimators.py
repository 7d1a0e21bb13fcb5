import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from vaelab import PCA, VAE, Autoencoder, ConfigError, DataError, NotFittedError

ALL = ["pca", "ae", "vae"]


def test_pca_log_likelihood_equals_scikit_learn(digits):
    X_train, X_test = digits
    for k in (1, 5, 20):
        ours = PCA(latent_dim=k, preprocessing="none").fit(X_train)
        ref = SklearnPCA(n_components=k).fit(X_train.astype(np.float64))
        np.testing.assert_allclose(ours.score_samples(X_test), ref.score_samples(X_test), rtol=1e-4, atol=1e-3)


def test_pca_reconstruction_is_the_orthogonal_projection(digits):
    X_train, X_test = digits
    ref = SklearnPCA(n_components=5).fit(X_train)
    ours = PCA(latent_dim=5, preprocessing="none").fit(X_train)
    np.testing.assert_allclose(ours.reconstruct(X_test), ref.inverse_transform(ref.transform(X_test)), atol=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_shapes_and_dtypes(fitted, digits, name):
    model = fitted[name]
    _, X_test = digits
    Z = model.transform(X_test)
    assert Z.shape == (len(X_test), 2) and Z.dtype == np.float32
    assert model.inverse_transform(Z).shape == X_test.shape
    assert model.reconstruct(X_test).dtype == np.float32
    assert model.sample(16, random_state=0).shape == (16, X_test.shape[1])
    np.testing.assert_array_equal(model.sample(4, random_state=1), model.sample(4, random_state=1))
    assert model.n_features_in_ == X_test.shape[1]


@pytest.mark.parametrize("name", ["pca", "vae"])
def test_score_is_mean_of_score_samples(fitted, digits, name):
    _, X_test = digits
    scores = fitted[name].score_samples(X_test)  # VAE: K = 1000 importance samples
    assert scores.shape == (len(X_test),) and np.isfinite(scores).all()
    assert fitted[name].score(X_test) == pytest.approx(float(scores.mean()), rel=1e-5)


def test_vae_elbo_beats_the_per_pixel_mean_model(fitted, digits):
    from vaelab.metrics import elbo

    X_train, X_test = digits
    p = np.clip(X_train.mean(0), 1e-4, 1 - 1e-4)
    baseline = (X_test * np.log(p) + (1 - X_test) * np.log1p(-p)).sum(1).mean()
    held_out_elbo = elbo(fitted["vae"].module_, torch.from_numpy(X_test), seed=0).elbo.mean().item()
    assert held_out_elbo > baseline + 2.0


def test_vae_score_is_importance_sampled_and_tightens_with_k(fitted, digits):
    _, X_test = digits
    vae = fitted["vae"]
    k1, k100 = vae.score(X_test, n_samples=1), vae.score(X_test, n_samples=100)
    assert k100 > k1
    np.testing.assert_array_equal(
        vae.score_samples(X_test[:20], n_samples=50), vae.score_samples(X_test[:20], n_samples=50)
    )


def test_autoencoder_reconstructs_better_than_pca(fitted, digits):
    _, X_test = digits
    mse = {k: np.mean((fitted[k].reconstruct(X_test) - X_test) ** 2) for k in ("pca", "ae")}
    assert mse["ae"] < 0.9 * mse["pca"]


def test_training_history_and_early_stopping(digits):
    X_train, _ = digits
    model = VAE(latent_dim=2, epochs=200, patience=3, lr=1e-2, random_state=0).fit(X_train)
    n_epochs = len(model.history_["train"]["loss"])
    assert n_epochs < 200, "early stopping should stop long before 200 epochs at this learning rate"
    assert len(model.history_["validation"]["loss"]) == n_epochs
    best = model.history_["best_epoch"]
    assert model.history_["validation"]["loss"][best - 1] == min(model.history_["validation"]["loss"])


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_same_seed_same_weights(digits, cls):
    X_train, _ = digits
    a = cls(epochs=3, random_state=7).fit(X_train).module_.state_dict()
    b = cls(epochs=3, random_state=7).fit(X_train).module_.state_dict()
    c = cls(epochs=3, random_state=8).fit(X_train).module_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_fit_leaves_global_rng_and_input_untouched(digits):
    X_train, _ = digits
    X_copy = X_train.copy()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    VAE(epochs=1, random_state=0).fit(X_train)
    assert torch.equal(torch.rand(3), expected)
    np.testing.assert_array_equal(X_train, X_copy)


@pytest.mark.parametrize("cls", [PCA, Autoencoder, VAE])
def test_sklearn_params_and_clone(cls):
    model = cls(latent_dim=3, random_state=5)
    cloned = clone(model)
    assert cloned.get_params() == model.get_params()
    assert cloned.set_params(latent_dim=4).latent_dim == 4


@pytest.mark.parametrize("cls", [PCA, Autoencoder, VAE])
def test_methods_before_fit_raise_not_fitted(cls, digits):
    _, X_test = digits
    with pytest.raises(NotFittedError, match="not fitted yet"):
        cls().transform(X_test)
    with pytest.raises(SklearnNotFittedError):
        cls().sample(3)


def test_linear_maps_with_empty_hidden(digits):
    X_train, _ = digits
    model = VAE(hidden=(), epochs=1, random_state=0).fit(X_train)
    assert isinstance(model.module_.encoder[0], torch.nn.Linear) and len(model.module_.encoder) == 1


def test_gaussian_likelihood_on_standardized_data(digits):
    X_train, X_test = digits
    mean, std = X_train.mean(0), X_train.std(0) + 0.1
    model = VAE(likelihood="gaussian", epochs=5, random_state=0).fit((X_train - mean) / std)
    assert np.isfinite(model.score((X_test - mean) / std))


# --- bad input: one clear error each --------------------------------------------------------


def test_wrong_number_of_features(fitted, digits):
    _, X_test = digits
    with pytest.raises(DataError, match="X has 10 features, but VAE is expecting 64 features as input"):
        fitted["vae"].transform(X_test[:, :10])
    with pytest.raises(DataError, match="Z has 3 features"):
        fitted["pca"].inverse_transform(np.zeros((2, 3)))


def test_nan_and_inf_are_located(digits):
    X = digits[0].copy()
    X[5, 7] = np.nan
    X[9, 1] = np.inf
    with pytest.raises(DataError, match=r"2 NaN/inf values \(first at row 5, column 7"):
        VAE().fit(X)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((0, 4)), "contains no samples"),
        (np.zeros(5), "must be 2-D"),
        (np.array([["a", "b"]]), "values are text.*needs real numbers"),
    ],
)
def test_bad_arrays(bad, match):
    with pytest.raises(DataError, match=match):
        PCA().fit(bad)


def test_bernoulli_needs_unit_interval(digits):
    with pytest.raises(DataError, match=r"needs data in \[0, 1\].*likelihood='gaussian'"):
        VAE(epochs=1, likelihood="bernoulli", preprocessing="none").fit(digits[0] * 16)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [Autoencoder, VAE])
def test_defaults_learn_any_real_table(cls):
    """preprocessing='auto' standardises a table of values 50-150, likelihood='auto' is a Gaussian:
    the reconstructions beat predicting the mean, in the data's units."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(600, 2))
    X = 100 + 20 * np.tanh(latent @ rng.normal(size=(2, 7))) + rng.normal(scale=1.0, size=(600, 7))
    model = cls(latent_dim=2, random_state=0).fit(X[:500])
    assert model.module_.likelihood.name == "gaussian" and model.preprocessing_.kind == "standardize"
    error = ((model.reconstruct(X[500:]) - X[500:]) ** 2).mean()
    baseline = ((X[:500].mean(0) - X[500:]) ** 2).mean()
    assert error < 0.25 * baseline
    assert abs(model.sample(200, random_state=0).mean() - X.mean()) < 5


@pytest.mark.parametrize(
    "params, match",
    [
        ({"likelihood": "poisson"}, "unknown likelihood 'poisson'"),
        ({"latent_dim": 0}, "latent_dim must be an integer >= 1"),
        ({"epochs": 2.5}, "epochs must be an integer"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\)"),
        ({"hidden": (64, 0)}, "each hidden size"),
        ({"hidden": 4}, "hidden must be a tuple"),
        ({"random_state": -1}, "random_state must be None"),
        ({"device": "meta"}, "unknown device"),
        ({"device": "tpu"}, "unknown device"),
    ],
)
def test_bad_parameters(digits, params, match):
    with pytest.raises(ConfigError, match=match):
        VAE(**{"epochs": 1, **params}).fit(digits[0])


def test_pca_latent_dim_bounded_by_features(digits):
    with pytest.raises(ConfigError, match=r"latent_dim must be an integer in \[1, 64\]"):
        PCA(latent_dim=65).fit(digits[0])


# --- preprocessing stored in the model, images keep their shape --------------------------


def test_preprocessing_answers_in_user_units_and_keeps_image_shape(tmp_path):
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32)  # (n, 8, 8), values 0..16
    model = VAE(
        latent_dim=2, preprocessing="scale", pixel_max=16, likelihood="bernoulli", epochs=2, random_state=0
    ).fit(images)
    assert model.sample_shape_ == (8, 8) and model.n_features_in_ == 64  # as given to fit (issue 16)
    samples = model.sample(5, random_state=0)
    assert samples.shape == (5, 8, 8) and samples.min() >= 0 and samples.max() <= 16
    assert model.reconstruct(images[:3]).shape == (3, 8, 8)
    np.testing.assert_array_equal(model.transform(images[:3]), model.transform(images[:3].reshape(3, 64)))
    model.save(tmp_path / "m")
    from vaelab import load

    np.testing.assert_array_equal(load(tmp_path / "m").transform(images[:7]), model.transform(images[:7]))


def test_uint8_images_train_like_scaled_floats():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(300, 12), dtype=np.uint8)
    a = VAE(preprocessing="scale", dequantize="none", likelihood="bernoulli", epochs=2, random_state=0).fit(raw)
    b = VAE(preprocessing="none", likelihood="bernoulli", epochs=2, random_state=0).fit(raw.astype(np.float32) / 255)
    for k, v in a.module_.state_dict().items():
        torch.testing.assert_close(v, b.module_.state_dict()[k], atol=1e-3, rtol=1e-3)
    # dequantised: the same fresh point in each bin whether the rows are stored as 8 bits or as bin centres
    c = VAE(preprocessing="scale", epochs=2, random_state=0).fit(raw)
    d = VAE(preprocessing="scale", pixel_max=255, epochs=2, random_state=0).fit(raw.astype(np.float64))
    assert c.preprocessing_.levels == d.preprocessing_.levels == 256
    for k, v in c.module_.state_dict().items():
        torch.testing.assert_close(v, d.module_.state_dict()[k], atol=1e-3, rtol=1e-3)


def test_standardized_tables_with_gaussian_likelihood():
    rng = np.random.default_rng(0)
    X = rng.normal(50, 10, size=(400, 5)).astype(np.float32)
    model = VAE(likelihood="gaussian", preprocessing="standardize", epochs=3, random_state=0).fit(X)
    assert abs(model.sample(2000, random_state=0).mean() - 50) < 5
    assert np.isfinite(model.score(X))


def test_memory_mapped_data_is_read_batch_by_batch(tmp_path, monkeypatch, digits):
    from vaelab.data import load, rows
    from vaelab.data.rows import MappedRows

    X_train, _ = digits
    np.save(tmp_path / "x.npy", X_train)
    mapped = load(tmp_path / "x.npy").X_train
    assert isinstance(mapped, np.memmap)
    monkeypatch.setattr(rows, "TRAIN_IN_MEMORY_LIMIT", 0)  # treat this small file as larger than memory
    reads = []
    monkeypatch.setattr(
        MappedRows, "__getitem__", lambda self, i, f=MappedRows.__getitem__: reads.append(len(i)) or f(self, i)
    )
    # The autoencoder is deterministic, so reading rows in file order within a batch changes nothing.
    from_disk = Autoencoder(epochs=2, batch_size=100, random_state=0).fit(mapped)
    assert reads and max(reads) <= 400  # batches (and validation chunks), never the whole file
    in_memory = Autoencoder(epochs=2, batch_size=100, random_state=0).fit(X_train)
    for name, tensor in in_memory.module_.state_dict().items():
        torch.testing.assert_close(from_disk.module_.state_dict()[name], tensor, atol=1e-4, rtol=1e-4)
