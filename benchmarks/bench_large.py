"""Fitting a VAE on a ``.npy`` larger than the in-memory limit: peak RSS and the cost of reading batches.

Writes a float32 ``.npy`` of ``--rows`` rows of 784 values (default 1,370,000 rows: 4.0 GiB):
the Fashion-MNIST training images scaled to [0, 1], tiled. Then, each in its own process (so that
``ru_maxrss`` is its own), with the file's pages in the page cache ("warm") and evicted from it
with ``posix_fadvise(POSIX_FADV_DONTNEED)`` just before the process starts ("cold"):

* ``fit``: ``vaelab.data.load(path)`` and ``vaelab.VAE(latent_dim=20, hidden=(400,), epochs=1,
  validation_fraction=0, random_state=0).fit(X)``, the path users get. The epoch is the time spent
  in ``vaelab.train.train`` (one epoch, no validation); fetching batches is the time spent in
  ``MappedRows.__getitem__`` (reading the rows, converting them to float32, making a tensor),
  and reading the time spent in ``read_rows`` alone.
* ``reads``: no model; the same number of batches of 128 random rows (sorted within a batch,
  as fit reads them) read with ``read_rows``: what reading an epoch costs by itself.

Usage::

    PYTHONPATH=src /work/venv/bin/python benchmarks/bench_large.py [--rows 1370000] [--dir DIR] [--keep]

The file goes to a new folder under ``/tmp`` (or ``--dir``) and is removed afterwards unless
``--keep``; a kept file of the right shape is reused.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common as C
import numpy as np

FEATURES = 784
BATCH = 128  # VAE's default batch_size
FULL_ROWS = 1_370_000  # 1.37 M x 784 float32 = 4.0 GiB
FILE_NAME = "large.npy"


# --------------------------------------------------------------------------------------------
# workers (each runs in its own process)


class _Stopwatch:
    """Wraps a function, adding the seconds spent in it (and the number of calls) to its totals."""

    def __init__(self, fn):
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


def worker_fit(args) -> dict:
    vaelab = C.import_vaelab()
    import torch

    import vaelab.data.rows as rows_module
    from vaelab.estimators import neural

    C.set_threads(args.threads)
    epoch = neural.train = _Stopwatch(neural.train)
    reads = rows_module.read_rows = _Stopwatch(rows_module.read_rows)
    fetch = _Stopwatch(rows_module.MappedRows.__getitem__)
    rows_module.MappedRows.__getitem__ = lambda self, index: fetch(self, index)

    rss_start = C.rss_mb()
    t0 = time.perf_counter()
    X = vaelab.data.load(args.path).X_train
    load_s = time.perf_counter() - t0
    # A file shrunk with --rows to below the in-memory limit would be copied into memory: lower the
    # limit so that the on-disk path is measured at every size.
    forced = X.size * 4 <= rows_module.TRAIN_IN_MEMORY_LIMIT
    if forced:
        rows_module.TRAIN_IN_MEMORY_LIMIT = 0
    rss_loaded = C.rss_mb()
    est = vaelab.VAE(latent_dim=20, hidden=(400,), epochs=1, validation_fraction=0, random_state=0)
    t0 = time.perf_counter()
    est.fit(X)
    fit_s = time.perf_counter() - t0
    return {
        "load_s": load_s,
        "fit_s": fit_s,
        "epoch_s": epoch.seconds,
        "fetch_s": fetch.seconds,
        "read_s": reads.seconds,
        "batches": fetch.calls,
        "loss": est.history_["train"]["loss"][-1],
        "rss_start_mb": rss_start,
        "rss_loaded_mb": rss_loaded,
        "rss_end_mb": C.rss_mb(),
        "peak_rss_mb": C.peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "n": len(X),
        "forced": forced,
    }


def worker_reads(args) -> dict:
    C.import_vaelab()
    from vaelab.data._arrays import read_rows

    X = np.load(args.path, mmap_mode="r")
    order = np.random.default_rng(0).permutation(len(X))
    batches = [np.sort(b) for b in np.array_split(order, math.ceil(len(X) / BATCH))]
    rss_start = C.rss_mb()
    t0 = time.perf_counter()
    for rows in batches:
        read_rows(X, rows)
    return {
        "read_s": time.perf_counter() - t0,
        "batches": len(batches),
        "rss_start_mb": rss_start,
        "rss_end_mb": C.rss_mb(),
        "peak_rss_mb": C.peak_rss_mb(),
        "n": len(X),
    }


WORKERS = {"fit": worker_fit, "reads": worker_reads}


# --------------------------------------------------------------------------------------------
# driver


def write_npy(path: Path, n_rows: int) -> float:
    """Write ``n_rows`` tiled Fashion-MNIST rows (float32 in [0, 1]) as a .npy; returns seconds taken."""
    t0 = time.perf_counter()
    images = C.fashion_mnist("train")  # (60000, 784) float32
    header = {"descr": np.lib.format.dtype_to_descr(images.dtype), "fortran_order": False, "shape": (n_rows, FEATURES)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n_rows, len(images)):
            images[: n_rows - start].tofile(f)
        f.flush()
        os.fsync(f.fileno())  # written pages must be clean before they can be evicted
    return time.perf_counter() - t0


def existing_rows(path: Path) -> int | None:
    """Rows of a kept file from an earlier run, when it has the expected shape and size."""
    try:
        X = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return len(X) if X.dtype == np.float32 and X.shape[1:] == (FEATURES,) else None


def warm(path: Path) -> None:
    """Read the whole file once, so its pages are in the page cache."""
    with open(path, "rb", buffering=0) as f:
        buffer = bytearray(1 << 24)
        while f.readinto(buffer):
            pass


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (they are clean: written and synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def measure(run: str, path: Path, args) -> dict:
    """One run (``fit-warm``, ``reads-cold``, ...) in a process of its own, after waiting for a quiet
    machine; rerun when other processes kept more than ``--max-noise`` cores busy. The page cache is
    set up again before every try, so that a rerun of a cold run is cold too."""
    kind, cache = run.split("-")
    cmd = ["--worker", kind, "--path", str(path), "--threads", str(args.threads)]
    for attempt in range(args.retries + 1):
        before = C.wait_for_quiet(args.quiet_wait) if args.quiet_wait else float("nan")
        if cache == "warm":
            warm(path)
        else:
            evict(path)
        result = C.run_worker(sys.executable, Path(__file__), cmd, args.timeout)
        result["others_before"], result["tries"] = before, attempt + 1
        if "error" in result or result.get("others_cores", 0.0) <= args.max_noise:
            break
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--rows", type=int, default=FULL_ROWS, help="rows of 784 float32 values in the file (default: 4.0 GiB)"
    )
    p.add_argument("--dir", type=Path, help="folder for the file (default: a new folder under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the file (and reuse a kept one of the same shape)")
    p.add_argument(
        "--only",
        nargs="+",
        default=["fit-warm", "fit-cold", "reads-warm", "reads-cold"],
        choices=["fit-warm", "fit-cold", "reads-warm", "reads-cold"],
        help="runs, in this order",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads in the fit workers (0: torch's default)")
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
        help="rerun a run when other processes used more cores than this during it",
    )
    p.add_argument("--retries", type=int, default=1, help="reruns allowed per run (see --max-noise)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed per run")
    p.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        C.write_result(args.result, WORKERS[args.worker](args))
        return 0

    folder = args.dir or Path(tempfile.mkdtemp(prefix="vaelab-bench-large-", dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    size = 128 + args.rows * FEATURES * 4
    info = C.machine()
    print(
        f"# bench_large  {info['date']}  nproc={info['nproc']}  cpu={info['cpu']!r}  torch={info.get('torch')}"
        f"  threads={args.threads or info.get('torch_threads')}  loadavg={info['loadavg'][0]:.2f}",
        flush=True,
    )
    try:
        if existing_rows(path) == args.rows:
            print(f"# reusing {path}", flush=True)
        else:
            free = shutil.disk_usage(folder).free
            if free < size + (1 << 30):
                print(
                    f"not enough disk space in {folder}: the file needs {size / 2**30:.1f} GiB and 1 GiB "
                    f"to spare, {free / 2**30:.1f} GiB are free; use --dir or --rows",
                    file=sys.stderr,
                )
                return 1
            print(f"# writing {path} ...", flush=True)
            print(f"# wrote it in {write_npy(path, args.rows):.0f} s", flush=True)
        print(
            f"# {args.rows:,} rows x {FEATURES} float32 = {size / 2**30:.2f} GiB; batch {BATCH}; "
            f"VAE 784-400-20, one epoch, no validation",
            flush=True,
        )

        results = {}
        for run in args.only:
            t0 = time.perf_counter()
            results[run] = r = measure(run, path, args)
            print(
                f"#   {run}: {r.get('error', 'ok')} ({time.perf_counter() - t0:.0f} s, {r['tries']} "
                f"tr{'y' if r['tries'] == 1 else 'ies'}; other processes: {r['others_before']:.1f} cores before, "
                f"{r.get('others_cores', float('nan')):.1f} during)",
                flush=True,
            )
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
            if args.dir is None:
                folder.rmdir()

    print()
    print(table(results))
    fits = [r for name, r in results.items() if name.startswith("fit") and "error" not in r]
    if any(r["forced"] for r in fits):
        print(
            "\n(the file is below vaelab's in-memory limit, 1 GiB as float32: the fit workers lowered the "
            "limit so that fit still reads batches from disk)"
        )
    if fits:
        peak = max(r["peak_rss_mb"] for r in fits)
        share = max(r["fetch_s"] / r["epoch_s"] for r in fits)
        print(
            f"\ntargets: peak RSS {peak:.0f} MiB (< 1024: {'yes' if peak < 1024 else 'NO'}); fetching batches "
            f"{100 * share:.0f}% of the epoch at most (< 20%: {'yes' if share < 0.2 else 'NO'})"
        )
    print(
        f"# loadavg after: {C.machine()['loadavg'][0]:.2f}. share: of the epoch's seconds. Fetching = reading + "
        "converting to float32 + making a tensor; reading = read_rows alone. Other passes: fit's time outside the "
        "epoch (NaN check, value range, fingerprint, code mixture). A cold fit's own first passes fill the page "
        "cache, so its epoch reads mostly from memory; 'reads, cold' reads the epoch's batches from the disk. "
        "others' cores: CPU used by other processes during the run, the noise indicator."
    )
    return 0


def table(results: dict) -> str:
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name, f"n/a ({r['error']})"] + [""] * 8)
            continue
        if name.startswith("fit"):
            epoch = r["epoch_s"]
            rows.append(
                [
                    name,
                    f"{epoch:.1f}",
                    f"{r['fetch_s']:.1f} ({100 * r['fetch_s'] / epoch:.0f}%)",
                    f"{r['read_s']:.1f} ({100 * r['read_s'] / epoch:.0f}%)",
                    f"{r['fit_s'] - epoch:.1f}",
                    f"{r['load_s']:.1f}",
                    f"{r['peak_rss_mb']:.0f}",
                    f"{r['rss_loaded_mb']:.0f}",
                    f"{r['loss']:.1f}",
                    f"{r['others_cores']:.1f}",
                ]
            )
        else:
            rows.append(
                [
                    name,
                    "",
                    "",
                    f"{r['read_s']:.1f} ({r['batches']:,} batches)",
                    "",
                    "",
                    f"{r['peak_rss_mb']:.0f}",
                    "",
                    "",
                    f"{r['others_cores']:.1f}",
                ]
            )
    return C.table(
        [
            "run",
            "epoch s",
            "fetching batches s (share)",
            "reading s (share)",
            "other passes in fit s",
            "load s",
            "peak RSS MiB",
            "RSS after load MiB",
            "train loss (nats)",
            "others' cores",
        ],
        rows,
    )


if __name__ == "__main__":
    sys.exit(main())
