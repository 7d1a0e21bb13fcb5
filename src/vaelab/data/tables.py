"""CSV/TSV reader: numeric feature columns plus an optional label column.

Rows are parsed with the standard ``csv`` module (quoting handled) and converted to float
in chunks, so the strings of only one chunk are held at a time. The field separator (comma,
semicolon or tab) and the decimal mark (point or comma) are detected from the first lines unless
given. Whether line 1 holds column names is decided only when it is unambiguous: names above
numbers in every numeric column. A first line mixing numbers and text is refused, never dropped
or silently read as names. Every problem is reported with its line number and column name.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from ._arrays import check_finite

_ROWS_PER_CHUNK = 4096
_FLOAT32_MAX = float(np.finfo(np.float32).max)
DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}
_SNIFF_BYTES = 1 << 16  # the first 64 KiB (whole lines of it) decide delimiter and decimal mark
_GUESS_ROWS = 20  # rows below line 1 that tell which columns are numeric
# Cells that mean "no value" in common exports (R, pandas, Excel, SPSS); told apart from text so
# the message says "missing value", not "not a label".
_MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-", "missing", "#n/a"}
_COMMA_DECIMAL = re.compile(r"^\s*[+-]?\d*,\d+([eE][+-]?\d+)?\s*$")
_POINT_DECIMAL = re.compile(r"^\s*[+-]?\d*\.\d+([eE][+-]?\d+)?\s*$")


@dataclass(frozen=True)
class Table:
    """What `read_table` returns.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,) or None
        The label column: integers, floats or text.
    feature_names : tuple of str or None
        The header's names of the feature columns (the label column left out); None without a header.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: tuple[str, ...] | None


def _is_number(text: str, decimal: str = ".") -> bool:
    try:
        float(text.replace(",", ".") if decimal == "," else text)
    except ValueError:
        return False
    return True


def _is_missing(text: str) -> bool:
    return text.strip().lower() in _MISSING


def _sample_rows(text: str, delimiter: str) -> list[list[str]]:
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error:
        return []
    return [r for r in rows if r and any(f.strip() for f in r)]


def sniff(path: str | os.PathLike, default: str, delimiter: str | None = None) -> tuple[str, str]:
    """Guess ``(delimiter, decimal)`` from the first lines of a text table.

    The delimiter, unless given, is the one of comma, semicolon and tab that splits every sampled line into the
    same number (> 1) of fields, preferring the split whose fields are most often numbers, then
    the one with more columns, then ``default``. The decimal mark is ``","`` when fields like
    ``1,5`` occur and none like ``1.5`` do (with comma-separated fields, only quoted ones can).
    """
    with open(path, encoding="utf-8-sig", newline="", errors="replace") as f:
        text = f.read(_SNIFF_BYTES)
    if len(text) == _SNIFF_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]  # whole lines only: a cut line would miscount fields
    best, best_score = delimiter or default, (-1.0, 0, False)
    for candidate in () if delimiter else DELIMITERS:
        rows = _sample_rows(text, candidate)
        counts = {len(r) for r in rows}
        if len(counts) != 1 or counts.pop() < 2:
            continue
        cells = [c for r in rows[1:] or rows for c in r]
        decimal = _decimal_mark(cells)
        numeric = sum(_is_number(c, decimal) for c in cells) / max(1, len(cells))
        score = (numeric, len(rows[0]), candidate == default)
        if score > best_score:
            best, best_score = candidate, score
    cells = [c for r in _sample_rows(text, best) for c in r]
    return best, _decimal_mark(cells)


def _decimal_mark(cells: list[str]) -> str:
    comma = any(_COMMA_DECIMAL.match(c) for c in cells)
    point = any(_POINT_DECIMAL.match(c) for c in cells)
    return "," if comma and not point else "."


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


