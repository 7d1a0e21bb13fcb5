"""torch.compile on CPU against eager, on vaelab's training loop and its importance-sampled evaluation.

The model is vaelab's MLP VAE 784-400-20 with a Bernoulli decoder (``vaelab.models.VAE``), built
from the same seed in every run. Each (path, mode) pair runs in its own process, so compilation
caches are never shared; modes alternate within each round:

* path ``train``: ``vaelab.train.train`` (the loop ``VAE.fit`` runs: Adam, batch 128, lr 1e-3, no
  validation, no early stopping) for ``--epochs`` epochs on ``--n-train`` Fashion-MNIST images in
  [0, 1]. The first epoch includes compilation; the others are the steady state.
* path ``eval``: ``vaelab.metrics.iw_estimate(module, x, K)`` on the first ``--n-eval`` test images,
  called ``--calls`` times with the same seed; the first call includes compilation.
* modes: ``eager``; ``networks``: ``torch.compile`` of the encoder and decoder networks, put back
  in the module (so the loop and the metric are vaelab's own); ``function``: ``torch.compile`` of the
  whole per-batch function, ``module.loss`` for training and ``log_weight_terms`` for the
  evaluation (vaelab.metrics.likelihood's reference to it is replaced in that process).

Same work in every mode: the same batches, seeds and number of calls; the losses and likelihoods
printed must agree to float32 noise. A mode whose compilation fails (no compiler, a dynamo error)
is reported with its error instead of a time. Usage::

    PYTHONPATH=src python benchmarks/bench_compile.py [--epochs 3] [--n-train 30000] [--n-eval 1000] [--k 1000]
    PYTHONPATH=src python benchmarks/bench_compile.py --quick      # a smoke run: tiny sizes, 1 thread
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _common as C
import _contenders as K

PATHS = ("train", "eval")
MODES = ("eager", "networks", "function")


# --------------------------------------------------------------------------------------------
# worker


def _module(seed: int, x_init):
    C.import_vaelab()
    import torch

    from vaelab.likelihoods import make_likelihood
    from vaelab.models import VAE

    torch.manual_seed(seed)
    module = VAE(784, K.LATENT, (K.HIDDEN,), make_likelihood("bernoulli", (784,)))
    module.initialise(torch.from_numpy(x_init))
    return module


def _compiled(module, path: str, mode: str) -> None:
    """Apply ``mode`` to ``module`` (and to vaelab's evaluation function) in place."""
    import torch

    if mode == "eager":
        return
    if not hasattr(torch, "compile"):
        raise RuntimeError(f"torch {torch.__version__} has no torch.compile")
    if mode == "networks":  # nn.Module.compile() would be skipped: torch.nn's own _call_impl is in dynamo's skipfiles
        module.encoder = torch.compile(module.encoder)
        module.decoder = torch.compile(module.decoder)
    elif path == "train":
        module.loss = torch.compile(module.loss)
    else:
        import vaelab.metrics.likelihood as likelihood

        likelihood.log_weight_terms = torch.compile(likelihood.log_weight_terms)


def _graphs() -> int | None:
    """Graphs dynamo compiled in this process so far (None where torch does not say)."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except (ImportError, KeyError, TypeError):
        return None


def worker(args) -> dict:
    import torch

    C.set_threads(args.threads)
    path, mode = args.worker.split(":")
    X = C.fashion_mnist("train", args.n_train)
    module = _module(args.seed, X[:256])
    from vaelab.metrics import iw_estimate
    from vaelab.train import TrainConfig, seeded, train

    x_eval = torch.from_numpy(C.fashion_mnist("test", args.n_eval))
    result: dict = {"path": path, "mode": mode, "threads": torch.get_num_threads(), "seconds": []}
    import torch._dynamo  # noqa: F401  (the first torch.optim.Adam imports it, ~1.5 s: in no mode's time)

    t0 = time.perf_counter()  # imports and data loading above are not timed
    try:
        _compiled(module, path, mode)
        if path == "train":
            stamps: list[float] = []
            config = TrainConfig(epochs=args.epochs, batch_size=K.BATCH, lr=K.LR, patience=None, shuffle_seed=args.seed)
            with seeded(args.seed, torch.device("cpu")):
                history = train(
                    module,
                    torch.from_numpy(X),
                    None,
                    config,
                    epoch_hook=lambda m, e: stamps.append(time.perf_counter()),
                )
            stamps.append(time.perf_counter())
            result["seconds"] = [b - a for a, b in zip(stamps[:-1], stamps[1:], strict=True)]
            result["value"] = history.train["loss"][-1]
        else:
            module.eval()
            for _ in range(args.calls):
                t1 = time.perf_counter()
                estimate = iw_estimate(module, x_eval, args.k, seed=args.seed)
                result["seconds"].append(time.perf_counter() - t1)
            result["value"] = float(estimate.log_likelihood.mean())
    except Exception as exc:  # a failed compilation is a result, not a crash
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        result["error"] = f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
    result["total"] = time.perf_counter() - t0
    result["graphs"] = _graphs()
    return result


# --------------------------------------------------------------------------------------------
# driver


def _steady(r: dict) -> float | None:
    """Median seconds of the epochs/calls after the first (the first alone when there is one)."""
    s = r.get("seconds") or []
    return C.median(s[1:]) if len(s) > 1 else (s[0] if s else None)


def summarise(runs: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for key, mine in runs.items():
        path, mode = key.split(":")
        eager = runs.get(f"{path}:eager", [])
        ok = [r for r in mine if "error" not in r]
        pairs = [(a, b) for a, b in zip(mine, eager, strict=False) if "error" not in a and "error" not in b]
        rows.append(
            {
                "path": path,
                "mode": mode,
                "errors": sorted({r["error"] for r in mine if "error" in r}),
                "first": [r["seconds"][0] for r in ok],
                "steady": [_steady(r) for r in ok],
                "total": [r["total"] for r in ok],
                "steady_ratio": [_steady(a) / _steady(b) for a, b in pairs],
                "total_ratio": [a["total"] / b["total"] for a, b in pairs],
                "value": C.median([r["value"] for r in ok]) if ok else None,
                "graphs": ok[-1]["graphs"] if ok else None,
                "others_cores": max((r["others_cores"] for r in mine if "others_cores" in r), default=float("nan")),
            }
        )
    return rows


def _spread(xs: list[float]) -> str:
    return f"{C.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]" if xs else ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--epochs", type=int, default=3, help="training epochs per run (the first compiles)")
    p.add_argument("--n-train", type=int, default=30000, help="Fashion-MNIST training images")
    p.add_argument("--n-eval", type=int, default=1000, help="Fashion-MNIST test images evaluated")
    p.add_argument("--k", type=int, default=1000, help="importance samples per test image")
    p.add_argument("--calls", type=int, default=3, help="evaluation calls per run (the first compiles)")
    p.add_argument("--repeats", type=int, default=3, help="rounds; the modes alternate within each")
    p.add_argument("--quick", action="store_true", help="smoke run: 1,024 images, 2 epochs, 32 x K=50, 1 thread")
    C.add_worker_flags(p, "bench_compile")
    args = p.parse_args(argv)

    if args.worker:
        C.write_result(args.result, worker(args))
        return 0
    if args.quick:
        args.n_train, args.epochs, args.n_eval, args.k, args.repeats = 1024, 2, 32, 50, 1
        args.threads, args.quiet_wait, args.max_noise = args.threads or 1, 0, None

    print(C.header("bench_compile", args), flush=True)
    print(
        f"# train: {args.epochs} epochs of n={args.n_train}, batch {K.BATCH}; eval: iw_estimate on {args.n_eval} "
        f"test images, K={args.k}, {args.calls} calls; {args.repeats} round(s)",
        flush=True,
    )
    keys = [f"{path}:{mode}" for path in args.paths for mode in args.modes]
    runs: dict[str, list[dict]] = {k: [] for k in keys}
    drop_env, set_env = C.thread_env(args.threads)
    common = [
        *("--epochs", str(args.epochs), "--n-train", str(args.n_train), "--n-eval", str(args.n_eval)),
        *("--k", str(args.k), "--calls", str(args.calls), "--threads", str(args.threads), "--seed", str(args.seed)),
    ]
    for rnd in range(args.repeats):
        for path in args.paths:
            modes = args.modes[rnd % len(args.modes) :] + args.modes[: rnd % len(args.modes)]
            for mode in modes:
                t0 = time.perf_counter()
                r = C.run_measured(
                    sys.executable,
                    Path(__file__),
                    ["--worker", f"{path}:{mode}", *common],
                    args.timeout,
                    quiet_wait=args.quiet_wait,
                    max_noise=args.max_noise,
                    retries=args.retries,
                    drop_env=drop_env,
                    set_env=set_env,
                )
                runs[f"{path}:{mode}"].append(r)
                print(
                    f"#   [{rnd + 1}/{args.repeats}] {path} {mode}: {r.get('error', 'ok')} "
                    f"({time.perf_counter() - t0:.0f} s; others {r.get('others_cores', float('nan')):.1f} cores)",
                    flush=True,
                )
    summary = summarise(runs)
    rows = [
        [
            r["path"],
            r["mode"],
            _spread(r["first"]) or "n/a (" + "; ".join(r["errors"]) + ")",
            _spread(r["steady"]),
            _spread(r["total"]),
            _spread(r["steady_ratio"]) if r["mode"] != "eager" else "",
            _spread(r["total_ratio"]) if r["mode"] != "eager" else "",
            C.fmt(r["value"], ".3f"),
            C.fmt(r["graphs"], "d") if r["mode"] != "eager" else "",
            C.fmt(r["others_cores"], ".1f"),
        ]
        for r in summary
    ]
    print()
    print(
        C.table(
            [
                "path",
                "mode",
                "first epoch/call s",
                "steady s",
                "total s",
                "steady / eager",
                "total / eager",
                "loss or log p(x)",
                "graphs",
                "others' cores",
            ],
            rows,
            align="llrrrrrrrr",
        )
    )
    print(
        "\n# median [min-max] over rounds; ratios paired per round (< 1: compiled is faster). steady: the epochs "
        "(train) or calls (eval) after the first; total: the whole run, compilation included. loss: the last "
        "epoch's training loss; log p(x): the mean estimate, nats. graphs: graphs dynamo compiled in the run."
    )
    document = {
        "machine": C.machine(),
        "commit": C.commit(),
        "seed": args.seed,
        "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "result")},
        "summary": summary,
        "runs": runs,
    }
    return C.save_document(args.json, document)


if __name__ == "__main__":
    sys.exit(main())
