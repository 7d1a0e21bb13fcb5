"""Held out means held out: `vaelab fit` keeps back the rows `evaluate` and `encode --split test` score."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vaelab import PCA, ModelFileError, load
from vaelab.data import load as load_data
from vaelab.data.splits import held_out_split, held_out_status, split_record


def vaelab(*args):
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vaelab", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A 150-row CSV without a test split; every row distinct (column 0 is its position)."""
    rng = np.random.default_rng(3)
    X = np.column_stack([np.arange(150.0), rng.normal(size=(150, 4)) @ rng.normal(size=(4, 4))])
    path = tmp_path_factory.mktemp("data") / "t.csv"
    np.savetxt(path, X, delimiter=",", header="id,a,b,c,d", comments="", fmt="%.6f")
    return path


@pytest.fixture(scope="module")
def fitted(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "pca"
    fit = vaelab("fit", "--model", "pca", "--data", str(table), "--latent-dim", "2", "--quiet", "--out", str(out))
    assert fit.returncode == 0, fit.stderr
    assert "on 120 examples" in fit.stdout and "keeping back 30" in fit.stdout
    return out


def test_the_split_parts_are_disjoint_and_cover_the_file(table):
    dataset = load_data(table)
    split = held_out_split(dataset)
    ids_train, ids_test = set(split.X_train[:, 0].tolist()), set(split.X_test[:, 0].tolist())
    assert not ids_train & ids_test and ids_train | ids_test == set(range(150))
    assert (len(ids_test), split.rule, split.seed) == (30, "seeded", 0)
    assert held_out_split(dataset).X_test.tobytes() == split.X_test.tobytes()  # seeded: the same rows each time


def test_fit_trains_only_on_the_rows_evaluate_does_not_score(table, fitted, tmp_path):
    model, split = load(fitted), held_out_split(load_data(table))
    # PCA's fit is exact: the CLI's model is the one fitted on the training part, not on all rows.
    on_train = PCA(latent_dim=2).fit(split.X_train)
    on_all = PCA(latent_dim=2).fit(load_data(table).X_train)
    probe = load_data(table).X_train
    np.testing.assert_allclose(model.score_samples(probe), on_train.score_samples(probe), rtol=1e-9)
    assert np.abs(model.score_samples(probe) - on_all.score_samples(probe)).max() > 1e-3
    assert model.training_data_ == split_record(str(table), split)

    ev = vaelab("evaluate", str(fitted), "--data", str(table), "--json", str(tmp_path / "m.json"))
    assert ev.returncode == 0, ev.stderr
    assert "30 held-out examples" in ev.stdout and "kept back when the model was fitted" in ev.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["held_out"]["value"] is True and metrics["n_examples"] == 30
    # the scored rows are the kept-back ones: its mean log-likelihood is theirs
    expected = model.score_samples(split.X_test).mean()
    assert metrics["log_likelihood"]["value"] == pytest.approx(expected, rel=1e-6)

    enc = vaelab("encode", str(fitted), "--data", str(table), "--split", "test", "--out", str(tmp_path / "c.npy"))
    assert enc.returncode == 0, enc.stderr
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), model.transform(split.X_test), rtol=1e-6)


def test_evaluate_says_plainly_when_the_rows_may_have_been_trained_on(table, fitted, tmp_path):
    # Fitted outside `vaelab fit`, on every row: nothing recorded, and the output says what that means.
    PCA(latent_dim=2).fit(load_data(table).X_train).save(tmp_path / "api")
    ev = vaelab("evaluate", str(tmp_path / "api"), "--data", str(table), "--json", str(tmp_path / "m.json"))
    assert ev.returncode == 0, ev.stderr
    assert "may include training data" in ev.stdout and "held-out examples" not in ev.stdout
    assert json.loads((tmp_path / "m.json").read_text())["held_out"]["value"] is False

    # Fitted by `vaelab fit` on another file: its kept-back rows are not these.
    other = tmp_path / "other.csv"
    rows = np.loadtxt(table, delimiter=",", skiprows=1)[::-1].copy()
    np.savetxt(other, rows, delimiter=",", header="id,a,b,c,d", comments="", fmt="%.6f")
    held_out, words = held_out_status(load(fitted).training_data_, held_out_split(load_data(other)), str(other))
    assert not held_out and "may include training data" in words and "120 rows of" in words


def test_a_damaged_held_out_record_is_refused(fitted, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(fitted, copy)
    config = json.loads((copy / "config.json").read_text())
    config["fitted"]["training_data_"]["n_test"] = "thirty"
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="training_data_ must be an object with source"):
        load(copy)
