"""Nothing lost: checkpoints every epoch, kill-and-resume equality, atomic writes, divergence."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab import VAE, ConfigError, TrainingError
from vaelab.checkpoint import CHECKPOINT_FILE, load_checkpoint, write_atomic

SRC = str(Path(__file__).resolve().parents[1] / "src")
PARAMS = dict(latent_dim=4, hidden=(128,), epochs=6, patience=3, random_state=3)


def _data():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(6000, 64)).astype(np.float32) ** 3


_FIT_SCRIPT = f"""
import sys, numpy as np
sys.path.insert(0, {SRC!r})
from vaelab import VAE
rng = np.random.default_rng(0)
X = rng.uniform(size=(6000, 64)).astype(np.float32) ** 3
VAE(**{PARAMS!r}).fit(X, checkpoint_dir=sys.argv[1])
"""


def _epoch(run: Path) -> int:
    try:
        return load_checkpoint(run / CHECKPOINT_FILE)[1]["epoch"]
    except Exception:
        return 0


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _FIT_SCRIPT, str(run)])
    deadline = time.monotonic() + 240
    while _epoch(run) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _epoch(run)
    assert 2 <= killed_at < PARAMS["epochs"], "the run should be killed part-way"

    X = _data()
    resumed = VAE(**PARAMS).fit(X, checkpoint_dir=run, resume=True)
    straight = VAE(**PARAMS).fit(X)
    assert resumed.history_ == straight.history_
    for name, tensor in straight.module_.state_dict().items():
        assert torch.equal(tensor, resumed.module_.state_dict()[name]), name


def test_existing_checkpoint_is_refused_without_resume_or_overwrite(tmp_path, digits):
    X = digits[0]
    VAE(epochs=1, random_state=0).fit(X, checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="resume=True to continue it or overwrite=True"):
        VAE(epochs=1, random_state=0).fit(X, checkpoint_dir=tmp_path)
    VAE(epochs=1, random_state=0).fit(X, checkpoint_dir=tmp_path, overwrite=True)
    with pytest.raises(ConfigError, match=r"written for latent_dim=2 \(now 3\)"):
        VAE(epochs=2, latent_dim=3, random_state=0).fit(X, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        VAE(epochs=1).fit(X, checkpoint_dir=tmp_path / "empty", resume=True)


def test_interrupted_write_leaves_the_previous_checkpoint_readable(tmp_path, digits):
    VAE(epochs=2, random_state=0).fit(digits[0], checkpoint_dir=tmp_path)
    path = tmp_path / CHECKPOINT_FILE
    before = path.read_bytes()
    rng = np.random.default_rng(0)
    for cut in rng.integers(0, len(before), size=5):

        def crash(tmp, cut=int(cut)):
            tmp.write_bytes(before[:cut])
            raise KeyboardInterrupt  # a kill while the temporary file is half written

        with pytest.raises(KeyboardInterrupt):
            write_atomic(path, crash)
        assert path.read_bytes() == before
        assert load_checkpoint(path)[1]["epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]


def test_divergence_names_epoch_and_batch_and_keeps_the_best_weights(tmp_path, digits):
    X = digits[0]
    model = VAE(epochs=30, lr=1e-3, random_state=0)
    original_loss = None

    def poisoned_fit():
        nonlocal original_loss
        from vaelab.models import VAE as VAEModule
        from vaelab.models import LossTerms

        original_loss = VAEModule.loss
        calls = {"n": 0}

        def loss(self, x, y=None):
            calls["n"] += 1
            terms = original_loss(self, x, y)
            if calls["n"] > 12 * 4 + 5:  # the sixth batch of epoch 5 (12 batches per epoch)
                return LossTerms(terms.loss * float("nan"), terms.terms)
            return terms

        VAEModule.loss = loss
        try:
            model.fit(X, checkpoint_dir=tmp_path)
        finally:
            VAEModule.loss = original_loss

    with pytest.raises(TrainingError, match=r"epoch 5, batch \d+.*best weights so far \(epoch \d\).*lower lr"):
        poisoned_fit()
    groups, meta = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert meta["epoch"] == 4 and "best" in groups
    assert all(torch.isfinite(t).all() for t in groups["best"].values())


def test_gradient_clipping_is_an_option(digits):
    model = VAE(epochs=2, grad_clip=1.0, random_state=0).fit(digits[0])
    assert np.isfinite(model.history_["train"]["loss"]).all()


@pytest.mark.slow
def test_ctrl_c_stops_after_saving_and_says_how_to_resume(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    np.save(tmp_path / "x.npy", _data())
    run = tmp_path / "run"

    def fit(epochs: int, *extra: str) -> list[str]:
        data = ["--data", str(tmp_path / "x.npy"), "--likelihood", "bernoulli", "--preprocessing", "none"]
        options = ["--epochs", str(epochs), "--validation-fraction", "0", "--quiet", *extra, "--out", str(run)]
        return [sys.executable, "-m", "vaelab", "fit", *data, *options]

    proc = subprocess.Popen(
        fit(50),
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # a shell's background job (`cmd &`) inherits SIGINT ignored; a user's terminal does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    while _epoch(run) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the fit ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    done = subprocess.run(
        fit(2, "--resume"),
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    # A different epoch count is the same run extended or shortened: resuming is allowed.
    assert done.returncode == 0, done.stderr
