"""Reading JSON that vaelab wrote but anyone may have edited: bounded, and refused in one line when hostile.

``json.loads`` alone turns a 200,000-deep nesting into a RecursionError, a 5,000-digit integer into a
ValueError about Python's digit limit, ``NaN`` into a float, and ``2**200`` into a number that
later overflows inside torch. :func:`parse_json` refuses all of them with a :class:`ModelFileError`
naming the file, before any value reaches the code that uses it.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelFileError

MAX_BYTES = 64 << 20  # a config or metrics file is kilobytes; a larger one is not ours
MAX_DEPTH = 32  # our files nest a few levels
MAX_INT_DIGITS = 19  # |value| < 10**19: every integer we write fits in 64 bits


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _depth(value, limit: int) -> int:
    """Nesting depth of ``value``, iteratively (no recursion on what may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(text: str | bytes, where: str, damaged: str = "the file is damaged") -> object:
    """``text`` parsed as JSON, or a ModelFileError naming ``where`` and why it is refused."""
    if len(text) > MAX_BYTES:
        raise ModelFileError(
            f"{where} is {len(text)} bytes, over the {MAX_BYTES >> 20} MiB a vaelab JSON file may have; {damaged}"
        )
    try:
        value = json.loads(text, parse_int=_bounded_int, parse_constant=_refuse_constant)
    except RecursionError:
        raise ModelFileError(f"{where} nests deeper than Python can read; {damaged}") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ModelFileError(f"{where} is not valid JSON ({exc}); {damaged}") from None
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise ModelFileError(f"{where} nests deeper than {MAX_DEPTH} levels; {damaged}")
    return value


def read_json(path: Path, damaged: str = "the file is damaged") -> object:
    """The JSON in ``path`` (see :func:`parse_json`); the file's size is checked before it is read."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ModelFileError(
            f"{path} is {size} bytes, over the {MAX_BYTES >> 20} MiB a vaelab JSON file may have; {damaged}"
        )
    return parse_json(path.read_bytes(), str(path), damaged)


def read_document(path: Path, kind: str, command: str) -> dict:
    """A vaelab results document (``{"format": kind, ...}``) written by ``vaelab COMMAND --out``.

    Read through :func:`read_json` (size, depth and number bounds); a missing file, another
    format, or anything but an object is a ModelFileError naming the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"{path.parent} holds no {path.name}; pass a directory written by `vaelab {command} --out`"
        )
    document = read_json(path)
    if not isinstance(document, dict) or document.get("format") != kind:
        raise ModelFileError(f'{path} is not a {kind.replace("-", " ")} (no "format": "{kind}")')
    return document


def check_history(history, where: str) -> None:
    """A training history ``{"train": {name: [float]}, "validation": {...}, "best_epoch": int|None}``."""
    if history is None:
        return
    bad = ModelFileError(
        f'{where}: the training history must be {{"train": {{name: [numbers]}}, "validation": {{...}}, '
        '"best_epoch": integer or null}; the file is damaged'
    )
    if not isinstance(history, dict) or set(history) != {"train", "validation", "best_epoch"}:
        raise bad
    for part in ("train", "validation"):
        curves = history[part]
        if not isinstance(curves, dict) or not all(
            isinstance(k, str)
            and isinstance(v, list)
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            for k, v in curves.items()
        ):
            raise bad
    best = history["best_epoch"]
    if best is not None and (not isinstance(best, int) or isinstance(best, bool) or best < 0):
        raise bad
