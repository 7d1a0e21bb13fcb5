"""Training throughput of the MLP VAE (784-400-20, Bernoulli decoder) on Fashion-MNIST.

The model mirrors pytorch/examples vae/main.py: Adam (lr 1e-3), batch 128, data scaled to [0, 1]
as float32, loss = sum over pixels of the Bernoulli negative log-likelihood + KL, mean over the
batch. Contenders, each in its own process (so that its peak RSS is its own):

* ``vaelab``: ``vaelab.VAE(...).fit(X)``, per-epoch times read by wrapping ``vaelab.train.tqdm``
  (the loop iterates over its progress bar once per epoch); falls back to wall time / epochs;
* ``plain``: the smallest hand-written loop over the same architecture (logits and BCE-with-logits);
* ``pythae``: pythae 0.1.2's VAE with the same encoder/decoder and its own BaseTrainer, run with
  ``benchmarks/.venv-pythae/bin/python`` (see setup_pythae.sh);
* ``limit``: the matmuls one training step runs, timed alone with torch.matmul at batch 128: the
  best case for any implementation on this CPU with this torch (elementwise work ignored).

Usage::

    PYTHONPATH=src /work/venv/bin/python benchmarks/bench_train.py [--epochs 3] [--warmup 1] [--n-train 60000]

Numbers are medians over the timed epochs (the first ``--warmup`` epochs are dropped); on a shared
2-core machine they are noisy, so compare ratios taken in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _common as C
import _contenders as K
from _contenders import BATCH, HIDDEN, LATENT, LR

# --------------------------------------------------------------------------------------------
# workers (each runs in its own process)


def _faults() -> tuple[float, int]:
    """(system CPU seconds, minor page faults) of this process so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_stime, r.ru_minflt


class _EpochClock:
    """Stands in for tqdm in vaelab.train: records a timestamp each time the loop takes an epoch."""

    last: _EpochClock | None = None

    def __init__(self, iterable, *args, **kwargs):
        self.iterable = iterable
        self.stamps: list[float] = []  # start of each epoch, then the end of the last one
        self.cpu: list[float] = []  # the same instants in CPU time of this process
        self.faults: list[tuple[float, int]] = []  # and (system seconds, minor page faults)
        self.taken = 0
        _EpochClock.last = self

    def __iter__(self):
        for item in self.iterable:
            self.stamps.append(time.perf_counter())
            self.cpu.append(time.process_time())
            self.faults.append(_faults())
            self.taken += 1
            yield item
        self.close()

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):  # the loop breaks out after its last epoch and closes the bar
        if len(self.stamps) == self.taken:
            self.stamps.append(time.perf_counter())
            self.cpu.append(time.process_time())
            self.faults.append(_faults())


def worker_vaelab(args, uint8: bool = False) -> dict:
    vaelab = C.import_vaelab()
    import torch

    C.set_threads(args.threads)

    import vaelab.train as vtrain

    clocked = hasattr(vtrain, "tqdm")
    if clocked:
        vtrain.tqdm = _EpochClock
    epochs = args.warmup + args.epochs
    # uint8: the raw pixels, scaled to [0, 1] by vaelab batch by batch (stored as uint8)
    # float32: the same values as the plain loop's, unchanged ("auto" would standardise them)
    extra = {"preprocessing": "scale", "pixel_max": 255} if uint8 else {"preprocessing": "none"}
    est = vaelab.VAE(
        latent_dim=LATENT,
        hidden=(HIDDEN,),
        likelihood="bernoulli",
        epochs=epochs,
        batch_size=BATCH,
        lr=LR,
        validation_fraction=0,
        patience=None,
        random_state=0,
        **extra,
    )
    X = C.fashion_mnist("train", args.n_train, uint8=uint8)
    rss_ready = C.rss_mb()
    t0 = time.perf_counter()
    est.fit(X)
    wall = time.perf_counter() - t0
    clock = _EpochClock.last
    if clocked and clock is not None and len(clock.stamps) == epochs + 1:
        per_epoch = [b - a for a, b in zip(clock.stamps[:-1], clock.stamps[1:], strict=True)]
        cpu = [b - a for a, b in zip(clock.cpu[:-1], clock.cpu[1:], strict=True)]
        faults = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(clock.faults[:-1], clock.faults[1:], strict=True)]
        how = "per-epoch clock"
    else:  # the loop no longer goes through tqdm: fall back to an average
        per_epoch, cpu = [wall / epochs] * epochs, [float("nan")] * epochs
        faults = [(float("nan"), 0)] * epochs
        how = "wall / epochs"
    return {
        "epoch_seconds": per_epoch[args.warmup :],
        "epoch_cpu": cpu[args.warmup :],
        "epoch_faults": faults[args.warmup :],
        "wall": wall,
        "how": how,
        "final_loss": est.history_["train"]["loss"][-1],
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": C.peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "n": len(X),
    }


