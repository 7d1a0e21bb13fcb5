"""The commands over several models: ``compare`` (PCA, autoencoder, VAE), ``report`` (redraw it), ``sweep`` (beta)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.splits import held_out_split
from ..errors import ConfigError, ModelFileError
from ..estimators.bounds import check_iw_samples, check_sizes
from ..estimators.vae import VAE
from ._inputs import load_dataset, with_data_defaults
from ._outputs import check_writable, output_dir, publish, run_directory, staged
from ._reports import check_comparison
from ._tables import print_table
from .flags import data_options, given_params


def render_report(out: Path, document: dict, models: dict, dataset) -> Path:
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
    dataset = load_dataset(args)
    out = output_dir(
        args.out if args.out is not None else str(Path("reports") / Path(dataset.name).stem),
        args.overwrite,
        COMPARE_OUTPUTS,
    )
    split = held_out_split(dataset)
    X_train, X_test = split.X_train, split.X_test
    params = with_data_defaults(given_params(args), dataset)
    params.setdefault("random_state", 0)
    results = compare(X_train, X_test, verbose=0 if args.quiet else 1, n_iw_samples=args.iw_samples, **params)
    print(
        f"{dataset.name}: {len(X_train)} training and {len(X_test)} held-out examples of shape {dataset.sample_shape}"
    )
    calibration = calibration_row(results, X_train, X_test)
    print_table(table_rows(results, calibration), TABLE_COLUMNS)
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
            render_report(staging, document, models, dataset)
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
            render_report(staging, document, models, dataset)
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
    dataset = load_dataset(args)
    split = held_out_split(dataset)
    X_train, X_test = split.X_train, split.X_test
    params = with_data_defaults(given_params(args), dataset)
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
        print_table(rows, SWEEP_COLUMNS)
        data = {"source": args.data, **data_options(args)}
        with staged(out) as staging:
            path = write_sweep(staging, rows, models, data=data, settings={**params, "iw_samples": args.iw_samples})
            rate_distortion(rows, name=dataset.name).savefig(staging / "rate_distortion.png", dpi=110)
            publish(staging, out)
    print(f"wrote {out / path.name}, {out / 'rate_distortion.png'} and the models under {out / 'models'}")
