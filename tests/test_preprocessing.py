"""preprocessing="auto" (one rule, shared with the CLI's default) and the log-determinant of the
preprocessing's Jacobian, tested against exact oracles (issues 13 and 16)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from vaelab.data import Dataset, Preprocessing, auto_kind, default_preprocessing, load


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _dataset(X, pixel_max=None):
    shape = tuple(X.shape[1:])
    return Dataset("x", X, None, None, None, shape, pixel_max)


@pytest.mark.parametrize(
    ("make", "kind", "pixel_max"),
    [
        (lambda r: r.integers(0, 256, (20, 1, 4, 4), dtype=np.uint8), "scale", 255.0),  # 8-bit images
        (lambda r: r.integers(0, 256, (20, 12), dtype=np.uint8), "scale", 255.0),  # uint8 table: 0..255
        (lambda r: r.random((20, 3, 4, 4)).astype(np.float32), "scale", 1.0),  # images in [0, 1]
        (lambda r: r.integers(0, 200, (20, 4, 4)).astype(np.int64), "scale", 255.0),  # (n, H, W) grey ints
        (lambda r: 100 + 50 * r.random((20, 7)), "standardize", None),  # a table of 50..150
        (lambda r: r.random((20, 7)), "standardize", None),  # a float table in [0, 1] is still a table
        (lambda r: 1000 * r.random((20, 1, 4, 4)), "standardize", None),  # images of unknown range
    ],
)
def test_auto_resolves_to_a_concrete_kind_that_is_stored(rng, make, kind, pixel_max):
    X = make(rng)
    fitted = Preprocessing.fit(X, kind="auto")
    assert fitted.kind == kind and fitted.pixel_max == pixel_max
    assert fitted.to_dict()["kind"] == kind  # "auto" is a choice, never a stored state
    assert Preprocessing.from_dict(fitted.to_dict()) == fitted


def test_auto_takes_a_given_pixel_max_and_checks_it(rng):
    X = rng.integers(0, 17, (30, 1, 8, 8)).astype(np.uint8)  # digits-like, 0..16
    assert Preprocessing.fit(X, kind="auto", pixel_max=16).pixel_max == 16.0
    with pytest.raises(ValueError, match=r"values span \[0, 16\] but preprocessing='scale' maps \[0, 10\]"):
        Preprocessing.fit(X, kind="auto", pixel_max=10)


def test_default_preprocessing_is_auto_on_the_loaded_data(rng, tmp_path):
    # One rule: the CLI's default for a Dataset is what fit(kind="auto") picks on its arrays.
    digits = load("digits")
    assert default_preprocessing(digits) == "scale"
    assert Preprocessing.fit(digits.X_train, kind="auto", pixel_max=digits.pixel_max).kind == "scale"
    arrays = [
        rng.integers(0, 256, (9, 5), dtype=np.uint8),
        100 + rng.random((9, 5)),
        rng.random((9, 2, 3, 3)).astype(np.float32),
        1000 * rng.random((9, 1, 3, 3)),
    ]
    for i, X in enumerate(arrays):
        np.save(tmp_path / f"{i}.npy", X)
        ds = load(str(tmp_path / f"{i}.npy"))
        auto = Preprocessing.fit(ds.X_train, kind="auto", pixel_max=ds.pixel_max)
        assert default_preprocessing(ds) == auto.kind == auto_kind(ds.sample_shape, ds.X_train.dtype, ds.pixel_max)


# -- log |det J| of raw -> model space ------------------------------------------------------
def _numerical_log_det(pre: Preprocessing, x: np.ndarray) -> float:
    """slogdet of the Jacobian of transform at x, by unit steps (exact for an affine map up to float32)."""
    d = x.size
    base = pre.transform(x[None].astype(np.float64)).reshape(d).astype(np.float64)
    steps = x[None].repeat(d, axis=0).reshape(d, d) + np.eye(d)
    J = pre.transform(steps.reshape(d, *x.shape)).reshape(d, d).astype(np.float64) - base  # row j: d t / d x_j
    sign, log_det = np.linalg.slogdet(J)
    assert sign > 0
    return float(log_det)


def test_log_det_of_standardize_is_minus_sum_log_std_and_converts_densities(rng):
    X = rng.normal(loc=[100, -3, 0.5, 7], scale=[20, 0.01, 1, 300], size=(500, 4))
    pre = Preprocessing.fit(X, kind="standardize")
    log_det = pre.log_abs_det_jacobian(4)
    assert log_det == pytest.approx(-np.log(X.std(axis=0)).sum(), rel=1e-12)
    assert log_det == pytest.approx(_numerical_log_det(pre, X[0]), abs=1e-3)
    # Change of variables: a standard normal in model space is N(mean, std^2) in raw units.
    x = X[:10]
    model_space = stats.norm.logpdf(pre.transform(x).astype(np.float64)).sum(axis=1)
    raw = stats.norm.logpdf(x, loc=pre.mean, scale=pre.std).sum(axis=1)
    np.testing.assert_allclose(model_space + log_det, raw, rtol=1e-5)


@pytest.mark.parametrize(("pixel_max", "shape"), [(255.0, (1, 28, 28)), (16.0, (1, 8, 8)), (1.0, (3, 4, 4))])
def test_log_det_of_scale_is_minus_d_log_pixel_max(pixel_max, shape):
    pre = Preprocessing("scale", pixel_max=pixel_max)
    d = math.prod(shape)
    assert pre.log_abs_det_jacobian(d) == -d * math.log(pixel_max)
    # Uniform on [0, 1]^d in model space is uniform on [0, pixel_max]^d in raw units.
    assert 0.0 + pre.log_abs_det_jacobian(d) == pytest.approx(stats.uniform(0, pixel_max).logpdf(1.0) * d)
    if d <= 64:
        x = np.full(shape, 0.25 * pixel_max)
        assert pre.log_abs_det_jacobian(d) == pytest.approx(_numerical_log_det(pre, x), abs=1e-3)


def test_log_det_of_none_is_zero_and_binarised_data_have_none():
    assert Preprocessing("none").log_abs_det_jacobian(5) == 0.0
    for binarize in ("threshold", "static", "dynamic"):
        assert Preprocessing("scale", binarize, pixel_max=255).log_abs_det_jacobian(784) is None


def test_log_det_arguments_are_checked():
    pre = Preprocessing("standardize", mean=(0.0, 0.0), std=(2.0, 4.0))
    assert pre.log_abs_det_jacobian() == -math.log(8.0)
    with pytest.raises(ValueError, match="n_features is 3, but this preprocessing was fitted on 2 features"):
        pre.log_abs_det_jacobian(3)
    with pytest.raises(ValueError, match="pass n_features"):
        Preprocessing("scale", pixel_max=255).log_abs_det_jacobian()
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        pre.log_abs_det_jacobian(0)
