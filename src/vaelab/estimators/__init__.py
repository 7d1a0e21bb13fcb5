"""scikit-learn-style estimators: PCA, Autoencoder, VAE and ConditionalVAE over the torch modules.

The layer is thin: it validates parameters (declared once, in :mod:`.params`) and data, fits the
preprocessing (stored with the model, so every method answers in the user's units), builds a
module from :mod:`vaelab.models`, fits it (closed form for PCA, :func:`vaelab.train.train`
otherwise, see :mod:`.neural`) and converts arrays. Conventions follow scikit-learn: ``__init__``
only stores parameters, ``fit`` returns ``self``, fitted state ends in ``_``, and every post-fit
method checks that the model is fitted first.

Layout: ``_base`` (the shared post-fit API), ``pca``, ``autoencoder``, ``vae``, ``conditional``
(one class each), ``neural`` (neural fitting), ``params``/``checks`` (the parameter tables),
``conditioning`` (labels), ``registry`` (every class by name), ``modelfile`` (the saved-model
format, save) and ``persistence`` (load, through the registry).
"""

from ._base import LatentEstimator
from .autoencoder import Autoencoder
from .conditional import ConditionalVAE
from .pca import PCA
from .vae import VAE

__all__ = ["PCA", "Autoencoder", "VAE", "ConditionalVAE", "LatentEstimator"]
