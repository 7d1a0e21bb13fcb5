"""Evaluation throughput: importance-sampled log-likelihood, its memory in K, and PCA fit time.

One MLP VAE (784-400-20, Bernoulli decoder) is fitted briefly with vaelab on Fashion-MNIST and its
weights are shared by every contender, so the log-likelihoods they print must agree (up to Monte
Carlo error) and only the speed differs. Each contender runs in its own process.

* ``vaelab``: ``vaelab.metrics.iw_log_likelihood(module, x, K)`` on the first ``--n-eval`` test
  images (or, if that function does not exist, ``vaelab.models.log_importance_weights`` chunked
  over samples with a running logsumexp written here — marked as such);
* ``pythae``: pythae 0.1.2's ``VAE.get_nll(x, n_samples=K)`` on the first ``--n-pythae`` test
  images, with the same weights (its encoder returns log(scale^2) of vaelab's posterior, its
  decoder sigmoid(logits)); run with benchmarks/.venv-pythae/bin/python;
* ``limit``: the decoder matmuls one (example, sample) pair needs, timed alone with torch.matmul at
  the row count of one of vaelab's passes (2048) and at 8192, the faster counting — forward only,
  elementwise work ignored;
* memory: peak RSS growth of one ``iw_log_likelihood`` call on ``--n-mem`` images at K = 100, 1000,
  5000 (flat when the samples are chunked), and of the unchunked ``log_importance_weights`` for
  contrast at the smaller K;
* PCA: ``vaelab.PCA(20).fit`` against scikit-learn's PCA on the same 60000 x 784 float32 array.

Usage::

    PYTHONPATH=src /work/venv/bin/python benchmarks/bench_eval.py [--k 1000] [--n-eval 1000] [--n-pythae 100]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import _common as C

LATENT, HIDDEN, MIN_SCALE = 20, 400, 1e-5
IW_ROWS = (
    64 * 32,
    64 * 128,
)  # decoder rows per pass: iw_estimate's defaults (64 examples x 32 samples), its old 64 x 128


# --------------------------------------------------------------------------------------------
# workers


def _vaelab_module(weights: str):
    C.import_vaelab()
    import torch

    from vaelab.likelihoods import make_likelihood
    from vaelab.models import VAE

    module = VAE(784, LATENT, (HIDDEN,), make_likelihood("bernoulli", (784,)))
    module.load_state_dict(torch.load(weights))
    return module.eval()


def worker_fit(args) -> dict:
    vaelab = C.import_vaelab()
    import torch

    X = C.fashion_mnist("train", args.n_train)
    est = vaelab.VAE(
        latent_dim=LATENT,
        hidden=(HIDDEN,),
        likelihood="bernoulli",
        epochs=args.fit_epochs,
        batch_size=128,
        lr=1e-3,
        validation_fraction=0,
        patience=None,
        random_state=0,
    ).fit(X)
    torch.save(est.module_.state_dict(), args.weights)
    # the four Linear layers in order (encoder 784-400, 400-40; decoder 20-400, 400-784), for pythae
    linears = [
        m
        for part in (est.module_.encoder, est.module_.decoder)
        for m in part.modules()
        if isinstance(m, torch.nn.Linear)
    ]
    torch.save([(m.weight.detach(), m.bias.detach()) for m in linears], args.weights + ".linears")
    return {"final_loss": est.history_["train"]["loss"][-1]}


def _iw_function():
    """vaelab's importance-sampled log-likelihood, or a chunked stand-in built on its public pieces."""
    import torch

    try:
        from vaelab.metrics import iw_log_likelihood

        return iw_log_likelihood, "vaelab.metrics.iw_log_likelihood"
    except ImportError:
        from vaelab.models import log_importance_weights

        @torch.no_grad()
        def chunked(model, x, n_samples, chunk=128, batch=64):
            x = torch.as_tensor(x)
            out = []
            for i in range(0, len(x), batch):
                xb = x[i : i + batch]
                lse = torch.full((len(xb),), -math.inf, dtype=torch.float64)
                for k in range(0, n_samples, chunk):
                    w = log_importance_weights(model, xb, min(chunk, n_samples - k)).double()  # (c, b)
                    lse = torch.logaddexp(lse, torch.logsumexp(w, 0))
                out.append(lse - math.log(n_samples))
            return torch.cat(out).float()

        return chunked, "log_importance_weights, chunked in bench_eval.py (no vaelab.metrics.iw_log_likelihood)"


