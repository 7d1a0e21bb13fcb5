"""The schema of a ``vaelab compare`` directory's metrics.json, checked before ``vaelab report`` uses it.

The file may have been edited, truncated or replaced since compare wrote it; each refusal is one
ModelFileError naming the field and the fix, instead of a KeyError deep in the report code.
"""

from __future__ import annotations

import re
from pathlib import Path

from .._jsonfile import read_json
from ..errors import ModelFileError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # a model's folder under models/: no separators, no ".."


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_comparison(path: Path) -> dict:
    """The metrics document in ``path``, refused unless every field the report reads has its type."""
    fix = "rerun `vaelab compare` to rewrite it"
    if not path.is_file():
        raise ModelFileError(f"{path.parent} holds no {path.name}; pass a directory written by `vaelab compare --out`")
    document = read_json(path, f"the file is damaged; {fix}")

    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{path}: {what}; {fix}")

    if not isinstance(document, dict) or document.get("format") != "vaelab-comparison":
        raise bad('it is not a vaelab comparison (no "format": "vaelab-comparison")')
    for field, kind in {"data": dict, "settings": dict, "table": list, "models": dict}.items():
        if not isinstance(document.get(field), kind):
            raise bad(f"field {field!r} is missing or not a {'list' if kind is list else 'object'}")
    if not isinstance(document["data"].get("source"), str):
        raise bad("data.source must name the data set or file the models were fitted on")
    for key in ("key", "label_column", "data_dir"):
        if not isinstance(document["data"].get(key), (str, type(None))):
            raise bad(f"data.{key} must be a string or null")
    random_state = document["settings"].get("random_state", 0)
    if random_state is not None and not isinstance(random_state, int):
        raise bad("settings.random_state must be an integer or null")
    if not document["models"]:
        raise bad("it lists no models")
    for name, entry in document["models"].items():
        if not _NAME.match(name) or name in (".", ".."):
            raise bad(f"model name {name!r} is not a plain folder name")
        if (
            not isinstance(entry, dict)
            or not _number(entry.get("fit_seconds"))
            or not isinstance(entry.get("metrics"), dict)
        ):
            raise bad(f"models.{name} must hold fit_seconds (a number) and metrics (an object)")
        stages = entry.get("stage_seconds", {})  # written since the stages were timed; the report does not read it
        if not isinstance(stages, dict) or not all(_number(v) and v >= 0 for v in stages.values()):
            raise bad(f"models.{name}.stage_seconds must be an object of seconds (numbers >= 0)")
    calibration = document.get("calibration")
    if calibration is not None and not (
        isinstance(calibration, dict)
        and all(_number(calibration.get(k)) and 0 <= calibration[k] <= 1 for k in ("precision", "recall"))
    ):
        raise bad("calibration must be null or an object with precision and recall (numbers in [0, 1])")
    for i, row in enumerate(document["table"]):
        if not isinstance(row, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str) or _number(v)) for k, v in row.items()
        ):
            raise bad(f"table row {i} must be an object of numbers, strings or nulls")
    return document
