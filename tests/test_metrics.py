"""Oracle tests of vaelab.metrics.

The anchor: a linear-Gaussian VAE built from the PPCA solution has the exact log p(x) of
``PPCA.exact_log_likelihood``; with an encoder whose posterior scale is inflated by r, the importance
weights have a known relative variance, (r^2 / sqrt(2 r^2 - 1))^k - 1, which sets the tolerances.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import (
    Bernoulli,
    ContinuousBernoulli,
    Independent,
    Normal,
    kl_divergence,
)

import vaelab.estimators as est
import vaelab.metrics._common as metrics_common
from vaelab.errors import ConfigError, DataError
from vaelab.likelihoods import BernoulliLikelihood, GaussianLikelihood, make_likelihood
from vaelab.metrics import (
    FeatureSpace,
    active_units,
    bits_per_dim,
    decoder_lipschitz,
    density_coverage,
    elbo,
    evaluate,
    iw_estimate,
    iw_log_likelihood,
    path_length_ratio,
    prdc,
    precision_recall,
    prior_sample_quality,
    summarize,
)
from vaelab.models import VAE, Autoencoder, LatentModel, LossTerms, ProbabilisticModel
from vaelab.models.hierarchy import MIN_SCALE as _MIN_POSTERIOR_SCALE
from vaelab.models.priors import StandardNormalPrior

D, K_LATENT, N = 10, 3, 1000
INFLATION = 1.5


def _ppca_data(n: int, seed: int) -> np.ndarray:
    """x = W z + mu + eps with a fixed W (seed 0) and noise sd 0.3: the PPCA model itself."""
    fixed = np.random.default_rng(0)
    W, mu = fixed.normal(size=(D, K_LATENT)) * np.array([3.0, 2.0, 1.0]), fixed.normal(size=D)
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, K_LATENT)) @ W.T + mu + 0.3 * rng.normal(size=(n, D))).astype(np.float32)


@pytest.fixture(scope="module")
def x_train() -> np.ndarray:
    return _ppca_data(N, seed=1)


@pytest.fixture(scope="module")
def x_test() -> torch.Tensor:
    return torch.from_numpy(_ppca_data(N, seed=2))


@pytest.fixture(scope="module")
def ppca(x_train):
    return est.PCA(latent_dim=K_LATENT, preprocessing="none").fit(x_train).module_


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


@torch.no_grad()
def linear_vae(ppca, inflation: float) -> VAE:
    """A VAE with linear encoder/decoder: PPCA's decoder, its posterior mean, sd times ``inflation``."""
    d, k = ppca.decoder.weight.shape
    vae = VAE(d, k, hidden=(), likelihood=GaussianLikelihood((d,), shared=True, min_scale=0.0))
    vae.decoder[0].weight.copy_(ppca.decoder.weight)
    vae.decoder[0].bias.copy_(ppca.decoder.bias)
    vae.likelihood.set_scale(ppca.noise_variance.sqrt())
    L, noise, mu = ppca.eigenvalues.double(), ppca.noise_variance.double(), ppca.mean.double()
    A = ((L - noise).sqrt() / L)[:, None] * ppca.components.double()  # posterior mean = A (x - mu), (k, d)
    encoder = vae.encoder[0]
    encoder.weight.zero_()
    encoder.weight[:k] = A.float()
    encoder.bias[:k] = (-A @ mu).float()
    posterior_sd = inflation * (noise / L).sqrt()
    encoder.bias[k:] = _inverse_softplus(posterior_sd - _MIN_POSTERIOR_SCALE).float()
    return vae.eval()


def _relative_weight_variance(inflation: float, k: int = K_LATENT) -> float:
    """Var(w) / E[w]^2 for a Gaussian proposal with sd ``inflation`` times the exact posterior's."""
    r2 = inflation**2
    return (r2 / math.sqrt(2 * r2 - 1)) ** k - 1


