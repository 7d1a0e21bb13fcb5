"""Hostile command lines (issue 15, items 2, 3, 6, 9, 10, 11, 14, 16, 17): each ends in one line naming the
problem and the fix, exit 2 (130/143 for signals), with the previous outputs and the inputs unchanged.
Commands run in-process through ``main`` (fast); one SIGTERM test runs a real process (slow).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from vaelab._writes import RunLock
from vaelab.checkpoint import CHECKPOINT_FILE
from vaelab.cli import main
from vaelab.cli._signals import handled
from vaelab.errors import PosteriorCollapseWarning

SRC = Path(__file__).resolve().parents[2] / "src"
TINY = ["--hidden", "4", "--epochs", "2", "--quiet"]


def run(capsys, *argv) -> tuple[int, str]:
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:  # a flag refused by the parser: one line, exit 2
        status = exc.code
    err = capsys.readouterr().err.strip()
    return status, err


def one_line(err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if ": warning" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "x.npy"
    np.save(path, np.random.default_rng(0).random((150, 6)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("fitted") / "vae"
    assert main(["fit", "--data", str(data), "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture
def vae_run(tmp_path, fitted_run):
    """A private copy of one fitted run (fitting once keeps the suite fast)."""
    import shutil

    return Path(shutil.copytree(fitted_run, tmp_path / "vae"))


def snapshot(path: Path) -> dict:
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# --- one output policy (items 2, 6, 17) ---------------------------------------------------------
@pytest.mark.parametrize("command", ["sample", "encode"])
def test_existing_output_is_not_replaced_without_overwrite(vae_run, data, tmp_path, capsys, command):
    target = tmp_path / "old.npy"
    target.write_bytes(b"precious")
    extra = ["--data", data] if command == "encode" else []
    status, err = run(capsys, command, vae_run, *extra, "--out", target)
    assert status == 2
    one_line(err, str(target), "--overwrite")
    assert target.read_bytes() == b"precious"
    assert run(capsys, command, vae_run, *extra, "--out", target, "--overwrite")[0] == 0
    assert np.load(target).ndim == 2


def test_evaluate_json_is_not_replaced_without_overwrite(vae_run, data, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep")
    status, err = run(capsys, "evaluate", vae_run, "--data", data, "--json", target, "--iw-samples", 2)
    assert status == 2 and target.read_text() == "keep"
    one_line(err, "--overwrite")


@pytest.mark.parametrize("name", ["config.json", "weights.safetensors", "new.npy"])
def test_nothing_is_written_into_a_model_directory(vae_run, capsys, name):
    before = snapshot(vae_run)
    status, err = run(capsys, "sample", vae_run, "-n", 3, "--out", vae_run / name, "--overwrite")
    assert status == 2
    one_line(err, "model directory", "outside it")
    assert snapshot(vae_run) == before


def test_pca_resume_on_a_vae_run_is_refused(vae_run, data, capsys):
    before = snapshot(vae_run)
    status, err = run(capsys, "fit", "--model", "pca", "--resume", "--data", data, "--out", vae_run)
    assert status == 2
    one_line(err, "nothing to --resume")
    assert snapshot(vae_run) == before


def test_fit_into_a_finished_run_says_what_it_holds(vae_run, data, capsys):
    status, err = run(capsys, "fit", "--data", data, "--out", vae_run, *TINY)
    assert status == 2
    one_line(err, "already holds a fitted VAE", "--resume", "--overwrite")


def test_failed_write_leaves_the_old_output_whole(vae_run, tmp_path, capsys, monkeypatch):
    target = tmp_path / "s.npy"
    assert run(capsys, "sample", vae_run, "-n", 4, "--out", target)[0] == 0
    before = target.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    status, err = run(capsys, "sample", vae_run, "-n", 4, "--out", target, "--overwrite")
    assert status == 2
    one_line(err, "no space left", str(target), "unchanged")
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["s.npy", "vae"]


@pytest.mark.parametrize("files", [("metrics.json",), ("sweep.json",)])
def test_sweep_refuses_to_replace_its_outputs(tmp_path, data, capsys, files):
    out = tmp_path / "sweep"
    out.mkdir()
    for name in files:
        (out / name).write_text("{}")
    status, err = run(capsys, "sweep", "--data", data, "--out", out, "--beta", "1", "--iw-samples", 2, *TINY)
    if files == ("sweep.json",):
        assert status == 2
        one_line(err, "already holds sweep.json", "--overwrite")
    assert (out / files[0]).read_text() == "{}"  # a foreign metrics.json is never touched either


# --- fit: run lock, early kill, failed data, read-only (items 3, 16, 17) ------------------------
def test_second_fit_into_a_locked_out_is_refused_at_once(tmp_path, data, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):  # a first fit holding --out
        started = time.monotonic()
        status, err = run(capsys, "fit", "--data", data, "--out", out, *TINY)
    assert status == 2 and time.monotonic() - started < 30
    one_line(err, "in use by another vaelab process")
    assert list(out.iterdir()) == []


def test_after_an_early_kill_resume_and_rerun_agree(tmp_path, data, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".checkpoint.safetensors.999999.tmp").write_bytes(b"half")  # what a SIGKILL in epoch 1 leaves
    status, err = run(capsys, "fit", "--data", data, "--out", out, "--resume", *TINY)
    assert status == 2
    one_line(err, "nothing to resume", "without --resume")
    assert run(capsys, "fit", "--data", data, "--out", out, *TINY)[0] == 0


def test_fit_on_bad_data_leaves_no_out_directory(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,,3\n4,5,6\n")
    status, err = run(capsys, "fit", "--data", bad, "--out", tmp_path / "run", *TINY)
    assert status == 2 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["fit", "sweep"])
def test_read_only_out_fails_before_training(tmp_path, data, capsys, monkeypatch, command):
    import vaelab.cli._outputs as outputs

    def denied(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")  # as for a non-root user on a 0555 directory

    monkeypatch.setattr(outputs.tempfile, "TemporaryFile", denied)
    for where in ("vaelab.cli.commands", "vaelab.cli.comparing"):  # fit's module, and sweep's
        monkeypatch.setattr(f"{where}.load_dataset", lambda args: pytest.fail("trained before checking --out"))
    extra = ["--beta", "1"] if command == "sweep" else []
    status, err = run(capsys, command, "--data", data, "--out", tmp_path / "ro", *extra, *TINY)
    assert status == 2
    one_line(err, "cannot write there")


# --- bounds before work (item 9) ----------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, words",
    [
        (["sample", "RUN", "-n", 10**12, "--out", "OUTDIR/s.npy"], ["would need", "TiB"]),
        (["sample", "RUN", "-n", 0, "--out", "OUTDIR/s.npy"], [">= 1"]),
        (["evaluate", "RUN", "--data", "DATA", "--iw-samples", 10**9], ["outside [1, 100000]"]),
        (["fit", "--data", "DATA", "--out", "OUTDIR/f", "--latent-dim", 10**9], ["over the limit"]),
        (
            ["fit", "--data", "DATA", "--out", "OUTDIR/f", "--latent-dim", 1_000_000, "--hidden", "4096"],
            ["would need at least"],
        ),
        (["fit", "--data", "DATA", "--out", "OUTDIR/f", "--hidden", 100_000_000], ["layer of 100000000 units"]),
        (
            ["fit", "--data", "DATA", "--out", "OUTDIR/f", "--objective", "iwae", "--n-train-samples", 10**9],
            ["over the limit"],
        ),
    ],
)
def test_sizes_are_refused_up_front(vae_run, data, tmp_path, capsys, argv, words):
    argv = [
        str(a).replace("RUN", str(vae_run)).replace("DATA", str(data)).replace("OUTDIR", str(tmp_path)) for a in argv
    ]
    started = time.monotonic()
    status, err = run(capsys, *argv)
    assert status == 2 and time.monotonic() - started < 30
    one_line(err, *words)
    assert not (tmp_path / "f").exists() and not (tmp_path / "s.npy").exists()


# --- absurd values (item 14) -------------------------------------------------------------------
@pytest.mark.parametrize("sign", ["both", "positive"])
def test_pca_on_float32_extremes_is_refused_in_one_line(tmp_path, capsys, sign):
    X = np.full((150, 6), 3.3e38, np.float32)
    if sign == "both":
        X[::2] *= -1
    path = tmp_path / "x.npy"
    np.save(path, X)
    before = path.read_bytes()
    status, err = run(capsys, "fit", "--model", "pca", "--data", path, "--out", tmp_path / "run")
    assert status == 2 and path.read_bytes() == before and not (tmp_path / "run").exists()
    one_line(err, "magnitude 3.3e+38", "over the 1e+30", "rescale X")


def test_pca_just_inside_the_bound_gives_finite_numbers(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "x.npy"
    np.save(path, (np.sign(rng.random((150, 6)) - 0.5) * rng.random((150, 6)) * 1e30).astype(np.float32))
    assert run(capsys, "fit", "--model", "pca", "--data", path, "--out", tmp_path / "run")[0] == 0
    assert run(capsys, "encode", tmp_path / "run", "--data", path, "--out", tmp_path / "z.npy")[0] == 0
    assert run(capsys, "sample", tmp_path / "run", "--sampler", "gmm", "--out", tmp_path / "s.npy")[0] == 0
    assert np.isfinite(np.load(tmp_path / "z.npy")).all() and np.isfinite(np.load(tmp_path / "s.npy")).all()


def test_free_bits_past_the_bound_is_refused(tmp_path, data, capsys):
    status, err = run(capsys, "fit", "--data", data, "--out", tmp_path / "run", "--free-bits", "1e308", *TINY)
    assert status == 2 and not (tmp_path / "run").exists()
    one_line(err, "--free-bits must be in [0, 100]", "1e+308")
    assert run(capsys, "fit", "--data", data, "--out", tmp_path / "run", "--free-bits", "100", *TINY)[0] == 0


def test_a_model_whose_history_has_wrong_types_is_refused(vae_run, data, capsys):
    config = json.loads((vae_run / "config.json").read_text())
    config["fitted"]["history_"]["train"]["loss"] = ["x", None]
    (vae_run / "config.json").write_text(json.dumps(config))
    before = snapshot(vae_run)
    status, err = run(capsys, "evaluate", vae_run, "--data", data, "--iw-samples", 2)
    assert status == 2 and snapshot(vae_run) == before
    one_line(err, "training history")


# --- report on a damaged metrics.json (item 14) -------------------------------------------------
@pytest.mark.parametrize(
    "document, words",
    [
        ({"format": "vaelab-comparison"}, ["field 'data'"]),
        (
            {
                "format": "vaelab-comparison",
                "data": {"source": "digits"},
                "settings": {},
                "table": [],
                "models": {"pca": 3},
            },
            ["models.pca"],
        ),
        (
            {"format": "vaelab-comparison", "data": {"source": 5}, "settings": {}, "table": [], "models": {}},
            ["data.source"],
        ),
        (
            {
                "format": "vaelab-comparison",
                "data": {"source": "digits"},
                "settings": {},
                "table": [[1]],
                "models": {"pca": {"fit_seconds": 1, "metrics": {}}},
            },
            ["table row 0"],
        ),
        (
            {
                "format": "vaelab-comparison",
                "data": {"source": "digits"},
                "settings": {},
                "table": [],
                "models": {"../../etc": {"fit_seconds": 1, "metrics": {}}},
            },
            ["plain folder name"],
        ),
    ],
)
def test_report_refuses_a_damaged_metrics_file(tmp_path, capsys, document, words):
    (tmp_path / "metrics.json").write_text(json.dumps(document))
    status, err = run(capsys, "report", tmp_path)
    assert status == 2
    one_line(err, "metrics.json", "rerun `vaelab compare`", *words)


def test_report_refuses_hostile_json(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text("[" * 100_000)
    status, err = run(capsys, "report", tmp_path)
    assert status == 2
    one_line(err, "metrics.json")


# --- signals (item 11) and warnings (item 16) ---------------------------------------------------
def test_ctrl_c_while_loading_exits_130_saying_nothing_was_written(vae_run, tmp_path, capsys, monkeypatch):
    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr("vaelab.io.load", interrupted)
    status, err = run(capsys, "sample", vae_run, "--out", tmp_path / "s.npy")
    assert status == 130
    one_line(err, "interrupted by Ctrl-C", "nothing was written")


def test_sigterm_during_the_final_write_exits_143_with_the_true_epoch(vae_run, data, capsys, monkeypatch):
    from vaelab.estimators import modelfile

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises here, as it would for a real `kill`

    before = snapshot(vae_run)
    monkeypatch.setattr(modelfile, "save_file", terminated)
    status, err = run(capsys, "fit", "--data", data, "--out", vae_run, "--overwrite", *TINY)
    assert status == 143
    one_line(err, "SIGTERM", f"checkpoint of epoch 2 is in {vae_run}", "--resume")
    assert "--overwrite" not in err
    assert set(snapshot(vae_run)) == set(before)  # the old model (with the new run's checkpoint) is whole
    monkeypatch.undo()
    assert run(capsys, "fit", "--data", data, "--out", vae_run, "--resume", *TINY)[0] == 0


def test_warnings_print_as_one_line_without_source(capsys):
    with handled("fit"):
        warnings.warn("2 of 2 latent dimensions\nare inactive", PosteriorCollapseWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err == "vaelab fit: warning (PosteriorCollapseWarning): 2 of 2 latent dimensions are inactive\n"


@pytest.mark.slow
def test_sigterm_in_the_epoch_loop_of_a_real_process(tmp_path, data):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    argv = ["fit", "--data", str(data), "--out", str(out), "--hidden", "4", "--epochs", "100000", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "vaelab", *argv], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / CHECKPOINT_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, err
    one_line(err, "SIGTERM", "checkpoint of epoch", "--resume")
    from safetensors import safe_open

    with safe_open(out / CHECKPOINT_FILE, framework="pt") as f:
        epoch = json.loads(f.metadata()["vaelab"])["epoch"]
    assert f"checkpoint of epoch {epoch} is in" in err  # the epoch really on disk
