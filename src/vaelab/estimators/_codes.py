"""Handing training codes to the module's aggregate-posterior sampler (``sample(sampler="gmm")``).

The module keeps up to ``CODE_SAMPLE_SIZE`` training codes and fits its 10-component Gaussian
mixture on them; this is the one place the estimators talk to that part of the module.
"""

from __future__ import annotations

import numpy as np
from sklearn.mixture import GaussianMixture

from ..errors import TrainingError
from ..models import LatentModel
from ..models.latent import MIXTURE_COMPONENTS

CODE_SAMPLE_SIZE = 2000  # training codes kept for the sampler (the model contract's CODE_SAMPLE_SIZE)


def keep_code_sample(module: LatentModel, codes: np.ndarray, seed: int) -> None:
    """Give ``module`` the training codes ``(m, latent_dim)``, m <= CODE_SAMPLE_SIZE, for its sampler.

    Until the module keeps the codes itself, the mixture is fitted here; with the model contract's
    ``set_code_sample`` on main this body becomes one line:
    ``module.set_code_sample(torch.from_numpy(codes).float())`` (the module fits its mixture lazily).
    """
    try:
        n_distinct = len(np.unique(codes, axis=0))
        mixture = GaussianMixture(
            n_components=min(MIXTURE_COMPONENTS, n_distinct), covariance_type="full", reg_covar=1e-6, random_state=seed
        ).fit(codes)
    except ValueError as exc:
        raise TrainingError(f"cannot fit the code mixture of the training codes ({exc})") from None
    module.set_code_mixture(mixture.weights_, mixture.means_, mixture.covariances_)