def _guess_header(first: list[str], below: list[list[str]], decimal: str, where: str) -> bool:
    """True when line 1 holds names: text (not numbers) in every column that holds numbers below.

    Columns of text below (a label column) say nothing. A line 1 with numbers and missing
    values only is data (the missing value is then reported); one mixing text and numbers is refused.
    """
    n = len(first)
    numeric = [
        j
        for j in range(n)
        if below
        and all(j < len(r) and (_is_number(r[j], decimal) or _is_missing(r[j])) for r in below)
        and any(j < len(r) and _is_number(r[j], decimal) for r in below)
    ] or list(range(n))  # nothing to compare with (one line, or no numeric column): line 1 itself
    numbers = [j for j in numeric if _is_number(first[j], decimal)]
    names = [j for j in numeric if not _is_number(first[j], decimal) and not _is_missing(first[j])]
    if names and numbers:
        j, k = names[0], numbers[0]
        raise DataError(
            f"{where}: line 1 mixes text and numbers: column {j} holds {first[j]!r} but column {k} "
            f"holds the number {first[k]!r}, so it is neither clearly column names nor clearly data; "
            f"pass header=True if line 1 holds names, or header=False if it is data (then fix {first[j]!r})"
        )
    return bool(names)


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
        raise ConfigError(f"{where}: label_column {j} is out of range: the file has {n_cols} columns (0..{n_cols - 1})")
    if names is None:
        raise ConfigError(
            f"{where}: label_column '{label_column}' is not a column index and the file has no "
            f"header line; give an index 0..{n_cols - 1}, or header=True if line 1 holds names"
        )
    raise ConfigError(f"{where}: no column named '{label_column}'; the columns are {', '.join(map(repr, names))}")


def _shown(key: str | int) -> str:
    return f"column {key!r}" if isinstance(key, str) else f"column {key}"


def _bad_column(rows, lines, j: int, key: str | int, header_given_false: bool, where: str) -> DataError:
    """The error for column ``j`` of a chunk that holds a cell float() cannot read."""
    bad = [(line, row[j]) for line, row in zip(lines, rows, strict=True) if not _is_number(row[j])]
    text = [b for b in bad if not _is_missing(b[1])]
    if not text:  # only gaps ("", "NA", "n/a", ...) in a column of numbers
        line, value = bad[0]
        more = f" (and {len(bad) - 1} more in this column)" if len(bad) > 1 else ""
        what = "an empty value" if not value.strip() else f"a missing value ({value!r})"
        return DataError(f"{where}: {_shown(key)} has {what} on line {line}{more}; fill it in (impute) or drop the row")
    line, value = text[0]
    if 2 * len(text) <= len(rows) - len(bad):  # mostly numbers: a stray value, not a text column
        hint = "fix the value or drop the row"
    else:  # mostly text: a label or identifier column
        hint = f"drop it or pass label_column={key!r} (--label-column {shlex.quote(str(key))})"
    if line == 1 and header_given_false:
        hint += ", or header=True if line 1 holds column names"
    return DataError(f"{where}: {_shown(key)} is not numeric (first bad value {value!r} on line {line}); {hint}")


def _to_float(rows, lines, keys, header_given_false: bool, where: str) -> np.ndarray:
    """Convert one chunk of string rows to float64, naming the first bad cell.

    ``keys`` are the column names, or their indices in the file when there is no header.
    """
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(keys))
    except ValueError:
        pass
    for j, key in enumerate(keys):  # column by column, so the first bad column is named
        if not all(_is_number(row[j]) for row in rows):
            raise _bad_column(rows, lines, j, key, header_given_false, where)
    # numpy's parser refused what float() reads (e.g. "1_000"): fall back to float() per cell.
    return np.array([[float(v) for v in row] for row in rows], dtype=np.float64)


def _convert(chunk, lines, keys, decimal: str, header_given_false: bool, where: str) -> np.ndarray:
    """One chunk of rows -> float32, refusing values float32 cannot hold."""
    if decimal == ",":
        chunk = [[v.replace(",", ".") for v in row] for row in chunk]
    values = _to_float(chunk, lines, keys, header_given_false, where)
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


