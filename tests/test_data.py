"""Tests for vaelab.data: every format round-trips, every bad input gets its own error."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct

import numpy as np
import pytest
from PIL import Image

from vaelab.data import Dataset, Preprocessing, _arrays, default_preprocessing, load, read_idx
from vaelab.data.builtin import digits_split
from vaelab.errors import ConfigError, DataError


@pytest.fixture
def rng():
    """A fresh seeded generator per test, so no test depends on which ran before it."""
    return np.random.default_rng(0)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """IDX bytes written by hand from the format description (independent of read_idx)."""
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    head = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(dtype).tobytes()


def write_idx_pair(folder, rng, n=7, gz=True):
    images = rng.integers(0, 256, size=(n, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    img_path = folder / f"train-images-idx3-ubyte{suffix}"
    with opener(img_path, "wb") as f:
        f.write(idx_bytes(images))
    with opener(folder / f"train-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(idx_bytes(labels))
    return img_path, images, labels


def fails(source, match: str, error: type[Exception] = DataError, **options) -> None:
    """Loading ``source`` raises ``error`` with a message matching ``match``."""
    with pytest.raises(error, match=match):
        load(str(source), **options)


def write_pngs(folder, arrays, mode="L"):
    folder.mkdir(exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a, mode=mode).save(folder / f"img{i:02d}.png")
    return folder


# -- named data sets -----------------------------------------------------------------------
def test_digits_fixed_split():
    ds = load("digits")
    assert (len(ds.X_train), len(ds.X_test)) == (1437, 360)
    assert ds.X_train.shape[1:] == ds.sample_shape == (1, 8, 8)
    assert ds.X_train.dtype == np.uint8 and ds.X_train.max() == 16 and ds.pixel_max == 16.0
    assert len(ds.y_train) == 1437 and len(ds.y_test) == 360
    again = load("digits")
    np.testing.assert_array_equal(ds.X_test, again.X_test)
    train, test = digits_split(1797)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 1797


def test_fashion_mnist_installed():
    try:
        ds = load("fashion-mnist")
    except DataError as exc:
        pytest.fail(f"Fashion-MNIST missing: run `apt-get install dataset-fashion-mnist` ({exc})")
    assert (len(ds.X_train), len(ds.X_test)) == (60000, 10000)
    assert ds.sample_shape == (1, 28, 28) and ds.X_train.shape == (60000, 1, 28, 28)
    assert ds.X_train.dtype == np.uint8 and ds.pixel_max == 255.0
    assert set(np.unique(ds.y_test)) == set(range(10))


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
    fails("fashion-mnist", "apt-get install dataset-fashion-mnist.*--data-dir", data_dir=tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    fails("fashion-mnist", "missing train-labels-idx1-ubyte", data_dir=tmp_path)


def test_unknown_sources_and_options(tmp_path):
    fails("mnist-please", "digits, fashion-mnist.*.npy.*.csv")
    (tmp_path / "data.xlsx").write_bytes(b"x")
    fails(tmp_path / "data.xlsx", "unknown file type '.xlsx'")
    fails("digits", "key='X' does not apply", error=ConfigError, key="X")
    fails("fashion-mnist", "header=True does not apply", error=ConfigError, header=True)


# -- .npy / .npz ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "dtype", "sample_shape", "pixel_max"),
    [
        ((6, 3), np.float32, (3,), None),
        ((6, 4, 5), np.uint8, (1, 4, 5), 255.0),
        ((6, 3, 4, 5), np.uint8, (3, 4, 5), 255.0),
        ((6, 4, 5), np.float64, (1, 4, 5), 1.0),
    ],
)
def test_npy_round_trip_memory_mapped(rng, tmp_path, shape, dtype, sample_shape, pixel_max):
    X = (rng.random(shape) * (255 if dtype == np.uint8 else 1)).astype(dtype)
    path = tmp_path / "x.npy"
    np.save(path, X)
    ds = load(str(path))
    assert isinstance(ds.X_train, np.memmap) and not ds.X_train.flags.writeable
    assert ds.sample_shape == sample_shape and ds.pixel_max == pixel_max
    np.testing.assert_array_equal(ds.X_train.reshape(shape), X)
    assert ds.y_train is None and ds.X_test is None and ds.y_test is None and ds.name == str(path)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((0, 3)), "contains no samples"),
        (np.zeros(5), r"shape \(5,\).*reshape it to \(n_samples, 1\)"),
        (np.zeros((2, 3, 4, 5, 6)), "not a set of samples"),
        (np.zeros((4, 8, 8, 3), np.uint8), r"channels-last.*transpose\(0, 3, 1, 2\)"),
        (np.array([[1 + 2j, 3]]), "complex numbers"),
        (np.array([["a", "b"]]), "values are text"),
        (np.array([[1, None]], dtype=object), "values are Python objects"),
        (np.array([[1.0, 2.0], [np.nan, 3.0], [np.inf, np.nan]]), r"3 NaN/inf values \(first at row 1, column 0"),
        (np.array([[1.0], [1e300]]), "too large for float32"),
    ],
)
def test_npy_bad_arrays(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    fails(tmp_path / "bad.npy", match)


def test_npy_corrupted_truncated_and_empty(tmp_path):
    path = tmp_path / "t.npy"
    np.save(path, np.ones((100, 10)))
    path.write_bytes(path.read_bytes()[:-80])
    fails(path, "t.npy: .npy file is truncated")
    (tmp_path / "junk.npy").write_bytes(b"this is not numpy")
    fails(tmp_path / "junk.npy", "junk.npy: not a valid .npy file")
    (tmp_path / "empty.npy").write_bytes(b"")
    fails(tmp_path / "empty.npy", "empty.npy: the file is empty")


def test_npz_keys_and_labels(rng, tmp_path):
    X, y = rng.random((5, 3)).astype(np.float32), np.arange(5)
    np.savez(tmp_path / "one.npz", X)
    np.testing.assert_array_equal(load(str(tmp_path / "one.npz")).X_train, X)
    np.savez(tmp_path / "xy.npz", X=X, y=y)
    ds = load(str(tmp_path / "xy.npz"))
    assert np.array_equal(ds.X_train, X) and np.array_equal(ds.y_train, y)
    np.savez(tmp_path / "many.npz", X=X, Z=X, target=y)
    fails(tmp_path / "many.npz", "holds arrays X, Z, target; pass key=NAME")
    np.testing.assert_array_equal(load(str(tmp_path / "many.npz"), key="Z", label_column="target").y_train, y)
    fails(tmp_path / "many.npz", "no array named 'W'", error=ConfigError, key="W")
    np.savez(tmp_path / "short.npz", X=np.ones((5, 3)), labels=np.arange(4))
    fails(tmp_path / "short.npz", "4 labels for 5 samples")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 broken zip")
    fails(tmp_path / "bad.npz", "bad.npz: not a valid .npz file")


# -- CSV / TSV -----------------------------------------------------------------------------
def test_csv_tsv_round_trips(rng, tmp_path):
    (tmp_path / "h.csv").write_text('a,label,b\n1,cat,2.5\n\n3,dog,"4"\n')  # header, blank line, quotes
    ds = load(str(tmp_path / "h.csv"), label_column="label")
    np.testing.assert_array_equal(ds.X_train, np.array([[1, 2.5], [3, 4]], np.float32))
    assert ds.X_train.dtype == np.float32 and list(ds.y_train) == ["cat", "dog"]
    assert ds.sample_shape == (2,) and ds.pixel_max is None
    (tmp_path / "n.csv").write_text("1,2,0\n3,4,1\n")  # no header: label by index
    ds = load(str(tmp_path / "n.csv"), label_column=2)
    np.testing.assert_array_equal(ds.X_train, [[1, 2], [3, 4]])
    assert ds.y_train.dtype == np.int64 and list(ds.y_train) == [0, 1]
    np.testing.assert_array_equal(load(str(tmp_path / "n.csv")).X_train, [[1, 2, 0], [3, 4, 1]])
    X = rng.random((4, 3)).astype(np.float32)
    rows = "".join("\t".join(repr(float(v)) for v in row) + "\n" for row in X)
    (tmp_path / "t.tsv").write_text("x\ty\tz\n" + rows)
    np.testing.assert_array_equal(load(str(tmp_path / "t.tsv")).X_train, X)


@pytest.mark.parametrize(
    ("text", "options", "error", "match"),
    [
        (
            "a,colour\n1,red\n2,blue\n",
            {},
            DataError,
            r"column 'colour' is not numeric \(first bad value 'red' on line 2\); drop it or pass "
            r"label_column='colour' \(--label-column colour\)",
        ),
        ("a,b\n1,2\n3\n", {}, DataError, "line 3 has 1 fields but line 1 has 2"),
        ("a,b\n1,\n", {}, DataError, "column 'b' has an empty value on line 2"),
        ("a,b\n1,nan\ninf,2\n", {}, DataError, r"2 NaN/inf values \(first at line 2, column 'b'\)"),
        ("a,b\n", {}, DataError, "no data rows"),
        ("\n\n", {}, DataError, "only blank lines"),
        ("a,b\n1,2\n", {"header": False}, DataError, "header=True"),
        ("a,b\n1,2\n", {"label_column": "c"}, ConfigError, "no column named 'c'; the columns are 'a', 'b'"),
        ("1,2\n", {"label_column": 5}, ConfigError, "label_column 5 is out of range"),
        ("a\n1\n", {"label_column": "a"}, DataError, "no feature columns"),
        ("1,1e39\n", {}, DataError, "too large for float32"),
    ],
)
def test_csv_errors(tmp_path, text, options, error, match):
    (tmp_path / "data.csv").write_text(text)
    fails(tmp_path / "data.csv", match, error, **options)


def test_csv_nan_is_found_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(_arrays, "CHUNK_VALUES", 3)  # many small chunks
    path = tmp_path / "data.csv"
    path.write_text("a,b\n" + "1,2\n" * 10 + "5,nan\n")
    fails(path, "1 NaN/inf value \\(first at line 12, column 'b'\\)")


# -- IDX -----------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
def test_idx_pair_round_trip(rng, tmp_path, gz):
    path, images, labels = write_idx_pair(tmp_path, rng, gz=gz)
    ds = load(str(path))
    assert ds.sample_shape == (1, 5, 4) and ds.pixel_max == 255.0
    np.testing.assert_array_equal(ds.X_train[:, 0], images)
    np.testing.assert_array_equal(ds.y_train, labels)


@pytest.mark.parametrize(
    ("code", "X"), [(0x0D, np.linspace(-2, 3, 12).reshape(3, 4)), (0x0C, np.arange(6).reshape(2, 3))]
)
def test_idx_other_dtypes(tmp_path, code, X):
    (tmp_path / "f.idx").write_bytes(idx_bytes(X, code))
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), X.astype(np.float32 if code == 0x0D else int))


def test_idx_corrupted(tmp_path):
    good = idx_bytes(np.zeros((4, 3, 3), np.uint8))
    (tmp_path / "short-ubyte").write_bytes(good[:-5])
    fails(tmp_path / "short-ubyte", "short-ubyte: IDX file is truncated")
    (tmp_path / "long-ubyte").write_bytes(good + b"\0")
    fails(tmp_path / "long-ubyte", "extra bytes")
    (tmp_path / "magic-ubyte").write_bytes(b"\x01\x02" + good[2:])
    fails(tmp_path / "magic-ubyte", "not an IDX file")
    (tmp_path / "cut-ubyte.gz").write_bytes(gzip.compress(good)[:-10])
    fails(tmp_path / "cut-ubyte.gz", "gzip data is corrupted or truncated")
    (tmp_path / "x-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((4, 2, 2), np.uint8)))
    (tmp_path / "x-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    fails(tmp_path / "x-images-idx3-ubyte", "3 labels for 4 samples")


# -- image folders -------------------------------------------------------------------------
def test_image_folder_grey_and_rgb(rng, tmp_path):
    grey = rng.integers(0, 256, size=(3, 6, 5), dtype=np.uint8)
    ds = load(str(write_pngs(tmp_path / "grey", grey)))
    assert ds.sample_shape == (1, 6, 5) and ds.pixel_max == 255.0 and ds.X_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.X_train[:, 0], grey)
    rgb = rng.integers(0, 256, size=(2, 6, 5, 3), dtype=np.uint8)
    ds = load(str(write_pngs(tmp_path / "rgb", rgb, mode="RGB")))
    np.testing.assert_array_equal(ds.X_train, rgb.transpose(0, 3, 1, 2))
    Image.fromarray(rgb[0], "RGB").save(tmp_path / "rgb" / "photo.jpg")
    assert load(str(tmp_path / "rgb")).X_train.shape == (3, 3, 6, 5)


def test_image_folder_mixed_sizes_and_resize(tmp_path):
    folder = write_pngs(tmp_path / "imgs", [np.zeros((6, 5), np.uint8)] * 3)
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(folder / "odd.png")
    fails(folder, r"most are 6x5 grey, but odd.png is 9x9 grey.*image_size")
    assert load(str(folder), image_size=(4, 3)).X_train.shape == (4, 1, 4, 3)
    fails(folder, "image_size must be", error=ConfigError, image_size=(0, 3))


def test_image_folder_mixed_modes_and_bad_files(tmp_path):
    folder = write_pngs(tmp_path / "imgs", [np.zeros((6, 5), np.uint8)] * 2)
    Image.fromarray(np.zeros((6, 5, 3), np.uint8), "RGB").save(folder / "colour.png")
    fails(folder, "colour.png is 6x5 RGB; convert them all to one mode")
    (folder / "colour.png").unlink()
    Image.fromarray(np.zeros((6, 5, 4), np.uint8), "RGBA").save(folder / "alpha.png")
    fails(folder, "alpha.png has Pillow mode 'RGBA'")
    (folder / "alpha.png").write_bytes(b"not a png")
    fails(folder, "alpha.png is not a readable image")
    (tmp_path / "notes.txt").write_text("hi")
    fails(tmp_path, r"no images \(.png, .jpg, .jpeg\) directly in this folder \(it has subfolders imgs")


# -- user files are never modified ---------------------------------------------------------
def test_files_unchanged_after_loading(rng, tmp_path):
    np.save(tmp_path / "a.npy", rng.random((4, 3)))
    np.savez(tmp_path / "b.npz", X=rng.random((4, 3)), y=np.arange(4))
    (tmp_path / "c.csv").write_text("a,b\n1,2\n3,4\n")
    write_idx_pair(tmp_path, rng)
    write_pngs(tmp_path / "imgs", rng.integers(0, 256, size=(2, 4, 4), dtype=np.uint8))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    before = {p: (sha256(p), p.stat().st_mtime_ns) for p in files}
    for source in ["a.npy", "b.npz", "c.csv", "train-images-idx3-ubyte.gz", "imgs"]:
        ds = load(str(tmp_path / source))
        Preprocessing.fit(ds.X_train, kind="standardize").transform(ds.X_train)
    assert {p: (sha256(p), p.stat().st_mtime_ns) for p in files} == before


# -- preprocessing -------------------------------------------------------------------------
def test_default_preprocessing():
    assert default_preprocessing(load("digits")) == "scale"
    table = Dataset("t", np.zeros((2, 3), np.float32), None, None, None, (3,), None)
    assert default_preprocessing(table) == "standardize"


@pytest.mark.parametrize("kind", ["none", "scale", "standardize"])
def test_preprocessing_round_trip(rng, kind):
    X = rng.integers(0, 256, size=(50, 1, 4, 4)).astype(np.uint8)
    X[:, 0, 0, 0] = 7  # a constant feature must not divide by zero
    p = Preprocessing.fit(X, kind=kind, pixel_max=255.0)
    Z = p.transform(X)
    assert Z.dtype == np.float32 and Z.shape == X.shape and np.isfinite(Z).all()
    np.testing.assert_allclose(p.inverse_transform(Z), X, rtol=1e-5, atol=1e-4)
    again = Preprocessing.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p
    np.testing.assert_array_equal(again.transform(X), Z)


def test_standardize_matches_numpy_in_chunks(rng, monkeypatch):
    X = rng.normal(1000.0, 3.0, size=(101, 7))
    monkeypatch.setattr(_arrays, "CHUNK_VALUES", 20)
    p = Preprocessing.fit(X, kind="standardize")
    np.testing.assert_allclose(p.mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(p.std, X.std(axis=0), rtol=1e-9)
    Z = p.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-4)


def test_transform_never_modifies_input_and_reads_memmap_slices(rng, tmp_path):
    X = rng.random((20, 3)).astype(np.float32)
    kept = X.copy()
    p = Preprocessing.fit(X, kind="standardize")
    p.transform(X)
    p.inverse_transform(X)
    np.testing.assert_array_equal(X, kept)
    np.save(tmp_path / "x.npy", X)
    mm = load(str(tmp_path / "x.npy")).X_train
    np.testing.assert_array_equal(p.transform(mm[5:9]), p.transform(X)[5:9])
    with pytest.raises(DataError, match="fitted on 3"):
        p.transform(np.zeros((2, 4)))


@pytest.mark.parametrize(
    ("n", "d", "loc", "scale"),
    [(1, 1, 0.0, 1.0), (2, 5, -1e3, 1e-3), (30, 6, 1e3, 1e3), (7, 2, 0.5, 0.01), (13, 3, -7.0, 50.0)],
)
def test_standardize_round_trip_many_scales(n, d, loc, scale):
    X = np.random.default_rng(n * 7 + d).normal(loc, scale, size=(n, d)).astype(np.float32)
    p = Preprocessing.fit(X, kind="standardize")
    np.testing.assert_allclose(p.inverse_transform(p.transform(X)), X, rtol=1e-4, atol=1e-3 * scale)


def test_binarize_threshold_static_dynamic(rng):
    X = rng.integers(0, 256, size=(400, 30)).astype(np.uint8)
    t = Preprocessing.fit(X, kind="scale", pixel_max=255, binarize="threshold", threshold=0.25)
    np.testing.assert_array_equal(t.transform(X), (X / 255 > 0.25).astype(np.float32))
    s = Preprocessing.fit(X, kind="scale", pixel_max=255, binarize="static", seed=3)
    B = s.transform(X)
    assert set(np.unique(B)) <= {0.0, 1.0}
    assert abs(B.mean() - (X / 255).mean()) < 0.01  # a Bernoulli draw with p = x / 255
    # One fixed draw per example: same in any batch and order, different with another seed.
    np.testing.assert_array_equal(s.transform(X[100:150][::-1]), B[100:150][::-1])
    other = Preprocessing.fit(X, kind="scale", pixel_max=255, binarize="static", seed=4)
    assert not np.array_equal(other.transform(X), B)
    dyn = Preprocessing.fit(X, kind="scale", pixel_max=255, binarize="dynamic")
    np.testing.assert_allclose(dyn.transform(X), X / 255, rtol=1e-6)


@pytest.mark.parametrize(
    ("fit_args", "error", "match"),
    [
        ({"kind": "whiten"}, ConfigError, "preprocessing must be one of 'auto', 'none', 'scale', 'standardize'"),
        ({"kind": "scale"}, ConfigError, "preprocessing='scale' needs pixel_max"),
        ({"kind": "scale", "pixel_max": 10.0}, DataError, r"values span \[0, 255\]"),
        (
            {"kind": "standardize", "binarize": "static"},
            ConfigError,
            r"binarize='static' needs preprocessing='scale' .* but preprocessing='standardize'; pass "
            r"preprocessing='scale' with pixel_max, or binarize='none'",
        ),
        ({"kind": "scale", "pixel_max": 255, "binarize": "maybe"}, ConfigError, "binarize must be one of"),
        ({"kind": "scale", "pixel_max": 255, "threshold": 1.5}, ConfigError, "Preprocessing.threshold"),
    ],
)
def test_preprocessing_fit_errors(fit_args, error, match):
    X = np.array([[0, 255], [3, 4]], dtype=np.uint8)
    with pytest.raises(error, match=match):
        Preprocessing.fit(X, **fit_args)


@pytest.mark.parametrize(
    ("kind", "change", "match"),
    [
        ("scale", {"kind": "zca"}, "Preprocessing.kind"),
        ("scale", {"pixel_max": -1}, "Preprocessing.pixel_max"),
        ("scale", {"pixel_max": "255"}, "Preprocessing.pixel_max"),
        ("scale", {"mean": [0.0, 1.0]}, "Preprocessing.mean must be None"),
        ("scale", {"seed": -2}, "Preprocessing.seed"),
        ("scale", {"colour": 1}, r"unknown field\(s\) \['colour'\]"),
        ("standardize", {"std": [1.0]}, "Preprocessing.std must be as long as mean"),
        ("standardize", {"std": [1.0, 0.0]}, "Preprocessing.std must be all positive"),
        ("standardize", {"mean": [1.0, float("nan")]}, "Preprocessing.mean must be a list of finite numbers"),
    ],
)
def test_from_dict_names_the_bad_field(kind, change, match):
    d = Preprocessing.fit(np.arange(6.0).reshape(3, 2), kind=kind, pixel_max=10.0).to_dict()
    with pytest.raises(ConfigError, match=match):
        Preprocessing.from_dict({**d, **change})
    with pytest.raises(ConfigError, match="must be a dict"):
        Preprocessing.from_dict([1, 2])
