"""Hostile saved models and checkpoints (issue 15, items 1, 10, 12, 13, 15, 16): each is refused in one
ModelFileError/ConfigError naming the problem and the fix, or survives a kill or a full disk whole.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import vaelab._writes as writes
from vaelab import PCA, VAE, load
from vaelab.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from vaelab.errors import ConfigError, DiskFullError, ModelFileError


def _data(n=120, d=6, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


@pytest.fixture(scope="module")
def models():
    X = _data()
    return {"old": PCA(latent_dim=2).fit(X), "new": PCA(latent_dim=3).fit(_data(seed=1))}


def _rewrite_weights(run, edit):
    """Apply ``edit`` to the weights and re-record their digest, so only the later checks can refuse."""
    state = load_file(run / "weights.safetensors")
    edit(state)
    save_file(state, run / "weights.safetensors")
    config = json.loads((run / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256((run / "weights.safetensors").read_bytes()).hexdigest()
    (run / "config.json").write_text(json.dumps(config))


# --- kills at exact write points (item 1, 16) ---------------------------------------------------
@pytest.mark.parametrize("call", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("point", ["replace", "fsync", "rename"])
def test_kill_at_each_write_point_leaves_old_or_new_model(models, tmp_path, monkeypatch, point, call):
    run = tmp_path / "run"
    models["old"].save(run)
    calls = {"n": 0}
    real = {"replace": os.replace, "fsync": os.fsync, "rename": os.rename}[point]

    def dying(*args):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt  # the process stops here; finally blocks run as on Ctrl-C
        return real(*args)

    monkeypatch.setattr(os, point, dying)
    with contextlib.suppress(KeyboardInterrupt):
        models["new"].save(run)
    monkeypatch.undo()
    latent = load(run).latent_dim  # never a mix: the digest ties config to weights
    assert latent in (2, 3)
    models["new"].save(run)  # the next write removes what the killed one left
    assert load(run).latent_dim == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_leftovers_of_a_dead_writer_are_removed_at_the_next_write(models, tmp_path):
    run = tmp_path / "run"
    models["old"].save(run)
    (tmp_path / ".run.999999.new").mkdir()  # pid 999999: not running
    (run / ".config.json.999999.tmp").write_text("{")
    models["new"].save(run)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "weights.safetensors"]


def test_config_and_weights_have_the_same_mode(models, tmp_path):
    models["old"].save(tmp_path / "run")
    modes = {os.stat(tmp_path / "run" / n).st_mode & 0o777 for n in ("config.json", "weights.safetensors")}
    assert len(modes) == 1


# --- files that do not belong together, tampering (items 1, 15) --------------------------------
def test_weights_of_another_model_are_refused(models, tmp_path):
    models["old"].save(tmp_path / "a")
    models["old"].save(tmp_path / "b")
    VAE(hidden=(4,), epochs=1, random_state=0).fit(_data()).save(tmp_path / "c")
    (tmp_path / "a" / "weights.safetensors").write_bytes((tmp_path / "c" / "weights.safetensors").read_bytes())
    with pytest.raises(ModelFileError, match="do not belong together"):
        load(tmp_path / "a")


@pytest.mark.parametrize("offset", [-1, -9, -40])
def test_bit_flips_in_weights_are_refused(models, tmp_path, offset):
    models["old"].save(tmp_path / "run")
    path = tmp_path / "run" / "weights.safetensors"
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256 differs"):
        load(tmp_path / "run")


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8])
def test_tensors_of_the_wrong_dtype_are_refused_not_cast(models, tmp_path, dtype):
    models["old"].save(tmp_path / "run")
    _rewrite_weights(tmp_path / "run", lambda s: s.update(components=s["components"].to(dtype)))
    with pytest.raises(ModelFileError, match=f"is {dtype}, but the model needs"):
        load(tmp_path / "run")


@pytest.mark.parametrize("value, match", [(-1.0, "must be positive"), (0.0, "must be positive"), (float("nan"), "NaN")])
def test_impossible_noise_variance_is_refused(models, tmp_path, value, match):
    models["old"].save(tmp_path / "run")
    _rewrite_weights(tmp_path / "run", lambda s: s["noise_variance"].fill_(value))
    with pytest.raises(ModelFileError, match=match):
        load(tmp_path / "run")


def test_nan_weights_are_refused(models, tmp_path):
    models["old"].save(tmp_path / "run")
    _rewrite_weights(tmp_path / "run", lambda s: s["components"].view(-1)[0].fill_(float("nan")))
    with pytest.raises(ModelFileError, match="NaN or infinite"):
        load(tmp_path / "run")


def _edit_config(run, edit):
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda c: c["fitted"]["preprocessing_"].update(kind="standardize", mean=[0.0] * 6, std=[1e-300] * 6),
            "below 1e-30",
        ),
        (
            lambda c: c["fitted"].update(history_={"train": {"loss": ["x"]}, "validation": {}, "best_epoch": 1}),
            "training history",
        ),
        (lambda c: c["fitted"].update(history_={"train": 3}), "training history"),
        (lambda c: c["params"].update(hidden=[1] * 300_000), "300000 layers"),
        (lambda c: c.pop("weights_sha256"), "missing field"),
    ],
)
def test_fitted_values_that_make_no_sense_are_refused(models, tmp_path, edit, match):
    models["old"].save(tmp_path / "run")
    _edit_config(tmp_path / "run", edit)
    with pytest.raises(ModelFileError, match=match):
        load(tmp_path / "run")


# --- degenerate kept codes, then `vaelab sample --sampler gmm` (item 14) ------------------------
@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda s: s["code_sample"].zero_(), ["120 training code(s)", "one point", "sampler='prior'"]),
        (lambda s: s["code_sample_size"].fill_(1), ["1 training code(s)", "one point", "sampler='prior'"]),
        (lambda s: s["code_sample"].copy_(torch.arange(2000.0)[:, None].expand(2000, 2) * 1e15), None),
        (lambda s: s["code_sample_size"].fill_(-5), ["claims -5 kept training codes", "damaged"]),
        (lambda s: s["code_sample_size"].fill_(9999), ["claims 9999 kept training codes", "damaged"]),
    ],
    ids=["all-zero codes", "one code", "codes on a line at 1e15", "negative count", "count past the buffer"],
)
def test_degenerate_codes_then_gmm_sampling(models, tmp_path, capsys, edit, words):
    from vaelab.cli import main

    run, out = tmp_path / "run", tmp_path / "s.npy"
    models["old"].save(run)
    _rewrite_weights(run, edit)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    status = main(["sample", str(run), "-n", "5", "--sampler", "gmm", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    if words is None:  # a ridge relative to the codes' scale: a proper density, finite samples
        assert status == 0 and np.isfinite(np.load(out)).all()
        return
    assert status == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err


# --- hostile JSON (item 13) ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, match",
    [
        ("[" * 200_000 + "]" * 200_000, "nests deeper"),
        ('{"format": "vaelab-model", "n": ' + "9" * 5000 + "}", "5000 digits"),
        ('{"format": "vaelab-model", "n": NaN}', "not a number JSON allows"),
        ("[" * 40 + "]" * 40, "nests deeper than 32"),
        ("\xff\xfe not json", "not valid JSON"),
    ],
)
def test_hostile_json_in_config_is_refused(models, tmp_path, text, match):
    models["old"].save(tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text(text, encoding="latin-1")
    with pytest.raises(ModelFileError, match=match):
        load(tmp_path / "run")


def test_latent_dim_of_two_to_the_200_is_refused(models, tmp_path):
    models["old"].save(tmp_path / "run")
    text = (tmp_path / "run" / "config.json").read_text().replace('"latent_dim": 2', f'"latent_dim": {2**200}')
    (tmp_path / "run" / "config.json").write_text(text)
    with pytest.raises(ModelFileError, match="61 digits"):
        load(tmp_path / "run")


# --- disk full (item 10) ------------------------------------------------------------------------
def test_disk_full_while_saving_keeps_the_old_model(models, tmp_path, monkeypatch):
    models["old"].save(tmp_path / "run")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("vaelab.estimators.modelfile.save_file", full)
    with pytest.raises(
        DiskFullError, match=r"no space left on the device to write .*weights.safetensors \(it needs about"
    ):
        models["new"].save(tmp_path / "run")
    assert load(tmp_path / "run").latent_dim == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# --- checkpoints (items 10, 12) -----------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt")
    VAE(hidden=(4,), epochs=2, random_state=0).fit(_data(), checkpoint_dir=path)
    return path


def _tampered(run, tmp_path, groups_edit=None, meta_edit=None):
    groups, meta = load_checkpoint(run / CHECKPOINT_FILE)
    groups = {g: dict(t) for g, t in groups.items()}
    if groups_edit:
        groups_edit(groups)
    if meta_edit:
        meta_edit(meta)
    save_checkpoint(tmp_path / CHECKPOINT_FILE, groups, meta)  # a valid digest: the schema checks must refuse
    return tmp_path


def _resume(path, epochs=3):
    VAE(hidden=(4,), epochs=epochs, random_state=0).fit(_data(), checkpoint_dir=path, resume=True)


@pytest.mark.parametrize(
    "groups_edit, meta_edit, match",
    [
        (
            lambda g: g["model"].update({"renamed": g["model"].pop(next(iter(g["model"])))}),
            None,
            "do not match the model",
        ),
        (lambda g: g.pop("rng"), None, "tensor groups"),
        (lambda g: g.pop("model"), None, "tensor groups"),
        (lambda g: g["model"].update({k: torch.zeros(3) for k in list(g["model"])[:1]}), None, "has shape"),
        (lambda g: g["model"].update({k: v.double() for k, v in list(g["model"].items())[:1]}), None, "torch.float64"),
        (lambda g: next(iter(g["model"].values())).view(-1)[0].fill_(float("nan")), None, "NaN or infinite"),
        (lambda g: g["optim"].update({"99.exp_avg": torch.zeros(1)}), None, "optimiser state"),
        (None, lambda m: m.update(epoch=-100), "epoch -100"),
        (None, lambda m: m.update(epoch="2"), "epoch has the wrong type"),
        (None, lambda m: m.update(finished=1), "finished has the wrong type"),
        (None, lambda m: m.pop("history"), "lacks or adds fields"),
        (None, lambda m: m["history"].update(train={"loss": [1.0]}), "does not hold 2 epochs"),
        (None, lambda m: m.update(param_groups=[3]), "optimiser groups"),
    ],
)
def test_corrupt_checkpoints_are_refused_on_resume(run, tmp_path, groups_edit, meta_edit, match):
    with pytest.raises(ModelFileError, match=match):
        _resume(_tampered(run, tmp_path, groups_edit, meta_edit))


@pytest.mark.parametrize("offset", [-1, -17, 200])
def test_bit_flips_in_a_checkpoint_are_refused(run, tmp_path, offset):
    data = bytearray((run / CHECKPOINT_FILE).read_bytes())
    data[offset] ^= 0x04
    (tmp_path / CHECKPOINT_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupted|unreadable"):
        _resume(tmp_path)


def test_resume_with_other_data_names_the_difference(run, tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes((run / CHECKPOINT_FILE).read_bytes())
    X = _data()
    X[1, 0] = 1.0 - X[1, 0]
    with pytest.raises(ConfigError, match="other data values"):
        VAE(hidden=(4,), epochs=3, random_state=0).fit(X, checkpoint_dir=tmp_path, resume=True)


def test_disk_full_during_training_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    real, calls = writes.os.replace, {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # the write of epoch 2
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(writes.os, "replace", replace)
    with pytest.raises(DiskFullError, match="previous checkpoint is kept; free some space, then resume"):
        VAE(hidden=(4,), epochs=3, random_state=0).fit(_data(), checkpoint_dir=tmp_path)
    assert load_checkpoint(tmp_path / CHECKPOINT_FILE)[1]["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]
