"""The ``vaelab`` command line: fit, encode, sample, evaluate and compare.

Every estimator parameter is a flag of the same name (``latent_dim`` -> ``--latent-dim``). Errors
that vaelab raises on purpose are printed in one line with exit status 2; no maths lives here.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .errors import ConfigError, TrainingInterrupted, VaelabError
from .estimators import PCA, VAE, Autoencoder, ConditionalVAE

MODELS = {"pca": PCA, "ae": Autoencoder, "vae": VAE, "cvae": ConditionalVAE}
# Parameters the CLI sets through its own flags rather than per-estimator ones.
_HIDDEN_PARAMS = {"verbose"}


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 256,128, got {text!r}") from None


def _parse_optional_int(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'none', got {text!r}") from None


def _parse_optional_float(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def _flag_type(annotation: str):
    """Parser for a flag from the estimator parameter's annotation (a string: see __future__)."""
    if annotation.startswith("tuple"):
        return _parse_hidden
    if "float" in annotation:
        return _parse_optional_float if "None" in annotation else float
    if annotation == "str":
        return str
    return _parse_optional_int  # int, int | None, and random_state (an int seed or 'none')


def _estimator_params() -> dict[str, inspect.Parameter]:
    """Every estimator parameter by name, in a stable order."""
    params: dict[str, inspect.Parameter] = {}
    for cls in MODELS.values():
        for name, p in inspect.signature(cls.__init__).parameters.items():
            if name != "self" and name not in _HIDDEN_PARAMS:
                params.setdefault(name, p)
    return params


def _add_estimator_flags(parser: argparse.ArgumentParser, exclude: set[str] = frozenset()) -> None:
    group = parser.add_argument_group("model parameters (the estimator's own names and defaults)")
    for name, p in _estimator_params().items():
        if name in exclude:
            continue
        default = p.default
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=_flag_type(str(p.annotation) if p.annotation is not p.empty else ""),
            default=argparse.SUPPRESS,
            help=f"default: {','.join(map(str, default)) if isinstance(default, tuple) else default}",
        )


def _given_params(args: argparse.Namespace) -> dict:
    return {name: getattr(args, name) for name in _estimator_params() if hasattr(args, name)}


def _add_data_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", default="digits", help="'digits' (the default, bundled), 'fashion-mnist', or a "
                       ".npy/.npz/.csv/.tsv/IDX file or a folder of images")
    group.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files")
    group.add_argument("--key", help=".npz: the array holding the data")
    group.add_argument("--label-column", help=".csv/.tsv: the label column (kept apart from the features)")


def _load_dataset(args: argparse.Namespace):
    from .data import load

    return load(args.data, key=args.key, label_column=args.label_column, data_dir=args.data_dir)


def _with_data_defaults(params: dict, dataset) -> dict:
    """Fill the preprocessing (and, for standardised tables, the likelihood) the data call for."""
    from .data import default_preprocessing

    params = dict(params)
    params.setdefault("preprocessing", default_preprocessing(dataset))
    if params["preprocessing"] == "scale":
        params.setdefault("pixel_max", dataset.pixel_max)
    elif "likelihood" not in params:
        params["likelihood"] = "gaussian"  # standardised values leave [0, 1]: no Bernoulli there
    return params


def _print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    cells = [[title for _, title in columns]]
    for row in rows:
        cells.append([_format(row.get(key)) for key, _ in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for i, r in enumerate(cells):
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.1f}"
    return str(value)


def cmd_fit(args: argparse.Namespace) -> None:
    cls = MODELS[args.model]
    params = _given_params(args)
    accepted = set(inspect.signature(cls.__init__).parameters)
    rejected = sorted(set(params) - accepted)
    if rejected:
        flags = ", ".join("--" + r.replace("_", "-") for r in rejected)
        raise ConfigError(f"--model {args.model} does not take {flags}")
    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()) and not (args.resume or args.overwrite):
        raise ConfigError(f"{out} already exists and is not empty; pass --resume to continue its run or --overwrite to replace it")
    _output_dir(args.out)
    dataset = _load_dataset(args)
    params = {k: v for k, v in _with_data_defaults(params, dataset).items() if k in accepted}
    if "verbose" in accepted:
        params["verbose"] = 0 if args.quiet else 1
    estimator = cls(**params)
    if cls is ConditionalVAE and dataset.y_train is None:
        raise ConfigError(
            f"--model cvae needs class labels, and {args.data} has none: use a named data set, a CSV with "
            "--label-column, or an .npz with a labels array"
        )
    if args.model == "pca":
        estimator.fit(dataset.X_train)
    else:
        with _process_group() as rank:
            estimator.fit(
                dataset.X_train, dataset.y_train, checkpoint_dir=out, resume=args.resume, overwrite=args.overwrite
            )
            if rank:
                return  # under torchrun every rank ends with the same model; rank 0 saves it
    estimator.save(out)
    print(f"fitted {cls.__name__} on {len(dataset.X_train)} examples of shape {dataset.sample_shape}; saved to {out}")