def worker_vaelab(args) -> dict:
    import torch

    C.set_threads(args.threads)
    module = _vaelab_module(args.weights)
    iw, how = _iw_function()
    x = C.fashion_mnist("test", args.n_eval)
    iw(module, x[:8], args.k)  # warm-up
    rss = C.rss_mb()
    t0 = time.perf_counter()
    ll = iw(module, x, args.k)
    seconds = time.perf_counter() - t0
    n_p = min(args.n_pythae, len(x))
    return {
        "seconds": seconds,
        "n": len(x),
        "k": args.k,
        "mean_ll": float(ll.mean()),
        "mean_ll_first": float(ll[:n_p].mean()),
        "n_first": n_p,
        "how": how,
        "peak_rss_mb": C.peak_rss_mb(),
        "rss_ready_mb": rss,
        "threads": torch.get_num_threads(),
    }


def worker_memory(args) -> dict:
    """Peak RSS growth of one call at K = args.k on args.n_mem examples."""
    import torch

    C.set_threads(args.threads)
    module = _vaelab_module(args.weights)
    x = torch.from_numpy(C.fashion_mnist("test", args.n_mem))
    if args.naive:
        from vaelab.models import log_importance_weights

        how = "log_importance_weights, unchunked"
        fn = torch.no_grad()(lambda m, xb, k: torch.logsumexp(log_importance_weights(m, xb, k), 0) - math.log(k))
    else:
        fn, how = _iw_function()
    fn(module, x[:2], 10)  # warm-up: first-call allocations are not the metric's
    rss = C.rss_mb()
    peak_before = C.peak_rss_mb()
    t0 = time.perf_counter()
    ll = fn(module, x, args.k)
    seconds = time.perf_counter() - t0
    return {
        "k": args.k,
        "n": len(x),
        "how": how,
        "rss_ready_mb": rss,
        "peak_rss_mb": C.peak_rss_mb(),
        "peak_before_mb": peak_before,
        "seconds": seconds,
        "mean_ll": float(ll.mean()),
    }


def worker_pythae(args) -> dict:
    import logging

    import numpy as np
    import torch
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from torch import nn
    from torch.nn import functional as F

    logging.getLogger("pythae").setLevel(logging.WARNING)
    C.set_threads(args.threads)

    class Encoder(BaseEncoder):  # vaelab's posterior: loc, softplus(raw) + 1e-5, as a log-variance
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(784, HIDDEN), nn.Linear(HIDDEN, 2 * LATENT)

        def forward(self, x):
            loc, raw = self.fc2(torch.relu(self.fc1(x.reshape(len(x), -1)))).chunk(2, dim=-1)
            return ModelOutput(embedding=loc, log_covariance=2 * torch.log(F.softplus(raw) + MIN_SCALE))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, 784)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.fc4(torch.relu(self.fc3(z)))))

    model = VAE(VAEConfig(input_dim=(784,), latent_dim=LATENT, reconstruction_loss="bce"), Encoder(), Decoder())
    linears = torch.load(args.weights + ".linears")
    with torch.no_grad():
        for layer, (weight, bias) in zip(
            [model.encoder.fc1, model.encoder.fc2, model.decoder.fc3, model.decoder.fc4], linears, strict=True
        ):
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
    model.eval()
    x = torch.from_numpy(C.fashion_mnist("test", args.n_pythae))
    model.get_nll(x[:2], n_samples=args.k)  # warm-up
    rss = C.rss_mb()
    t0 = time.perf_counter()
    mean_ll = model.get_nll(x, n_samples=args.k)  # returns the mean log-likelihood (higher is better)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "n": len(x),
        "k": args.k,
        "mean_ll": float(np.mean(mean_ll)),
        "how": "VAE.get_nll (one example at a time, 100 samples per pass, autograd on)",
        "peak_rss_mb": C.peak_rss_mb(),
        "rss_ready_mb": rss,
        "threads": torch.get_num_threads(),
    }


