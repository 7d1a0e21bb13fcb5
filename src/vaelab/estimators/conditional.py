"""The conditional VAE (Sohn et al., 2015): a VAE whose module is conditioned on a class label."""

from __future__ import annotations

import numpy as np

from .conditioning import ClassLabels
from .params import VAE_PARAMS
from .vae import VAE


class ConditionalVAE(VAE):
    __doc__ = VAE_PARAMS.docstring(
        "A conditional VAE (Sohn et al., 2015): encoder q(z|x, y) and decoder p(x|z, y) see the class\n"
        "    label ``y``, the prior stays N(0, I). ``fit(X, y)`` learns one latent space shared by all classes;\n"
        "    ``sample(n, y=c)`` generates class ``c``. Every method that reads data or codes takes the labels\n"
        "    ``y`` beside them: an array of shape (n,) or one label for all rows. Sets ``classes_`` (sorted).\n"
        "    The parameters are the VAE's."
    )
    # Everything but what the module is conditioned on is the VAE's: the post-fit methods route
    # their y through this conditioning (see estimators.conditioning), none is overridden.
    conditioning = ClassLabels
    conditioning_: ClassLabels

    @property
    def classes_(self) -> np.ndarray:
        """The class labels seen in fit, sorted: ``(n_classes,)``."""
        self._check_fitted()
        return self.conditioning_.classes
