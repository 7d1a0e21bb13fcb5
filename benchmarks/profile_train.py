"""Where does a training step of vaelab's VAE spend its time? Ablations against the plain loop.

All variants run in one process on the same Fashion-MNIST batches (784-400-20, batch 128, Adam
lr 1e-3), interleaved round by round so that a burst of load on the shared machine hits them all;
each number is the median over rounds of the mean ms/step of one round.

* ``vaelab train()``: :func:`vaelab.train.train` for one epoch over ``--steps`` batches, with the
  module the estimator builds (``vaelab.models.VAE`` + Bernoulli likelihood) — the real hot path;
* ``vaelab module, plain loop``: the same module's ``loss`` in the smallest loop — the loop's share;
* ``..., torch log_prob``: the fused-Adam module with its likelihood's fused ``log_prob`` replaced
  by torch's ``Independent(Bernoulli(logits)).log_prob`` — what the fused one saves;
* ``..., KL written out``: the fused-Adam module's ELBO loss with ``0.5 (mu^2 + sigma^2 - 1) - log sigma``
  in place of ``kl_divergence`` on the distributions — what that would save;
* ``plain module``: hand-written forward and loss (logits, BCE-with-logits, closed-form KL with
  log-variance) — the torch.distributions share;
* the optimiser variants: ``Adam(fused=True)`` and ``Adam(foreach=True)``; torch's CPU default is
  the per-parameter for-loop implementation;
* storage: gathering float32 rows vs gathering uint8 rows and scaling them per batch.

Then a per-phase split (loss / backward / optimiser step) and a torch.profiler table of the
heaviest operators for the vaelab module against the plain one.

Usage::

    PYTHONPATH=src /work/venv/bin/python benchmarks/profile_train.py [--steps 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time

import _common as C

BATCH, LATENT, HIDDEN, LR = 128, 20, 400, 1e-3


def build(vaelab_module: bool):
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(0)
    if vaelab_module:
        from vaelab.likelihoods import make_likelihood
        from vaelab.models import VAE

        return VAE(784, LATENT, (HIDDEN,), make_likelihood("bernoulli", (784,)))

    class PlainVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(784, HIDDEN), nn.Linear(HIDDEN, 2 * LATENT)
            self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, 784)

        def loss(self, x):
            mu, logvar = self.fc2(F.relu(self.fc1(x))).chunk(2, dim=-1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            logits = self.fc4(F.relu(self.fc3(z)))
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1).mean()
            kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean()
            return rec + kl

    return PlainVAE()


def _loss(model, x):
    out = model.loss(x)
    return out if not hasattr(out, "loss") else out.loss


def torch_log_prob(model):
    """``model`` with torch's Bernoulli ``log_prob`` in place of its likelihood's fused one."""
    from torch.distributions import Bernoulli, Independent

    model.likelihood.forward = lambda logits: Independent(Bernoulli(logits=logits, validate_args=False), 1)
    return model


def kl_written_out(model):
    """``model`` whose loss is the ELBO with the closed-form Gaussian KL as one expression."""

    def loss(x):
        out = model(x)
        loc, scale = out.qz.base_dist.loc, out.qz.base_dist.scale  # (n, latent_dim) each
        kl = (0.5 * (loc.square() + scale.square() - 1) - scale.log()).sum(-1).mean()
        return -out.px.log_prob(x).mean() + kl

    model.loss = loss
    return model


def make_variants(X, X_u8, steps: int):
    """name -> (setup() -> state, run(state) -> None running `steps` optimiser steps)."""
    import torch

    from vaelab.train import TrainConfig, train

    idx_all = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))[: steps * BATCH]
    batches = idx_all.split(BATCH)
    X_sub = X[idx_all]  # exactly `steps` batches for vaelab's train()

    def plain_loop(vaelab_module: bool, adam: dict, uint8: bool = False, change=lambda model: model):
        def setup():
            model = change(build(vaelab_module))
            return model, torch.optim.Adam(model.parameters(), lr=LR, **adam)

        def run(state):
            model, opt = state
            for idx in batches:
                batch = X_u8[idx].float().mul_(1 / 255) if uint8 else X[idx]
                loss = _loss(model, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        return setup, run

    def vaelab_train():
        config = TrainConfig(epochs=1, batch_size=BATCH, lr=LR, patience=None)
        return (lambda: build(True)), (lambda model: train(model, X_sub, None, config))

    return {
        "vaelab train() (fused Adam)": vaelab_train(),
        "vaelab module, plain loop": plain_loop(True, {}),
        "vaelab module, plain loop, fused Adam": plain_loop(True, {"fused": True}),
        "vaelab module, fused Adam, torch log_prob": plain_loop(True, {"fused": True}, change=torch_log_prob),
        "vaelab module, fused Adam, KL written out": plain_loop(True, {"fused": True}, change=kl_written_out),
        "plain module, plain loop": plain_loop(False, {}),
        "plain module, foreach Adam": plain_loop(False, {"foreach": True}),
        "plain module, fused Adam": plain_loop(False, {"fused": True}),
        "plain module, uint8 rows scaled per batch": plain_loop(False, {}, uint8=True),
    }


def phases(model, X, steps: int, fused: bool) -> dict:
    """Mean ms per step of the loss (forward), backward and optimiser step."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=LR, fused=fused)
    t = {"loss (forward)": 0.0, "backward": 0.0, "optimizer.step": 0.0}
    for i, idx in enumerate(torch.randperm(len(X)).split(BATCH)[:steps]):
        t0 = time.perf_counter()
        loss = _loss(model, X[idx])
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if i >= 5:
            t["loss (forward)"] += t1 - t0
            t["backward"] += t2 - t1
            t["optimizer.step"] += t3 - t2
    return {k: 1e3 * v / (steps - 5) for k, v in t.items()}


