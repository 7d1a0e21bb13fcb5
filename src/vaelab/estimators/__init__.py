"""scikit-learn-style estimators: PCA, Autoencoder, VAE and ConditionalVAE over the torch modules.

The layer is thin: it validates parameters and data, fits the preprocessing (stored with the
model, so every method answers in the user's units), builds a module from :mod:`vaelab.models`,
fits it (closed form for PCA, :func:`vaelab.train.train` otherwise) and converts arrays.
Conventions follow scikit-learn: ``__init__`` only stores parameters, ``fit`` returns ``self``,
fitted state ends in ``_``, and every post-fit method checks that the model is fitted first.
"""

from .neural import VAE, Autoencoder, ConditionalVAE
from .pca import PCA

__all__ = ["PCA", "Autoencoder", "VAE", "ConditionalVAE"]