@contextlib.contextmanager
def _process_group():
    """Join torch.distributed when started by torchrun (WORLD_SIZE > 1); yields this process's rank."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield 0
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()


def _output_dir(path: str) -> Path:
    """Check, before any fitting, that ``path`` can be a directory we write into."""
    out = Path(path)
    if not path or (out.exists() and not out.is_dir()):
        raise ConfigError(f"--out {path!r} must name a directory, and a file of that name exists" if path else "--out must not be empty")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output directory {path!r}: {exc.strerror or exc}") from None
    return out


def _output_file(path: str) -> Path:
    out = Path(path)
    if not path or out.is_dir() or not out.name:
        raise ConfigError(f"the output file {path!r} must be a file name, not a directory or empty")
    return out


def _load_run(path: str):
    from .io import load

    return load(path)


def _save_array(path: str, array: np.ndarray) -> None:
    out = _output_file(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:  # a file object: np.save would append ".npy" to other names
        np.save(f, array)


def _split(dataset, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The data and labels of one split."""
    if name == "test":
        if dataset.X_test is None:
            raise ConfigError(f"{dataset.name} has no test split; use --split train")
        return dataset.X_test, dataset.y_test
    return dataset.X_train, dataset.y_train


def cmd_encode(args: argparse.Namespace) -> None:
    estimator = _load_run(args.run)
    X, y = _split(_load_dataset(args), args.split)
    if isinstance(estimator, ConditionalVAE):
        if y is None:
            raise ConfigError(f"{args.run} is a conditional model: encoding needs labels, and {args.data} has none")
        codes = estimator.transform(X, y)
    else:
        codes = estimator.transform(X)
    _save_array(args.out, codes)
    print(f"wrote codes of shape {codes.shape} to {args.out}")


def cmd_sample(args: argparse.Namespace) -> None:
    estimator = _load_run(args.run)
    if isinstance(estimator, ConditionalVAE):
        label = args.label
        if label is not None and estimator.classes_.dtype.kind in "iub":
            try:
                label = int(label)
            except ValueError:
                raise ConfigError(f"--label {label!r}: this model's classes are {estimator.classes_.tolist()}") from None
        samples = estimator.sample(args.n, y=label, random_state=args.random_state, sampler=args.sampler)
    elif args.label is not None:
        raise ConfigError(f"--label needs a conditional model (vaelab fit --model cvae); {args.run} is a {type(estimator).__name__}")
    else:
        samples = estimator.sample(args.n, random_state=args.random_state, sampler=args.sampler)
    _save_array(args.out, samples)
    print(f"wrote {len(samples)} samples of shape {samples.shape[1:]} to {args.out}")


def _metric_rows(metrics: dict) -> list[dict]:
    """Flatten an evaluation dict to (metric, value, unit) rows for the terminal."""
    rows = []
    for key in ("log_likelihood", "elbo", "reconstruction", "kl", "bits_per_dim", "mse"):
        entry = metrics[key]
        rows.append({"metric": key, "value": entry["value"], "unit": entry["unit"],
                     "detail": entry.get("estimator") or entry.get("definition") or entry.get("reason")})
    active = metrics["active_units"]
    rows.append({"metric": "active_units", "value": active["value"], "unit": f"of {active['of']}", "detail": "Cov(E[z|x]) > 0.01"})
    path = metrics["continuity"]["path_length_ratio"]
    rows.append({"metric": "path_length_ratio", "value": path["median"], "unit": "median", "detail": f"p90 {_format(path['p90'])}; 1 = straight"})
    lipschitz = metrics["continuity"]["decoder_lipschitz"]
    for where in ("around_data", "around_samples"):
        if lipschitz[where].get("median") is not None:
            rows.append({"metric": f"lipschitz_{where}", "value": lipschitz[where]["median"], "unit": "median",
                         "detail": f"p90 {_format(lipschitz[where]['p90'])}"})
    completeness = metrics["completeness"]
    for sampler in ("prior", "fitted_gaussian"):
        entry = completeness.get(sampler) or {}
        for name in ("precision", "recall", "density", "coverage"):
            if entry.get(name) is not None:
                rows.append({"metric": f"{name}_{sampler}", "value": entry[name], "unit": "", "detail": f"k={completeness['k']}"})
    return rows


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .compare import evaluate_estimator, train_test_split

    estimator = _load_run(args.run)
    X_train, X_test = train_test_split(_load_dataset(args))
    metrics = evaluate_estimator(estimator, X_test, X_train=X_train, n_iw_samples=args.iw_samples, seed=args.seed)
    print(f"{type(estimator).__name__} on {len(X_test)} held-out examples of {args.data} (seed {args.seed}):")
    _print_table(_metric_rows(metrics), [("metric", "metric"), ("value", "value"), ("unit", "unit"), ("detail", "detail")])
    for note in metrics["notes"]:
        print(f"note: {note}")
    if args.json:
        _output_file(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(metrics, indent=2, allow_nan=False))
        print(f"wrote {args.json}")