def worker_limit(args) -> dict:
    import torch

    C.set_threads(args.threads)
    best = None
    for rows in IW_ROWS:
        shapes = [((rows, LATENT), (LATENT, HIDDEN), "nt"), ((rows, HIDDEN), (HIDDEN, 784), "nt")]
        timings = C.time_matmuls(shapes)
        seconds = sum(t["seconds"] for t in timings)
        if best is None or rows / seconds > best["samples_per_s"]:
            best = {
                "matmuls": timings,
                "rows": rows,
                "samples_per_s": rows / seconds,
                "gflops": sum(2 * t["m"] * t["k"] * t["n"] for t in timings) / seconds / 1e9,
            }
    return {**best, "peak_rss_mb": C.peak_rss_mb(), "threads": torch.get_num_threads()}


def worker_pca(args) -> dict:
    import numpy as np

    C.set_threads(args.threads)
    X = C.fashion_mnist("train", args.n_train)
    if args.pca == "vaelab":
        vaelab = C.import_vaelab()

        def fit():
            return vaelab.PCA(latent_dim=args.pca_k, preprocessing="none").fit(X).noise_variance_
    else:
        from sklearn.decomposition import PCA

        solver = args.pca.split(":", 1)[1]
        dtype = np.float64 if solver == "full" else np.float32

        def fit():
            return PCA(n_components=args.pca_k, svd_solver=solver, random_state=0).fit(X.astype(dtype)).noise_variance_

    rss = C.rss_mb()
    seconds = []
    for _ in range(args.pca_repeats):
        t0 = time.perf_counter()
        noise = fit()
        seconds.append(time.perf_counter() - t0)
    return {"seconds": seconds, "noise_variance": float(noise), "rss_ready_mb": rss, "peak_rss_mb": C.peak_rss_mb()}


WORKERS = {
    "fit": worker_fit,
    "vaelab": worker_vaelab,
    "memory": worker_memory,
    "pythae": worker_pythae,
    "limit": worker_limit,
    "pca": worker_pca,
}
PCA_CONTENDERS = {
    "vaelab": "vaelab.PCA (sklearn 'auto' on a float64 copy)",
    "sklearn:full": "sklearn PCA svd_solver='full' (float64)",
    "sklearn:covariance_eigh": "sklearn PCA svd_solver='covariance_eigh' (float32)",
    "sklearn:randomized": "sklearn PCA svd_solver='randomized' (float32)",
    "sklearn:auto": "sklearn PCA default 'auto' (float32)",
}