def worker_plain(args) -> dict:
    import torch

    X_np = C.fashion_mnist("train", args.n_train)
    rss_ready = C.rss_mb()
    C.set_threads(args.threads)
    model, opt = K.plain_model(seed=0)
    per_epoch, cpu, faults, losses = [], [], [], []
    t_start = t0 = time.perf_counter()
    c0, f0 = time.process_time(), _faults()
    for loss in K.plain_epochs(model, opt, X_np, args.warmup + args.epochs):  # yields as each epoch ends
        t1, c1, f1 = time.perf_counter(), time.process_time(), _faults()
        losses.append(loss)
        per_epoch.append(t1 - t0)
        cpu.append(c1 - c0)
        faults.append((f1[0] - f0[0], f1[1] - f0[1]))
        t0, c0, f0 = time.perf_counter(), time.process_time(), _faults()
    wall = time.perf_counter() - t_start
    return {
        "epoch_seconds": per_epoch[args.warmup :],
        "epoch_cpu": cpu[args.warmup :],
        "epoch_faults": faults[args.warmup :],
        "wall": wall,
        "how": "per-epoch clock",
        "final_loss": losses[-1],
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": C.peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "n": len(X_np),
    }


def worker_pythae(args) -> dict:
    import torch
    from pythae.trainers.training_callbacks import TrainingCallback

    X_np = C.fashion_mnist("train", args.n_train)
    rss_ready = C.rss_mb()
    C.set_threads(args.threads)

    class Clock(TrainingCallback):
        def __init__(self):
            self.begin, self.begin_cpu, self.seconds, self.cpu, self.losses = 0.0, 0.0, [], [], []
            self.begin_faults, self.faults = (0.0, 0), []

        def on_epoch_begin(self, training_config, **kwargs):
            self.begin, self.begin_cpu, self.begin_faults = time.perf_counter(), time.process_time(), _faults()

        def on_epoch_end(self, training_config, **kwargs):
            self.seconds.append(time.perf_counter() - self.begin)
            self.cpu.append(time.process_time() - self.begin_cpu)
            f = _faults()
            self.faults.append((f[0] - self.begin_faults[0], f[1] - self.begin_faults[1]))

        def on_log(self, training_config, logs, **kwargs):
            self.losses.append(logs.get("train_epoch_loss"))

    clock = Clock()
    t0 = time.perf_counter()
    K.pythae_training(X_np, args.warmup + args.epochs, seed=0, callbacks=[clock])
    wall = time.perf_counter() - t0
    return {
        "epoch_seconds": clock.seconds[args.warmup :],
        "epoch_cpu": clock.cpu[args.warmup :],
        "epoch_faults": clock.faults[args.warmup :],
        "wall": wall,
        "how": "TrainingCallback clock",
        "final_loss": clock.losses[-1] if clock.losses else None,
        "rss_ready_mb": rss_ready,
        "peak_rss_mb": C.peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "n": len(X_np),
    }


def step_matmuls(batch: int = BATCH) -> list:
    """The matmuls of one training step of the MLP VAE, as autograd's Linear runs them."""
    shapes = []
    for i, (n_in, n_out) in enumerate(C.VAE_LAYERS):
        shapes.append(((batch, n_in), (n_in, n_out), "nt"))  # forward: x @ W^T
        shapes.append(((n_out, batch), (batch, n_in), "tn"))  # grad of W: g^T @ x
        if i > 0:  # grad of the layer input (the first layer's input, the data, needs none)
            shapes.append(((batch, n_out), (n_out, n_in), "nn"))
    return shapes


