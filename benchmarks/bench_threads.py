"""Thread oversubscription: two vaelab fits at once on a small machine, with default and with 1 thread.

Each fit is ``vaelab.VAE(latent_dim=20, hidden=(400,), likelihood="bernoulli", preprocessing="none",
epochs=E, validation_fraction=0, patience=None, random_state=SEED).fit(X)`` on the first
``--n-train`` Fashion-MNIST images in [0, 1] (or, with ``--data digits``, scikit-learn's 1,797 8x8
digits divided by 16: short steps, where the issue saw a 10x collapse), in its own process.
Scenarios (their order rotates each round):

* ``alone``: one fit, torch's and OpenBLAS's default threads (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS
  and MKL_NUM_THREADS removed from its environment);
* ``pair``: two such fits started together;
* ``alone-1``: one fit with ``OMP_NUM_THREADS=1`` (and the BLAS variables) and ``torch.set_num_threads(1)``;
* ``pair-1``: two such fits started together.

The two processes of a pair load their data and import their libraries first, then wait for a
common start instant, so that their fits overlap from the first batch. Reported: each fit's wall
time (the ``fit`` call), the collapse ratio (a pair's fit time over the same setting's lone fit,
and over the default lone fit), and the makespan of a pair (first start to last end) against two
lone fits run one after the other. Usage::

    PYTHONPATH=src python benchmarks/bench_threads.py [--epochs 3] [--n-train 10000] [--repeats 3]
    PYTHONPATH=src python benchmarks/bench_threads.py --quick      # a smoke run: tiny sizes
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common as C
import _contenders as K

SCENARIOS = {"alone": (1, 0), "pair": (2, 0), "alone-1": (1, 1), "pair-1": (2, 1)}  # name: (processes, threads)


def worker(args) -> dict:
    import torch

    vaelab = C.import_vaelab()
    C.set_threads(args.threads)
    if args.data == "digits":
        from sklearn.datasets import load_digits

        X = (load_digits().data / 16).astype("float32")
    else:
        X = C.fashion_mnist("train", args.n_train)
    est = K.vaelab_vae(vaelab, args.epochs, args.seed)
    late = max(0.0, time.time() - args.start_at)  # > 0: this process was not ready at the common start
    time.sleep(max(0.0, args.start_at - time.time()))
    start, t0 = time.time(), time.perf_counter()
    est.fit(X)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "start": start,
        "end": start + seconds,
        "late_s": late,
        "threads": torch.get_num_threads(),
        "final_loss": est.history_["train"]["loss"][-1],
    }


def run_scenario(args, name: str) -> dict:
    """Start the scenario's processes together; their results and the pair's makespan."""
    processes, threads = SCENARIOS[name]
    drop_env, set_env = C.thread_env(threads)
    before = C.wait_for_quiet(args.quiet_wait) if args.quiet_wait else float("nan")
    start_at = time.time() + args.start_delay
    cmd = [
        *("--worker", "fit", "--data", args.data, "--epochs", str(args.epochs), "--n-train", str(args.n_train)),
        *("--threads", str(threads), "--seed", str(args.seed), "--start-at", repr(start_at)),
    ]
    with ThreadPoolExecutor(processes) as pool:
        futures = [
            pool.submit(C.run_worker, sys.executable, Path(__file__), cmd, args.timeout, drop_env, set_env)
            for _ in range(processes)
        ]
        fits = [f.result() for f in futures]
    ok = [f for f in fits if "error" not in f]
    makespan = max(f["end"] for f in ok) - min(f["start"] for f in ok) if len(ok) == len(fits) else None
    return {"scenario": name, "fits": fits, "makespan": makespan, "others_before": before}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs per fit")
    p.add_argument("--data", choices=["fashion-mnist", "digits"], default="fashion-mnist")
    p.add_argument("--n-train", type=int, default=10000, help="Fashion-MNIST training images per fit")
    p.add_argument("--repeats", type=int, default=3, help="rounds over the scenarios")
    p.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start-delay", type=float, default=10, help="seconds from launch to the common start")
    p.add_argument("--quiet-wait", type=float, default=60, help="wait up to S s before each scenario for quiet")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per process")
    p.add_argument("--json", default="/tmp/vaelab-bench_threads.json", help="where the results go")
    p.add_argument("--quick", action="store_true", help="smoke run: 512 images, 1 epoch, one round")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)  # the worker's, set per scenario
    p.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        C.write_result(args.result, worker(args))
        return 0
    if args.quick:
        args.n_train, args.epochs, args.repeats, args.quiet_wait, args.start_delay = 512, 1, 1, 0, 12

    print(C.header("bench_threads", args), flush=True)
    data = "digits (1,797 x 64)" if args.data == "digits" else f"Fashion-MNIST n={args.n_train} (x 784)"
    print(
        f"# {args.epochs} epochs of {data} per fit, hidden {K.HIDDEN}, {K.LATENT} latents, batch {K.BATCH}; "
        f"{args.repeats} round(s)",
        flush=True,
    )
    runs: dict[str, list[dict]] = {name: [] for name in args.only}
    for rnd in range(args.repeats):
        k = rnd % len(args.only)
        for name in args.only[k:] + args.only[:k]:
            r = run_scenario(args, name)
            runs[name].append(r)
            errors = [f["error"] for f in r["fits"] if "error" in f]
            times = ", ".join(f"{f['seconds']:.1f}" for f in r["fits"] if "seconds" in f)
            late = max((f.get("late_s", 0.0) for f in r["fits"]), default=0.0)
            print(
                f"#   [{rnd + 1}/{args.repeats}] {name}: {'; '.join(errors) or 'ok'} (fit s: {times}; "
                f"others {r['others_before']:.1f} cores before; latest start {late:.1f} s late)",
                flush=True,
            )

    def fit_times(name: str) -> list[float]:
        return [f["seconds"] for r in runs.get(name, []) for f in r["fits"] if "seconds" in f]

    alone = {0: C.median(fit_times("alone")), 1: C.median(fit_times("alone-1"))}
    rows, summary = [], {}
    for name in args.only:
        processes, threads = SCENARIOS[name]
        times = fit_times(name)
        spans = [r["makespan"] for r in runs[name] if r["makespan"] is not None]
        row = {
            "fit_seconds": times,
            "threads": sorted({f["threads"] for r in runs[name] for f in r["fits"] if "threads" in f}),
            "collapse_vs_same_threads_alone": C.median(times) / alone[threads] if times else None,
            "collapse_vs_default_alone": C.median(times) / alone[0] if times else None,
            "makespan": spans,
        }
        summary[name] = row
        rows.append(
            [
                name,
                str(processes),
                "/".join(map(str, row["threads"])) or "n/a",
                f"{C.median(times):.2f} [{min(times):.2f}-{max(times):.2f}]" if times else "n/a",
                C.fmt(row["collapse_vs_same_threads_alone"], ".2f") if processes == 2 else "",
                C.fmt(row["collapse_vs_default_alone"], ".2f"),
                f"{C.median(spans):.2f} (2 x alone: {2 * alone[threads]:.2f})" if processes == 2 and spans else "",
            ]
        )
    print()
    print(
        C.table(
            [
                "scenario",
                "processes",
                "torch threads",
                "fit s, median [min-max]",
                "collapse: / same threads alone",
                "/ default alone",
                "pair makespan s",
            ],
            rows,
            align="lrrrrrr",
        )
    )
    print(
        "\n# fit s: every fit of every round (a pair gives two). collapse: the median fit time over a lone fit's "
        "median (1.0: no slowdown). A fair share of 2 idle cores is one core per fit, so a pair should take about "
        "alone-1's time (its '/ default alone'); far above that is threads fighting over cores. makespan: first "
        "start to last end of a pair, against two lone fits in a row."
    )
    document = {
        "machine": C.machine(),
        "commit": C.commit(),
        "seed": args.seed,
        "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "result", "threads", "start_at")},
        "summary": summary,
        "runs": runs,
    }
    return C.save_document(args.json, document)


if __name__ == "__main__":
    sys.exit(main())
