"""The two-level VAE: exact oracles for its distributions, its likelihood and the estimator around it."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from vaelab import VAE, load
from vaelab.errors import ConfigError
from vaelab.likelihoods import make_likelihood
from vaelab.metrics import elbo, iw_estimate
from vaelab.models import VAE as VAEModule
from vaelab.models import TwoLevelGaussian, log_importance_weights
from vaelab.models.hierarchy import MIN_SCALE, ConditionalGaussian
from vaelab.models.networks import dense_net


def _module(prior="normal", n_features=6, **kwargs):
    torch.manual_seed(0)
    likelihood = make_likelihood("bernoulli", (n_features,))
    return VAEModule(n_features, 3, (16,), likelihood, prior=prior, prior_components=4, top_latent_dim=2, **kwargs)


@pytest.mark.parametrize("architecture", ["mlp", "gated_mlp"])
def test_split_first_layer_equals_the_network_on_the_concatenation(architecture):
    torch.manual_seed(0)
    net = dense_net(architecture, 5 + 2, (8, 8), 6)
    layer = ConditionalGaussian(net, context_features=5)
    x, z = torch.randn(4, 5), torch.randn(3, 4, 2)  # K = 3 codes for each of 4 rows
    direct = net(torch.cat([x.expand(3, 4, 5), z], dim=-1))
    loc, raw_scale = direct.chunk(2, dim=-1)
    q = layer(z, x)
    torch.testing.assert_close(q.base_dist.loc, loc)
    torch.testing.assert_close(q.base_dist.scale, torch.nn.functional.softplus(raw_scale) + MIN_SCALE)
    with pytest.raises(ValueError, match="context"):
        layer(z)


def test_two_level_log_prob_sample_and_mean_follow_the_chain_rule():
    model = _module()
    x = torch.rand(5, 6).round()
    qz = model.encode(x)
    assert isinstance(qz, TwoLevelGaussian) and qz.event_shape == (5,) and qz.batch_shape == (5,)
    torch.manual_seed(1)
    z = qz.rsample((7,))  # (7, 5, 5)
    z1, z2 = z[..., :3], z[..., 3:]
    top = model.encode_top(x)
    direct = top.log_prob(z2) + model.bottom_posterior(z2, x).log_prob(z1)
    torch.testing.assert_close(qz.log_prob(z), direct)
    # from_noise is the same reparameterisation as rsample, given the same standard normals
    eps = torch.randn(7, 5, 5)
    z2_eps = top.base_dist.loc + top.base_dist.scale * eps[..., 3:]
    bottom = model.bottom_posterior(z2_eps, x).base_dist
    torch.testing.assert_close(qz.from_noise(eps), torch.cat([bottom.loc + bottom.scale * eps[..., :3], z2_eps], -1))
    # the plug-in mean, the code embed returns
    mean_top = top.mean
    torch.testing.assert_close(qz.mean, torch.cat([model.bottom_posterior(mean_top, x).mean, mean_top], -1))
    torch.testing.assert_close(model.embed(x), qz.mean)
    # p(z) = p(z2) p(z1|z2), with p(z2) = N(0, I)
    prior = model.prior()
    standard = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)
    torch.testing.assert_close(prior.log_prob(z), standard.log_prob(z2) + model.bottom_prior(z2).log_prob(z1))
    assert prior.sample((4,)).shape == (4, 5)


def test_vamp_prior_of_a_two_level_model_mixes_the_top_posteriors():
    model = _module(prior="vamp")
    u = model.prior_module.pseudo_inputs
    z = torch.randn(9, 5)
    z1, z2 = z[:, :3], z[:, 3:]
    top = model.encode_top(u)  # batch (4,)
    log_top = torch.logsumexp(top.log_prob(z2[:, None]), dim=1) - math.log(4)
    torch.testing.assert_close(model.prior().log_prob(z), log_top + model.bottom_prior(z2).log_prob(z1))


def _set_linear(linear, weight, bias):
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(np.asarray(weight), dtype=torch.float32))
        linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))


def _raw(scale):
    """inverse of softplus(raw) + MIN_SCALE."""
    excess = scale - MIN_SCALE
    return excess + math.log(-math.expm1(-excess))


def test_linear_gaussian_two_level_model_with_its_exact_posterior_scores_exactly():
    """z2 ~ N(0, 1), z1|z2 ~ N(c z2 + d, s^2), x|z ~ N(W1 z1 + W2 z2 + b, diag sigma^2).

    Scalar layers make the exact posterior q(z2|x) q(z1|x, z2) representable by the model's own
    linear networks; with it every importance weight equals p(x), so the K-sample estimate and the
    ELBO both equal the closed-form Gaussian log p(x) for any K.
    """
    rng = np.random.default_rng(0)
    D = 3
    c, d, s = 0.7, 0.3, 0.5
    W1, W2, b, sigma = rng.normal(size=D), rng.normal(size=D), rng.normal(size=D), np.array([0.4, 0.6, 0.9])
    # v = (z1, z2, x) = A u + m for standard normals u = (u2, u1, eps)
    A = np.zeros((2 + D, 2 + D))
    A[0, :2] = [c, s]
    A[1, 0] = 1.0
    A[2:, 0] = W1 * c + W2
    A[2:, 1] = W1 * s
    A[2:, 2:] = np.diag(sigma)
    m = np.concatenate([[d, 0.0], W1 * d + b])
    S = A @ A.T
    ix = slice(2, 2 + D)
    gain2 = S[1, ix] @ np.linalg.inv(S[ix, ix])  # E[z2|x] = gain2 (x - m_x)
    var2 = S[1, 1] - gain2 @ S[ix, 1]
    cond = [2, 3, 4, 1]  # (x, z2): the context first, as the network reads it
    gain1 = S[0, cond] @ np.linalg.inv(S[np.ix_(cond, cond)])
    var1 = S[0, 0] - gain1 @ S[cond, 0]

    model = VAEModule(D, 1, (), make_likelihood("gaussian", (D,)), top_latent_dim=1)
    _set_linear(model.encoder[0], [gain2, np.zeros(D)], [-gain2 @ m[ix], _raw(math.sqrt(var2))])
    _set_linear(model.bottom_posterior.net[0], [gain1, np.zeros(D + 1)], [d - gain1 @ m[cond], _raw(math.sqrt(var1))])
    _set_linear(model.bottom_prior.net[0], [[c], [0.0]], [d, _raw(s)])
    _set_linear(model.decoder[0], np.stack([W1, W2], axis=1), b)
    model.likelihood.set_scale(torch.as_tensor(sigma, dtype=torch.float32))

    x = torch.as_tensor(rng.normal(size=(20, D)) * 2, dtype=torch.float32)
    exact = MultivariateNormal(torch.as_tensor(m[ix]), torch.as_tensor(S[ix, ix])).log_prob(x.double())
    estimate = iw_estimate(model, x, n_samples=7, seed=3)
    torch.testing.assert_close(estimate.log_likelihood.double(), exact, atol=2e-4, rtol=0)
    torch.testing.assert_close(estimate.elbo.double(), exact, atol=2e-4, rtol=0)
    assert float(estimate.effective_sample_size.min()) == pytest.approx(7, rel=1e-3)
    torch.testing.assert_close(elbo(model, x, seed=5).elbo.double(), exact, atol=2e-4, rtol=0)


def test_one_sample_bound_is_the_elbo_and_more_samples_raise_it():
    model = _module()
    x = torch.rand(40, 6).round()
    one = iw_estimate(model, x, n_samples=1, seed=2)
    terms = elbo(model, x, n_samples=1, seed=2)
    torch.testing.assert_close(one.log_likelihood, terms.elbo, atol=1e-4, rtol=1e-5)
    many = iw_estimate(model, x, n_samples=500, seed=2)
    assert float(many.log_likelihood.mean()) > float(many.elbo.mean())
    assert torch.all(many.elbo <= many.log_likelihood + 1e-5)
    # the training objective is the same importance weight, one draw per example
    torch.manual_seed(4)
    loss = model.loss(x)
    torch.manual_seed(4)
    qz = model.encode(x)
    direct = -log_importance_weights(model, x, qz.rsample(), qz).mean()
    torch.testing.assert_close(loss.loss, direct)


@pytest.fixture(scope="module")
def digits_hvae():
    from sklearn.datasets import load_digits

    X = load_digits().data[:600]
    params = dict(latent_dim=3, top_latent_dim=2, hidden=(32,), architecture="gated_mlp", epochs=30, lr=3e-3)
    return X, VAE(**params, random_state=0).fit(X), VAE(**params, prior="vamp", prior_components=20, random_state=0)


def test_two_level_estimator_fits_saves_loads_and_samples(digits_hvae, tmp_path):
    X, model, _ = digits_hvae
    assert model.transform(X[:5]).shape == (5, 5)
    assert model.sample(6, random_state=0).shape == (6, 64)
    scores = model.score_samples(X[:30], n_samples=200)
    # a trained model beats an untrained one of the same shape by a wide margin
    untrained = VAE(latent_dim=3, top_latent_dim=2, hidden=(32,), architecture="gated_mlp", epochs=1, random_state=0)
    untrained.set_params(validation_fraction=0.0, patience=None)
    assert scores.mean() > untrained.fit(X[:100]).score_samples(X[:30], n_samples=200).mean() + 20
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score_samples(X[:30], n_samples=200), scores)
    np.testing.assert_array_equal(loaded.transform(X[:5]), model.transform(X[:5]))


def test_two_level_vamp_estimator_fits(digits_hvae):
    X, _, vamp = digits_hvae
    vamp.set_params(epochs=5, validation_fraction=0.0, patience=None).fit(X)
    assert np.isfinite(vamp.score_samples(X[:20], n_samples=50)).all()
    assert vamp.sample(3, random_state=1).shape == (3, 64)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(top_latent_dim=2, free_bits=0.5), "free_bits"),
        (dict(top_latent_dim=2, architecture="conv"), "architecture"),
        (dict(top_latent_dim=-1), "top_latent_dim"),
    ],
)
def test_two_level_refusals(params, message):
    with pytest.raises(ConfigError, match=message):
        VAE(**params).fit(np.random.default_rng(0).random((20, 4)))


def test_two_level_conditional_model_is_refused():
    with pytest.raises(ConfigError, match="unconditional"):
        VAEModule(4, 2, (8,), make_likelihood("gaussian", (4,)), n_classes=3, top_latent_dim=2)
