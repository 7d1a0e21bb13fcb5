"""Where compare's time goes: the fit and every metric timed per model in metrics.json, adding up to the run."""

import json
import time
from importlib.resources import files

import jsonschema
import pytest

from vaelab import ModelFileError
from vaelab.cli._reports import check_comparison
from vaelab.compare import calibration_row, compare, write_comparison
from vaelab.data import load
from vaelab.data.splits import held_out_split
from vaelab.estimators.registry import COMPARED

pytestmark = pytest.mark.filterwarnings("ignore::vaelab.ConvergenceWarning")  # two-epoch models on purpose
STAGES = {"fit", "feature_space", "model_space", "log_likelihood", "reconstruction", "elbo", "active_units"}
STAGES |= {"continuity", "completeness", "mse_in_data_units"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, monkeypatch_module):
    split = held_out_split(load("digits"))
    X_train, X_test = split.X_train[:500], split.X_test[:80]
    measured = {}  # each fit call's wall time, taken around the estimator's own fit

    for name, cls in COMPARED.items():

        def timed(self, *args, _fit=cls.fit, _name=name, **kwargs):
            start = time.perf_counter()
            out = _fit(self, *args, **kwargs)
            measured[_name] = time.perf_counter() - start
            return out

        monkeypatch_module.setattr(cls, "fit", timed)
    start = time.perf_counter()
    results = compare(X_train, X_test, epochs=2, n_iw_samples=5, preprocessing="scale", pixel_max=16.0)
    calibration = calibration_row(results, X_train, X_test)
    wall = time.perf_counter() - start
    out = tmp_path_factory.mktemp("cmp")
    write_comparison(
        out, results, data={"source": "digits"}, settings={"random_state": 0, "iw_samples": 5}, calibration=calibration
    )
    return json.loads((out / "metrics.json").read_text()), measured, wall, out


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_stage_is_timed_and_the_fit_column_is_the_fit(run):
    document, measured, _, _ = run
    jsonschema.validate(document, json.loads(files("vaelab").joinpath("comparison.schema.json").read_text()))
    for name, entry in document["models"].items():
        stages = entry["stage_seconds"]
        expected = STAGES - ({"feature_space"} if name != "PCA" else set())  # fitted once, with the first model
        assert set(stages) == expected, name
        assert all(v >= 0 for v in stages.values())
        # the fit column is the fit call's duration (not the fit plus evaluation)
        assert entry["fit_seconds"] == stages["fit"] == pytest.approx(measured[name], rel=0.05, abs=0.01)
        row = next(r for r in document["table"] if r["model"] == name)
        assert row["fit_seconds"] == entry["fit_seconds"]
    assert document["calibration"]["seconds"] >= 0


def test_the_stages_account_for_the_whole_run(run):
    document, _, wall, _ = run
    booked = sum(sum(e["stage_seconds"].values()) for e in document["models"].values())
    booked += document["calibration"]["seconds"]
    assert 0.9 * wall <= booked <= wall


def test_the_report_check_refuses_negative_stage_seconds(run, tmp_path):
    document, _, _, _ = run
    check_comparison(run[3] / "metrics.json")
    document = json.loads(json.dumps(document))
    document["models"]["VAE"]["stage_seconds"]["fit"] = -1
    (tmp_path / "metrics.json").write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="models.VAE.stage_seconds must be an object of seconds"):
        check_comparison(tmp_path / "metrics.json")
