"""The command line's manners: one-line errors in flag words with suggestions, plain --help,
one-line warnings, line-buffered stdout and the CSV data flags."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from vaelab import load
from vaelab.cli import build_parser
from vaelab.cli._signals import handled
from vaelab.cli.flags import data_options, flag_words


def parse_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(list(argv))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err  # not the 15 lines of usage
    return err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["fit", "--latent-dims", "3", "--out", "x"],
            "unrecognized arguments: --latent-dims 3; did you mean --latent-dim?",
        ),
        (["fit", "--model", "vea", "--out", "x"], "invalid choice: 'vea'"),
        (["fti", "--out", "x"], "did you mean 'fit'?"),
        (["fit"], "the following arguments are required: --out"),
        (["sample", "run", "-n", "0", "--out", "s.npy"], "argument -n: expected a whole number >= 1, got '0'"),
        (["evaluate", "run", "--iw-samples", "many"], "argument --iw-samples: expected a whole number >= 1"),
        (["fit", "--hidden", "64,x", "--out", "x"], "argument --hidden:"),
        (["fit", "--header", "maybe", "--out", "x"], "argument --header: invalid choice: 'maybe'"),
    ],
)
def test_command_line_mistakes_are_one_line_with_a_suggestion(capsys, argv, expected):
    err = parse_error(capsys, *argv)
    assert expected in err and err.startswith("vaelab") and "--help" in err


def test_model_choice_suggests_the_nearest(capsys):
    err = parse_error(capsys, "fit", "--model", "vea", "--out", "x")
    assert "did you mean 'vae'?" in err


def test_unknown_option_values_suggest_the_nearest():
    from vaelab import VAE, ConfigError

    with pytest.raises(ConfigError, match="unknown likelihood 'gausian'; choose one of .*; did you mean 'gaussian'"):
        VAE(likelihood="gausian").fit(np.zeros((4, 2)))


def test_help_has_no_restructuredtext_markup(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "--help"])
    out = capsys.readouterr().out
    assert "--delimiter" in out and "--header" in out
    assert "``" not in out and ":meth:" not in out and ":func:" not in out


def test_messages_use_flag_words():
    assert flag_words("knobs: kl_warmup (e.g. 10 epochs), free_bits, a smaller beta") == (
        "knobs: --kl-warmup (e.g. 10 epochs), --free-bits, a smaller beta"
    )
    assert (
        flag_words("latent_dim must be an integer in [1, 64], got 65")
        == "--latent-dim must be an integer in [1, 64], got 65"
    )
    assert flag_words("VAE(beta=4, latent_dim=2)") == "VAE(beta=4, latent_dim=2)"  # Python's form stays
    # a message that already names the flag is left alone
    assert flag_words("pass label_column='y' (--label-column y)") == "pass label_column='y' (--label-column y)"


def test_warnings_print_one_line_naming_the_command(capsys):
    with handled("sweep"):
        warnings.warn("VAE(beta=4, latent_dim=2): posterior collapse:\n  try kl_warmup", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err == "vaelab sweep: warning: VAE(beta=4, latent_dim=2): posterior collapse: try --kl-warmup\n"


def test_data_flags_reach_the_reader():
    args = build_parser().parse_args(["fit", "--data", "t.csv", "--delimiter", "tab", "--header", "no", "--out", "x"])
    assert data_options(args) == {
        "key": None,
        "label_column": None,
        "data_dir": None,
        "delimiter": "\t",
        "header": False,
    }
    args = build_parser().parse_args(["fit", "--out", "x"])
    assert data_options(args)["header"] is None and data_options(args)["delimiter"] is None


@pytest.mark.slow
def test_semicolon_csv_fits_with_the_data_flags_and_stdout_is_line_buffered(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["a;b;c"] + [";".join(f"{v:.3f}" for v in row) for row in rng.normal(size=(40, 3))]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    code = (
        "import sys; from vaelab.cli import main; r = main(sys.argv[1:]); print(sys.stdout.line_buffering); sys.exit(r)"
    )
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src")}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "fit",
            "--model",
            "pca",
            "--data",
            str(tmp_path / "t.csv"),
            "--delimiter",
            ";",
            "--header",
            "yes",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("True")  # stdout into a pipe, flushed per line
    assert load(tmp_path / "run").n_features_in_ == 3


def test_off_a_terminal_a_long_fit_logs_its_first_and_last_epochs_not_every_one(capsys):
    from vaelab import VAE

    X = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    VAE(latent_dim=2, hidden=(4,), epochs=40, patience=None, verbose=1, random_state=0).fit(X)
    lines = capsys.readouterr().err.strip().splitlines()  # pytest's captured stderr is not a terminal
    assert [line.split(":")[0] for line in lines] == ["VAE epoch 1/40", "VAE epoch 40/40"]
