"""Multi-process training with torch.distributed (gloo on CPU), launched by torchrun."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab import VAE, Autoencoder

SRC = str(Path(__file__).resolve().parents[1] / "src")
PARAMS = dict(
    latent_dim=3, hidden=(32,), epochs=4, batch_size=64, validation_fraction=0.0, patience=None, random_state=0
)

_SCRIPT = f"""
import sys
sys.path.insert(0, {SRC!r})
import numpy as np, torch, torch.distributed as dist
from vaelab import Autoencoder, VAE
dist.init_process_group("gloo")
rank = dist.get_rank()
X = np.random.default_rng(0).uniform(size=(512, 16)).astype(np.float32)
for cls in (Autoencoder, VAE):
    model = cls(**{PARAMS!r}).fit(X)
    state = {{k: v.numpy() for k, v in model.module_.state_dict().items()}}
    np.savez(sys.argv[1] + f"/{{cls.__name__}}-{{rank}}.npz", **state)
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_two_ranks_end_identical_and_match_one_process_with_the_same_global_batch(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(_SCRIPT)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--standalone",
            str(script),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    X = np.random.default_rng(0).uniform(size=(512, 16)).astype(np.float32)
    for cls in (Autoencoder, VAE):
        ranks = [dict(np.load(tmp_path / f"{cls.__name__}-{r}.npz")) for r in (0, 1)]
        for name in ranks[0]:
            np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)
        if cls is Autoencoder:  # deterministic: the same global batches give the same steps
            single = cls(**PARAMS).fit(X).module_.state_dict()
            for name, tensor in single.items():
                torch.testing.assert_close(torch.from_numpy(ranks[0][name]), tensor, atol=1e-4, rtol=1e-3)
