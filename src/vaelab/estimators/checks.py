"""The value checks behind every estimator parameter: one helper per kind of value.

Each takes the user's name for the value and raises a :class:`vaelab.errors.ConfigError` that
shows the bad value and what is allowed; the parameter tables (:mod:`.params`) are built from them.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (no upper bound when ``high`` is None); bools are refused."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{name} must be an integer {allowed}, got {value!r}")
    return int(value)


def check_real(
    name: str,
    value,
    low: float = 0.0,
    high: float = math.inf,
    *,
    low_open: bool = True,
    high_open: bool = True,
    unit: str = "",
) -> float:
    """``value`` as a finite float in the interval from ``low`` to ``high`` (open or closed ends)."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
    )
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        if high == math.inf:
            allowed = (
                "a positive number" if (low == 0 and low_open) else f"a number {'>' if low_open else '>='} {low:g}"
            )
        else:
            allowed = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must be {allowed}{f' ({unit})' if unit else ''}, got {value!r}")
    return float(value)


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    """``value`` as one of the strings ``choices`` (exact spelling; the nearest is suggested)."""
    if not (isinstance(value, str) and value in choices):
        close = difflib.get_close_matches(value, list(choices), n=1) if isinstance(value, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}{hint}")
    return value


def check_sizes(name: str, value) -> tuple[int, ...]:
    """``value`` as a tuple of positive layer sizes, e.g. ``(256, 128)``; ``()`` is allowed."""
    if not isinstance(value, (tuple, list)):
        raise ConfigError(f"{name} must be a tuple of layer sizes like (256, 128), got {value!r}")
    return tuple(check_int(f"each {name} size", size, 1) for size in value)


def optional(check):
    """``check``, but None passes (e.g. ``patience=None``: never stop early)."""

    def check_or_none(name: str, value):
        return None if value is None else check(name, value)

    return check_or_none
