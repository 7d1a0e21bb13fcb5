"""The command line's flags: every estimator parameter from its table, the data options, and the parser.

A parameter ``latent_dim`` is the flag ``--latent-dim``: its parser, help and default come from
the parameter's row in :mod:`vaelab.estimators.params`, so the CLI and the estimators cannot
disagree. :class:`Parser` reports a bad command line in one line, in flag words, with the
nearest valid flag or choice ("did you mean --latent-dim?").
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys

from ..estimators.params import Param
from ..estimators.registry import MODELS


def did_you_mean(word: str, candidates, quote: bool = False) -> str:
    """``"; did you mean X?"`` for the closest of ``candidates`` to ``word`` (``'X'`` with ``quote``), or ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {close[0]!r}?" if quote else f"; did you mean {close[0]}?"


class Parser(argparse.ArgumentParser):
    """argparse, but errors in one line (not the usage block) with the nearest valid flag or choice.

    ``commands`` maps each subcommand's name to its parser, so that an unknown flag is matched
    against the flags of the command it was given to.
    """

    commands: dict[str, argparse.ArgumentParser]

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            target = getattr(self, "commands", {}).get(getattr(namespace, "command", None), self)
            flags = [f for action in target._actions for f in action.option_strings]
            unknown = next((e for e in extras if e.startswith("-")), extras[0])
            target.error(
                f"unrecognized argument{'s' * (len(extras) > 1)}: {' '.join(extras)}"
                + did_you_mean(unknown.split("=")[0], flags)
            )
        return namespace

    def error(self, message: str):
        # argparse's wording for a bad choice, e.g. "invalid choice: 'vea' (choose from 'pca', 'vae')"
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            options = re.findall(r"'([^']*)'", choice.group(2))
            message += did_you_mean(choice.group(1), options, quote=True)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def plain(text: str) -> str:
    """Docstring text for ``--help``: reStructuredText roles and literals as plain words."""
    text = re.sub(r":\w+:`~?([^`]*)`", r"\1", text)  # :meth:`sample` -> sample
    return text.replace("``", "")


def flag_words(text: str) -> str:
    """A library message in the command line's words: ``kl_warmup`` -> ``--kl-warmup``.

    Only parameter names with an underscore are rewritten (single words such as ``beta`` read
    as English too), not in the ``name=value`` form (a model's settings, as in ``VAE(latent_dim=2)``),
    and none whose flag the message already names.
    """
    for name in estimator_params():
        flag = "--" + name.replace("_", "-")
        if "_" in name and flag not in text:
            text = re.sub(rf"(?<![\w-]){name}(?![\w=])", flag, text)  # name=value is Python's form: kept
    return text


def _flag_type(param: Param):
    """argparse's ``type=`` for ``param``: its parser, with its message shown as the argument error."""
    flag = param.flag
    if flag is None:
        raise TypeError(f"{param.name} has no flag to parse")

    def parse(text: str):
        try:
            return flag(text)
        except ValueError as exc:
            # argparse names the flag already ("argument --latent-dim: ..."): drop the parameter's name
            message = str(exc)
            if message.startswith(param.name + " "):
                message = message[len(param.name) + 1 :]
            raise argparse.ArgumentTypeError(flag_words(message)) from None

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
            help=plain(f"{p.doc} (default: {_shown(p.default)})").replace("%", "%%"),
        )


def given_params(args: argparse.Namespace) -> dict:
    """The estimator parameters given as flags, by name."""
    return {name: getattr(args, name) for name in estimator_params() if hasattr(args, name)}


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        default="digits",
        help="'digits' (the default, bundled), 'fashion-mnist', or a "
        ".npy/.npz/.csv/.tsv/IDX file or a folder of images",
    )
    group.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files")
    group.add_argument("--key", help=".npz: the array holding the data")
    group.add_argument("--label-column", help=".csv/.tsv: the label column (kept apart from the features)")
    group.add_argument(
        "--delimiter",
        choices=sorted(DELIMITERS),
        help=".csv/.tsv: the field separator (default: detected from the first lines; 'tab' for tabs)",
    )
    group.add_argument(
        "--header",
        choices=sorted(HEADERS),
        default="auto",
        help=".csv/.tsv: whether line 1 holds column names (default: auto, detected)",
    )


DELIMITERS = {",": ",", ";": ";", "tab": "\t"}  # the flag's words -> vaelab.data.load's delimiter
HEADERS = {"yes": True, "no": False, "auto": None}  # -> load's header


def data_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`vaelab.data.load` that the data flags give (those not given: None)."""
    delimiter = getattr(args, "delimiter", None)
    return {
        "key": args.key,
        "label_column": args.label_column,
        "data_dir": args.data_dir,
        "delimiter": None if delimiter is None else DELIMITERS[delimiter],
        "header": HEADERS[getattr(args, "header", "auto")],
    }


def positive_int(flag: str):
    """argparse's ``type=`` for a count of at least 1, named as the user typed it (``-n``, not ``n_samples``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
        return value

    parse.__name__ = flag
    return parse


def line_buffered_stdout() -> None:
    """Flush stdout at every line, even into a pipe or a file: a long command shows its progress as it goes."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)


def parse_betas(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers like 0.25,0.5,1,2,4, got {text!r}"
        ) from None
