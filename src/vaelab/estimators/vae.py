"""The variational autoencoder as a scikit-learn estimator (Kingma & Welling, 2014).

beta-VAE (Higgins et al., 2017), the IWAE bound (Burda et al., 2016), KL warm-up and free bits
are parameters; the conditional VAE is this class with class-label conditioning
(:mod:`.conditional`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ..errors import PosteriorCollapseWarning
from ..likelihoods import choose_likelihood, make_likelihood
from ..metrics import iw_log_likelihood
from ..models import VAE as VAEModule
from ..models import LatentModel
from ._base import store_params
from .checks import check_int
from .neural import NeuralEstimator
from .params import VAE_PARAMS


class VAE(NeuralEstimator):
    __doc__ = VAE_PARAMS.docstring("A variational autoencoder (Kingma & Welling, 2014) trained on the negative ELBO.")
    params = VAE_PARAMS
    kind = "vae"

    def __init__(
        self,
        *,
        latent_dim: int = 2,
        hidden: tuple[int, ...] = (256, 128),
        architecture: str = "auto",
        channels: tuple[int, ...] = (32, 64),
        likelihood: str = "auto",
        beta: float = 1.0,
        objective: str = "elbo",
        n_train_samples: int = 1,
        kl_warmup: int = 0,
        free_bits: float = 0.0,
        prior: str = "normal",
        prior_components: int = 500,
        top_latent_dim: int = 0,
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
        return VAEModule(
            n_features,
            self.latent_dim,
            tuple(self.hidden),
            likelihood,
            beta=self.beta,
            objective=self.objective,
            n_train_samples=self.n_train_samples,
            free_bits=float(self.free_bits),
            n_classes=n_classes,
            prior=self.prior,
            prior_components=self.prior_components,
            top_latent_dim=self.top_latent_dim,
            **self._networks(sample_shape),
        )

    def _warn_if_collapsed(self, codes: np.ndarray) -> None:
        # A VAE's codes are its posterior means: their variance over data is Cov_x E[z|x].
        inactive, width = int((codes.var(axis=0) <= 0.01).sum()), codes.shape[1]
        # A few idle dimensions are normal for a roomy latent space (e.g. 2 of 20 on Fashion-MNIST);
        # half or more idle means the KL term has won.
        if 2 * inactive >= width:
            # free bits exist only where the KL splits per dimension: one level, N(0, I)
            free_bits = "free_bits (e.g. 0.5), " if self.prior == "normal" and not self.top_latent_dim else ""
            # The model and its setting lead: in a sweep or a comparison this says which fit it concerns.
            warnings.warn(
                f"{type(self).__name__}(beta={self.beta:g}, latent_dim={self.latent_dim}): "
                f"posterior collapse: {inactive} of {width} latent dimensions are inactive "
                "(Cov_x E[z|x] <= 0.01): their codes carry no information about x. Knobs that help: "
                f"kl_warmup (e.g. 10 epochs), {free_bits}a smaller beta, a smaller decoder, or a smaller latent_dim",
                PosteriorCollapseWarning,
                stacklevel=3,
            )

    def _warmup_epochs(self) -> int:
        return int(self.kl_warmup)

    def _epoch_hook(self):
        if not self.kl_warmup:
            return None
        warmup = self.kl_warmup

        def anneal(module, epoch: int) -> None:
            # linear KL warm-up: beta * epoch / warmup over the first `warmup` epochs (1-based)
            module.kl_scale = min(1.0, epoch / warmup)

        return anneal

    def score_samples(self, X, y=None, *, n_samples: int = 1000, space: str = "data") -> np.ndarray:
        """Importance-sampled log p(x) (log p(x|y) for a conditional model) of each sample, in nats: ``(n,)``.

        The K-sample importance-weighted bound of Burda et al. (2016) with q(z|x) as proposal,
        K = ``n_samples``: a stochastic lower bound that tightens as K grows (K = 1 is the ELBO).
        ``space="data"`` (the default): a density of ``X`` in its own units, the preprocessing's
        log-Jacobian included (for binarised data: the probability of the binarised values);
        ``"model"``: of the preprocessed values. Dequantised integer data (``preprocessing_.dequantize``):
        the density at a point drawn in each integer's bin, in ``"data"`` units a lower bound on the
        log-probability of the integers. Each example's noise is keyed on the example and the seed
        fixed at fit (``seed_``): the same number alone, in any subset or order.
        """
        A = self.to_model_space(X, scored=True)
        labels = self._labels(y, len(A))
        n_samples = check_int("n_samples", n_samples, 1)
        y_index = None if labels is None else torch.from_numpy(labels)
        scores = iw_log_likelihood(self.module_, torch.from_numpy(A), n_samples, seed=self.seed_, y=y_index)
        return self._in_units(scores.double().cpu().numpy(), space)

    def score(self, X, y=None, *, n_samples: int = 1000) -> float:
        """Mean of :meth:`score_samples`, in nats per example (``y`` conditions only a conditional model)."""
        self._check_fitted()
        return float(np.mean(self.score_samples(X, self.conditioning_.supervised(y), n_samples=n_samples)))
