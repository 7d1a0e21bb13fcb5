"""The ``vaelab`` command line: fit, encode, sample, evaluate, compare, sweep and report.

Every estimator parameter is a flag of the same name (``latent_dim`` -> ``--latent-dim``), made from
the estimators' parameter tables. Errors that vaelab raises on purpose, and command-line mistakes,
are printed in one line with exit status 2, in flag words; warnings one line each; stdout is
flushed at every line. No maths lives here. The CLI owns its process, so it (and only it) tunes glibc's
malloc for torch's CPU buffers (:func:`vaelab.allocator.retain_freed_memory`) and, with ``--threads``,
sets torch's thread count.
"""

from __future__ import annotations

import argparse
import sys

import torch

from .. import explore
from .._version import __version__
from ..allocator import retain_freed_memory
from ..estimators.registry import MODELS
from . import commands, comparing
from ._signals import run_command
from .flags import (
    Parser,
    add_data_flags,
    add_estimator_flags,
    line_buffered_stdout,
    parse_betas,
    positive_int,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="vaelab", description=__doc__.split("\n")[0])
    parser.commands = {}
    parser.add_argument("--version", action="version", version=f"vaelab {__version__}")
    parser.add_argument(
        "--threads",
        type=positive_int("--threads"),
        help="torch's CPU threads for this process (default: one per core); give 1 to each of several vaelab "
        "processes sharing the cores: two 2-thread fits on 2 cores ran 2.6x slower each, two 1-thread fits "
        "no slower than one (benchmarks/bench_threads.py)",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(
            name, help=help, description=help
        )  # a Parser too: argparse uses the parent's class
        sub.set_defaults(func=func)
        parser.commands[name] = sub
        return sub

    fit = command("fit", commands.cmd_fit, "fit a model and save it to a directory")
    fit.add_argument("--model", choices=sorted(MODELS), default="vae")
    fit.add_argument("--out", required=True, help="directory for the fitted model and its training checkpoint")
    fit.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    fit.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_flags(fit)
    add_estimator_flags(fit)

    encode = command("encode", commands.cmd_encode, "write the codes of data under a fitted model to a .npy file")
    encode.add_argument("run", help="directory of a fitted model")
    encode.add_argument("--split", choices=["train", "test"], default="train", help="which part of --data to encode")
    add_data_flags(encode)
    encode.add_argument("--out", required=True, help="output .npy file")

    sample = command("sample", commands.cmd_sample, "decode prior samples of a fitted model to a .npy file")
    sample.add_argument("run", help="directory of a fitted model")
    sample.add_argument("-n", type=positive_int("-n"), default=64, help="number of samples (default 64)")
    sample.add_argument("--random-state", type=int, default=0)
    sample.add_argument(
        "--sampler",
        choices=["prior", "gmm"],
        default="prior",
        help="codes from the model's prior or from a Gaussian mixture fitted to the training codes",
    )
    sample.add_argument("--label", help="conditional models: the class to generate (default: every class in turn)")
    sample.add_argument("--out", required=True, help="output .npy file")

    evaluate = command("evaluate", commands.cmd_evaluate, "every metric of a fitted model on held-out data")
    evaluate.add_argument("run", help="directory of a fitted model")
    evaluate.add_argument(
        "--iw-samples",
        type=positive_int("--iw-samples"),
        default=1000,
        help="K for the importance-sampled log-likelihood",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seeds every sampled metric")
    evaluate.add_argument("--json", help="also write the metrics to this JSON file")
    add_data_flags(evaluate)

    comp = command(
        "compare", comparing.cmd_compare, "fit PCA, an autoencoder and a VAE and compare them on held-out data"
    )
    add_data_flags(comp)
    comp.add_argument("--quiet", action="store_true", help="no progress bars")
    comp.add_argument(
        "--iw-samples",
        type=positive_int("--iw-samples"),
        default=1000,
        help="K for the importance-sampled log-likelihood",
    )
    comp.add_argument("--out", help="report directory (default reports/DATA)")
    comp.add_argument("--no-report", action="store_true", help="write metrics.json and the models, but no HTML page")
    add_estimator_flags(comp)

    sweep = command(
        "sweep", comparing.cmd_sweep, "fit one VAE per KL weight beta and tabulate rate, distortion and the rest"
    )
    sweep.add_argument(
        "--beta",
        type=parse_betas,
        default=[0.25, 0.5, 1.0, 2.0, 4.0],
        help="comma-separated betas (default 0.25,0.5,1,2,4)",
    )
    sweep.add_argument("--out", required=True, help="directory for sweep.json, rate_distortion.png and the models")
    sweep.add_argument(
        "--iw-samples",
        type=positive_int("--iw-samples"),
        default=1000,
        help="K for the importance-sampled log-likelihood",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bars")
    add_data_flags(sweep)
    add_estimator_flags(sweep, exclude=frozenset({"beta"}))

    report = command(
        "report", comparing.cmd_report, "redraw report.html of a `vaelab compare` directory, without refitting"
    )
    report.add_argument("run", help="directory written by `vaelab compare --out`")

    for sub in (encode, sample, evaluate, comp, sweep):  # one output policy: replace only when asked
        sub.add_argument("--overwrite", action="store_true", help="replace existing output files")
    explore.add_arguments(command("explore", explore.run, "serve a live latent-space explorer on 127.0.0.1"))
    return parser


def main(argv: list[str] | None = None) -> int:
    retain_freed_memory()  # the process is ours: keep torch's freed CPU buffers for reuse (see allocator.py)
    line_buffered_stdout()  # a --quiet compare into a pipe or a log shows each line as it is printed
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)  # the process is ours, as the allocator's tuning
    return run_command(args, sys.argv[1:] if argv is None else list(argv))  # exit statuses: cli/_signals.py