@torch.no_grad()
def _elbo_standard_error(vae: VAE, x: torch.Tensor, n_samples: int) -> float:
    """Monte Carlo standard error of the mean S-sample ELBO of a linear-Gaussian VAE, in nats.

    With z = m + B e, e ~ N(0, I), B = W diag(s) and a = x - W m - mu, log p(x|z) is
    -||a - B e||^2 / (2 sigma^2) + const, whose variance is (4 a'BB'a + 2 tr((B'B)^2)) / (4 sigma^4).
    """
    qz, W = vae.encode(x), vae.decoder[0].weight.double()
    a = x.double() - vae.decoder(qz.mean).double()  # (n, d)
    sigma2 = vae.likelihood.scale.double() ** 2
    B = W[None] * qz.stddev.double()[:, None, :]  # (n, d, k)
    BtB = B.transpose(1, 2) @ B  # (n, k, k)
    Bta = (B.transpose(1, 2) @ a[..., None])[..., 0]  # (n, k)
    variance = (4 * Bta.pow(2).sum(-1) + 2 * (BtB @ BtB).diagonal(dim1=1, dim2=2).sum(-1)) / (4 * sigma2**2)
    return math.sqrt(float(variance.mean()) / (n_samples * len(x)))


# -- the correctness anchor -------------------------------------------------------------------


