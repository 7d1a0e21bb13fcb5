"""beta-VAE, IWAE, free bits, KL warm-up and convolutional networks: one model, parameterised."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from test_models import elbo_terms
from vaelab import VAE, Autoencoder, ConfigError, load
from vaelab.likelihoods import make_likelihood
from vaelab.models import VAE as VAEModule


def _module(**kwargs):
    torch.manual_seed(0)
    return VAEModule(6, 3, (16,), make_likelihood("bernoulli", (6,)), **kwargs)


def test_beta_one_is_the_negative_elbo():
    model, x = _module(beta=1.0), torch.rand(5, 6)
    torch.manual_seed(1)
    terms = model.loss(x)
    torch.manual_seed(1)
    reconstruction, kl = elbo_terms(model, x)
    torch.testing.assert_close(terms.loss, (reconstruction + kl).mean())
    torch.manual_seed(1)
    assert model.__class__.loss(_module(beta=4.0), x).loss > terms.loss


@pytest.mark.slow
def test_iwae_with_one_sample_is_the_elbo_with_a_monte_carlo_kl():
    model, x = _module(objective="iwae", n_train_samples=1), torch.rand(5, 6)
    torch.manual_seed(1)
    iwae = model.loss(x)
    torch.manual_seed(1)
    qz = model.encode(x)
    z = qz.rsample((1,))
    elbo = model.decode(z).log_prob(x) + model.prior().log_prob(z) - qz.log_prob(z)
    torch.testing.assert_close(iwae.loss, -elbo.mean())
    # ... and in expectation the analytic-KL ELBO
    torch.manual_seed(2)
    mc = torch.stack([model.loss(x).loss for _ in range(4000)]).mean()
    torch.manual_seed(2)
    analytic = torch.stack([_module().loss(x).loss for _ in range(4000)]).mean()
    torch.testing.assert_close(mc, analytic, atol=0.05, rtol=0)


def test_iwae_bound_tightens_with_more_samples():
    x = torch.rand(64, 6)
    torch.manual_seed(3)
    one = torch.stack([_module(objective="iwae", n_train_samples=1).loss(x).loss for _ in range(50)]).mean()
    torch.manual_seed(3)
    many = torch.stack([_module(objective="iwae", n_train_samples=50).loss(x).loss for _ in range(50)]).mean()
    assert many < one  # a tighter (higher) bound is a lower loss


def test_free_bits_floor_the_kl_per_dimension():
    model, x = _module(free_bits=5.0), torch.rand(5, 6)
    torch.manual_seed(1)
    terms = model.loss(x)
    assert terms.terms["kl"] < 3 * 5.0  # the true KL is reported
    torch.testing.assert_close(terms.loss - terms.terms["reconstruction"], torch.tensor(15.0))


def test_kl_warmup_anneals_beta_over_the_first_epochs(digits):
    X = digits[0]
    warm = VAE(epochs=4, kl_warmup=4, patience=None, random_state=0).fit(X)
    cold = VAE(epochs=4, patience=None, random_state=0).fit(X)
    train = warm.history_["train"]
    # loss = reconstruction + (epoch / 4) * kl during warm-up
    np.testing.assert_allclose(train["loss"][0], train["reconstruction"][0] + 0.25 * train["kl"][0], rtol=0.02)
    assert warm.module_.kl_scale == 1.0 and cold.history_["train"]["loss"] != train["loss"]


@pytest.mark.parametrize(
    "params, match",
    [
        ({"objective": "vi"}, "unknown objective"),
        ({"n_train_samples": 5}, "needs objective='iwae'"),
        ({"objective": "iwae", "n_train_samples": 5, "beta": 2.0}, "use beta=1"),
        ({"free_bits": -1.0}, r"free_bits must be in \[0, 100\]"),
        ({"architecture": "transformer"}, "unknown architecture"),
    ],
)
def test_bad_family_parameters(digits, params, match):
    with pytest.raises(ConfigError, match=match):
        VAE(epochs=1, **params).fit(digits[0])


def test_conv_round_trips_the_image_shape_and_auto_is_the_mlp(tmp_path):
    images = load_digits().images[:400]  # (n, 8, 8) grey levels 0..16
    for cls in (VAE, Autoencoder):
        model = cls(latent_dim=3, architecture="conv", epochs=2, preprocessing="scale", pixel_max=16, random_state=0)
        model.fit(images)
        assert type(model.module_.encoder).__name__ == "ConvEncoder"
        assert model.reconstruct(images[:5]).shape == (5, 8, 8)  # the shape given to fit (issue 16)
        assert model.sample(4, random_state=0).shape == (4, 8, 8)
        model.save(tmp_path / cls.__name__)
        np.testing.assert_array_equal(load(tmp_path / cls.__name__).transform(images[:9]), model.transform(images[:9]))
    mlp = VAE(epochs=1, preprocessing="scale", pixel_max=16).fit(images)
    assert type(mlp.module_.encoder).__name__ == "Sequential"
    with pytest.raises(ConfigError, match="architecture='conv' needs image data"):
        VAE(architecture="conv", epochs=1).fit(images.reshape(400, 64) / 16)


def test_conv_on_32x32_rgb():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(64, 3, 32, 32), dtype=np.uint8)
    model = VAE(latent_dim=4, architecture="conv", epochs=1, preprocessing="scale", random_state=0).fit(X)
    assert model.sample(2, random_state=0).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("name", ["pca", "ae", "vae"])
def test_gmm_sampler_draws_from_the_training_codes(fitted, digits, name):
    model = fitted[name]
    X_train, _ = digits
    codes = model.transform(X_train)
    samples = model.sample(2000, random_state=0, sampler="gmm")
    resampled = model.transform(samples)
    assert samples.shape == (2000, 64)
    np.testing.assert_array_equal(samples, model.sample(2000, random_state=0, sampler="gmm"))
    # the mixture's codes spread like the training codes (re-encoding a decoded mean is lossy, so loosely)
    np.testing.assert_allclose(resampled.mean(0), codes.mean(0), atol=0.5 * codes.std(0).max())
    with pytest.raises(ConfigError, match="unknown sampler 'flow'"):
        model.sample(3, sampler="flow")


def test_collapse_guard_warns_and_names_the_knobs(digits):
    from vaelab import PosteriorCollapseWarning

    with pytest.warns(PosteriorCollapseWarning, match="inactive.*kl_warmup.*free_bits"):
        VAE(latent_dim=4, beta=20.0, epochs=5, likelihood="bernoulli", preprocessing="none", random_state=0).fit(
            digits[0]
        )


def test_bfloat16_autocast_keeps_the_loss_and_the_training(digits):
    from vaelab.train import _Objective

    model, x = _module(), torch.rand(256, 6)
    cpu = torch.device("cpu")
    torch.manual_seed(1)
    full = _Objective(model, cpu, "float32")(x)
    torch.manual_seed(1)
    mixed = _Objective(model, cpu, "bfloat16")(x)
    assert mixed.dtype == torch.float32 and not torch.equal(mixed, full)  # bfloat16 was used...
    torch.testing.assert_close(mixed, full, rtol=2e-2, atol=0)  # ...and changes only the rounding
    X_train, _ = digits
    losses = [
        VAE(latent_dim=2, epochs=5, precision=p, likelihood="bernoulli", preprocessing="none", random_state=0)
        .fit(X_train)
        .history_["train"]["loss"][-1]
        for p in ("float32", "bfloat16")
    ]
    assert abs(losses[1] - losses[0]) < 0.02 * abs(losses[0])
    with pytest.raises(ConfigError, match="precision"):
        VAE(precision="float16").fit(X_train)