def _notes(metrics_per_model) -> list[str]:
    notes = list(dict.fromkeys(note for m in metrics_per_model for note in m["notes"]))
    likelihoods = {m["likelihood"] for m in metrics_per_model if m["log_likelihood"]["value"] is not None}
    if len(likelihoods) > 1:
        notes.insert(0, f"the log-likelihoods use different decoder likelihoods ({', '.join(sorted(likelihoods))}): "
                        "they are comparable only between models with the same one")
    return notes


def _render_report(out: Path, document: dict, models: dict, dataset) -> Path:
    from .compare import TABLE_COLUMNS, train_test_split
    from .report import write_report

    _, X_test = train_test_split(dataset)
    y_test = dataset.y_test if dataset.X_test is not None else None
    if y_test is None and dataset.y_train is not None:
        order = np.random.default_rng(0).permutation(len(dataset.X_train))
        y_test = dataset.y_train[np.sort(order[: len(X_test)])]
    return write_report(
        out,
        title=f"PCA, autoencoder and VAE on {dataset.name}",
        models=models,
        X_test=X_test,
        y_test=y_test,
        sample_shape=dataset.sample_shape if dataset.is_image else None,
        table=document["table"],
        columns=TABLE_COLUMNS,
        notes=_notes([m["metrics"] for m in document["models"].values()]),
        random_state=document["settings"].get("random_state", 0),
    )


def cmd_compare(args: argparse.Namespace) -> None:
    from .compare import TABLE_COLUMNS, compare, read_comparison, summary_row, train_test_split, write_comparison

    dataset = _load_dataset(args)
    out = _output_dir(args.out if args.out is not None else str(Path("reports") / Path(dataset.name).stem))
    X_train, X_test = train_test_split(dataset)
    params = _with_data_defaults(_given_params(args), dataset)
    params.setdefault("random_state", 0)
    results = compare(X_train, X_test, verbose=0 if args.quiet else 1, n_iw_samples=args.iw_samples, **params)
    print(f"{dataset.name}: {len(X_train)} training and {len(X_test)} held-out examples of shape {dataset.sample_shape}")
    _print_table([summary_row(r.name, r.metrics, r.fit_seconds) for r in results], TABLE_COLUMNS)
    for note in _notes([r.metrics for r in results]):
        print(f"note: {note}")
    data = {"source": args.data, "key": args.key, "label_column": args.label_column, "data_dir": args.data_dir}
    write_comparison(out, results, data=data, settings={**params, "iw_samples": args.iw_samples})
    if not args.no_report:
        document, models = read_comparison(out)
        print(f"wrote {_render_report(out, document, models, dataset)}")
    print(f"wrote {out / 'metrics.json'} and the models under {out / 'models'}")


def cmd_report(args: argparse.Namespace) -> None:
    from .compare import read_comparison
    from .data import load

    document, models = read_comparison(args.run)
    source = document["data"]
    dataset = load(source["source"], key=source.get("key"), label_column=source.get("label_column"), data_dir=source.get("data_dir"))
    print(f"wrote {_render_report(Path(args.run), document, models, dataset)}")