def test_linear_vae_reproduces_the_ppca_posterior(ppca, x_test):
    exact, vae = ppca.encode(x_test), linear_vae(ppca, INFLATION)
    approx = vae.encode(x_test)
    torch.testing.assert_close(approx.mean, exact.mean.float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(approx.stddev, INFLATION * exact.stddev.float(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("n_samples", "chunk_size"), [(1, 1), (7, 3), (100, 128)])
def test_exact_posterior_proposal_is_exact_for_any_K(ppca, x_test, n_samples, chunk_size):
    exact = ppca.exact_log_likelihood(x_test)
    for model in (ppca, linear_vae(ppca, 1.0)):
        estimate = iw_log_likelihood(model, x_test, n_samples, chunk_size=chunk_size)
        torch.testing.assert_close(estimate, exact.float(), atol=2e-3, rtol=1e-5)


def test_iw_recovers_the_exact_log_likelihood_within_monte_carlo_error(ppca, x_test):
    K, n = 1000, 500
    exact = ppca.exact_log_likelihood(x_test[:n]).double()
    result = iw_estimate(linear_vae(ppca, INFLATION), x_test[:n], K, seed=3)
    estimate = result.log_likelihood.double()
    relvar = _relative_weight_variance(INFLATION)
    standard_error, bias = math.sqrt(relvar / K), relvar / (2 * K)  # per example, nats (delta method)
    assert abs((estimate - exact).mean() + bias) < 4 * standard_error / math.sqrt(n)
    assert (estimate - exact).abs().max() < 6 * standard_error + bias
    # the estimator's own error bar agrees with the analytic one
    assert 0.5 < float(result.standard_error.median()) / standard_error < 2
    assert result.n_samples == K


def test_iw_is_above_the_elbo_and_grows_with_K(ppca, x_test):
    vae = linear_vae(ppca, INFLATION)
    exact = ppca.exact_log_likelihood(x_test).double().mean()
    relvar = _relative_weight_variance(INFLATION)
    means = {K: float(iw_log_likelihood(vae, x_test, K, seed=K).double().mean()) for K in (1, 10, 100, 1000)}
    for small, large in [(1, 10), (10, 100), (100, 1000)]:
        noise = 3 * math.sqrt(relvar / N) * (1 / math.sqrt(small) + 1 / math.sqrt(large))
        assert means[large] >= means[small] - noise
    assert means[1000] - means[1] > 0.5  # the gap KL(q || p(z|x)) is ~0.66 nats
    # ELBO: E = log p(x) - KL(q || p(z|x)), analytic for an inflated Gaussian posterior
    gap = K_LATENT * 0.5 * (INFLATION**2 - 1 - 2 * math.log(INFLATION))
    S = 50
    terms = elbo(vae, x_test, n_samples=S, seed=5)
    assert abs(float(terms.elbo.double().mean()) - (float(exact) - gap)) < 4 * _elbo_standard_error(vae, x_test, S)
    assert means[100] > float(terms.elbo.mean()) + 0.5
    torch.testing.assert_close(terms.elbo, -(terms.reconstruction + terms.kl))


def test_chunking_does_not_change_the_numbers(ppca, x_test):
    vae, x = linear_vae(ppca, INFLATION), x_test[:50]
    one_pass = iw_estimate(vae, x, 40, seed=11, batch_size=50, chunk_size=40)
    chunked = iw_estimate(vae, x, 40, seed=11, batch_size=7, chunk_size=3)
    torch.testing.assert_close(chunked.log_likelihood, one_pass.log_likelihood, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(chunked.effective_sample_size, one_pass.effective_sample_size)
    other_seed = iw_log_likelihood(vae, x, 40, seed=12)
    assert not torch.allclose(other_seed, one_pass.log_likelihood)
    a = elbo(vae, x, 5, seed=4, batch_size=50, chunk_size=5)
    b = elbo(vae, x, 5, seed=4, batch_size=3, chunk_size=2)
    torch.testing.assert_close(a.elbo, b.elbo, atol=1e-5, rtol=1e-6)


class _Wrapper(ProbabilisticModel):
    """A probabilistic model delegating to ``inner`` (whose decoder, likelihood and prior it shares)."""

    def __init__(self, inner: LatentModel):
        super().__init__(inner.latent_dim, inner.decoder, inner.likelihood, inner.prior_module)
        self.inner = inner

    def prior(self):
        return self.inner.prior()

    def loss(self, x, y=None):
        return LossTerms(torch.zeros(()))


class _CountingDecodes(_Wrapper):
    """Delegates to a model and counts the codes decoded."""

    def __init__(self, inner: LatentModel):
        super().__init__(inner)
        self.n_decoded = 0

    def encode(self, x, y=None):
        return self.inner.encode(x)

    def decode(self, z, y=None):
        self.n_decoded += z.shape[:-1].numel()
        return self.inner.decode(z)


def test_exactly_K_samples_are_drawn_and_divided_by(ppca, x_test):
    spy = _CountingDecodes(linear_vae(ppca, 1.0))
    estimate = iw_log_likelihood(spy, x_test[:5], n_samples=7, chunk_size=3, batch_size=2)
    assert spy.n_decoded == 7 * 5
    # all weights equal p(x): dividing by anything but the number drawn would shift the estimate
    torch.testing.assert_close(estimate, ppca.exact_log_likelihood(x_test[:5]).float(), atol=2e-3, rtol=0)


def test_noise_is_drawn_as_the_chunks_need_it_whatever_K(ppca, x_test, monkeypatch):
    tiles, fresh = [], []  # the noise tiles drawn; the floats drawn between two decoder passes
    draw = metrics_common._noise_block

    def counted_draw(*args):
        tiles.append(draw(*args))
        return tiles[-1]

    def decode(z, y=None):
        fresh.append(sum(t.numel() for t in tiles) - sum(fresh))
        return _CountingDecodes.decode(spy, z)

    monkeypatch.setattr(metrics_common, "_noise_block", counted_draw)
    spy = _CountingDecodes(ppca)
    spy.decode = decode
    held = {}
    for K in (200, 2000):
        tiles.clear()
        fresh.clear()
        iw_estimate(spy, x_test[:64], K, batch_size=32, chunk_size=10)
        held[K] = max(fresh)
        # 64 examples x ceil(K / 64) blocks of samples, each drawn once
        assert len(tiles) == 64 * math.ceil(K / 64)
    # at most one block of 64 samples for each of a batch's 32 examples is drawn ahead of a pass
    assert held[200] == held[2000] == 2 * 64 * 16 * K_LATENT


def test_the_first_pass_needs_no_noise_for_later_samples(ppca, x_test):
    class FirstPass(Exception):
        pass

    def decode(z, y=None):
        raise FirstPass(tuple(z.shape))

    spy = _CountingDecodes(ppca)
    spy.decode = decode
    # drawing the noise of all 10^12 samples up front would need 3 * 10^12 floats per example
    with pytest.raises(FirstPass, match=r"\(5, 64, 3\)"):
        iw_estimate(spy, x_test[:64], n_samples=10**12, chunk_size=5)


# -- conditional models ----------------------------------------------------------------------


class _ShiftedByClass(_Wrapper):
    """A conditional model built from an unconditional one: class c models x - shifts[c]."""

    def __init__(self, inner: LatentModel, shifts: torch.Tensor):
        super().__init__(inner)
        self.n_classes = len(shifts)
        self.register_buffer("shifts", shifts)  # (n_classes, n_features)

    def encode(self, x, y=None):
        return self.inner.encode(x - self.shifts[y])

    def decode(self, z, y=None):  # z (..., n, latent_dim), y (n,)
        return self.inner.likelihood(self.inner.decoder(z) + self.shifts[y])


class _OneClass(_Wrapper):
    """The unconditional model of one class of a conditional model."""

    def __init__(self, model: LatentModel, label: int):
        super().__init__(model)
        self.label = label

    def _labels(self, t):
        return torch.full(t.shape[-2:-1], self.label, dtype=torch.int64)

    def encode(self, x, y=None):
        return self.inner.encode(x, self._labels(x))

    def decode(self, z, y=None):
        return self.inner.decode(z, self._labels(z))


def test_conditional_metrics_equal_the_unconditional_ones_per_class(ppca, x_test):
    shifts = torch.tensor([[0.0] * D, [5.0] * D, [-3.0] * D])
    model, x = _ShiftedByClass(linear_vae(ppca, INFLATION), shifts), x_test[:60]
    y = torch.arange(60) % 3
    shifted = x + shifts[y]  # class c's data are PPCA data moved by shifts[c]
    iw = iw_estimate(model, shifted, 50, seed=2, batch_size=16, chunk_size=7, y=y.numpy())
    terms = elbo(model, shifted, 4, seed=3, y=y)
    for label in range(3):
        rows, alone = y == label, _OneClass(model, label)
        # same seed and positions, so the same noise: equal up to rounding
        expected = iw_estimate(alone, shifted, 50, seed=2)
        torch.testing.assert_close(iw.log_likelihood[rows], expected.log_likelihood[rows])
        torch.testing.assert_close(iw.effective_sample_size[rows], expected.effective_sample_size[rows])
        torch.testing.assert_close(terms.elbo[rows], elbo(alone, shifted, 4, seed=3).elbo[rows])
    # and log p(x | y) is the PPCA density of the unshifted data
    exact = iw_log_likelihood(_ShiftedByClass(linear_vae(ppca, 1.0), shifts), shifted, 5, y=y)
    torch.testing.assert_close(exact, ppca.exact_log_likelihood(x).float(), atol=2e-3, rtol=1e-5)
    assert active_units(model, shifted, y=y) == active_units(linear_vae(ppca, INFLATION), x) == K_LATENT
    with pytest.raises(DataError, match=r"y must be integer class indices of shape \(60,\), got dtype torch.float32"):
        iw_log_likelihood(model, shifted, 5, y=y.float())
    with pytest.raises(DataError, match=r"shape \(60,\), got dtype torch.int64 and shape \(59,\)"):
        elbo(model, shifted, y=y[:59])


# -- the fused log-densities the metrics and the training loss run on -----------------------------


_TORCH_LIKELIHOODS = {  # validate_args=False: Bernoulli's support check rejects grey levels
    "bernoulli": lambda likelihood, h: Bernoulli(logits=h, validate_args=False),
    "continuous_bernoulli": lambda likelihood, h: ContinuousBernoulli(logits=h),
    "gaussian": lambda likelihood, h: Normal(h, likelihood.scale.expand_as(h)),
    "gaussian_shared": lambda likelihood, h: Normal(h, likelihood.scale.expand_as(h)),
}


@pytest.mark.parametrize("name", list(_TORCH_LIKELIHOODS))
def test_likelihood_log_prob_and_its_gradient_equal_torch_distributions(name):
    torch.manual_seed(0)
    likelihood = make_likelihood(name, (30,))
    likelihood.set_scale(torch.rand(likelihood.raw_scale.shape) + 0.1) if "gaussian" in name else None
    x = torch.rand(5, 30)
    h = (3 * torch.randn(4, 5, 30)).requires_grad_()  # (K, n, d) decoder outputs against x (n, d)
    h64 = h.detach().double().requires_grad_()
    # torch in float64 as the reference: its float32 continuous Bernoulli loses ~1e-5 near p = 1/2
    reference = Independent(_TORCH_LIKELIHOODS[name](likelihood.double(), h64), 1).log_prob(x.double())
    ours = likelihood.float()(h).log_prob(x)
    torch.testing.assert_close(ours.double(), reference, atol=1e-5, rtol=1e-5)
    grads = [torch.autograd.grad(t.sum(), t_in)[0].double() for t, t_in in ((ours, h), (reference, h64))]
    torch.testing.assert_close(*grads, atol=1e-5, rtol=1e-5)


def test_continuous_bernoulli_normaliser_is_exact_at_zero_and_large_logits():
    logits = torch.tensor([-60.0, -20.0, -1e-6, 0.0, 1e-4, 0.5, 20.0, 60.0], dtype=torch.float64)
    exact = torch.where(logits == 0, math.log(2), (logits / torch.tanh(logits / 2)).log())  # log C, nats
    exact = exact + 0.3 * logits - nn.functional.softplus(logits)  # + log Bernoulli(0.3; logits)
    ours = make_likelihood("continuous_bernoulli", (1,))(logits.float()[:, None]).log_prob(torch.full((8, 1), 0.3))
    torch.testing.assert_close(ours.double(), exact, atol=1e-5, rtol=1e-6)


def test_vae_loss_equals_the_torch_distributions_objective_on_a_fixed_batch_and_seed():
    torch.manual_seed(0)
    model, x = VAE(12, 3, (16,), make_likelihood("bernoulli", (12,))), torch.rand(8, 12)
    torch.manual_seed(1)
    terms = model.loss(x)
    torch.manual_seed(1)
    qz = model.encode(x)
    px = Independent(Bernoulli(logits=model.decoder(qz.rsample()), validate_args=False), 1)
    reconstruction, kl = -px.log_prob(x).mean(), kl_divergence(qz, model.prior()).mean()
    torch.testing.assert_close(terms.terms["reconstruction"], reconstruction)
    torch.testing.assert_close(terms.terms["kl"], kl)
    torch.testing.assert_close(terms.loss, reconstruction + kl)


# -- continuity ------------------------------------------------------------------------------


class _JumpDecoder(nn.Module):
    """z (.., 1) -> (z, 10 * [|z| < 0.1]): a bump of height 10 in the second coordinate."""

    def forward(self, z):
        return torch.cat([z, 10.0 * (z.abs() < 0.1).float()], dim=-1)


class _JumpModel(LatentModel):
    def __init__(self):
        super().__init__(1, _JumpDecoder(), GaussianLikelihood((2,)), StandardNormalPrior(1, 2, 1))

    def embed(self, x, y=None):
        return x[:, :1]

    def loss(self, x, y=None):
        return LossTerms(torch.zeros(()))


def test_path_length_ratio_is_one_for_a_linear_decoder(ppca, x_test):
    ratio = path_length_ratio(ppca, x_test[:100], x_test[100:200])
    torch.testing.assert_close(ratio, torch.ones(100), atol=1e-4, rtol=0)


def test_path_length_ratio_is_large_across_a_jump():
    x_a, x_b = torch.tensor([[-1.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    ratio = path_length_ratio(_JumpModel(), x_a, x_b, n_steps=64)
    # up the bump and down again: (2 + 2 * 10) / 2 = 11 for vertical walls, a little less on a grid
    assert 10.5 < float(ratio) < 11


def test_decoder_lipschitz_is_bounded_by_the_singular_values_of_a_linear_decoder(ppca):
    singular = torch.linalg.svdvals(ppca.decoder.weight)
    z = torch.randn(64, K_LATENT, generator=torch.Generator().manual_seed(0))
    largest = decoder_lipschitz(ppca, z, n_directions=200)
    typical = decoder_lipschitz(ppca, z, n_directions=200, reduce="mean")
    assert (largest <= singular.max() * 1.001).all() and (largest >= 0.95 * singular.max()).all()
    assert (typical <= largest).all() and (typical >= singular.min()).all()
    torch.testing.assert_close(decoder_lipschitz(ppca, z, batch_size=5), decoder_lipschitz(ppca, z, batch_size=64))


def test_decoder_lipschitz_sees_a_jump():
    model = _JumpModel()
    near_jump = decoder_lipschitz(model, torch.tensor([[0.095]]), n_directions=8)
    smooth = decoder_lipschitz(model, torch.tensor([[0.5]]), n_directions=8)
    assert float(near_jump) > 500 and float(smooth) == pytest.approx(1.0, rel=1e-3)


def test_summarize_ignores_nan():
    summary = summarize(torch.tensor([*range(1, 11), math.nan], dtype=torch.float64))
    assert summary == {"median": 5.5, "p90": pytest.approx(9.1), "n": 11, "n_nan": 1}
    assert summarize(torch.tensor([math.nan]))["median"] is None


# -- completeness ----------------------------------------------------------------------------


def _brute_force_prdc(real: np.ndarray, fake: np.ndarray, k: int):
    """Full distance matrices, as in the authors' reference implementation."""
    rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
    ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
    rf = np.linalg.norm(real[:, None] - fake[None], axis=-1)  # (n_real, n_fake)
    real_radius, fake_radius = np.sort(rr, 1)[:, k], np.sort(ff, 1)[:, k]
    inside = rf < real_radius[:, None]
    return (
        inside.any(0).mean(),
        (rf < fake_radius[None]).any(1).mean(),
        inside.sum(0).mean() / k,
        (rf.min(1) < real_radius).mean(),
    )


def test_prdc_matches_a_brute_force_oracle():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(50, 3)), rng.normal(0.5, 1.2, size=(60, 3))
    result = prdc(real, fake, k=4, chunk_size=7)
    expected = _brute_force_prdc(real, fake, 4)
    assert (result.precision, result.recall, result.density, result.coverage) == pytest.approx(expected)
    assert precision_recall(real, fake, 4) == pytest.approx(expected[:2])
    assert density_coverage(real, fake, 4) == pytest.approx(expected[2:])


def test_same_distribution_scores_high_and_far_noise_scores_zero():
    rng = np.random.default_rng(1)
    real, held_out = rng.normal(size=(1000, 10)), rng.normal(size=(1000, 10))
    same = prdc(real, held_out)
    assert same.precision > 0.8 and same.recall > 0.8 and same.coverage > 0.9
    assert 0.85 < same.density < 1.15
    far = prdc(real, rng.normal(size=(1000, 10)) + 100)
    assert (far.precision, far.recall, far.density, far.coverage) == (0, 0, 0, 0)
    with pytest.raises(DataError, match="k=5 needs more than k points"):
        prdc(real[:5], held_out)


def test_prior_sample_quality_of_ppca_and_a_broken_decoder(ppca, x_train, x_test):
    space = FeatureSpace.fit(x_train, n_components=K_LATENT)
    assert space.n_components == K_LATENT and FeatureSpace.fit(x_train).n_components == D
    for sampler in ("prior", "gmm"):
        good = prior_sample_quality(ppca, x_test, space, seed=0, sampler=sampler, x_train=x_train)
        assert good.precision > 0.6 and good.recall > 0.6 and good.n_fake == N
    broken = linear_vae(ppca, 1.0)
    with torch.no_grad():
        broken.decoder[0].bias.add_(100.0)
    bad = prior_sample_quality(broken, x_test, space)
    assert bad.precision == 0 and bad.coverage == 0
    with pytest.raises(ConfigError, match="unknown sampler 'fitted_gaussian'"):
        prior_sample_quality(ppca, x_test, space, sampler="fitted_gaussian")
    with pytest.raises(ConfigError, match="kept codes or x_train"):
        prior_sample_quality(broken, x_test, space, sampler="gmm")  # built by hand: it keeps no codes


# -- active units, bits/dim, validation ------------------------------------------------------


def test_active_units_counts_the_dimensions_that_vary(ppca, x_test):
    vae = linear_vae(ppca, 1.0)
    with torch.no_grad():
        vae.encoder[0].weight[1].zero_()  # the posterior mean of z_1 no longer depends on x
    assert active_units(vae, x_test) == K_LATENT - 1
    assert active_units(ppca, x_test) == K_LATENT
    assert active_units(vae, x_test, threshold=1e6) == 0


def test_bits_per_dim():
    assert bits_per_dim(-10 * math.log(2), 10) == pytest.approx(1.0)
    torch.testing.assert_close(bits_per_dim(torch.tensor([0.0, -math.log(2)]), 1), torch.tensor([0.0, 1.0]))


def test_bad_arguments_raise(ppca, x_test):
    with pytest.raises(ConfigError, match="n_samples must be an integer >= 1, got 0"):
        iw_log_likelihood(ppca, x_test, 0)
    with pytest.raises(DataError, match="x has 4 features, but the model was built for 10"):
        iw_log_likelihood(ppca, x_test[:, :4])
    autoencoder = Autoencoder(D, 2, (), GaussianLikelihood((D,)))
    with pytest.raises(ConfigError, match="needs a model with encode"):
        iw_log_likelihood(autoencoder, x_test)
    with pytest.raises(ConfigError, match="reduce must be 'max' or 'mean'"):
        decoder_lipschitz(ppca, torch.zeros(2, K_LATENT), reduce="median")
    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        elbo(ppca, x_test, seed=-1)


# -- evaluate --------------------------------------------------------------------------------


def _round_trip(report: dict) -> dict:
    return json.loads(json.dumps(report, allow_nan=False))


def test_evaluate_ppca_is_exact_and_json_round_trips(ppca, x_train, x_test):
    report = evaluate(ppca, x_test[:300], x_train=x_train, n_pairs=32, n_lipschitz=32)
    assert _round_trip(report) == report
    assert report["log_likelihood"]["estimator"] == "exact"
    assert report["log_likelihood"]["value"] == pytest.approx(
        float(ppca.exact_log_likelihood(x_test[:300]).double().mean())
    )
    assert report["bits_per_dim"]["value"] == pytest.approx(-report["log_likelihood"]["value"] / (D * math.log(2)))
    assert report["continuity"]["path_length_ratio"]["median"] == pytest.approx(1.0, abs=1e-4)
    assert report["active_units"]["value"] == K_LATENT
    assert report["completeness"]["prior"]["precision"] > 0.3
    assert evaluate(ppca, x_test[:300], x_train=x_train, n_pairs=32, n_lipschitz=32) == report


def test_evaluate_vae_is_importance_sampled(ppca, x_test):
    report = _round_trip(evaluate(linear_vae(ppca, INFLATION), x_test[:100], n_iw_samples=200))
    assert report["log_likelihood"]["estimator"] == "importance-sampled (K=200)"
    exact = float(ppca.exact_log_likelihood(x_test[:100]).mean())
    assert report["log_likelihood"]["value"] == pytest.approx(exact, abs=0.05)
    assert report["elbo"]["value"] < report["log_likelihood"]["value"]
    assert report["completeness"]["value"] is None and "x_train" in report["completeness"]["reason"]


def test_evaluate_autoencoder_has_no_likelihood_and_flags_bernoulli_on_grey_levels():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(200, 6)).astype(np.float32)
    torch.manual_seed(0)
    autoencoder = Autoencoder(6, 2, (8,), BernoulliLikelihood((6,))).eval()
    report = _round_trip(evaluate(autoencoder, x[100:], x_train=x[:100], n_pairs=16, n_lipschitz=16))
    assert report["log_likelihood"]["value"] is None and report["log_likelihood"]["estimator"] is None
    assert "no density" in report["log_likelihood"]["reason"]
    # The autoencoder's N(0, I) samples are measured too: the comparison with a VAE needs them.
    assert 0 <= report["completeness"]["prior"]["precision"] <= 1
    assert report["completeness"]["gmm"]["precision"] >= 0
    assert report["continuity"]["decoder_lipschitz"]["around_samples"]["sampler"] == "gmm"
    assert any("non-binary" in note for note in report["notes"])
    binary = (x > 0.5).astype(np.float32)
    assert not any("non-binary" in note for note in evaluate(autoencoder, binary, n_pairs=4)["notes"])


def test_wide_decoders_get_fewer_samples_per_pass_and_the_same_numbers():
    from vaelab.metrics.likelihood import _PASS_VALUES, _auto_chunk_size

    torch.manual_seed(0)
    narrow = VAE(6, 2, (8,), make_likelihood("bernoulli", (6,))).eval()
    wide = VAE(6, 2, (_PASS_VALUES // 256,), make_likelihood("bernoulli", (6,))).eval()
    assert _auto_chunk_size(narrow, (), 64) == 32
    assert _auto_chunk_size(wide, (), 64) == 4  # 64 rows x 4 samples x 16384 values = 4 Mi
    x = torch.rand(20, 6).bernoulli()
    torch.testing.assert_close(
        iw_log_likelihood(wide, x, 50, seed=3), iw_log_likelihood(wide, x, 50, seed=3, chunk_size=32)
    )


def test_an_examples_estimate_does_not_depend_on_the_rows_around_it(ppca, x_test):
    vae = linear_vae(ppca, INFLATION)
    x = x_test[:40]
    whole = iw_estimate(vae, x, 100, seed=3)
    part = iw_estimate(vae, x[10:20], 100, seed=3)
    reverse = iw_estimate(vae, x.flip(0), 100, seed=3)
    # equal up to float32 rounding of matrix products over batches of other sizes
    torch.testing.assert_close(part.log_likelihood, whole.log_likelihood[10:20], atol=0, rtol=1e-6)
    torch.testing.assert_close(reverse.log_likelihood, whole.log_likelihood.flip(0), atol=0, rtol=1e-6)
    assert not torch.equal(iw_estimate(vae, x, 100, seed=4).log_likelihood, whole.log_likelihood)


def test_the_elbo_from_the_same_draws_never_exceeds_the_bound(ppca, x_test):
    vae = linear_vae(ppca, 3.0)  # a poor proposal: a wide gap between the two
    for seed in range(5):
        iw = iw_estimate(vae, x_test[:50], 20, seed=seed)
        assert (iw.elbo <= iw.log_likelihood).all()
    # and it is the ELBO: the closed-form terms agree within its Monte-Carlo error
    iw = iw_estimate(vae, x_test[:50], 4000, seed=0)
    terms = elbo(vae, x_test[:50], 4000, seed=1)
    assert ((iw.elbo - terms.elbo).abs() < 5 * iw.elbo_standard_error + 1e-3).all()
    torch.testing.assert_close(iw.kl, terms.kl)


def test_ppca_elbo_equals_its_exact_log_likelihood(ppca, x_test):
    terms = elbo(ppca, x_test[:100], 1, seed=0)
    torch.testing.assert_close(terms.elbo.double(), ppca.exact_log_likelihood(x_test[:100]), atol=1e-4, rtol=1e-6)
    report = evaluate(ppca, x_test[:100], n_iw_samples=2, n_pairs=4, n_lipschitz=4)
    assert report["elbo"]["value"] == pytest.approx(report["log_likelihood"]["value"], abs=1e-4)
