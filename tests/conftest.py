import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1], split 1500 / 297 with a fixed permutation."""
    X = (load_digits().data / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(X))
    return X[order[:1500]], X[order[1500:]]


@pytest.fixture(scope="session")
def fitted(digits):
    """One fitted PCA, autoencoder and VAE on digits (latent size 2), shared by the tests."""
    from vaelab import PCA, VAE, Autoencoder

    X_train, _ = digits
    return {
        # Bernoulli decoders on the [0, 1] values as given: the tests' numbers are of that model.
        "pca": PCA(latent_dim=2, preprocessing="none", random_state=0).fit(X_train),
        "ae": Autoencoder(latent_dim=2, epochs=60, likelihood="bernoulli", preprocessing="none", random_state=0).fit(
            X_train
        ),
        "vae": VAE(latent_dim=2, epochs=60, likelihood="bernoulli", preprocessing="none", random_state=0).fit(X_train),
    }