def _parse_betas(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0.25,0.5,1,2,4, got {text!r}") from None


def cmd_sweep(args: argparse.Namespace) -> None:
    from .compare import train_test_split
    from .report.curves import rate_distortion
    from .sweep import SWEEP_COLUMNS, beta_sweep

    out = _output_dir(args.out)
    dataset = _load_dataset(args)
    X_train, X_test = train_test_split(dataset)
    params = _with_data_defaults(_given_params(args), dataset)
    params.pop("beta", None)
    rejected = sorted(set(params) - set(inspect.signature(VAE.__init__).parameters))
    if rejected:
        raise ConfigError(f"vaelab sweep fits VAEs, which do not take {', '.join('--' + r.replace('_', '-') for r in rejected)}")
    params.setdefault("random_state", 0)
    rows, models = beta_sweep(X_train, X_test, args.beta, verbose=0 if args.quiet else 1, n_iw_samples=args.iw_samples, **params)
    print(f"{dataset.name}: one VAE per beta, {len(X_train)} training and {len(X_test)} held-out examples")
    _print_table(rows, SWEEP_COLUMNS)
    for name, model in models.items():
        model.save(out / "models" / name)
    document = {
        "format": "vaelab-sweep",
        "format_version": 1,
        "data": {"source": args.data},
        "settings": {**params, "iw_samples": args.iw_samples},
        "units": {"rate, distortion, elbo, log_likelihood": "nats per example"},
        "points": rows,
    }
    (out / "sweep.json").write_text(json.dumps(document, indent=2, allow_nan=False))
    figure = rate_distortion(rows, name=dataset.name)
    figure.savefig(out / "rate_distortion.png", dpi=110)
    print(f"wrote {out / 'sweep.json'}, {out / 'rate_distortion.png'} and the models under {out / 'models'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaelab", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"vaelab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(func=func)
        return sub

    fit = command("fit", cmd_fit, "fit a model and save it to a directory")
    fit.add_argument("--model", choices=sorted(MODELS), default="vae")
    fit.add_argument("--out", required=True, help="directory for the fitted model and its training checkpoint")
    fit.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    fit.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_flags(fit)
    _add_estimator_flags(fit)

    encode = command("encode", cmd_encode, "write the codes of data under a fitted model to a .npy file")
    encode.add_argument("run", help="directory of a fitted model")
    encode.add_argument("--split", choices=["train", "test"], default="train", help="which part of --data to encode")
    _add_data_flags(encode)
    encode.add_argument("--out", required=True, help="output .npy file")

    sample = command("sample", cmd_sample, "decode prior samples of a fitted model to a .npy file")
    sample.add_argument("run", help="directory of a fitted model")
    sample.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--random-state", type=int, default=0)
    sample.add_argument("--sampler", choices=["prior", "gmm"], default="prior",
                        help="codes from the prior N(0, I) or from a Gaussian mixture fitted to the training codes")
    sample.add_argument("--label", help="conditional models: the class to generate (default: every class in turn)")
    sample.add_argument("--out", required=True, help="output .npy file")

    evaluate = command("evaluate", cmd_evaluate, "every metric of a fitted model on held-out data")
    evaluate.add_argument("run", help="directory of a fitted model")
    evaluate.add_argument("--iw-samples", type=int, default=1000, help="K for the importance-sampled log-likelihood")
    evaluate.add_argument("--seed", type=int, default=0, help="seeds every sampled metric")
    evaluate.add_argument("--json", help="also write the metrics to this JSON file")
    _add_data_flags(evaluate)

    comp = command("compare", cmd_compare, "fit PCA, an autoencoder and a VAE and compare them on held-out data")
    _add_data_flags(comp)
    comp.add_argument("--quiet", action="store_true", help="no progress bars")
    comp.add_argument("--iw-samples", type=int, default=1000, help="K for the importance-sampled log-likelihood")
    comp.add_argument("--out", help="report directory (default reports/DATA)")
    comp.add_argument("--no-report", action="store_true", help="write metrics.json and the models, but no HTML page")

    sweep = command("sweep", cmd_sweep, "fit one VAE per KL weight beta and tabulate rate, distortion and the rest")
    sweep.add_argument("--beta", type=_parse_betas, default=[0.25, 0.5, 1.0, 2.0, 4.0], help="comma-separated betas (default 0.25,0.5,1,2,4)")
    sweep.add_argument("--out", required=True, help="directory for sweep.json, rate_distortion.png and the models")
    sweep.add_argument("--iw-samples", type=int, default=1000, help="K for the importance-sampled log-likelihood")
    sweep.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_flags(sweep)
    _add_estimator_flags(sweep, exclude={"beta"})

    report = command("report", cmd_report, "redraw report.html of a `vaelab compare` directory, without refitting")
    report.add_argument("run", help="directory written by `vaelab compare --out`")

    # --- explore hook (issue 18, H2): the lead ports these lines into the cli package ---
    from . import explore
    explore.add_arguments(command("explore", explore.run, "serve a live latent-space explorer on 127.0.0.1"))
    _add_estimator_flags(comp)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)  # explore hook: explore.run returns its exit status, the others None
    except TrainingInterrupted as exc:
        print(f"vaelab {args.command}: {exc}", file=sys.stderr)
        return 130  # the shell's convention for a command stopped by SIGINT
    except VaelabError as exc:
        print(f"vaelab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written: the user's to fix, not a crash
        print(f"vaelab {args.command}: error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2
    return status or 0