def worker_limit(args) -> dict:
    import torch

    C.set_threads(args.threads)

    timings = C.time_matmuls(step_matmuls())
    step_s = sum(t["seconds"] for t in timings)
    flops = sum(2 * t["m"] * t["k"] * t["n"] for t in timings)
    forward_flops = sum(2 * BATCH * i * o for i, o in C.VAE_LAYERS) / BATCH
    gflops = flops / step_s / 1e9
    return {
        "matmuls": timings,
        "step_seconds": step_s,
        "samples_per_s": BATCH / step_s,
        "gflops": gflops,
        "forward_flops_per_sample": forward_flops,
        "samples_per_s_3x": gflops * 1e9 / (3 * forward_flops),
        "peak_rss_mb": C.peak_rss_mb(),
        "threads": torch.get_num_threads(),
    }


WORKERS = {
    "vaelab": worker_vaelab,
    "vaelab-uint8": lambda args: worker_vaelab(args, uint8=True),
    "plain": worker_plain,
    "pythae": worker_pythae,
    "limit": worker_limit,
}
LABELS = {
    "vaelab": "vaelab.VAE.fit",
    "vaelab-uint8": "vaelab.VAE.fit, uint8 X + scale",
    "plain": "plain PyTorch loop",
    "pythae": "pythae 0.1.2 VAE + BaseTrainer",
    "limit": "matmul limit (this CPU)",
}


# --------------------------------------------------------------------------------------------
# driver


