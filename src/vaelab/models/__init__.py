"""Torch modules: the model contract, the latent-variable models (PPCA, autoencoder, VAE), priors and networks."""

from .autoencoder import Autoencoder
from .contract import LatentModel, LossTerms, ProbabilisticModel, kl_term, log_importance_weights, log_weight_terms
from .conv import conv_decoder, conv_encoder
from .hierarchy import TwoLevelGaussian
from .networks import ARCHITECTURES, decoder_net, encoder_net, gated_mlp, mlp
from .pca import PPCA
from .priors import PRIORS, Prior, make_prior
from .samplers import CODE_SAMPLE_SIZE, MIXTURE_COMPONENTS, fit_code_mixture
from .vae import OBJECTIVES, VAE

__all__ = [
    "ARCHITECTURES",
    "Autoencoder",
    "CODE_SAMPLE_SIZE",
    "LatentModel",
    "LossTerms",
    "MIXTURE_COMPONENTS",
    "OBJECTIVES",
    "PPCA",
    "PRIORS",
    "Prior",
    "ProbabilisticModel",
    "TwoLevelGaussian",
    "VAE",
    "conv_decoder",
    "conv_encoder",
    "decoder_net",
    "encoder_net",
    "fit_code_mixture",
    "gated_mlp",
    "kl_term",
    "log_importance_weights",
    "log_weight_terms",
    "make_prior",
    "mlp",
]
