"""The ``vaelab`` commands: each reads its arguments, calls the library, and prints -- no maths here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..estimators.registry import MODELS
from ..estimators.vae import VAE
from ._distributed import process_group
from .flags import data_options, given_params


def _load_dataset(args: argparse.Namespace):
    from ..data import load

    return load(args.data, **data_options(args))


def _with_data_defaults(params: dict, dataset) -> dict:
    """Fill the preprocessing the data set calls for (the "auto" rule, with the set's known full scale)."""
    from ..data import default_preprocessing

    params = dict(params)
    params.setdefault("preprocessing", default_preprocessing(dataset))
    if params["preprocessing"] == "scale":
        params.setdefault("pixel_max", dataset.pixel_max)
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
    params = given_params(args)
    accepted = set(cls.params.names)
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
    if cls.conditioning.conditional and dataset.y_train is None:
        raise ConfigError(
            f"--model {args.model} needs class labels, and {args.data} has none: use a named data set, a CSV with "
            "--label-column, or an .npz with a labels array"
        )
    if args.model == "pca":
        estimator.fit(dataset.X_train)
    else:
        with process_group() as rank:
            estimator.fit(
                dataset.X_train, dataset.y_train, checkpoint_dir=out, resume=args.resume, overwrite=args.overwrite
            )
            if rank:
                return  # under torchrun every rank ends with the same model; rank 0 saves it
    estimator.save(out)
    print(f"fitted {cls.__name__} on {len(dataset.X_train)} examples of shape {dataset.sample_shape}; saved to {out}")


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
    from ..io import load

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
    if estimator.conditioning.conditional and y is None:
        raise ConfigError(f"{args.run} is a conditional model: encoding needs labels, and {args.data} has none")
    codes = estimator.transform(X, y if estimator.conditioning.conditional else None)
    _save_array(args.out, codes)
    print(f"wrote codes of shape {codes.shape} to {args.out}")


def cmd_sample(args: argparse.Namespace) -> None:
    estimator = _load_run(args.run)
    label = args.label
    if label is not None and not estimator.conditioning.conditional:
        raise ConfigError(f"--label needs a conditional model (vaelab fit --model cvae); {args.run} is a {type(estimator).__name__}")
    if label is not None and estimator.classes_.dtype.kind in "iub":
        try:
            label = int(label)
        except ValueError:
            raise ConfigError(f"--label {label!r}: this model's classes are {estimator.classes_.tolist()}") from None
    samples = estimator.sample(args.n, y=label, random_state=args.random_state, sampler=args.sampler)
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
    for sampler in ("prior", "gmm"):
        entry = completeness.get(sampler) or {}
        for name in ("precision", "recall", "density", "coverage"):
            if entry.get(name) is not None:
                rows.append({"metric": f"{name}_{sampler}", "value": entry[name], "unit": "", "detail": f"k={completeness['k']}"})
    return rows


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..compare import evaluate_estimator, held_out_split

    estimator = _load_run(args.run)
    split = held_out_split(_load_dataset(args))
    X_train, X_test = split.X_train, split.X_test
    metrics = evaluate_estimator(estimator, X_test, X_train=X_train, n_iw_samples=args.iw_samples, seed=args.seed)
    print(f"{type(estimator).__name__} on {len(X_test)} held-out examples of {args.data} (seed {args.seed}):")
    _print_table(_metric_rows(metrics), [("metric", "metric"), ("value", "value"), ("unit", "unit"), ("detail", "detail")])
    for note in metrics["notes"]:
        print(f"note: {note}")
    if args.json:
        _output_file(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(metrics, indent=2, allow_nan=False))
        print(f"wrote {args.json}")


def _render_report(out: Path, document: dict, models: dict, dataset) -> Path:
    from ..compare import TABLE_COLUMNS, comparability_notes, held_out_split
    from ..report import write_report

    split = held_out_split(dataset)
    return write_report(
        out,
        title=f"PCA, autoencoder and VAE on {dataset.name}",
        models=models,
        X_test=split.X_test,
        y_test=split.y_test,
        sample_shape=dataset.sample_shape if dataset.is_image else None,
        table=document["table"],
        columns=TABLE_COLUMNS,
        notes=comparability_notes([m["metrics"] for m in document["models"].values()]),
        random_state=document["settings"].get("random_state", 0),
    )


def cmd_compare(args: argparse.Namespace) -> None:
    from ..compare import TABLE_COLUMNS, calibration_row, compare, comparability_notes, held_out_split, read_comparison
    from ..compare import table_rows, write_comparison

    dataset = _load_dataset(args)
    out = _output_dir(args.out if args.out is not None else str(Path("reports") / Path(dataset.name).stem))
    split = held_out_split(dataset)
    X_train, X_test = split.X_train, split.X_test
    params = _with_data_defaults(given_params(args), dataset)
    params.setdefault("random_state", 0)
    results = compare(X_train, X_test, verbose=0 if args.quiet else 1, n_iw_samples=args.iw_samples, **params)
    print(f"{dataset.name}: {len(X_train)} training and {len(X_test)} held-out examples of shape {dataset.sample_shape}")
    calibration = calibration_row(results, X_train, X_test)
    _print_table(table_rows(results, calibration), TABLE_COLUMNS)
    for note in comparability_notes([r.metrics for r in results]):
        print(f"note: {note}")
    data = {"source": args.data, **data_options(args)}
    write_comparison(out, results, data=data, settings={**params, "iw_samples": args.iw_samples}, calibration=calibration)
    if not args.no_report:
        document, models = read_comparison(out)
        print(f"wrote {_render_report(out, document, models, dataset)}")
    print(f"wrote {out / 'metrics.json'} and the models under {out / 'models'}")


def cmd_report(args: argparse.Namespace) -> None:
    from ..compare import read_comparison
    from ..data import load

    document, models = read_comparison(args.run)
    source = document["data"]
    dataset = load(source["source"], **{k: source.get(k) for k in ("key", "label_column", "data_dir", "delimiter", "header")})
    print(f"wrote {_render_report(Path(args.run), document, models, dataset)}")


def cmd_sweep(args: argparse.Namespace) -> None:
    from ..compare import held_out_split
    from ..report.curves import rate_distortion
    from ..sweep import SWEEP_COLUMNS, beta_sweep, write_sweep

    out = _output_dir(args.out)
    dataset = _load_dataset(args)
    split = held_out_split(dataset)
    X_train, X_test = split.X_train, split.X_test
    params = _with_data_defaults(given_params(args), dataset)
    params.pop("beta", None)
    rejected = sorted(set(params) - set(VAE.params.names))
    if rejected:
        raise ConfigError(f"vaelab sweep fits VAEs, which do not take {', '.join('--' + r.replace('_', '-') for r in rejected)}")
    params.setdefault("random_state", 0)
    rows, models = beta_sweep(X_train, X_test, args.beta, verbose=0 if args.quiet else 1, n_iw_samples=args.iw_samples, **params)
    print(f"{dataset.name}: one VAE per beta, {len(X_train)} training and {len(X_test)} held-out examples")
    _print_table(rows, SWEEP_COLUMNS)
    data = {"source": args.data, **data_options(args)}
    path = write_sweep(out, rows, models, data=data, settings={**params, "iw_samples": args.iw_samples})
    figure = rate_distortion(rows, name=dataset.name)
    figure.savefig(out / "rate_distortion.png", dpi=110)
    print(f"wrote {path}, {out / 'rate_distortion.png'} and the models under {out / 'models'}")
