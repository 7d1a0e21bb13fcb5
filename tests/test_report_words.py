"""The report says what is true of these models and data: their prior, the data as loaded, the calibration row."""

import json

import numpy as np
import pytest

from vaelab import PCA, VAE, ModelFileError
from vaelab.cli._reports import check_comparison
from vaelab.compare import CALIBRATION_ROW, TABLE_COLUMNS, TABLE_UNITS, with_calibration
from vaelab.data import load
from vaelab.report import captions, figures, write_report
from vaelab.report._common import prior_name

pytestmark = pytest.mark.filterwarnings("ignore::vaelab.ConvergenceWarning")  # two-epoch models on purpose


@pytest.fixture(scope="module")
def digits():
    dataset = load("digits")
    return dataset, dataset.X_train[:800], dataset.X_test[:60]


@pytest.fixture(scope="module")
def models(digits):
    _, X_train, _ = digits
    small = {"latent_dim": 2, "hidden": (16,), "epochs": 2, "patience": None, "preprocessing": "scale"}
    return {
        "PCA": PCA(latent_dim=2, preprocessing="scale").fit(X_train),
        "VampVAE": VAE(prior="vamp", prior_components=7, random_state=0, **small).fit(X_train),
        "MixVAE": VAE(prior="mixture", prior_components=3, random_state=0, **small).fit(X_train),
    }


def test_the_prior_is_named_as_the_model_has_it(models):
    assert prior_name(models["PCA"]) == "N(0, I)"
    assert prior_name(models["VampVAE"]) == "a VampPrior (7 learned pseudo-inputs)"
    assert prior_name(models["MixVAE"]) == "a learned mixture of 3 Gaussians"
    for name in ("VampVAE", "MixVAE"):
        words = prior_name(models[name])
        assert words in captions.samples("vae", words) and "N(0, I)" not in captions.samples("vae", words)
        title = figures.prior_samples(models[name], (1, 8, 8)).axes[0].get_title()
        assert f"z ~ {words}" in title and "N(0, I)" not in title
        title = figures.latent_map(models[name], np.zeros((5, 1, 8, 8), np.uint8)).axes[0].get_title()
        assert words in " ".join(title.split())  # titles wrap
    assert "z ~ N(0, I)" in figures.prior_samples(models["PCA"], (1, 8, 8)).axes[0].get_title()


def test_the_data_line_says_what_was_loaded():
    assert load("digits").describe() == "8x8 grey images, uint8 values 0..16"
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    from vaelab.data.datasets import Dataset

    assert Dataset("t", X, None, None, None, (3,), None).describe() == "a table of 3 features, float32"


def test_the_page_shows_the_calibration_row_the_prior_and_the_data(digits, models, tmp_path):
    dataset, _, X_test = digits
    rows = [{"model": name, "mse": 1.0} for name in models]
    calibration = {"precision": 0.97, "recall": 0.99}
    page = write_report(
        tmp_path,
        title="t",
        models=models,
        X_test=X_test,
        y_test=None,
        sample_shape=dataset.sample_shape,
        table=with_calibration(rows, calibration),
        columns=TABLE_COLUMNS,
        notes=[TABLE_UNITS],
        data_description=dataset.describe(),
    ).read_text()
    assert f"<td>{CALIBRATION_ROW}</td>" in page and "0.9700" in page
    assert "60 test examples with 64 features; 8x8 grey images, uint8 values 0..16." in page
    assert "images 1x8x8" not in page
    assert "codes drawn from a VampPrior (7 learned pseudo-inputs), the VAE&#x27;s prior" in page
    for _, header in TABLE_COLUMNS[1:]:  # every numeric column names its unit
        assert header.endswith(")"), header


def test_a_calibration_field_of_the_wrong_shape_is_refused(tmp_path):
    document = {
        "format": "vaelab-comparison",
        "data": {"source": "digits"},
        "settings": {},
        "table": [],
        "models": {"pca": {"fit_seconds": 1, "metrics": {}}},
        "calibration": {"precision": 1.5, "recall": 0.2},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="calibration must be null or an object with precision and recall"):
        check_comparison(tmp_path / "metrics.json")


def test_the_samples_caption_gives_each_rows_precision_instead_of_a_verdict():
    from vaelab.report.captions import samples_comparison

    table = [{"model": "PCA", "precision": 0.88}, {"model": "Autoencoder", "precision": 0.8667}, {"model": "x"}]
    caption = samples_comparison(table)
    assert "PCA 0.88, Autoencoder 0.87." in caption and "looking worse" not in caption
    assert "precision column" not in samples_comparison([{"model": "PCA"}])
