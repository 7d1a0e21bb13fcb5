"""Reproduce a row of the Fashion-MNIST density table of Norouzi et al. (2020), "Exemplar VAE".

One command per row; it trains with the paper's protocol, checkpoints every epoch (rerun the same
command to resume after an interruption), then estimates the test log-likelihood::

    .venv/bin/python benchmarks/reproduce_fmnist.py --row vae  --out runs/fmnist-vae
    .venv/bin/python benchmarks/reproduce_fmnist.py --row vamp --out runs/fmnist-vamp
    .venv/bin/python benchmarks/reproduce_fmnist.py --row hvae --out runs/fmnist-hvae
    .venv/bin/python benchmarks/reproduce_fmnist.py --row hvae_vamp --out runs/fmnist-hvae-vamp

Protocol (from the authors' code, sajadn/Exemplar-VAE, and Tomczak & Welling, 2018): the 60,000
training images split 50,000 / 10,000 (training / validation); training images binarised afresh
for every batch, validation and test images binarised once with a fixed seed; Bernoulli decoder;
encoder and decoder MLPs of two gated layers of 300 units; latent size 40 (40 + 40 for the two-
level rows: ``top_latent_dim=40``); Adam, lr 5e-4, batch 100; KL warm-up over 100 epochs; at most
2,000 epochs, early stopping after 50 epochs without a better validation loss, counted after the
warm-up; the VampPrior with 500 pseudo-inputs; the test log-likelihood by importance sampling with
K = 5,000 on all 10,000 test images, in nats (higher is better). ``--epochs`` and ``--patience``
shorten the schedule; the evaluation never changes.

Writes ``OUT/model`` (the fitted estimator), ``OUT/result.json`` (the number, its Monte-Carlo and
sampling errors, wall times, machine, commit, seed) and prints the row beside the paper's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import REPO, fashion_mnist, import_vaelab, machine, set_threads

# Test log-likelihoods (nats) of the paper's Table (Fashion-MNIST, MLP models).
PAPER = {"vae": -228.70, "vamp": -227.35, "hvae": -227.37, "hvae_vamp": -226.72}
ROWS = {
    "vae": {"prior": "normal"},
    "vamp": {"prior": "vamp", "prior_components": 500},
    "hvae": {"prior": "normal", "top_latent_dim": 40},
    "hvae_vamp": {"prior": "vamp", "prior_components": 500, "top_latent_dim": 40},
}
PROTOCOL = {
    "latent_dim": 40,
    "hidden": (300, 300),
    "architecture": "gated_mlp",
    "likelihood": "bernoulli",
    "preprocessing": "scale",
    "pixel_max": 255.0,
    "binarize": "dynamic",
    "lr": 5e-4,
    "batch_size": 100,
    "kl_warmup": 100,
    "validation_fraction": 10_000 / 60_000,
}


def binarised_once(images: np.ndarray, seed: int) -> np.ndarray:
    """uint8 images (n, 784) -> one fixed Bernoulli draw per pixel, as 0/255 uint8 (so that scaling gives {0, 1})."""
    draw = np.random.default_rng(seed).random(images.shape, dtype=np.float32) < images / np.float32(255.0)
    return (draw * 255).astype(np.uint8)


def commit() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout
    return out.stdout.strip() + ("+dirty" if dirty.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--row", required=True, choices=list(ROWS))
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--patience", type=int, default=50)
    parser.add_argument("--iw-samples", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    vaelab = import_vaelab()
    from vaelab.metrics import iw_estimate

    train = fashion_mnist("train", uint8=True)  # (60000, 784)
    test = binarised_once(fashion_mnist("test", uint8=True)[: args.n_test], seed=args.seed + 1)
    args.out.mkdir(parents=True, exist_ok=True)
    model_dir = args.out / "model"
    estimator = vaelab.VAE(
        **PROTOCOL, **ROWS[args.row], epochs=args.epochs, patience=args.patience, random_state=args.seed, verbose=1
    )
    started = time.time()
    resume = (args.out / "checkpoint.safetensors").exists()
    estimator.fit(train, checkpoint_dir=args.out, resume=resume, overwrite=not resume)
    fit_seconds = time.time() - started
    estimator.save(model_dir) if not model_dir.exists() else None

    started = time.time()
    x = test.astype(np.float32) / 255.0
    estimate = iw_estimate(estimator.module_, x, args.iw_samples, seed=args.seed)
    eval_seconds = time.time() - started
    ll = estimate.log_likelihood.double()
    result = {
        "row": args.row,
        "test_log_likelihood_nats": float(ll.mean()),
        "sem_over_test_images": float(ll.std() / len(ll) ** 0.5),
        "monte_carlo_standard_error": float(estimate.standard_error.double().square().sum().sqrt() / len(ll)),
        "effective_sample_size_median": float(estimate.effective_sample_size.median()),
        "paper_nats": PAPER[args.row],
        "protocol": {
            **PROTOCOL,
            **ROWS[args.row],
            "epochs": args.epochs,
            "patience": args.patience,
            "iw_samples": args.iw_samples,
            "n_test": len(ll),
            "test_binarisation_seed": args.seed + 1,
        },
        "epochs_trained": len(estimator.history_["train"]["loss"]),
        "best_epoch": estimator.history_["best_epoch"],
        "fit_seconds_this_run": fit_seconds,
        "eval_seconds": eval_seconds,
        "machine": machine(),
        "commit": commit(),
        "seed": args.seed,
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=2))
    print(
        f"{args.row}: {result['test_log_likelihood_nats']:.2f} nats (paper {PAPER[args.row]:.2f}), "
        f"±{result['monte_carlo_standard_error']:.2f} Monte Carlo, ±{result['sem_over_test_images']:.2f} over images"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
