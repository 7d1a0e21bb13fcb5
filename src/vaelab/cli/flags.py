"""The command line's flags: every estimator parameter from its table, and the data options.

A parameter ``latent_dim`` is the flag ``--latent-dim``: its parser, help and default come from
the parameter's row in :mod:`vaelab.estimators.params`, so the CLI and the estimators cannot
disagree.
"""

from __future__ import annotations

import argparse

from ..estimators.params import Param
from ..estimators.registry import MODELS


def _flag_type(param: Param):
    """argparse's ``type=`` for ``param``: its parser, with its message shown as the argument error."""

    def parse(text: str):
        try:
            return param.flag(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = param.name  # argparse names the type in its generic messages
    return parse


def estimator_params() -> dict[str, Param]:
    """Every parameter with a flag, of any registered estimator, by name in a stable order."""
    params: dict[str, Param] = {}
    for cls in MODELS.values():
        for p in cls.params:
            if p.flag is not None:
                params.setdefault(p.name, p)
    return params


def _shown(default) -> str:
    return ",".join(map(str, default)) if isinstance(default, tuple) else str(default)


def add_estimator_flags(parser: argparse.ArgumentParser, exclude: frozenset[str] = frozenset()) -> None:
    group = parser.add_argument_group("model parameters (the estimator's own names and defaults)")
    for name, p in estimator_params().items():
        if name in exclude:
            continue
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=_flag_type(p),
            default=argparse.SUPPRESS,  # only what is given is passed on; the rest is the estimator's default
            help=f"{p.doc} (default: {_shown(p.default)})".replace("%", "%%"),
        )


def given_params(args: argparse.Namespace) -> dict:
    """The estimator parameters given as flags, by name."""
    return {name: getattr(args, name) for name in estimator_params() if hasattr(args, name)}


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", default="digits", help="'digits' (the default, bundled), 'fashion-mnist', or a "
                       ".npy/.npz/.csv/.tsv/IDX file or a folder of images")
    group.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files")
    group.add_argument("--key", help=".npz: the array holding the data")
    group.add_argument("--label-column", help=".csv/.tsv: the label column (kept apart from the features)")


def parse_betas(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0.25,0.5,1,2,4, got {text!r}") from None
