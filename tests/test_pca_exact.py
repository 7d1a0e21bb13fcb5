"""vaelab.PCA is scikit-learn's probabilistic PCA to float64 precision, and its numbers are in the data's units."""

import numpy as np
import pytest
from sklearn import datasets
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.preprocessing import StandardScaler

from vaelab import PCA


def _tables():
    tables = {
        "iris": datasets.load_iris().data,
        "wine": datasets.load_wine().data,
        "breast_cancer": datasets.load_breast_cancer().data,
        "diabetes": datasets.load_diabetes().data,
        "digits": datasets.load_digits().data,
    }
    tables["breast_cancer_standardised"] = StandardScaler().fit_transform(tables["breast_cancer"])
    return tables


@pytest.mark.parametrize("name", sorted(_tables()))
def test_score_samples_equals_scikit_learn_for_every_k(name):
    X = _tables()[name].astype(np.float64)
    compared = 0
    for k in range(1, min(X.shape) - 1 + 1):
        ref = SklearnPCA(n_components=k).fit(X)
        try:
            expected = ref.score_samples(X)
        except np.linalg.LinAlgError:  # scikit-learn's precision matrix is singular: no finite value
            continue
        # Past the data's numerical rank the discarded spectrum is rounding noise: scikit-learn's
        # number is then that noise (or infinite), and vaelab floors the noise variance instead.
        resolvable = ref.noise_variance_ > ref.explained_variance_[0] * np.finfo(np.float64).eps * X.shape[1]
        if not (np.isfinite(expected).all() and resolvable):
            continue
        ours = PCA(latent_dim=k, preprocessing="none").fit(X).score_samples(X)
        # 1e-6 relative, against the scale of the scores (single values may cross zero); where the
        # covariance's condition number c is huge, float64 itself resolves only ~c * eps of it
        condition = ref.explained_variance_[0] / ref.noise_variance_
        rtol = max(1e-6, 10 * condition * np.finfo(np.float64).eps)
        np.testing.assert_allclose(
            ours, expected, rtol=rtol, atol=rtol * np.abs(expected).mean(), err_msg=f"{name}, k={k}"
        )
        compared += 1
    assert compared >= min(X.shape[1] - 1, 5)


def test_data_units_add_the_log_determinant_of_the_preprocessing():
    X = datasets.load_wine().data
    model = PCA(latent_dim=3, preprocessing="standardize").fit(X)
    std = X.std(axis=0)
    offset = -np.log(std).sum()
    np.testing.assert_allclose(model.score_samples(X), model.score_samples(X, space="model") + offset, rtol=1e-6)
    # the same as PPCA fitted by scikit-learn to the standardised data, moved back to raw units
    Z = (X - X.mean(0)) / std
    np.testing.assert_allclose(model.score_samples(X), SklearnPCA(3).fit(Z).score_samples(Z) + offset, rtol=1e-5)

    digits = datasets.load_digits().data  # 0..16 grey levels, scaled by 16 (as a continuous density)
    scaled = PCA(latent_dim=5, preprocessing="scale", pixel_max=16, dequantize="none").fit(digits)
    np.testing.assert_allclose(
        scaled.score_samples(digits), scaled.score_samples(digits, space="model") - 64 * np.log(16), rtol=1e-6
    )
    # raw units: scaling does not change the model, so it is scikit-learn's PCA of the raw values
    np.testing.assert_allclose(scaled.score_samples(digits), SklearnPCA(5).fit(digits).score_samples(digits), rtol=1e-5)


def test_the_elbo_equals_the_exact_log_likelihood():
    from vaelab.metrics import elbo

    X = datasets.load_wine().data
    model = PCA(latent_dim=4, preprocessing="standardize").fit(X)
    A = model.to_model_space(X, np.float64)
    terms = elbo(model.module_, A.astype(np.float32), 1)
    np.testing.assert_allclose(terms.elbo, model.score_samples(X, space="model"), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_float32_images_fit_to_float64_precision_without_a_float64_copy(k):
    """Tall float32 data take the chunked moments path; its numbers are scikit-learn's float64 ones."""
    from vaelab.estimators.pca import principal_moments

    rng = np.random.default_rng(0)
    # 5,000 rows of 64 features: a low-rank signal, small noise, an offset far from 0 (centring matters)
    X = (rng.normal(size=(5000, 8)) @ rng.normal(size=(8, 64)) + 0.05 * rng.normal(size=(5000, 64)) + 3.0).astype(
        np.float32
    )
    ref = SklearnPCA(n_components=k).fit(X.astype(np.float64))
    mean, axes, variances, noise = principal_moments(X, k)
    np.testing.assert_allclose(mean, ref.mean_, rtol=1e-12, atol=1e-12)
    if k <= 8:  # signal axes are well separated; past the rank of 8 they lie in a near-flat noise bulk
        np.testing.assert_allclose(variances, ref.explained_variance_, rtol=1e-9)
        np.testing.assert_allclose(np.abs(axes @ ref.components_.T), np.eye(k), atol=1e-5)
    # float32 rounding of the covariance tilts axes inside the noise bulk a little: second order here
    assert noise == pytest.approx(ref.noise_variance_, rel=1e-5)
    expected = ref.score_samples(X.astype(np.float64))
    ours = PCA(latent_dim=k, preprocessing="none").fit(X).score_samples(X.astype(np.float64))
    if k <= 8:
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6 * np.abs(expected).mean())
    else:  # axes inside the bulk are a near-free choice: the likelihood is flat there, the data's mean agrees
        assert ours.mean() == pytest.approx(expected.mean(), rel=1e-6)
