"""Torch modules: the latent-variable models (PPCA, autoencoder, VAE) and their networks."""

from .latent import VAE, Autoencoder, LatentModel, LossTerms, VAEOutput, log_importance_weights
from .conv import conv_decoder, conv_encoder
from .networks import ARCHITECTURES, decoder_net, encoder_net, mlp
from .pca import PPCA

__all__ = [
    "ARCHITECTURES",
    "Autoencoder",
    "LatentModel",
    "LossTerms",
    "PPCA",
    "VAE",
    "VAEOutput",
    "conv_decoder",
    "conv_encoder",
    "decoder_net",
    "encoder_net",
    "log_importance_weights",
    "mlp",
]
