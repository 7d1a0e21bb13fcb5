"""The parameter tables: each is the one declaration that signatures, docs, checks, TrainConfig and flags follow."""

import dataclasses
import inspect
import json

import numpy as np
import pytest

from vaelab import PCA, VAE, Autoencoder, ConditionalVAE, ConfigError
from vaelab.checkpoint import data_fingerprint, run_key
from vaelab.cli import build_parser
from vaelab.estimators.registry import CLASSES, MODELS
from vaelab.train import TrainConfig

ESTIMATORS = [PCA, Autoencoder, VAE, ConditionalVAE]


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_signature_matches_the_table(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert [p.name for p in params] == list(cls.params.names)
    for p in params:
        assert p.default == cls.params[p.name].default, p.name
    assert cls().get_params() == {p.name: p.default for p in cls.params}


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_docstring_lists_every_parameter_in_order(cls):
    doc = cls.__doc__
    positions = [doc.index(f"\n    {name} : ") for name in cls.params.names]
    assert "Parameters\n    ----------" in doc and positions == sorted(positions)


def test_training_knobs_are_trainconfig_fields_with_its_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    knobs = [p for p in VAE.params if p.train]
    assert {p.name for p in knobs} == {"epochs", "batch_size", "lr", "patience", "grad_clip", "precision"}
    for p in knobs:
        assert p.default == fields[p.name]


def test_every_flagged_parameter_is_a_cli_flag_with_the_tables_parser():
    fit = build_parser()._subparsers._group_actions[0].choices["fit"]
    flags = {a.dest: a for a in fit._actions}
    for cls in MODELS.values():
        for p in cls.params:
            assert (p.name in flags) == (p.flag is not None), p.name
    assert flags["hidden"].type("64,32") == (64, 32)
    assert flags["patience"].type("none") is None and flags["lr"].type("0.5") == 0.5


@pytest.mark.parametrize(
    "params, match",
    [
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        ({"grad_clip": -1.0}, r"grad_clip must be a positive number, got -1.0"),
        ({"patience": 0}, r"patience must be an integer >= 1, got 0"),
        ({"kl_warmup": -1}, r"kl_warmup must be an integer >= 0, got -1"),
        ({"precision": "float16"}, r"unknown precision 'float16'; choose one of float32, bfloat16"),
        ({"channels": (8, 0)}, r"each channels size must be an integer >= 1, got 0"),
        ({"verbose": "loud"}, r"verbose must be an integer >= 0"),
    ],
)
def test_validation_names_the_parameter_the_value_and_the_range(params, match):
    with pytest.raises(ConfigError, match=match):
        VAE(**params)._check_params()
    VAE(verbose=True)._check_params()  # scikit-learn's usual spelling of verbose=1


def test_registry_names_every_class_once():
    assert set(CLASSES) == {"PCA", "Autoencoder", "VAE", "ConditionalVAE"}
    assert [cls.__name__ for cls in MODELS.values()] == ["PCA", "Autoencoder", "VAE", "ConditionalVAE"]


def test_the_run_fingerprint_covers_every_row():
    X = np.zeros((5000, 3), dtype=np.float32)
    changed = X.copy()
    changed[1234, 1] = 1.0  # not a multiple of n // 1000: the old sampled fingerprint missed it
    assert data_fingerprint(X) != data_fingerprint(changed)
    assert data_fingerprint(X) == data_fingerprint(X.copy())
    assert json.loads(run_key({"epochs": 1}, X)) == json.loads(run_key({"epochs": 9}, X))  # more epochs resume


def test_unconditional_models_refuse_labels_where_scikit_learn_takes_none(digits):
    X = digits[0]
    pca = PCA(latent_dim=2).fit(X, y=np.zeros(len(X)))  # fit ignores y, as scikit-learn does
    with pytest.raises(ConfigError, match="PCA is unconditional"):
        pca.transform(X, np.zeros(len(X)))
    assert pca.score(X, np.zeros(len(X))) == pca.score(X)  # score ignores y too
    np.testing.assert_array_equal(pca.fit_transform(X, np.zeros(len(X))), pca.transform(X))


def test_sweep_file_round_trips_through_its_reader_and_schema(tmp_path):
    from importlib.resources import files

    import jsonschema

    from vaelab import ModelFileError
    from vaelab.sweep import read_sweep, write_sweep

    row = {
        "beta": 0.5,
        "model": "beta=0.5",
        "rate": 3.0,
        "distortion": 20.0,
        "elbo": -23.0,
        "log_likelihood": -22.0,
        "log_likelihood_estimator": "iw",
        "mse": 0.01,
        "active_units": 2,
        "path_ratio": 1.1,
        "precision": 0.5,
        "recall": 0.4,
        "fit_seconds": 1.0,
        "metrics": {},
    }
    write_sweep(tmp_path, [row], {}, data={"source": "digits"}, settings={"random_state": 0, "iw_samples": 10})
    document = read_sweep(tmp_path)
    assert document["points"] == [row]
    jsonschema.validate(document, json.loads(files("vaelab").joinpath("sweep.schema.json").read_text()))
    (tmp_path / "sweep.json").write_text(json.dumps({**document, "points": [{"beta": "x"}]}))
    with pytest.raises(ModelFileError, match="numeric beta"):
        read_sweep(tmp_path)
