"""The command line, run end to end in subprocesses as a user would."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vaelab import load


def vaelab(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src")}
    return subprocess.run(
        [sys.executable, "-m", "vaelab", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.mark.slow
def test_help_lists_commands_and_every_parameter_flag():
    out = vaelab("--help")
    assert out.returncode == 0
    for command in ("fit", "encode", "sample", "evaluate", "compare"):
        assert command in out.stdout
    fit_help = vaelab("fit", "--help").stdout
    for flag in (
        "--latent-dim",
        "--hidden",
        "--likelihood",
        "--epochs",
        "--batch-size",
        "--lr",
        "--random-state",
        "--beta",
        "--preprocessing",
    ):
        assert flag in fit_help


@pytest.mark.slow
@pytest.mark.parametrize("model", ["pca", "ae", "vae"])
def test_fit_encode_sample_evaluate(tmp_path, model):
    run = tmp_path / "run"
    training = [] if model == "pca" else ["--epochs", "2"]
    fit = vaelab(
        "fit", "--model", model, "--data", "digits", "--latent-dim", "2", *training, "--quiet", "--out", str(run)
    )
    assert fit.returncode == 0, fit.stderr
    estimator = load(run)
    assert estimator.latent_dim == 2 and estimator.preprocessing == "scale"

    enc = vaelab("encode", str(run), "--data", "digits", "--split", "test", "--out", str(tmp_path / "codes.npy"))
    assert enc.returncode == 0, enc.stderr
    assert np.load(tmp_path / "codes.npy").shape == (360, 2)

    smp = vaelab("sample", str(run), "-n", "7", "--sampler", "gmm", "--out", str(tmp_path / "s.npy"))
    assert smp.returncode == 0, smp.stderr
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (7, 1, 8, 8)
    assert np.isfinite(samples).all()  # Gaussian decoder means (the default) may leave the pixel range

    ev = vaelab("evaluate", str(run), "--data", "digits", "--iw-samples", "20", "--json", str(tmp_path / "m.json"))
    assert ev.returncode == 0, ev.stderr
    assert "360 held-out examples" in ev.stdout
    # digits are integers 0..16: scored as the probability of the integers (an autoencoder has none)
    assert ("log-probability of the integer data" in ev.stdout) == (model != "ae")
    for metric in ("log_likelihood", "mse", "active_units", "path_length_ratio", "precision_prior"):
        assert metric in ev.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["n_examples"] == 360 and metrics["latent_dim"] == 2
    assert metrics["units"]["dequantised_levels"] == 17


@pytest.mark.slow
def test_conditional_vae_fits_on_labels_and_samples_a_chosen_class(tmp_path):
    run = tmp_path / "cvae"
    fit = vaelab(
        "fit", "--model", "cvae", "--data", "digits", "--latent-dim", "2", "--epochs", "2", "--quiet", "--out", str(run)
    )
    assert fit.returncode == 0, fit.stderr
    np.testing.assert_array_equal(load(run).classes_, np.arange(10))
    sample = vaelab("sample", str(run), "--label", "7", "-n", "5", "--out", str(tmp_path / "sevens.npy"))
    assert sample.returncode == 0, sample.stderr
    assert np.load(tmp_path / "sevens.npy").shape == (5, 1, 8, 8)
    enc = vaelab("encode", str(run), "--split", "test", "--out", str(tmp_path / "codes.npy"))
    assert enc.returncode == 0, enc.stderr
    assert np.load(tmp_path / "codes.npy").shape == (360, 2)
    for args, message in [
        (("sample", str(run), "--label", "x", "--out", str(tmp_path / "x.npy")), "this model's classes are"),
        (("sample", str(run), "--label", "11", "--out", str(tmp_path / "x.npy")), "not seen in fit"),
        (("evaluate", str(run)), "score_samples"),
    ]:
        out = vaelab(*args)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.slow
def test_compare_table_metrics_models_and_a_report_that_redraws_the_same(tmp_path):
    from importlib.resources import files

    import jsonschema

    out = vaelab("compare", "--epochs", "2", "--iw-samples", "20", "--quiet", "--out", str(tmp_path / "cmp"))
    assert out.returncode == 0, out.stderr
    for name in ("PCA", "Autoencoder", "VAE"):
        assert name in out.stdout
    assert "log p(x) (nats)" in out.stdout and "precision" in out.stdout
    metrics = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    schema = json.loads(files("vaelab").joinpath("comparison.schema.json").read_text())
    jsonschema.validate(metrics, schema)
    assert [row["model"] for row in metrics["table"]] == ["PCA", "Autoencoder", "VAE"]
    assert load(tmp_path / "cmp" / "models" / "VAE").architecture == "auto"
    page = (tmp_path / "cmp" / "report.html").read_bytes()
    redrawn = vaelab("report", str(tmp_path / "cmp"))
    assert redrawn.returncode == 0, redrawn.stderr
    assert (tmp_path / "cmp" / "report.html").read_bytes() == page


@pytest.mark.slow
def test_csv_tables_get_standardised_gaussian_models(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(10, 3, size=(120, 4))
    np.savetxt(tmp_path / "t.csv", X, delimiter=",", header="a,b,c,d", comments="")
    out = vaelab("fit", "--data", str(tmp_path / "t.csv"), "--epochs", "2", "--quiet", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    model = load(tmp_path / "run")
    # the defaults: "auto" resolves to a Gaussian decoder on standardised values
    assert model.likelihood == "auto" and model.module_.likelihood.name == "gaussian"
    assert model.preprocessing == "standardize"


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--data", "no-such-data", "--out", "x"], "neither a named data set"),
        (["fit", "--model", "pca", "--beta", "2", "--out", "x"], "--model pca does not take --beta"),
        (["fit", "--likelihood", "poisson", "--out", "x"], "unknown likelihood 'poisson'"),
        (["sample", "missing-run", "--out", "s.npy"], "no saved model at missing-run"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(tmp_path, args, message):
    out = vaelab(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_existing_run_directory_is_refused_without_resume_or_overwrite(tmp_path):
    run = tmp_path / "run"
    assert vaelab("fit", "--epochs", "1", "--quiet", "--out", str(run)).returncode == 0
    again = vaelab("fit", "--epochs", "1", "--quiet", "--out", str(run))
    assert again.returncode == 2 and "--resume" in again.stderr and "--overwrite" in again.stderr
    assert vaelab("fit", "--epochs", "1", "--quiet", "--overwrite", "--out", str(run)).returncode == 0


@pytest.mark.slow
def test_sweep_gives_one_row_per_beta_with_rate_falling_as_beta_grows(tmp_path):
    out = vaelab(
        "sweep",
        "--beta",
        "0.25,1,4",
        "--latent-dim",
        "4",
        "--epochs",
        "15",
        "--iw-samples",
        "10",
        "--quiet",
        "--out",
        str(tmp_path / "sw"),
    )
    assert out.returncode == 0, out.stderr
    points = json.loads((tmp_path / "sw" / "sweep.json").read_text())["points"]
    assert [p["beta"] for p in points] == [0.25, 1.0, 4.0]
    rates = [p["rate"] for p in points]
    assert rates[0] > rates[1] > rates[2]
    assert (tmp_path / "sw" / "rate_distortion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load(tmp_path / "sw" / "models" / "beta=4").beta == 4.0
