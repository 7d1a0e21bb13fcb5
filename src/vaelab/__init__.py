"""vaelab: low-dimensional latent spaces and likelihood-based generative models.

PCA (probabilistic, exact likelihood), autoencoders and variational autoencoders behind one
scikit-learn-style API, with log-likelihoods reported in nats.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vaelab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from .errors import (
    ConfigError,
    DataError,
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
    "ModelFileError",
    "NotFittedError",
    "PosteriorCollapseWarning",
    "TrainingError",
    "TrainingInterrupted",
    "__version__",
]
