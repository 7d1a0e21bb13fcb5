"""The ``vaelab`` commands on one model: fit, encode, sample, evaluate. Each reads its arguments, calls the
library and prints -- no maths here; the commands over several models are in :mod:`.comparing`."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import numpy as np

from .._jsonfile import read_json
from ..checkpoint import CHECKPOINT_FILE
from ..data.splits import held_out_split, held_out_status, split_record
from ..errors import ConfigError, VaelabError
from ..estimators.bounds import check_iw_samples, check_output_bytes, check_sizes, check_training_memory
from ..estimators.modelfile import CONFIG_FILE
from ..estimators.registry import MODELS
from ._distributed import process_group
from ._inputs import load_dataset, load_run, with_data_defaults
from ._outputs import (
    check_writable,
    output_file,
    run_contents,
    run_directory,
    save_json,
    save_npy,
)
from ._tables import metric_rows, print_table
from .flags import given_params


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
        dataset = load_dataset(args)
        split = held_out_split(dataset, lazy=True)  # the test split evaluate and compare score is kept back
        params = {k: v for k, v in with_data_defaults(params, dataset).items() if k in accepted}
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


def _split(dataset, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """One part of :func:`held_out_split`, with its labels: the rows `vaelab fit` trains on, or those it keeps back."""
    split = held_out_split(dataset)
    return (split.X_test, split.y_test) if name == "test" else (split.X_train, split.y_train)


def cmd_encode(args: argparse.Namespace) -> None:
    out = output_file(args.out, args.overwrite)
    estimator = load_run(args.run)
    X, y = _split(load_dataset(args), args.split)
    if estimator.conditioning.conditional and y is None:
        raise ConfigError(f"{args.run} is a conditional model: encoding needs labels, and {args.data} has none")
    codes = estimator.transform(X, y if estimator.conditioning.conditional else None)
    save_npy(out, codes)
    print(f"wrote codes of shape {codes.shape} to {args.out}")


def cmd_sample(args: argparse.Namespace) -> None:
    out = output_file(args.out, args.overwrite)
    estimator = load_run(args.run)
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


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..compare import evaluate_estimator

    check_iw_samples(args.iw_samples, "vaelab evaluate")
    out = output_file(args.json, args.overwrite, "--json") if args.json else None
    estimator = load_run(args.run)
    split = held_out_split(load_dataset(args))
    held_out, rows = held_out_status(estimator.training_data_, split, args.data)
    metrics = evaluate_estimator(
        estimator, split.X_test, X_train=split.X_train, n_iw_samples=args.iw_samples, seed=args.seed
    )
    metrics["held_out"] = {"value": held_out, "rows": rows}
    print(f"{type(estimator).__name__} on {rows}; metrics with seed {args.seed}:")
    print_table(
        metric_rows(metrics), [("metric", "metric"), ("value", "value"), ("unit", "unit"), ("detail", "detail")]
    )
    for note in metrics["notes"]:
        print(f"note: {note}")
    if out is not None:
        save_json(out, metrics)
        print(f"wrote {args.json}")
