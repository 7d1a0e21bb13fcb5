import json
import pickle

import numpy as np
import pytest
import torch

from vaelab import ModelFileError, load


@pytest.mark.parametrize("name", ["pca", "ae", "vae"])
def test_save_load_round_trip_gives_identical_outputs(fitted, digits, name, tmp_path):
    _, X_test = digits
    model = fitted[name]
    model.save(tmp_path / "run")
    again = load(tmp_path / "run")
    assert type(again) is type(model) and again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.transform(X_test), model.transform(X_test))
    np.testing.assert_array_equal(again.reconstruct(X_test), model.reconstruct(X_test))
    np.testing.assert_array_equal(again.sample(5, random_state=3), model.sample(5, random_state=3))
    if hasattr(model, "score_samples"):
        np.testing.assert_array_equal(again.score_samples(X_test), model.score_samples(X_test))


@pytest.fixture
def saved(fitted, tmp_path):
    fitted["vae"].save(tmp_path / "run")
    return tmp_path / "run"


def test_missing_directory(tmp_path):
    with pytest.raises(ModelFileError, match="not a directory"):
        load(tmp_path / "nowhere")


def test_missing_weights(saved):
    (saved / "weights.safetensors").unlink()
    with pytest.raises(ModelFileError, match="no weights.safetensors"):
        load(saved)


def test_corrupted_config(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load(saved)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c.update(extra=1), r"unknown field\(s\) \['extra'\]"),
        (lambda c: c.update(format_version=99), "format_version 99"),
        (lambda c: c.update({"class": "Evil"}), "unknown class 'Evil'"),
        (lambda c: c["params"].update(gamma=1), r"unknown parameter\(s\) \['gamma'\]"),
        (lambda c: c["params"].update(likelihood="poisson"), "unknown likelihood"),
        (lambda c: c["fitted"].update(sample_shape_=["64"]), "sample_shape_ must be a list of positive integers"),
        (lambda c: c["fitted"].update(extra=1), "must hold sample_shape_"),
        (lambda c: c["fitted"]["preprocessing_"].update(kind="log"), "Preprocessing.kind must be one of"),
        (lambda c: c["params"].update(latent_dim=3), "tensor .* has shape"),
    ],
)
def test_tampered_config(saved, edit, match):
    config = json.loads((saved / "config.json").read_text())
    edit(config)
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=match):
        load(saved)


def test_truncated_weights(saved):
    data = (saved / "weights.safetensors").read_bytes()
    (saved / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="weights were altered"):
        load(saved)


class _Bomb:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickle_weights_are_refused_and_never_executed(saved, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (saved / "weights.safetensors").write_bytes(pickle.dumps(_Bomb()))
    with pytest.raises(ModelFileError, match="weights were altered"):
        load(saved)
    torch.save({"x": _Bomb()}, saved / "weights.safetensors")
    with pytest.raises(ModelFileError, match="weights were altered"):
        load(saved)
    assert not (tmp_path / "PWNED").exists()