def _field_count_error(where, line, got, first_line, n_cols, delimiter, decimal) -> DataError:
    others = " or ".join(f"delimiter={d!r}" for d in DELIMITERS if d != delimiter)
    hint = f"fields are split on {DELIMITERS[delimiter]}: if the file uses another separator, pass {others}"
    if delimiter == "," and decimal == ".":
        hint += "; numbers with decimal commas (1,5) need ';' or tabs between fields, or quotes"
    return DataError(
        f"{where}: line {line} has {got} fields but line {first_line} has {n_cols}; every row needs "
        f"the same number of columns; {hint}"
    )


def read_table(
    path: str | os.PathLike,
    *,
    delimiter: str | None = None,
    default_delimiter: str = ",",
    header: bool | None = None,
    label_column: str | int | None = None,
    where: str | None = None,
) -> Table:
    """Read a delimited text table of numbers.

    Parameters
    ----------
    path : path-like
        The file, UTF-8 (a byte-order mark is skipped); blank lines are ignored.
    delimiter : {",", ";", "\\t"}, optional
        The field separator; detected from the first lines when not given (see `sniff`).
        Numbers with a decimal comma (``1,5``) are read when the separator is not a comma
        (or the fields are quoted).
    default_delimiter : str
        What detection prefers on a tie: ``","`` for ``.csv``, ``"\\t"`` for ``.tsv``.
    header : bool, optional
        Whether line 1 holds column names. By default it does when it has text in every column
        that holds numbers below; a line 1 mixing text and numbers there is refused.
    label_column : str or int, optional
        Name of the label column (or its index from 0 when there is no header); kept apart
        from the features and returned as integers, floats or text.

    Returns
    -------
    Table
        ``X`` of shape (n_samples, n_features), float32; ``y`` or None; the feature names.
    """
    where = where or str(path)
    if delimiter is not None and delimiter not in DELIMITERS:
        raise ConfigError(f"delimiter must be one of ',', ';', '\\t' (tab); got {delimiter!r}")
    delimiter, decimal = sniff(path, default_delimiter, delimiter)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = _rows(f, delimiter, where)
        first = next(rows, None)
        if first is None:
            raise DataError(f"{where}: no rows; the file holds only blank lines")
        below = list(itertools.islice(rows, _GUESS_ROWS))
        header_given_false = header is False
        if header is None:
            header = _guess_header(first[1], [r for _, r in below], decimal, where)
        n_cols = len(first[1])
        names = [v.strip() for v in first[1]] if header else None
        j_label = _label_index(label_column, names, n_cols, where)
        features = [j for j in range(n_cols) if j != j_label]
        if not features:
            raise DataError(f"{where}: no feature columns are left besides the label column")
        keys = [names[j] if names else j for j in features]  # how messages name each feature
        pending = ([] if header else [first]) + below

        blocks, labels, line_of_row = [], [], []
        chunk, chunk_lines = [], []
        for line, row in itertools.chain(pending, rows):
            if len(row) != n_cols:
                raise _field_count_error(where, line, len(row), first[0], n_cols, delimiter, decimal)
            if j_label is not None:
                labels.append(row[j_label])
            chunk.append([row[j] for j in features])
            chunk_lines.append(line)
            if len(chunk) == _ROWS_PER_CHUNK:
                blocks.append(_convert(chunk, chunk_lines, keys, decimal, header_given_false, where))
                line_of_row += chunk_lines
                chunk, chunk_lines = [], []
        if chunk:
            blocks.append(_convert(chunk, chunk_lines, keys, decimal, header_given_false, where))
            line_of_row += chunk_lines
    if not blocks:
        raise DataError(f"{where}: the header line is there but no data rows follow it")
    X = np.concatenate(blocks)
    check_finite(X, where, lambda index: f"line {line_of_row[index[0]]}, {_shown(keys[index[1]])}")
    y = _labels_array(labels) if j_label is not None else None
    return Table(X, y, tuple(str(key) for key in keys) if names else None)
