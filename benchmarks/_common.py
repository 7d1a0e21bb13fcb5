"""Shared helpers for the benchmarks: Fashion-MNIST from its IDX files, memory readings,
subprocess workers and plain-text tables.

Only numpy, gzip and the standard library at import time, so that the pythae worker (which runs in
its own venv without vaelab) can use it too. Every contender runs in its own process, so that
``ru_maxrss`` (the peak resident set size) belongs to that contender alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
FASHION_DIR = Path(os.environ.get("VAELAB_DATA_DIR", "/usr/share/datasets/fashion-mnist"))
PYTHAE_PYTHON = BENCH_DIR / ".venv-pythae" / "bin" / "python"

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, optionally gzipped) as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (magic {raw[:4]!r})")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=_IDX_DTYPES[dtype_code], offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(split: str = "train", n: int | None = None, uint8: bool = False) -> np.ndarray:
    """The first ``n`` Fashion-MNIST images of ``split``, flattened: (n, 784).

    float32 scaled to [0, 1], or the raw uint8 pixels (0..255) with ``uint8=True``.
    """
    prefix = {"train": "train", "test": "t10k"}[split]
    path = FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz"
    if not path.exists():
        path = path.with_suffix("")  # an unzipped copy
    images = read_idx(path)[:n]  # (n, 28, 28) uint8
    if uint8:
        return images.reshape(len(images), -1).copy()
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)


def import_vaelab():
    """``import vaelab``, from ``REPO/src`` when it is not already importable."""
    try:
        import vaelab
    except ImportError:
        sys.path.insert(0, str(REPO / "src"))
        import vaelab
    return vaelab


def set_threads(n: int | None) -> None:
    """``torch.set_num_threads(n)`` when ``n`` is given (0 or None: torch's default)."""
    if n:
        import torch

        torch.set_num_threads(n)


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(n: int | None) -> tuple[tuple[str, ...], dict[str, str]]:
    """``(drop_env, set_env)`` for a worker: ``n`` threads in OpenMP/OpenBLAS/MKL, or (0, None) their
    defaults, with any such variable of the caller's shell removed so that "default" means it."""
    if n:
        return (), dict.fromkeys(THREAD_VARS, str(n))
    return THREAD_VARS, {}


def rss_mb() -> float:
    """Current resident set size of this process, in MiB (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "loadavg": os.getloadavg(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def _cpu_busy_seconds() -> float:
    """CPU-seconds spent busy by the whole machine since boot (all cores, from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def others_load(seconds: float = 1.0) -> float:
    """Cores kept busy by other processes over the next ``seconds`` (this one sleeps)."""
    b0 = _cpu_busy_seconds()
    time.sleep(seconds)
    return (_cpu_busy_seconds() - b0) / seconds


def wait_for_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (up to ``max_wait`` s) until other processes use fewer than ``threshold`` cores.

    Returns the last reading.
    """
    deadline = time.monotonic() + max_wait
    load = others_load()
    while load >= threshold and time.monotonic() < deadline:
        time.sleep(4)
        load = others_load()
    return load


def run_worker(
    python: Path | str,
    script: Path,
    args: list[str],
    timeout: float,
    drop_env: tuple[str, ...] = (),
    set_env: dict[str, str] | None = None,
) -> dict:
    """Run ``python script --worker ...`` and return the JSON dict it writes; on failure {"error": why}.

    ``drop_env`` names environment variables removed for that process only; ``set_env`` adds some.
    """
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"vaelab-bench-{os.getpid()}-{time.monotonic_ns()}.json"
    env = {k: v for k, v in os.environ.items() if k not in drop_env} | (set_env or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO / "src"), env.get("PYTHONPATH", "")] if p)
    cmd = [str(python), str(script), *args, "--result", str(out)]
    busy0, t0 = _cpu_busy_seconds(), time.perf_counter()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    except OSError as exc:
        return {"error": f"could not start {python}: {exc}"}
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    wall = time.perf_counter() - t0
    # cores that other processes kept busy meanwhile: the noise indicator printed with each run
    others = max(0.0, (_cpu_busy_seconds() - busy0 - own) / wall)
    try:
        if proc.returncode != 0 or not out.exists():
            lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
            return {"error": f"exit {proc.returncode}: {lines[-1] if lines else 'no output'}", "others_cores": others}
        result = json.loads(out.read_text())
        result["others_cores"] = others
        return result
    finally:
        out.unlink(missing_ok=True)


def run_measured(
    python, script, args, timeout, *, quiet_wait=0.0, max_noise=None, retries=2, drop_env=(), set_env=None
) -> dict:
    """``run_worker`` after waiting for a quiet machine; rerun (up to ``retries`` times) when other
    processes kept more than ``max_noise`` cores busy during the run. Adds ``others_before``, ``tries``."""
    for attempt in range(retries + 1):
        before = wait_for_quiet(quiet_wait) if quiet_wait else float("nan")
        result = run_worker(python, script, args, timeout, drop_env, set_env)
        result["others_before"], result["tries"] = before, attempt + 1
        if "error" in result or max_noise is None or result.get("others_cores", 0.0) <= max_noise:
            break
    return result


def commit() -> str:
    """The repository's short commit, with ``+dirty`` when tracked files under src/ differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "diff", "--quiet", "HEAD", "--", "src"], capture_output=True)
    except OSError:
        return "unknown"
    return (head.stdout.strip() or "unknown") + ("+dirty" if dirty.returncode == 1 else "")


def header(script: str, args) -> str:
    """The machine line printed first by a benchmark: date, commit, CPU, torch, threads, seed, load."""
    info = machine()
    return (
        f"# {script}  {info['date']}  commit {commit()}  nproc={info['nproc']}  cpu={info['cpu']!r}  "
        f"torch={info.get('torch')}  threads={getattr(args, 'threads', 0) or 'default'}  "
        f"seed={getattr(args, 'seed', 0)}  loadavg={info['loadavg'][0]:.2f}"
    )


def write_result(path: str, result: dict) -> None:
    Path(path).write_text(json.dumps(result))


def median(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (readable as plain text too)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    align = align or "l" + "r" * (len(headers) - 1)

    def fmt(row):
        return (
            "| "
            + " | ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align, strict=True))
            + " |"
        )

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align, strict=True))
        + "|"
    )
    return "\n".join([fmt(headers), rule, *map(fmt, cells)])


