"""What the commands read from their arguments: the data set (with its default preprocessing) and a saved model."""

from __future__ import annotations

import argparse

from .flags import data_options


def load_dataset(args: argparse.Namespace):
    from ..data import load

    return load(args.data, **data_options(args))


def with_data_defaults(params: dict, dataset) -> dict:
    """Fill the preprocessing the data set calls for (the "auto" rule, with the set's known full scale)."""
    from ..data import default_preprocessing

    params = dict(params)
    params.setdefault("preprocessing", default_preprocessing(dataset))
    if params["preprocessing"] == "scale":
        params.setdefault("pixel_max", dataset.pixel_max)
    return params


def load_run(path: str):
    from ..io import load

    return load(path)
