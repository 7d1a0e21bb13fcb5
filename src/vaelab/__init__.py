"""vaelab: low-dimensional latent spaces and likelihood-based generative models.

PCA (probabilistic, exact likelihood), autoencoders and variational autoencoders behind one
scikit-learn-style API, with log-likelihoods reported in nats.
"""

from __future__ import annotations

from ._version import __version__
from .errors import (
    ConfigError,
    ConvergenceWarning,
    DataError,
    DegenerateDensityWarning,
    ModelFileError,
    NotFittedError,
    PosteriorCollapseWarning,
    TrainingError,
    TrainingInterrupted,
    VaelabError,
)
from .estimators import PCA, VAE, Autoencoder, ConditionalVAE
from .io import load, save

__all__ = [
    "PCA",
    "VAE",
    "Autoencoder",
    "ConditionalVAE",
    "load",
    "save",
    "VaelabError",
    "DataError",
    "ConfigError",
    "ConvergenceWarning",
    "ModelFileError",
    "NotFittedError",
    "DegenerateDensityWarning",
    "PosteriorCollapseWarning",
    "TrainingError",
    "TrainingInterrupted",
    "__version__",
]