def _merge(runs: list[dict], max_noise: float) -> dict:
    """One contender's repeats: the timed epochs of its quiet runs pooled (of all runs when none
    was quiet), the highest peak RSS."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[-1]
    quiet = [r for r in good if r["others_cores"] <= max_noise]
    used = len(quiet) if quiet else 0
    good = quiet or good
    merged = dict(good[-1])
    if "epoch_seconds" in merged:
        merged["epoch_seconds"] = [s for r in good for s in r["epoch_seconds"]]
        merged["epoch_cpu"] = [s for r in good for s in r["epoch_cpu"]]
        merged["epoch_faults"] = [s for r in good for s in r["epoch_faults"]]
    if "samples_per_s" in merged:  # the limit: keep the best (least disturbed) repeat
        merged = dict(max(good, key=lambda r: r["samples_per_s"]))
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in good)
    merged["others_cores"] = max(r["others_cores"] for r in good)
    merged["runs"] = f"{used}/{len(runs)}"
    return merged


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per contender and repeat (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="epochs run first and not timed")
    p.add_argument("--n-train", type=int, default=60000, help="training images used (first n of the train split)")
    p.add_argument("--repeats", type=int, default=1, help="rounds over the contenders (interleaved; epochs pooled)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in every worker (0: torch's default)")
    p.add_argument("--only", nargs="+", choices=list(WORKERS), default=list(WORKERS), help="contenders to run")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="before each run, wait up to this many seconds for other processes to use < 0.3 cores",
    )
    p.add_argument(
        "--max-noise",
        type=float,
        default=0.5,
        help="rerun a contender when other processes used more cores than this during its run",
    )
    p.add_argument("--retries", type=int, default=2, help="reruns allowed per contender run (see --max-noise)")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per contender run")
    p.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        C.write_result(args.result, WORKERS[args.worker](args))
        return 0

    info = C.machine()
    print(
        f"# bench_train  {info['date']}  nproc={info['nproc']}  cpu={info['cpu']!r}  torch={info.get('torch')}"
        f"  threads={args.threads or info.get('torch_threads')}  loadavg={info['loadavg'][0]:.2f}",
        flush=True,
    )
    print(
        f"# Fashion-MNIST train, n={args.n_train}, batch {BATCH}, 784-{HIDDEN}-{LATENT}, Adam lr {LR}, "
        f"{args.warmup} warm-up + {args.epochs} timed epochs, {args.repeats} repeat(s)",
        flush=True,
    )
    common = [
        "--epochs",
        str(args.epochs),
        "--warmup",
        str(args.warmup),
        "--n-train",
        str(args.n_train),
        "--threads",
        str(args.threads),
    ]
    runs: dict[str, list[dict]] = {name: [] for name in args.only}
    for rep in range(args.repeats):
        for name in args.only:
            python = sys.executable
            if name == "pythae":
                python = C.PYTHAE_PYTHON
                if not python.exists():
                    runs[name].append({"error": "no benchmarks/.venv-pythae; run: bash benchmarks/setup_pythae.sh"})
                    continue
            t0 = time.perf_counter()
            result = C.run_measured(
                python,
                Path(__file__),
                ["--worker", name, *common],
                args.timeout,
                quiet_wait=args.quiet_wait,
                max_noise=args.max_noise,
                retries=args.retries,
            )
            runs[name].append(result)
            print(
                f"#   [{rep + 1}/{args.repeats}] {name}: {result.get('error', 'ok')} "
                f"({time.perf_counter() - t0:.0f} s, "
                f"{result['tries']} tr{'y' if result['tries'] == 1 else 'ies'}; other processes: "
                f"{result['others_before']:.1f} cores before, {result.get('others_cores', float('nan')):.1f} during)",
                flush=True,
            )
    results = {name: _merge(r, args.max_noise) for name, r in runs.items()}

    limit = results.get("limit", {})
    limit_sps = limit.get("samples_per_s")
    base = results.get("vaelab", {})
    base_sps = base["n"] / C.median(base["epoch_seconds"]) if "epoch_seconds" in base else None
    rows = []
    for name in args.only:
        r = results[name]
        if "error" in r:
            rows.append([LABELS[name], f"n/a ({r['error']})", "", "", "", "", "", "", "", "", "", ""])
            continue
        if name == "limit":
            rows.append(
                [
                    LABELS[name],
                    C.fmt(limit_sps, ",.0f"),
                    C.fmt(args.n_train / limit_sps, ".2f"),
                    "",
                    "",
                    "",
                    C.fmt(r["peak_rss_mb"], ".0f"),
                    C.fmt(limit_sps / base_sps if base_sps else None, ".2f"),
                    "100%",
                    "matmuls only",
                    f"{r['others_cores']:.1f}",
                    r["runs"],
                ]
            )
            continue
        sec = r["epoch_seconds"]
        sps = r["n"] / C.median(sec)
        rows.append(
            [
                LABELS[name],
                C.fmt(sps, ",.0f"),
                f"{C.median(sec):.2f} [{min(sec):.2f}-{max(sec):.2f}]",
                C.fmt(C.median(r["epoch_cpu"]), ".2f"),
                f"{C.median([f[0] for f in r['epoch_faults']]):.2f} / "
                f"{C.median([f[1] for f in r['epoch_faults']]) / (r['n'] / BATCH):.0f}",
                C.fmt(r["final_loss"], ".1f"),
                f"{r['peak_rss_mb']:.0f} ({r['peak_rss_mb'] - r['rss_ready_mb']:+.0f})",
                C.fmt(sps / base_sps if base_sps else None, ".2f"),
                C.fmt(100 * sps / limit_sps if limit_sps else None, ".0f") + ("%" if limit_sps else ""),
                r["how"],
                f"{r['others_cores']:.1f}",
                r["runs"],
            ]
        )
    print()
    print(
        C.table(
            [
                "contender",
                "samples/s",
                "s/epoch median [min-max]",
                "CPU s/epoch",
                "sys s/epoch / page faults/step",
                "last-epoch train loss (nats)",
                "peak RSS MiB (+ in fit)",
                "x vaelab",
                "of limit",
                "epoch timing",
                "others' cores",
                "quiet runs",
            ],
            rows,
            align="lrrrrrrrrlrr",
        )
    )
    if "matmuls" in limit:
        print(
            f"\nmatmul limit: {len(limit['matmuls'])} matmuls per step, {limit['step_seconds'] * 1e3:.2f} ms/step "
            f"= {limit['gflops']:.1f} GFLOP/s; forward {limit['forward_flops_per_sample'] / 1e6:.3f} MFLOP/sample; "
            f"the 3 x forward FLOPs convention at that rate gives {limit['samples_per_s_3x']:,.0f} samples/s"
        )
        print(
            C.table(
                ["matmul (m x k @ k x n, layout)", "us", "GFLOP/s"],
                [
                    [
                        f"{t['m']}x{t['k']} @ {t['k']}x{t['n']} ({t['layout']})",
                        f"{t['seconds'] * 1e6:.1f}",
                        f"{t['gflops']:.1f}",
                    ]
                    for t in limit["matmuls"]
                ],
            )
        )
    print(
        f"\n# loadavg after: {C.machine()['loadavg'][0]:.2f}. x vaelab = samples/s over vaelab's (> 1: faster). "
        f"Peak RSS includes the data set ({args.n_train * 784 * 4 / 2**20:.0f} MiB as float32, a quarter as uint8); "
        "(+N) is the growth over the RSS just before training (libraries imported, data loaded). "
        "others' cores: CPU used by other processes during the runs used (worst), the noise indicator; quiet runs: "
        "runs within --max-noise, whose epochs are pooled (0/N: none was quiet, all pooled)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
