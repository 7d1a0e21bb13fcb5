"""``vaelab explore``: a live latent-space explorer in the browser, served from this process.

Move the pointer over a model's 2-D latent map and see that point decoded, by several models at
once; interpolate between two test examples (linear or spherical) and read the decoded path's
length ratio; traverse each latent dimension; draw prior and GMM samples with a shown seed. The
continuity and completeness of :mod:`vaelab.metrics`, seen instead of measured.

The CLI calls :func:`add_arguments` on its ``explore`` subparser and :func:`run` with the parsed
arguments; :class:`Explorer` and :class:`ExplorerServer` serve from Python code too.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import webbrowser

import numpy as np

from ..errors import ConfigError
from .server import ExplorerServer
from .session import Explorer, RequestError, find_runs

__all__ = ["Explorer", "ExplorerServer", "RequestError", "add_arguments", "build_explorer", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``explore`` subcommand's arguments to ``parser``."""
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="a fitted model directory (vaelab fit --out) or a comparison's models/ folder",
    )
    parser.add_argument("--data", default="digits", help="data whose test split is shown on the maps (default digits)")
    parser.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files")
    parser.add_argument("--key", help=".npz: the array holding the data")
    parser.add_argument("--label-column", help=".csv/.tsv: the label column (kept apart from the features)")
    parser.add_argument(
        "--max-points",
        type=int,
        default=2000,
        help="test points drawn on each map, a fixed random subset (default 2000)",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: any free port)")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL; do not open a browser")


def _test_split(dataset) -> tuple[np.ndarray, np.ndarray | None]:
    """The dataset's test split with its labels; without one, the same seeded 20 % hold-out as ``vaelab compare``."""
    if dataset.X_test is not None:
        return dataset.X_test, dataset.y_test
    order = np.random.default_rng(0).permutation(len(dataset.X_train))
    rows = np.sort(order[: max(1, int(round(0.2 * len(order))))])
    return dataset.X_train[rows], None if dataset.y_train is None else dataset.y_train[rows]


def build_explorer(runs: list[str], data: str = "digits", *, max_points: int = 2000, **load_options) -> Explorer:
    """Load the models named by ``runs`` and the test split of ``data`` into an :class:`Explorer`.

    Parameters
    ----------
    runs : list of str
        Fitted model directories, or folders of them (a comparison's ``models/``).
    data : str
        Anything :func:`vaelab.data.load` reads; its test split is shown.
    max_points : int
        At most this many test points, a fixed (seed 0) subset kept in the data's order.
    **load_options
        ``key``, ``label_column``, ``data_dir`` for :func:`vaelab.data.load`.
    """
    from ..data import load as load_data
    from ..io import load as load_model

    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
        raise ConfigError(f"--max-points must be an integer >= 2, got {max_points!r}")
    models = {name: load_model(path) for name, path in find_runs(runs).items()}
    dataset = load_data(data, **load_options)
    X, y = _test_split(dataset)
    if len(X) > max_points:
        rows = np.sort(np.random.default_rng(0).permutation(len(X))[:max_points])
        X, y = X[rows], None if y is None else y[rows]
    return Explorer(
        models, np.asarray(X), None if y is None else np.asarray(y), data_name=dataset.name, is_image=dataset.is_image
    )


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    """Serve the explorer until Ctrl-C; returns the exit status (130 after Ctrl-C, as the shell's convention)."""
    try:
        explorer = build_explorer(
            args.runs,
            args.data,
            max_points=args.max_points,
            key=args.key,
            label_column=args.label_column,
            data_dir=args.data_dir,
        )
        if not 0 <= args.port <= 65535:
            raise ConfigError(f"--port must be in [0, 65535], got {args.port}")
        try:
            server = ExplorerServer(explorer, args.port)
        except OSError as exc:
            raise ConfigError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
        names = ", ".join(explorer.models)
        print(f"vaelab explore: {names} on {len(explorer.X)} test points of {explorer.data_name}", flush=True)
        print(f"open {server.url}  (Ctrl-C stops)", flush=True)
        if not args.no_browser and _has_display():
            # A thread: some browsers registered with `webbrowser` block until they exit.
            threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
        try:
            server.serve_forever()
        finally:
            server.server_close()
    except KeyboardInterrupt:
        # Let request threads still inside torch finish before the interpreter tears torch down
        # under them (seen as "terminate called without an active exception" at exit).
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and thread.daemon:
                thread.join(timeout=2.0)
        print("vaelab explore: stopped", file=sys.stderr, flush=True)
        return 130
    return 0
