"""The conditional VAE: labels condition encoder and decoder, samples come out in the asked class."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from test_models import elbo_terms
from vaelab import ConditionalVAE, DataError, ModelFileError, load
from vaelab.likelihoods import make_likelihood
from vaelab.models import VAE as VAEModule


@pytest.fixture(scope="module")
def labelled_digits():
    """Digits images (n, 1, 8, 8) in [0, 16] with labels, split 1500 / 297."""
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    X, y = data.images[order, None].astype(np.float32), data.target[order]
    return X[:1500], y[:1500], X[1500:], y[1500:]


@pytest.fixture(scope="module")
def cvae(labelled_digits):
    X, y, _, _ = labelled_digits
    model = ConditionalVAE(
        latent_dim=2, architecture="mlp", preprocessing="scale", pixel_max=16, epochs=60, random_state=0
    )
    return model.fit(X, y)


@pytest.mark.slow
def test_conditional_samples_are_recognised_as_their_class(cvae, labelled_digits):
    X, y, X_test, y_test = labelled_digits
    classifier = LogisticRegression(max_iter=2000).fit(X.reshape(len(X), -1), y)
    assert classifier.score(X_test.reshape(len(X_test), -1), y_test) > 0.9  # the judge itself is sound
    for c in range(10):
        samples = cvae.sample(50, y=c, random_state=c)
        assert samples.shape == (50, 1, 8, 8)
        hits = (classifier.predict(samples.reshape(50, -1)) == c).mean()
        assert hits > 0.5, f"class {c}: only {hits:.0%} of its samples are classified as {c} (chance: 10%)"


def test_the_label_changes_the_decoded_class(cvae):
    # One code, decoded under each label: the classes must differ, not just the noise.
    Z = np.zeros((10, 2), dtype=np.float32)
    means = cvae.inverse_transform(Z, np.arange(10)).reshape(10, -1)
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert distances[~np.eye(10, dtype=bool)].min() > 1.0  # pixels in [0, 16]


def test_api_shapes_and_save_load_round_trip(cvae, labelled_digits, tmp_path):
    _, _, X_test, y_test = labelled_digits
    codes = cvae.transform(X_test, y_test)
    assert codes.shape == (len(X_test), 2)
    assert cvae.reconstruct(X_test[:7], y_test[:7]).shape == (7, 1, 8, 8)
    assert cvae.reconstruct(X_test[:7], 3).shape == (7, 1, 8, 8)  # one label for every row
    assert cvae.sample(12, random_state=0).shape == (12, 1, 8, 8)  # classes in turn
    np.testing.assert_array_equal(cvae.classes_, np.arange(10))
    cvae.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert isinstance(again, ConditionalVAE)
    np.testing.assert_array_equal(again.classes_, cvae.classes_)
    np.testing.assert_allclose(again.transform(X_test, y_test), codes, rtol=1e-6)
    np.testing.assert_allclose(again.sample(5, y=4, random_state=1), cvae.sample(5, y=4, random_state=1), rtol=1e-6)


def test_log_likelihood_is_conditional(cvae, labelled_digits):
    _, _, X_test, y_test = labelled_digits
    right = cvae.score_samples(X_test[:40], y_test[:40], n_samples=200)
    wrong = cvae.score_samples(X_test[:40], (y_test[:40] + 1) % 10, n_samples=200)
    assert right.shape == (40,) and np.isfinite(right).all()
    assert right.mean() > wrong.mean() + 5  # nats: the true label explains the image better


def test_string_labels_and_conv_networks(labelled_digits):
    X, y, _, _ = labelled_digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y[:300]]
    model = ConditionalVAE(
        latent_dim=2, preprocessing="scale", pixel_max=16, architecture="conv", channels=(8,), epochs=2, random_state=0
    )
    model.fit(X[:300], names)
    assert model.module_.encoder.__class__.__name__ == "ConvEncoder"
    assert list(model.classes_) == sorted(set(names))
    assert model.sample(4, y="seven", random_state=0).shape == (4, 1, 8, 8)
    with pytest.raises(DataError, match=r"not seen in fit.*eight"):
        model.sample(2, y="ten")
    with pytest.raises(DataError, match="not seen in fit"):
        model.transform(X[:2], [1, 2])


@pytest.mark.parametrize(
    "labels, match",
    [
        (None, "needs the class labels"),
        (np.zeros(5), "got 5 labels for 40"),
        (np.zeros((40, 2)), r"shape \(n,\)"),
        (np.full(40, np.nan), "non-integer or NaN"),
        (np.arange(40) + 0.5, "non-integer"),
        (np.array([object()] * 40), "dtype object"),
    ],
)
def test_bad_labels_are_refused_in_fit(labelled_digits, labels, match):
    X = labelled_digits[0][:40]
    with pytest.raises(DataError, match=match):
        ConditionalVAE(epochs=1, preprocessing="scale", pixel_max=16).fit(X, labels)


def test_transform_needs_labels(cvae, labelled_digits):
    with pytest.raises(DataError, match="needs the class labels"):
        cvae.transform(labelled_digits[2][:3])


def test_module_with_one_class_equals_an_unconditional_vae_with_a_bias():
    # A one-hot input that is always 1 is a constant: the conditional module's loss is a VAE's.
    torch.manual_seed(0)
    module = VAEModule(6, 3, (16,), make_likelihood("bernoulli", (6,)), n_classes=1)
    x, y = torch.rand(5, 6), torch.zeros(5, dtype=torch.long)
    torch.manual_seed(1)
    terms = module.loss(x, y)
    torch.manual_seed(1)
    reconstruction, kl = elbo_terms(module, x, y)
    torch.testing.assert_close(terms.loss, (reconstruction + kl).mean())
    with pytest.raises(ValueError, match="conditional"):
        module.loss(x)


def test_saved_classes_are_checked(cvae, tmp_path):
    import json

    cvae.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["fitted"]["classes_"] = [3, 1]
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="sorted list"):
        load(tmp_path / "m")
    config["fitted"]["classes_"] = [0, 1, 2]  # fewer classes than the weights were trained with
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="shape"):
        load(tmp_path / "m")
