"""The model contract and the priors: exact oracles for the VampPrior, the mixture prior and the KL."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vaelab.errors import ConfigError
from vaelab.likelihoods import make_likelihood
from vaelab.models import (
    PRIORS,
    VAE,
    LatentModel,
    ProbabilisticModel,
    gated_mlp,
    kl_term,
    log_importance_weights,
)
from vaelab.models.priors import MixturePrior


def _vae(prior="vamp", n_components=7, **kwargs):
    torch.manual_seed(0)
    return VAE(6, 3, (16,), make_likelihood("bernoulli", (6,)), prior=prior, prior_components=n_components, **kwargs)


def test_the_contract_is_abstract():
    with pytest.raises(TypeError):
        LatentModel(2, torch.nn.Identity(), make_likelihood("gaussian", (2,)), PRIORS["normal"](2, 2, 1))
    with pytest.raises(TypeError):
        ProbabilisticModel(2, torch.nn.Identity(), make_likelihood("gaussian", (2,)), PRIORS["normal"](2, 2, 1))


def test_vamp_prior_is_the_mean_of_the_posteriors_at_the_pseudo_inputs():
    model = _vae()
    with torch.no_grad():
        model.prior_module.pseudo_inputs.copy_(torch.rand(7, 6))
    z = torch.randn(11, 3)
    posteriors = model.encode(model.prior_module.pseudo_inputs)  # batch (7,)
    loc, scale = posteriors.base_dist.loc, posteriors.base_dist.scale  # (7, 3)
    # direct: log (1/K) sum_k prod_j N(z_j; loc_kj, scale_kj), written out by hand as the oracle
    log_normal = -0.5 * ((z[:, None] - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)  # (11, 7, 3)
    direct = torch.logsumexp(log_normal.sum(-1), dim=1) - math.log(7)
    torch.testing.assert_close(model.prior().log_prob(z), direct, atol=1e-5, rtol=1e-5)


def test_one_pseudo_input_at_a_data_point_is_that_points_posterior():
    model = _vae(n_components=1)
    x = torch.rand(1, 6)
    with torch.no_grad():
        model.prior_module.pseudo_inputs.copy_(x)
    z = torch.randn(20, 3)
    torch.testing.assert_close(model.prior().log_prob(z), model.encode(x).log_prob(z), atol=1e-6, rtol=1e-6)


def test_vamp_initialise_takes_training_rows():
    model = _vae(n_components=5)
    rows = torch.rand(3, 6)
    model.initialise(rows)
    pseudo = model.prior_module.pseudo_inputs
    torch.testing.assert_close(pseudo, rows[[0, 1, 2, 0, 1]], atol=0.06, rtol=0)


def test_mixture_prior_log_prob_and_samples():
    prior = MixturePrior(2, 5, 3)
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
    distribution = prior(None)
    z = torch.randn(9, 2)
    weights = torch.softmax(prior.logits, 0)
    scales = torch.nn.functional.softplus(prior.raw_scales) + 1e-4
    components = Independent(Normal(prior.means, scales), 1)
    direct = torch.logsumexp(components.log_prob(z[:, None]) + weights.log(), dim=1)
    torch.testing.assert_close(distribution.log_prob(z), direct)
    assert distribution.sample((4,)).shape == (4, 2)


def test_kl_is_closed_form_against_the_standard_normal_and_monte_carlo_against_a_mixture():
    normal, vamp = _vae(prior="normal"), _vae()
    x = torch.rand(4, 6)
    qz = normal.encode(x)
    z = qz.rsample((3,))
    torch.testing.assert_close(kl_term(qz, normal.prior(), z), kl_divergence(qz, normal.prior()))
    qz = vamp.encode(x)
    z = qz.rsample((5,))
    expected = (qz.log_prob(z) - vamp.prior().log_prob(z)).mean(0)
    torch.testing.assert_close(kl_term(qz, vamp.prior(), z), expected)
    # the Monte-Carlo KL is unbiased: its mean over many draws nears the expectation from more draws
    many = kl_term(qz, vamp.prior(), qz.sample((20_000,)))
    again = kl_term(qz, vamp.prior(), qz.sample((20_000,)))
    torch.testing.assert_close(many, again, atol=0.05, rtol=0)


def test_vamp_loss_is_reconstruction_plus_kl_and_the_iwae_bound_tightens():
    model, x = _vae(), torch.rand(16, 6)
    terms = model.loss(x)
    torch.testing.assert_close(terms.loss, terms.terms["reconstruction"] + terms.terms["kl"])
    qz = model.encode(x)
    log_w = log_importance_weights(model, x, qz.sample((2000,)), qz)
    elbo, bound = log_w.mean(0), torch.logsumexp(log_w, 0) - math.log(2000)
    assert (bound >= elbo).all()


def test_priors_refuse_what_they_cannot_do():
    with pytest.raises(ConfigError, match="unknown prior 'uniform'"):
        _vae(prior="uniform")
    with pytest.raises(ConfigError, match="free_bits"):
        _vae(free_bits=0.5)
    with pytest.raises(ConfigError, match="conditional"):
        _vae(n_classes=3)


def test_code_mixture_is_fitted_once_and_refitted_after_new_codes_or_a_load():
    model = _vae(prior="normal")
    model.set_code_sample(torch.randn(500, 3))
    first = model.code_mixture()
    assert model.code_mixture() is first
    assert first.sample((10,)).shape == (10, 3)
    other = _vae(prior="normal")
    other.set_code_sample(torch.randn(500, 3) + 5)
    model.load_state_dict(other.state_dict())
    assert model.code_mixture() is not first
    assert float(model.code_mixture().mean.mean()) == pytest.approx(5, abs=0.3)


def test_gated_layers_multiply_a_value_by_a_sigmoid_gate():
    torch.manual_seed(0)
    net = gated_mlp(4, (8,), 2)
    x = torch.randn(3, 4)
    gated = net[0]
    hidden = gated.value(x) * torch.sigmoid(gated.gate(x))
    torch.testing.assert_close(net(x), net[1](hidden))
