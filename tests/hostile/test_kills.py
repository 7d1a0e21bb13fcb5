"""SIGKILL of a real ``vaelab fit --overwrite`` at exact write points (issue 15, items 1 and 16).

A finished model (beta 4, seed 5) is in ``--out``; a new fit with other settings replaces it and
is killed by SIGKILL, the one signal no handler sees, at the Nth ``os.replace``, ``os.fsync`` or
``os.unlink`` of a named file. The kill comes from a ``-c`` wrapper that patches that ``os``
function and then runs the CLI's ``main``: the library has no test hook. Afterwards ``--out``
holds the old model byte for byte or the whole new one, a half-written directory left beside it
does not load, ``--resume`` ends bit-identical to an uninterrupted fit (or is refused in one line
when the checkpoint there is the old run's), and the next run removes every temporary file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vaelab import load
from vaelab.checkpoint import CHECKPOINT_FILE
from vaelab.cli import main
from vaelab.errors import ModelFileError

SRC = Path(__file__).resolve().parents[2] / "src"
TINY = ["--hidden", "4", "--epochs", "2", "--quiet"]
NEW, OLD = [*TINY, "--random-state", "0"], [*TINY, "--beta", "4", "--random-state", "5"]

# argv: os function, file name, N, then vaelab's arguments. Dies at the Nth call naming the file.
KILLER = """
import os, signal, sys
name, marker, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
real, seen = getattr(os, name), [0]
def path(a):
    return os.readlink(f"/proc/self/fd/{a}") if isinstance(a, int) else os.fspath(a)
def dying(*args, **kwargs):
    if any(os.path.basename(path(a)) == marker for a in args):
        seen[0] += 1
        if seen[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(os, name, dying)
from vaelab.cli import main
sys.exit(main(sys.argv[4:]))
"""

# name: (os function, file name, N, what --out's model is after the kill, what --resume does)
POINTS = {
    "the first checkpoint's rename": ("replace", CHECKPOINT_FILE, 1, "old", "refused"),
    "the fsync after the first checkpoint": ("fsync", "vae", 1, "old", "resumes"),
    "the new model's weights, staged": ("replace", "weights.safetensors", 1, "old", "resumes"),
    "removing the old model after the swap": ("unlink", "config.json", 1, "new", "resumes"),
}


def fit(out: Path, data: Path, *extra: str) -> int:
    return main(["fit", "--data", str(data), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "x.npy"
    np.save(path, np.random.default_rng(0).random((150, 6)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data) -> Path:
    out = tmp_path_factory.mktemp("old") / "vae"
    assert fit(out, data, *OLD) == 0
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data) -> bytes:
    """The weights file of the new run, fitted without a kill."""
    out = tmp_path_factory.mktemp("reference") / "vae"
    assert fit(out, data, *NEW) == 0
    return (out / "weights.safetensors").read_bytes()


def model_files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.iterdir() if p.name != CHECKPOINT_FILE and p.name[0] != "."}


def temporaries(*folders: Path) -> list[str]:
    return [p.name for folder in folders for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the wrapper reads /proc/self/fd")
@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_during_fit_overwrite_loses_nothing(tmp_path, data, finished, reference, capsys, point):
    function, marker, nth, model, resume = POINTS[point]
    run = Path(shutil.copytree(finished, tmp_path / "vae"))
    before = model_files(run)
    argv = ["fit", "--data", str(data), "--out", str(run), *NEW, "--overwrite"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, function, marker, str(nth), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # it reached the write point

    loaded = load(run)  # never a mix: old settings with old weights, or the new model whole
    if model == "old":
        assert (loaded.beta, loaded.random_state) == (4.0, 5)
        assert model_files(run) == before
    else:
        assert (loaded.beta, loaded.random_state) == (1.0, 0)
        assert (run / "weights.safetensors").read_bytes() == reference
    for left in tmp_path.glob(".vae.*"):  # a directory the kill left half written
        with pytest.raises(ModelFileError):
            load(left)

    capsys.readouterr()
    status = fit(run, data, *NEW, "--resume")
    if resume == "refused":  # the checkpoint there is still the old run's (beta 4, seed 5)
        err = capsys.readouterr().err.strip()
        assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "beta" in err and "--overwrite" in err, err
        status = fit(run, data, *NEW, "--overwrite")
    assert status == 0
    assert (run / "weights.safetensors").read_bytes() == reference  # bit-identical to the run never killed
    assert temporaries(tmp_path, run) == []  # the next run removed what the killed one left
