"""Torch modules: the latent-variable models (PPCA, autoencoder, VAE) and their networks."""

from .latent import VAE, Autoencoder, LatentModel, LossTerms, VAEOutput, log_importance_weights
from .pca import PPCA

__all__ = ["Autoencoder", "LatentModel", "LossTerms", "PPCA", "VAE", "VAEOutput", "log_importance_weights"]
