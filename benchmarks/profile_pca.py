"""Where ``vaelab.PCA(20).fit`` spends its time on 60,000 Fashion-MNIST images (float32 in [0, 1]).

One fresh process: loads the data, times scikit-learn's ``PCA(20).fit`` once to warm BLAS, then
times each fit again (scikit-learn, vaelab) and prints vaelab's cProfile by internal time. Usage::

    PYTHONPATH=src python benchmarks/profile_pca.py [--n 60000] [--top 12]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time

import _common as C


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=60000, help="Fashion-MNIST training images")
    p.add_argument("--top", type=int, default=12, help="functions to list")
    args = p.parse_args(argv)
    from sklearn.decomposition import PCA

    import vaelab

    X = C.fashion_mnist("train", args.n)
    PCA(20, random_state=0).fit(X)  # warms BLAS's threads and buffers for both
    t0 = time.perf_counter()
    PCA(20, random_state=0).fit(X)
    sklearn_s = time.perf_counter() - t0
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.runcall(vaelab.PCA(latent_dim=20, random_state=0).fit, X)
    vaelab_s = time.perf_counter() - t0
    print(C.header("profile_pca", args))
    print(f"# n={args.n}: sklearn PCA(20).fit {sklearn_s:.3f} s, vaelab.PCA(20).fit {vaelab_s:.3f} s (profiled)")
    pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
