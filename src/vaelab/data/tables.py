"""CSV/TSV reader: numeric feature columns plus an optional label column.

Rows are parsed with the standard ``csv`` module (quoting handled) and converted to float
in chunks, so the strings of only one chunk are held at a time. Every problem is reported
with its line number and column name.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Iterator

import numpy as np

from ..errors import ConfigError, DataError
from ._arrays import check_finite

_ROWS_PER_CHUNK = 4096
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _rows(f, delimiter: str, where: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) for each non-blank row."""
    reader = csv.reader(f, delimiter=delimiter)
    try:
        for row in reader:
            if row and any(field.strip() for field in row):
                yield reader.line_num, row
    except csv.Error as exc:
        raise DataError(f"{where}: line {reader.line_num} is not valid CSV ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc


def _has_header(first: list[str], second: list[str] | None) -> bool:
    # Like csv.Sniffer: a header is a first row with text where the data below has numbers.
    if second is None:
        return not all(_is_number(v) for v in first)
    return any(
        not _is_number(a) and _is_number(b) for a, b in zip(first, second, strict=False)
    )


def _label_index(label_column: str | int | None, names: list[str] | None, n_cols: int, where: str):
    if label_column is None:
        return None
    if names is not None and str(label_column) in names:
        if names.count(str(label_column)) > 1:
            raise DataError(f"{where}: more than one column is named '{label_column}'; rename one")
        return names.index(str(label_column))
    if names is None and str(label_column).lstrip("-").isdigit():
        j = int(label_column)
        if -n_cols <= j < n_cols:
            return j % n_cols
        raise ConfigError(
            f"{where}: label_column {j} is out of range: the file has {n_cols} columns (0..{n_cols - 1})"
        )
    if names is None:
        raise ConfigError(
            f"{where}: label_column '{label_column}' is not a column index and the file has no "
            f"header line; give an index 0..{n_cols - 1}, or header=True (--header) if line 1 holds names"
        )
    raise ConfigError(
        f"{where}: no column named '{label_column}'; the columns are {', '.join(map(repr, names))}"
    )


def _shown(key: str | int) -> str:
    return f"column {key!r}" if isinstance(key, str) else f"column {key}"


def _to_float(rows: list[list[str]], lines: list[int], keys: list[str | int], where: str) -> np.ndarray:
    """Convert one chunk of string rows to float64, naming the first bad cell.

    ``keys`` are the column names, or their indices in the file when there is no header.
    """
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(keys))
    except ValueError:
        pass
    for j, key in enumerate(keys):  # column by column, so the first bad column is named
        for line, row in zip(lines, rows, strict=True):
            if _is_number(row[j]):
                continue
            if not row[j].strip():
                raise DataError(
                    f"{where}: {_shown(key)} has an empty value on line {line}; "
                    "fill it in or drop the row"
                )
            hint = f"drop it or pass label_column={key!r} (--label-column {key})"
            if line == 1:
                hint += ", or header=True (--header) if line 1 holds column names"
            raise DataError(
                f"{where}: {_shown(key)} is not numeric (first bad value {row[j]!r} "
                f"on line {line}); {hint}"
            )
    raise DataError(f"{where}: could not read the numbers on lines {lines[0]}..{lines[-1]}")


def _convert(chunk: list[list[str]], lines: list[int], keys: list[str | int], where: str) -> np.ndarray:
    """One chunk of rows -> float32, refusing values float32 cannot hold."""
    values = _to_float(chunk, lines, keys, where)
    big = np.isfinite(values) & (np.abs(values) > _FLOAT32_MAX)
    if big.any():
        i, j = (int(k) for k in np.argwhere(big)[0])
        raise DataError(
            f"{where}: value {values[i, j]:g} on line {lines[i]}, {_shown(keys[j])} is too "
            "large for float32; rescale the data"
        )
    return values.astype(np.float32)


def _labels_array(labels: list[str]) -> np.ndarray:
    """Integers if every label is an integer, floats if every one is a number, else text."""
    if all(_is_number(v) for v in labels):
        values = np.array(labels, dtype=np.float64)
        if np.all(values == np.round(values)):
            return values.astype(np.int64)
        return values
    return np.array([v.strip() for v in labels])


def read_table(
    path: str | os.PathLike,
    *,
    delimiter: str,
    header: bool | None = None,
    label_column: str | int | None = None,
    where: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a delimited text table of numbers.

    Parameters
    ----------
    path : path-like
        The file, UTF-8 (a byte-order mark is skipped); blank lines are ignored.
    delimiter : str
        ``","`` for CSV, ``"\\t"`` for TSV.
    header : bool, optional
        Whether line 1 holds column names; by default it does when it has text above numbers.
    label_column : str or int, optional
        Name of the label column (or its index from 0 when there is no header); kept apart
        from the features and returned as integers, floats or text.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,) or None
    """
    where = where or str(path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = _rows(f, delimiter, where)
        first = next(rows, None)
        if first is None:
            raise DataError(f"{where}: no rows; the file holds only blank lines")
        second = next(rows, None)
        if header is None:
            header = _has_header(first[1], second[1] if second else None)
        n_cols = len(first[1])
        names = [v.strip() for v in first[1]] if header else None
        j_label = _label_index(label_column, names, n_cols, where)
        features = [j for j in range(n_cols) if j != j_label]
        if not features:
            raise DataError(f"{where}: no feature columns are left besides the label column")
        keys = [names[j] if names else j for j in features]  # how messages name each feature
        pending = ([] if header else [first]) + ([second] if second else [])

        blocks, labels, line_of_row = [], [], []
        chunk, chunk_lines = [], []
        for line, row in itertools.chain(pending, rows):
            if len(row) != n_cols:
                raise DataError(
                    f"{where}: line {line} has {len(row)} fields but line {first[0]} has {n_cols}; "
                    "every row needs the same number of columns"
                )
            if j_label is not None:
                labels.append(row[j_label])
            chunk.append([row[j] for j in features])
            chunk_lines.append(line)
            if len(chunk) == _ROWS_PER_CHUNK:
                blocks.append(_convert(chunk, chunk_lines, keys, where))
                line_of_row += chunk_lines
                chunk, chunk_lines = [], []
        if chunk:
            blocks.append(_convert(chunk, chunk_lines, keys, where))
            line_of_row += chunk_lines
    if not blocks:
        raise DataError(f"{where}: the header line is there but no data rows follow it")
    X = np.concatenate(blocks)
    check_finite(X, where, lambda index: f"line {line_of_row[index[0]]}, {_shown(keys[index[1]])}")
    y = _labels_array(labels) if j_label is not None else None
    return X, y
