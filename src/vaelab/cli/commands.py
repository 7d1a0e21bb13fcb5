"""The ``vaelab`` commands: each reads its arguments, calls the library, and prints -- no maths here."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import numpy as np

from .._jsonfile import read_json
from ..checkpoint import CHECKPOINT_FILE
from ..data.splits import held_out_split, held_out_status, split_record
from ..errors import ConfigError, ModelFileError, VaelabError
from ..estimators.bounds import check_iw_samples, check_output_bytes, check_sizes, check_training_memory
from ..estimators.modelfile import CONFIG_FILE
from ..estimators.registry import MODELS
from ..estimators.vae import VAE
from ._distributed import process_group
from ._outputs import (
    check_writable,
    output_dir,
    output_file,
    publish,
    run_contents,
    run_directory,
    save_json,
    save_npy,
    staged,
)
from ._reports import check_comparison
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
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.1f}"
    return str(value)


def _check_fit_out(args: argparse.Namespace, cls) -> Path:
    """Refuse, before any work, an --out this fit may not use; the refusal says what it holds and what to pass."""
    out = Path(args.out)
    if not args.out or (out.exists() and not out.is_dir()):
        raise ConfigError(
            f"--out {args.out!r} must name a directory, and a file of that name exists"
            if args.out
            else "--out must not be empty"
        )
    if args.resume and args.model == "pca":
        raise ConfigError(
            "--model pca fits in one step and keeps no checkpoint, so there is nothing to --resume; "
            "drop --resume (and pass --overwrite to replace what --out holds)"
        )
    held = run_contents(out)
    saved_class = _saved_class(out)
    has_checkpoint = CHECKPOINT_FILE in held
    if held and not (args.resume or args.overwrite):
        what = (
            f"a fitted {saved_class}"
            if saved_class
            else ("a training checkpoint" if has_checkpoint else ", ".join(held[:3]))
        )
        fix = (
            "--resume to continue its run or --overwrite to replace it"
            if has_checkpoint
            else "--overwrite to replace it"
        )
        raise ConfigError(f"{out} already holds {what}; pass {fix}")
    if args.resume and not has_checkpoint:
        if saved_class:
            raise ConfigError(
                f"nothing to resume: {out} holds a finished {saved_class} without a checkpoint; "
                "pass --overwrite to replace it"
            )
        raise ConfigError(
            f"nothing to resume: {out} holds no checkpoint (no epoch had finished); "
            "run the same command without --resume"
        )
    if args.resume and saved_class and saved_class != cls.__name__:
        raise ConfigError(
            f"{out} holds a {saved_class} run, which --model {args.model} cannot resume; "
            "pass the same --model, or --overwrite"
        )
    check_writable(_existing(out.parent))  # the new model is built beside --out, then swapped in
    if out.is_dir():
        check_writable(out)
    return out


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def _saved_class(out: Path) -> str | None:
    """The estimator class named by the model in ``out``, or None when it holds no readable one."""
    try:
        config = read_json(out / CONFIG_FILE)
    except (OSError, VaelabError):
        return None
    name = config.get("class") if isinstance(config, dict) else None
    return name if isinstance(name, str) else None


def cmd_fit(args: argparse.Namespace) -> None:
    cls = MODELS[args.model]
    params = given_params(args)
    accepted = set(cls.params.names)
    rejected = sorted(set(params) - accepted)
    if rejected:
        flags = ", ".join("--" + r.replace("_", "-") for r in rejected)
        raise ConfigError(f"--model {args.model} does not take {flags}")
    check_sizes(params, "vaelab fit")
    out = _check_fit_out(args, cls)
    # torchrun starts one process per rank on the same --out: rank 0 holds the lock and writes
    lock = run_directory(out, "run") if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext(out)
    with lock:
        dataset = _load_dataset(args)
        split = held_out_split(dataset, lazy=True)  # the test split evaluate and compare score is kept back
        params = {k: v for k, v in _with_data_defaults(params, dataset).items() if k in accepted}
        if "verbose" in accepted:
            params["verbose"] = 0 if args.quiet else 1
        estimator = cls(**params)
        if cls.conditioning.conditional and split.y_train is None:
            raise ConfigError(
                f"--model {args.model} needs class labels, and {args.data} has none: use a named data set, a CSV with "
                "--label-column, or an .npz with a labels array"
            )
        n_classes = len(np.unique(split.y_train)) if cls.conditioning.conditional else 0
        check_training_memory(estimator, dataset.sample_shape, n_classes, "vaelab fit")
        if args.model == "pca":
            estimator.fit(split.X_train)
            (out / CHECKPOINT_FILE).unlink(
                missing_ok=True
            )  # --overwrite: a neural run's checkpoint is not this model's
        else:
            with process_group() as rank:
                estimator.fit(
                    split.X_train, split.y_train, checkpoint_dir=out, resume=args.resume, overwrite=args.overwrite
                )
                if rank:
                    return  # under torchrun every rank ends with the same model; rank 0 saves it
        estimator.training_data_ = split_record(dataset.name, split)
        estimator.save(out)
    kept = "its test split" if split.rule == "standard" else f"a seeded {split.test_fraction:.0%} (seed {split.seed})"
    print(
        f"fitted {cls.__name__} on {len(split.X_train)} examples of shape {dataset.sample_shape}, keeping back "
        f"{len(split.X_test)} for evaluate ({kept}); saved to {out}"
    )


def _load_run(path: str):
    from ..io import load

    return load(path)


def _split(dataset, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """One part of :func:`held_out_split`, with its labels: the rows `vaelab fit` trains on, or those it keeps back."""
    split = held_out_split(dataset)
    return (split.X_test, split.y_test) if name == "test" else (split.X_train, split.y_train)


def cmd_encode(args: argparse.Namespace) -> None:
    out = output_file(args.out, args.overwrite)
    estimator = _load_run(args.run)
    X, y = _split(_load_dataset(args), args.split)
    if estimator.conditioning.conditional and y is None:
        raise ConfigError(f"{args.run} is a conditional model: encoding needs labels, and {args.data} has none")
    codes = estimator.transform(X, y if estimator.conditioning.conditional else None)
    save_npy(out, codes)
    print(f"wrote codes of shape {codes.shape} to {args.out}")


def cmd_sample(args: argparse.Namespace) -> None:
    out = output_file(args.out, args.overwrite)
    estimator = _load_run(args.run)
    check_output_bytes(args.n, estimator.n_features_in_, "vaelab sample", "-n")
    label = args.label
    if label is not None and not estimator.conditioning.conditional:
        raise ConfigError(
            f"--label needs a conditional model (vaelab fit --model cvae); {args.run} is a {type(estimator).__name__}"
        )
    if label is not None and estimator.classes_.dtype.kind in "iub":
        try:
            label = int(label)
        except ValueError:
            raise ConfigError(f"--label {label!r}: this model's classes are {estimator.classes_.tolist()}") from None
    samples = estimator.sample(args.n, y=label, random_state=args.random_state, sampler=args.sampler)
    save_npy(out, samples)
    print(f"wrote {len(samples)} samples of shape {samples.shape[1:]} to {args.out}")


def _metric_rows(metrics: dict) -> list[dict]:
    """Flatten an evaluation dict to (metric, value, unit) rows for the terminal."""
    rows = []
    for key in ("log_likelihood", "elbo", "reconstruction", "kl", "bits_per_dim", "bits_per_dim_discrete", "mse"):
        if key not in metrics:  # bits_per_dim_discrete: integer data only
            continue
        entry = metrics[key]
        protocol = entry.get("protocol")
        rows.append(
            {
                "metric": key,
                "value": entry["value"],
                "unit": entry["unit"],
                "detail": f"{protocol.split(':')[0]}: an upper bound, the dequantised density"
                if protocol
                else entry.get("estimator") or entry.get("definition") or entry.get("reason"),
            }
        )
    active = metrics["active_units"]
    rows.append(
        {
            "metric": "active_units",
            "value": active["value"],
            "unit": f"of {active['of']}",
            "detail": "Cov(E[z|x]) > 0.01",
        }
    )
    path = metrics["continuity"]["path_length_ratio"]
    rows.append(
        {
            "metric": "path_length_ratio",
            "value": path["median"],
            "unit": "median",
            "detail": f"p90 {_format(path['p90'])}; 1 = straight",
        }
    )
    lipschitz = metrics["continuity"]["decoder_lipschitz"]
    for where in ("around_data", "around_samples"):
        if lipschitz[where].get("median") is not None:
            rows.append(
                {
                    "metric": f"lipschitz_{where}",
                    "value": lipschitz[where]["median"],
                    "unit": "median",
                    "detail": f"p90 {_format(lipschitz[where]['p90'])}",
                }
            )
    completeness = metrics["completeness"]
    for sampler in ("prior", "gmm"):
        entry = completeness.get(sampler) or {}
        for name in ("precision", "recall", "density", "coverage"):
            if entry.get(name) is not None:
                rows.append(
                    {
                        "metric": f"{name}_{sampler}",
                        "value": entry[name],
                        "unit": "",
                        "detail": f"k={completeness['k']}",
                    }
                )
    return rows


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..compare import evaluate_estimator

    check_iw_samples(args.iw_samples, "vaelab evaluate")
    out = output_file(args.json, args.overwrite, "--json") if args.json else None
    estimator = _load_run(args.run)
    split = held_out_split(_load_dataset(args))
    held_out, rows = held_out_status(estimator.training_data_, split, args.data)
    metrics = evaluate_estimator(
        estimator, split.X_test, X_train=split.X_train, n_iw_samples=args.iw_samples, seed=args.seed
    )
    metrics["held_out"] = {"value": held_out, "rows": rows}
    print(f"{type(estimator).__name__} on {rows}; metrics with seed {args.seed}:")
    _print_table(
        _metric_rows(metrics), [("metric", "metric"), ("value", "value"), ("unit", "unit"), ("detail", "detail")]
    )
    for note in metrics["notes"]:
        print(f"note: {note}")
    if out is not None:
        save_json(out, metrics)
        print(f"wrote {args.json}")


def _render_report(out: Path, document: dict, models: dict, dataset) -> Path:
    from ..compare import TABLE_COLUMNS, TABLE_UNITS, comparability_notes, with_calibration
    from ..report import write_report

    split = held_out_split(dataset)
    return write_report(
        out,
        title=f"PCA, autoencoder and VAE on {dataset.name}",
        models=models,
        X_test=split.X_test,
        y_test=split.y_test,
        sample_shape=dataset.sample_shape if dataset.is_image else None,
        table=with_calibration(document["table"], document.get("calibration")),
        columns=TABLE_COLUMNS,
        notes=[*comparability_notes([m["metrics"] for m in document["models"].values()]), TABLE_UNITS],
        random_state=document["settings"].get("random_state", 0),
        data_description=dataset.describe(),
    )


COMPARE_OUTPUTS = ("metrics.json", "models", "report.html", "figures")


def cmd_compare(args: argparse.Namespace) -> None:
    from ..compare import (
        TABLE_COLUMNS,
        TABLE_UNITS,
        calibration_row,
        comparability_notes,
        compare,
        read_comparison,
        table_rows,
        write_comparison,
    )

    check_iw_samples(args.iw_samples, "vaelab compare")
    if args.out is not None:
        output_dir(args.out, args.overwrite, COMPARE_OUTPUTS)
    dataset = _load_dataset(args)
    out = output_dir(
        args.out if args.out is not None else str(Path("reports") / Path(dataset.name).stem),
        args.overwrite,
        COMPARE_OUTPUTS,
    )
    split = held_out_split(dataset)
    X_train, X_test = split.X_train, split.X_test
    params = _with_data_defaults(given_params(args), dataset)
    params.setdefault("random_state", 0)
    results = compare(X_train, X_test, verbose=0 if args.quiet else 1, n_iw_samples=args.iw_samples, **params)
    print(
        f"{dataset.name}: {len(X_train)} training and {len(X_test)} held-out examples of shape {dataset.sample_shape}"
    )
    calibration = calibration_row(results, X_train, X_test)
    _print_table(table_rows(results, calibration), TABLE_COLUMNS)
    print(TABLE_UNITS)
    for note in comparability_notes([r.metrics for r in results]):
        print(f"note: {note}")
    data = {"source": args.data, **data_options(args)}
    with (
        run_directory(out, "comparison"),
        staged(out) as staging,
    ):  # built whole, then moved in: a failure keeps the old files
        write_comparison(
            staging, results, data=data, settings={**params, "iw_samples": args.iw_samples}, calibration=calibration
        )
        if not args.no_report:
            document, models = read_comparison(staging)
            _render_report(staging, document, models, dataset)
        publish(staging, out)
    if not args.no_report:
        print(f"wrote {out / 'report.html'}")
    print(f"wrote {out / 'metrics.json'} and the models under {out / 'models'}")


def cmd_report(args: argparse.Namespace) -> None:
    from ..compare import METRICS_FILE, read_comparison
    from ..data import load

    run = Path(args.run)
    check_comparison(run / METRICS_FILE)
    document, models = read_comparison(run)
    source = document["data"]
    dataset = load(
        source["source"], **{k: source.get(k) for k in ("key", "label_column", "data_dir", "delimiter", "header")}
    )
    check_writable(run, "RUN")
    with staged(run) as staging:  # the old report.html stays whole until the new one is complete
        try:
            _render_report(staging, document, models, dataset)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ModelFileError(
                f"{run / METRICS_FILE} lacks a field the report needs or holds one of the wrong type ({exc!r}); "
                "rerun `vaelab compare` to rewrite it"
            ) from None
        publish(staging, run)
    print(f"wrote {run / 'report.html'}")


SWEEP_OUTPUTS = ("sweep.json", "rate_distortion.png", "models")


def cmd_sweep(args: argparse.Namespace) -> None:
    from ..report.curves import rate_distortion
    from ..sweep import SWEEP_COLUMNS, beta_sweep, write_sweep

    check_iw_samples(args.iw_samples, "vaelab sweep")
    out = output_dir(args.out, args.overwrite, SWEEP_OUTPUTS)  # before training: a read-only --out fails now
    dataset = _load_dataset(args)
    split = held_out_split(dataset)
    X_train, X_test = split.X_train, split.X_test
    params = _with_data_defaults(given_params(args), dataset)
    params.pop("beta", None)
    rejected = sorted(set(params) - set(VAE.params.names))
    if rejected:
        raise ConfigError(
            f"vaelab sweep fits VAEs, which do not take {', '.join('--' + r.replace('_', '-') for r in rejected)}"
        )
    check_sizes(params, "vaelab sweep")
    params.setdefault("random_state", 0)
    with run_directory(out, "sweep"):
        rows, models = beta_sweep(
            X_train, X_test, args.beta, verbose=0 if args.quiet else 1, n_iw_samples=args.iw_samples, **params
        )
        print(f"{dataset.name}: one VAE per beta, {len(X_train)} training and {len(X_test)} held-out examples")
        _print_table(rows, SWEEP_COLUMNS)
        data = {"source": args.data, **data_options(args)}
        with staged(out) as staging:
            path = write_sweep(staging, rows, models, data=data, settings={**params, "iw_samples": args.iw_samples})
            rate_distortion(rows, name=dataset.name).savefig(staging / "rate_distortion.png", dpi=110)
            publish(staging, out)
    print(f"wrote {out / path.name}, {out / 'rate_distortion.png'} and the models under {out / 'models'}")