def fmt(x, spec: str = ".3g") -> str:
    return "n/a" if x is None or (isinstance(x, float) and x != x) else format(x, spec)


# Layer shapes of the MLP VAE (784-400-20): (in, out) of each Linear; the encoder's last layer
# outputs mean and log-variance (2 * 20).
VAE_LAYERS = [(784, 400), (400, 40), (20, 400), (400, 784)]


def time_matmuls(
    shapes: list[tuple[tuple[int, int], tuple[int, int], str]], min_time: float = 0.2, repeats: int = 5
) -> list[dict]:
    """Median seconds of ``torch.matmul`` for each ``((m, k), (k, n), layout)`` and its GFLOP/s.

    ``layout`` says how the operands are laid out, as autograd's Linear has them: ``"nt"`` is
    ``A @ B.T`` (forward: x @ W^T), ``"nn"`` is ``A @ B`` (grad of input: g @ W), ``"tn"`` is
    ``A.T @ B`` (grad of weight: g^T @ x).
    """
    import torch

    results = []
    for (m, k), (k2, n), layout in shapes:
        assert k == k2
        a = torch.randn(k, m) if layout == "tn" else torch.randn(m, k)
        b = torch.randn(n, k) if layout == "nt" else torch.randn(k, n)
        A = a.T if layout == "tn" else a
        B = b.T if layout == "nt" else b
        out = torch.empty(m, n)
        torch.matmul(A, B, out=out)
        # calibrate the inner loop to ~min_time / repeats
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < 0.02:
            torch.matmul(A, B, out=out)
            reps += 1
        inner = max(1, int(reps * (min_time / repeats) / 0.02))
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                torch.matmul(A, B, out=out)
            samples.append((time.perf_counter() - t0) / inner)
        s = statistics.median(samples)
        results.append({"m": m, "k": k, "n": n, "layout": layout, "seconds": s, "gflops": 2 * m * k * n / s / 1e9})
    return results


def add_worker_flags(p: argparse.ArgumentParser, name: str) -> None:
    """The flags every benchmark of measured worker processes shares: threads, seed, the noise guards,
    the time limit, ``--json`` (default ``/tmp/vaelab-NAME.json``) and the workers' hidden flags."""
    p.add_argument("--threads", type=int, default=0, help="threads per worker (torch, OpenMP, BLAS); 0: defaults")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet-wait", type=float, default=60, help="wait up to S s before each run for < 0.3 busy cores")
    p.add_argument("--max-noise", type=float, default=0.5, help="rerun when others kept more cores busy than this")
    p.add_argument("--retries", type=int, default=2, help="reruns allowed per run (see --max-noise)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds allowed per run")
    p.add_argument("--json", default=f"/tmp/vaelab-{name}.json", help="where the results go")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)


def save_document(path: str, document: dict) -> int:
    """Write a benchmark's results as JSON to ``path`` and say where; 0, the exit status."""
    Path(path).write_text(json.dumps(document, indent=1, default=str))
    print(f"# results: {path}")
    return 0
