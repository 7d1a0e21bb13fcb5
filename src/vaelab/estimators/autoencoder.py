"""The deterministic autoencoder as a scikit-learn estimator."""

from __future__ import annotations

import math

import numpy as np

from ..likelihoods import choose_likelihood, make_likelihood
from ..models import Autoencoder as AutoencoderModule
from ..models import LatentModel
from ._base import store_params
from .neural import NeuralEstimator
from .params import AUTOENCODER_PARAMS


class Autoencoder(NeuralEstimator):
    __doc__ = AUTOENCODER_PARAMS.docstring(
        "A deterministic autoencoder: an encoder to ``latent_dim`` codes and a decoder, trained on the\n"
        "    decoder likelihood's negative log-likelihood (nats). It has no density: no ``score_samples``;\n"
        "    ``score`` is the mean reconstruction log-likelihood (higher is better), for model selection."
    )
    params = AUTOENCODER_PARAMS
    has_likelihood = False
    kind = "autoencoder"

    def __init__(
        self,
        *,
        latent_dim: int = 2,
        hidden: tuple[int, ...] = (256, 128),
        architecture: str = "auto",
        channels: tuple[int, ...] = (32, 64),
        likelihood: str = "auto",
        preprocessing: str = "auto",
        pixel_max: float | None = None,
        binarize: str = "none",
        dequantize: str = "auto",
        epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 1e-3,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        grad_clip: float | None = None,
        precision: str = "float32",
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
    ):
        store_params(self, locals())

    def _build_module(self, sample_shape: tuple[int, ...], n_classes: int, binary: bool) -> LatentModel:
        n_features = math.prod(sample_shape)
        likelihood = make_likelihood(choose_likelihood(self.likelihood, binary), (n_features,))
        return AutoencoderModule(
            n_features, self.latent_dim, tuple(self.hidden), likelihood, **self._networks(sample_shape)
        )

    def score(self, X, y=None) -> float:
        """Mean reconstruction log-likelihood log p(x | z(x)) over ``X`` (n, ...), nats per example; higher is better.

        The decoder likelihood of each example at its own code, in model space (after
        preprocessing), averaged: the negative of the training loss, so ``GridSearchCV`` and
        ``cross_val_score`` select what training optimises. It is not a density of x (an
        autoencoder has none): compare it only between autoencoders with the same likelihood
        and preprocessing. ``y`` is ignored.
        """
        A = self.to_model_space(X, scored=True)
        module = self.module_

        def log_lik(rows):
            return module.decode(module.embed(rows)).log_prob(rows)  # (chunk,)

        return float(self._map(log_lik, A, dtype=np.float64).mean())