# --------------------------------------------------------------------------------------------
# driver


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--k", type=int, default=1000, help="importance samples per example for the throughput table")
    p.add_argument("--n-eval", type=int, default=1000, help="test images for vaelab's throughput")
    p.add_argument("--n-pythae", type=int, default=100, help="test images for pythae's get_nll (slow)")
    p.add_argument("--n-mem", type=int, default=64, help="test images for the memory sweep")
    p.add_argument("--mem-k", type=int, nargs="+", default=[100, 1000, 5000], help="K values of the memory sweep")
    p.add_argument("--naive-max-k", type=int, default=1000, help="largest K for the unchunked contrast")
    p.add_argument("--n-train", type=int, default=60000, help="training images (VAE fit and PCA)")
    p.add_argument("--fit-epochs", type=int, default=2, help="epochs of the VAE whose weights are evaluated")
    p.add_argument("--pca-k", type=int, default=20)
    p.add_argument("--pca-repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads in every worker (0: torch's default)")
    p.add_argument(
        "--native-blas",
        action="store_true",
        help="run the PCA workers without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some machines)",
    )
    p.add_argument("--skip", nargs="*", default=[], choices=["iw", "memory", "pca"], help="sections to leave out")
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
        help="rerun a measurement when other processes used more cores than this during it",
    )
    p.add_argument("--retries", type=int, default=2, help="reruns allowed per measurement (see --max-noise)")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pca", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        C.write_result(args.result, WORKERS[args.worker](args))
        return 0

    info = C.machine()
    print(
        f"# bench_eval  {info['date']}  nproc={info['nproc']}  cpu={info['cpu']!r}  torch={info.get('torch')}"
        f"  threads={args.threads or info.get('torch_threads')}  loadavg={info['loadavg'][0]:.2f}",
        flush=True,
    )
    script = Path(__file__)
    base = ["--threads", str(args.threads), "--n-train", str(args.n_train)]

    def run(name, extra, python=sys.executable, drop_env=()):
        t0 = time.perf_counter()
        r = C.run_measured(
            python,
            script,
            ["--worker", name, *base, *extra],
            args.timeout,
            quiet_wait=args.quiet_wait,
            max_noise=args.max_noise,
            retries=args.retries,
            drop_env=drop_env,
        )
        print(
            f"#   {name} {' '.join(extra[-2:])}: {r.get('error', 'ok')} "
            f"({time.perf_counter() - t0:.0f} s, {r['tries']} "
            f"tr{'y' if r['tries'] == 1 else 'ies'}; other processes: {r['others_before']:.1f} cores before, "
            f"{r.get('others_cores', float('nan')):.1f} during)",
            flush=True,
        )
        return r

    with tempfile.TemporaryDirectory() as tmp:
        weights = str(Path(tmp) / "vae.pt")
        w = ["--weights", weights]
        if "iw" not in args.skip or "memory" not in args.skip:
            fitted = run("fit", [*w, "--fit-epochs", str(args.fit_epochs)])
            if "error" in fitted:
                print(f"cannot fit the VAE to evaluate: {fitted['error']}")
                return 1
            print(
                f"# VAE fitted for {args.fit_epochs} epoch(s) on {args.n_train} images; last train loss "
                f"{fitted['final_loss']:.1f} nats"
            )

        if "iw" not in args.skip:
            k = ["--k", str(args.k)]
            res = {"vaelab": run("vaelab", [*w, *k, "--n-eval", str(args.n_eval), "--n-pythae", str(args.n_pythae)])}
            if C.PYTHAE_PYTHON.exists():
                res["pythae"] = run("pythae", [*w, *k, "--n-pythae", str(args.n_pythae)], python=C.PYTHAE_PYTHON)
            else:
                res["pythae"] = {"error": "no benchmarks/.venv-pythae; run: bash benchmarks/setup_pythae.sh"}
            res["limit"] = run("limit", [])
            limit = res["limit"].get("samples_per_s")
            v = res["vaelab"]
            v_rate = v["n"] * v["k"] / v["seconds"] if "seconds" in v else None
            rows = []
            for name, label in [
                ("vaelab", "vaelab"),
                ("pythae", "pythae 0.1.2 get_nll"),
                ("limit", "decoder matmul limit"),
            ]:
                r = res[name]
                if "error" in r:
                    rows.append([label, f"n/a ({r['error']})", "", "", "", "", "", ""])
                elif name == "limit":
                    rows.append(
                        [
                            label,
                            f"{limit:,.0f}",
                            "",
                            "",
                            C.fmt(limit / v_rate if v_rate else None, ".2f"),
                            "100%",
                            "",
                            f"{r['rows']} rows x (20-400-784), {r['gflops']:.1f} GFLOP/s",
                        ]
                    )
                else:
                    rate = r["n"] * r["k"] / r["seconds"]
                    ll = r["mean_ll"] if name == "pythae" else r["mean_ll_first"]
                    n_ll = r["n"] if name == "pythae" else r["n_first"]
                    rows.append(
                        [
                            label,
                            f"{rate:,.0f}",
                            f"{r['n']} x {r['k']}",
                            f"{r['seconds']:.1f}",
                            C.fmt(rate / v_rate if v_rate else None, ".3g"),
                            C.fmt(100 * rate / limit if limit else None, ".1f") + "%",
                            f"{ll:.1f} (first {n_ll})",
                            r["how"],
                        ]
                    )
            print(f"\nImportance-sampled log-likelihood, K = {args.k}, Fashion-MNIST test images:")
            print(
                C.table(
                    [
                        "contender",
                        "(examples x K)/s",
                        "examples x K",
                        "seconds",
                        "x vaelab",
                        "of limit",
                        "mean log p(x) nats",
                        "how",
                    ],
                    rows,
                    align="lrrrrrrl",
                )
            )
            if "error" not in v:
                print(
                    f"vaelab mean log p(x) over all {v['n']} images: {v['mean_ll']:.1f} nats; "
                    f"peak RSS {v['peak_rss_mb']:.0f} MiB"
                )

        if "memory" not in args.skip:
            rows = []
            for naive in (False, True):
                for kk in args.mem_k:
                    if naive and kk > args.naive_max_k:
                        continue
                    r = run("memory", [*w, "--n-mem", str(args.n_mem), *(["--naive"] if naive else []), "--k", str(kk)])
                    if "error" in r:
                        rows.append(["unchunked" if naive else "iw", kk, f"n/a ({r['error']})", "", "", ""])
                        continue
                    grow = r["peak_rss_mb"] - max(r["rss_ready_mb"], r["peak_before_mb"])
                    rows.append(
                        [
                            r["how"],
                            kk,
                            f"{r['peak_rss_mb']:.0f}",
                            f"{max(grow, 0):+.0f}",
                            f"{r['seconds']:.1f}",
                            f"{r['mean_ll']:.1f}",
                        ]
                    )
            print(f"\nPeak memory of one call on {args.n_mem} test images (own process each):")
            print(
                C.table(
                    ["function", "K", "peak RSS MiB", "growth in call MiB", "seconds", "mean log p(x)"],
                    rows,
                    align="lrrrrr",
                )
            )

    if "pca" not in args.skip:
        rows, base_s = [], None
        blas_env = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if args.native_blas else ()
        for name, label in PCA_CONTENDERS.items():
            r = run(
                "pca",
                ["--pca-k", str(args.pca_k), "--pca-repeats", str(args.pca_repeats), "--pca", name],
                drop_env=blas_env,
            )
            if "error" in r:
                rows.append([label, f"n/a ({r['error']})", "", "", "", ""])
                continue
            s = C.median(r["seconds"])
            base_s = base_s or s
            rows.append(
                [
                    label,
                    f"{s:.2f}",
                    f"[{min(r['seconds']):.2f}-{max(r['seconds']):.2f}]",
                    f"{base_s / s:.2f}",
                    f"{r['peak_rss_mb']:.0f} ({r['peak_rss_mb'] - r['rss_ready_mb']:+.0f})",
                    f"{r['noise_variance']:.6g}",
                ]
            )
        blas = {
            k: os.environ.get(k)
            for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
            if k in os.environ and not args.native_blas
        }
        print(
            f"\nPCA fit, {args.pca_k} components, {args.n_train} x 784 float32 Fashion-MNIST "
            f"(median of {args.pca_repeats}; OpenBLAS env: {blas or 'not set'}):"
        )
        print(
            C.table(
                ["fit", "seconds", "[min-max]", "speed x vaelab", "peak RSS MiB (+ in fit)", "noise variance"],
                rows,
                align="lrrrrr",
            )
        )
    print(f"\n# loadavg after: {C.machine()['loadavg'][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
