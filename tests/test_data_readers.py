"""The readers speak the user's vocabulary: CSV header, delimiter and decimal mark, column names
kept for reports, messages that name columns and suggest options that exist (issues 15 and 16)."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.data import load
from vaelab.errors import ConfigError, DataError


def read(tmp_path, text: str, name: str = "data.csv", **options):
    path = tmp_path / name
    path.write_text(text)
    return load(str(path), **options)


@pytest.mark.parametrize(
    ("text", "match"),
    [  # issue 15 item 5: each of these once lost its first row without a word
        ("1,,3\n4,5,6\n7,8,9\n", r"column 1 has an empty value on line 1"),
        ("1,2,N/A\n4,5,6\n", r"column 2 has a missing value \('N/A'\) on line 1"),
        ("0x10,2\n3,4\n", r"line 1 mixes text and numbers: column 0 holds '0x10' but column 1 holds the number '2'"),
        ("year,2020\n1,2\n", r"line 1 mixes text and numbers.*pass header=True if line 1 holds names"),
    ],
)
def test_an_ambiguous_first_line_is_refused_not_dropped(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        read(tmp_path, text)


def test_an_ambiguous_first_line_reads_when_the_user_says_what_it_is(tmp_path):
    ds = read(tmp_path, "year,2020\n1,2\n3,4\n", header=True)
    assert ds.feature_names == ("year", "2020") and ds.X_train.tolist() == [[1, 2], [3, 4]]
    ds = read(tmp_path, "5,2020\n1,2\n", header=False)
    assert ds.feature_names is None and len(ds.X_train) == 2


@pytest.mark.parametrize(
    ("text", "rows", "names"),
    [
        ("a,b\n1,2\n3,4\n", [[1, 2], [3, 4]], ("a", "b")),
        ("1,2\n3,4\n", [[1, 2], [3, 4]], None),  # all numbers: data, nothing dropped
        (",a,b\n0,1,2\n1,3,4\n", [[0, 1, 2], [1, 3, 4]], ("", "a", "b")),  # pandas' unnamed index
        ("a,label\n1,x\n2,y\n", None, ("a",)),  # a text column below says nothing about the header
        ("a\n", None, None),
    ],
)
def test_header_is_found_when_unambiguous(tmp_path, text, rows, names):
    if text == "a\n":
        with pytest.raises(DataError, match="the header line is there but no data rows follow it"):
            read(tmp_path, text)
        return
    ds = read(tmp_path, text, label_column="label" if "label" in text else None)
    if rows is not None:
        np.testing.assert_array_equal(ds.X_train, np.array(rows, np.float32))
    assert ds.feature_names == names


@pytest.mark.parametrize(
    ("text", "name", "options"),
    [
        ("a;b;c\n1.5;2;3\n4;5;6\n", "semi.csv", {}),
        ("a;b;c\n1,5;2;3\n4;5;6\n", "comma_decimal.csv", {}),  # a German/French Excel export
        ("a\tb\tc\n1.5\t2\t3\n4\t5\t6\n", "tabs.csv", {}),
        ("a,b,c\n1.5,2,3\n4,5,6\n", "commas.tsv", {}),
        ("a\tb\tc\n1,5\t2\t3\n4\t5\t6\n", "tabs_comma_decimal.tsv", {}),
        ('a,b,c\n"1,5",2,3\n4,5,6\n', "quoted_comma_decimal.csv", {}),
        ("a;b;c\n1.5;2;3\n4;5;6\n", "given.csv", {"delimiter": ";"}),
    ],
)
def test_delimiter_and_decimal_mark_are_detected(tmp_path, text, name, options):
    ds = read(tmp_path, text, name, **options)
    np.testing.assert_array_equal(ds.X_train, np.array([[1.5, 2, 3], [4, 5, 6]], np.float32))
    assert ds.feature_names == ("a", "b", "c")


def test_delimiter_option_is_checked_and_only_for_tables(tmp_path):
    with pytest.raises(ConfigError, match=r"delimiter must be one of ',', ';', '\\t' \(tab\)"):
        read(tmp_path, "a,b\n1,2\n", delimiter="|")
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    with pytest.raises(ConfigError, match=r"option delimiter=';' does not apply to this source \(npy"):
        load(str(tmp_path / "x.npy"), delimiter=";")


def test_field_count_message_names_the_separator_and_the_option(tmp_path):
    with pytest.raises(DataError) as info:
        read(tmp_path, "a,b\n1,2\n3,4,5\n")
    message = str(info.value)
    assert "line 3 has 3 fields but line 1 has 2" in message
    assert (
        "fields are split on commas: if the file uses another separator, pass delimiter=';' or delimiter='\\t'"
        in message
    )
    assert "--header" not in message and "--delimiter" not in message  # flags the CLI lacks


def test_feature_names_leave_out_the_label_column(tmp_path):
    ds = read(
        tmp_path,
        "sepal length (cm),species,petal length (cm)\n5.1,setosa,1.4\n4.9,versicolor,1.3\n",
        label_column="species",
    )
    assert ds.feature_names == ("sepal length (cm)", "petal length (cm)")
    assert list(ds.y_train) == ["setosa", "versicolor"]


@pytest.mark.parametrize(
    ("text", "options", "expected", "absent"),
    [
        # a gap in a numeric column: impute or drop, and no --label-column for a feature column
        (
            "sepal length (cm),petal length (cm)\n5.1,1.4\n4.9,n/a\n5.0,NA\n4.7,1.3\n",
            {},
            "column 'petal length (cm)' has a missing value ('n/a') on line 3 (and 1 more in this column); "
            "fill it in (impute) or drop the row",
            "--label-column",
        ),
        # a text column: that one may well be the label
        (
            "width,kind\n1,cat\n2,dog\n3,cat\n",
            {},
            "column 'kind' is not numeric (first bad value 'cat' on line 2); drop it or pass "
            "label_column='kind' (--label-column kind)",
            "header=True",
        ),
        # the flag is quoted the way a shell needs it
        ("x,class name\n1,a\n2,b\n", {}, "--label-column 'class name'", None),
        # one stray word among numbers: fix the cell, not a label column
        (
            "a,b\n1,2\n3,4\n5,oops\n6,7\n8,9\n",
            {},
            "first bad value 'oops' on line 4); fix the value or drop the row",
            "--label-column",
        ),
    ],
)
def test_bad_cells_are_named_with_the_right_advice(tmp_path, text, options, expected, absent):
    with pytest.raises(DataError) as info:
        read(tmp_path, text, **options)
    assert expected in str(info.value)
    if absent:
        assert absent not in str(info.value)


@pytest.mark.parametrize(
    ("given", "suggestion"),
    [("digit", "digits"), ("Digits", "digits"), ("fashion_mnist", "fashion-mnist"), ("fashionmnist", "fashion-mnist")],
)
def test_near_miss_names_get_a_suggestion(given, suggestion):
    with pytest.raises(DataError, match=f"did you mean '{suggestion}'\\?"):
        load(given)


def test_far_names_get_no_suggestion():
    with pytest.raises(DataError) as info:
        load("no-such-thing.csv")
    assert "did you mean" not in str(info.value) and "named data sets: digits, fashion-mnist" in str(info.value)


def test_uint8_tables_have_a_known_full_scale(tmp_path):
    np.save(tmp_path / "bytes.npy", np.arange(12, dtype=np.uint8).reshape(4, 3))
    np.save(tmp_path / "floats.npy", np.arange(12, dtype=np.float32).reshape(4, 3))
    assert load(str(tmp_path / "bytes.npy")).pixel_max == 255.0
    assert load(str(tmp_path / "floats.npy")).pixel_max is None
