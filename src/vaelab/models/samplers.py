"""The aggregate-posterior sampler: a Gaussian mixture over a model's training codes.

Sampling the prior shows what a model generates where the KL term has shaped the codes (a VAE);
an autoencoder's codes follow no prior, so the fair sampler for it (and a common way to sharpen a
VAE's samples, e.g. Ghosh et al., 2020, "From variational to deterministic autoencoders") is a
density fitted to the codes of the training data. One implementation serves every model: a
full-covariance mixture of up to ``MIXTURE_COMPONENTS`` Gaussians (scikit-learn's EM), fitted
once on a bounded sample of codes the first time it is asked for.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from torch.distributions import Categorical, Distribution, MixtureSameFamily, MultivariateNormal

from ..errors import ConfigError, TrainingError

CODE_SAMPLE_SIZE = 2000  # training codes a model keeps (fixed, so saved shapes are fixed)
MIXTURE_COMPONENTS = 10


def fit_code_mixture(codes: torch.Tensor, seed: int = 0) -> Distribution:
    """A Gaussian mixture fitted to ``codes`` ``(m, latent_dim)``; event shape ``(latent_dim,)``.

    ``min(10, distinct codes)`` full-covariance components with a ridge of 1e-6 times the largest
    code variance, at least 1e-6 (so that a code sample with a degenerate direction still gives a
    proper density at any scale); deterministic for a seed. Fewer than two distinct codes are
    refused: a mixture of them would draw one point over and over.
    """
    if len(codes) == 0:
        raise ConfigError(
            "this model keeps no training codes, so sampler='gmm' has nothing to fit; refit it with vaelab"
        )
    values = codes.detach().double().cpu().numpy()
    if not np.isfinite(values).all():
        raise TrainingError(
            "the kept training codes hold NaN or infinite values: training diverged; refit with a lower lr"
        )
    distinct = len(np.unique(values, axis=0))
    if distinct < 2:
        raise ConfigError(
            f"the {len(values)} training code(s) this model keeps are one point, so sampler='gmm' would draw it "
            "over and over; use sampler='prior', or refit the model (its encoder maps every example to one code)"
        )
    ridge = 1e-6 * max(1.0, float(values.var(axis=0).max()))
    try:
        mixture = GaussianMixture(
            min(MIXTURE_COMPONENTS, distinct), covariance_type="full", reg_covar=ridge, random_state=seed
        ).fit(values)
    except ValueError as exc:
        raise TrainingError(f"cannot fit the code mixture of the training codes ({exc})") from None
    dtype, device = codes.dtype, codes.device
    weights = torch.as_tensor(mixture.weights_, dtype=dtype, device=device)
    means = torch.as_tensor(mixture.means_, dtype=dtype, device=device)
    scale_tril = torch.linalg.cholesky(torch.as_tensor(mixture.covariances_, dtype=torch.float64)).to(
        dtype=dtype, device=device
    )
    return MixtureSameFamily(
        Categorical(probs=weights, validate_args=False),
        MultivariateNormal(means, scale_tril=scale_tril, validate_args=False),
        validate_args=False,
    )
