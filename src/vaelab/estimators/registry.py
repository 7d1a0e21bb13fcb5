"""The one list of estimator classes: read by the CLI, persistence (vaelab.io), compare and the report.

Adding an estimator is one line here (and its own module).
"""

from __future__ import annotations

from ._base import LatentEstimator
from .autoencoder import Autoencoder
from .conditional import ConditionalVAE
from .pca import PCA
from .vae import VAE

# CLI name (``vaelab fit --model NAME``) -> class, in the order the CLI and compare list them.
MODELS: dict[str, type[LatentEstimator]] = {"pca": PCA, "ae": Autoencoder, "vae": VAE, "cvae": ConditionalVAE}
# Class name, as a saved model's config.json names it -> class.
CLASSES: dict[str, type[LatentEstimator]] = {cls.__name__: cls for cls in MODELS.values()}
# The models `vaelab compare` fits side by side, by the name their rows carry.
COMPARED: dict[str, type[LatentEstimator]] = {"PCA": PCA, "Autoencoder": Autoencoder, "VAE": VAE}