def profile_ops(model, X, steps: int, top: int) -> tuple[str, int, float]:
    """torch.profiler's table of the heaviest operators over `steps` steps; ops and ms per step."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    opt = torch.optim.Adam(model.parameters(), lr=LR)
    batches = torch.randperm(len(X)).split(BATCH)
    for idx in batches[:5]:
        loss = _loss(model, X[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for idx in batches[5 : 5 + steps]:
            loss = _loss(model, X[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    n_ops = sum(e.count for e in events if e.key.startswith("aten::")) / steps
    return events.table(sort_by="self_cpu_time_total", row_limit=top), n_ops, 1e3 * wall / steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=100, help="optimiser steps per variant and round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median reported)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--top", type=int, default=12, help="rows of the profiler tables")
    args = p.parse_args(argv)

    C.import_vaelab()
    import torch

    C.set_threads(args.threads)
    info = C.machine()
    print(
        f"# profile_train  {info['date']}  nproc={info['nproc']}  cpu={info['cpu']!r}  torch={torch.__version__}"
        f"  threads={torch.get_num_threads()}  loadavg={info['loadavg'][0]:.2f}"
    )
    n = max(args.steps * BATCH, 12800)
    X_u8 = torch.from_numpy(C.fashion_mnist("train", n, uint8=True))
    X = X_u8.float().mul_(1 / 255)
    variants = make_variants(X, X_u8, args.steps)
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for setup, run in variants.values():  # warm-up round, not counted
        run(setup())
    others = []
    for _ in range(args.rounds):
        for name, (setup, run) in variants.items():
            state = setup()
            b0, c0, t0 = C._cpu_busy_seconds(), time.process_time(), time.perf_counter()
            run(state)
            wall, own = time.perf_counter() - t0, time.process_time() - c0
            times[name].append(1e3 * wall / args.steps)
            cpu[name].append(1e3 * own / args.steps)
            others.append(max(0.0, (C._cpu_busy_seconds() - b0 - own) / wall))
    base, base_cpu = C.median(times["vaelab train() (fused Adam)"]), C.median(cpu["vaelab train() (fused Adam)"])
    print(
        f"\nms per optimiser step (batch {BATCH}), median of {args.rounds} interleaved rounds of {args.steps} steps; "
        f"other processes used {C.median(others):.1f} cores (median; max {max(others):.1f}):"
    )
    print(
        C.table(
            ["variant", "wall ms/step", "[min-max]", "x vaelab train()", "CPU ms/step", "x vaelab (CPU)"],
            [
                [
                    name,
                    f"{C.median(t):.2f}",
                    f"[{min(t):.2f}-{max(t):.2f}]",
                    f"{base / C.median(t):.2f}",
                    f"{C.median(cpu[name]):.2f}",
                    f"{base_cpu / C.median(cpu[name]):.2f}",
                ]
                for name, t in times.items()
            ],
        )
    )

    rows = []
    for label, vaelab_module in [("vaelab module", True), ("plain module", False)]:
        for fused in (False, True):
            ph = phases(build(vaelab_module), X, args.steps, fused)
            rows.append(
                [
                    f"{label}, {'fused' if fused else 'default'} Adam",
                    *(f"{v:.2f}" for v in ph.values()),
                    f"{sum(ph.values()):.2f}",
                ]
            )
    print("\nms per step by phase (one pass each, so noisier):")
    print(C.table(["variant", "loss (forward)", "backward", "optimizer.step", "total"], rows))

    for label, vaelab_module in [("vaelab module", True), ("plain module", False)]:
        table, n_ops, ms = profile_ops(build(vaelab_module), X, 30, args.top)
        print(
            f"\ntorch.profiler, {label}, default Adam: {n_ops:.0f} aten ops per step, "
            f"{ms:.2f} ms/step under the profiler"
        )
        print(table)
    print(f"# loadavg after: {C.machine()['loadavg'][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
