"""Data larger than memory: rows read from a memory-mapped file without mapping its pages, and
image folders decoded batch by batch. Small files stand in for large ones: the limits are lowered."""

from __future__ import annotations

import hashlib
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaelab import VAE, Autoencoder
from vaelab.data import Preprocessing, _arrays, datasets, load, read_idx
from vaelab.data import rows as training_rows
from vaelab.data._arrays import read_rows, row_chunks
from vaelab.data.images import ImageFolder, read_image_folder
from vaelab.data.rows import MappedRows
from vaelab.errors import DataError

_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def resident_kib(path: Path) -> int:
    """KiB of ``path``'s pages mapped into this process's memory (its share of RSS), from smaps."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            if _MAPPING.match(line):
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


needs_smaps = pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc/self/smaps")


def file_state(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def _idx_file(path: Path, X: np.ndarray) -> Path:
    head = struct.pack(">HBB", 0, 0x08, X.ndim) + struct.pack(f">{X.ndim}I", *X.shape)
    path.write_bytes(head + X.tobytes())
    return path


def _layouts(tmp_path: Path, rng) -> dict:
    """Memory-mapped arrays of every kind fit can meet, by name."""
    table = rng.normal(size=(50, 7)).astype(np.float32)
    np.save(tmp_path / "table.npy", table)
    images = rng.integers(0, 256, size=(40, 5, 6), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(table))
    mapped = np.load(tmp_path / "table.npy", mmap_mode="r")
    return {
        "table": mapped,
        "grey images, (n, 1, H, W) view": load(tmp_path / "images.npy").X_train,
        "slice": mapped[5:45],
        "every third row": mapped[::3],
        "IDX with a header offset": read_idx(_idx_file(tmp_path / "x-idx3-ubyte", images)),
        "Fortran order (read through the mapping)": np.load(tmp_path / "fortran.npy", mmap_mode="r"),
        "copy-on-write (read through the mapping)": np.load(tmp_path / "table.npy", mmap_mode="c"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "table",
        "grey images, (n, 1, H, W) view",
        "slice",
        "every third row",
        "IDX with a header offset",
        "Fortran order (read through the mapping)",
        "copy-on-write (read through the mapping)",
    ],
)
def test_read_rows_and_row_chunks_equal_indexing(tmp_path, name):
    rng = np.random.default_rng(0)
    X = _layouts(tmp_path, rng)[name]
    expected = np.array(X)
    for rows in (np.arange(len(X)), rng.integers(0, len(X), 25), np.array([3, 4, 5, 9, 10, 0]), np.array([], int)):
        got = read_rows(X, rows)
        assert got.dtype == X.dtype and got.shape == (len(rows), *X.shape[1:])
        np.testing.assert_array_equal(got, expected[rows])
    chunks = list(row_chunks(X, max_values=3 * int(np.prod(X.shape[1:]))))
    assert [start for start, _ in chunks] == list(range(0, len(X), 3))
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), expected)
    with pytest.raises(IndexError):
        read_rows(X, np.array([len(X)]))


@needs_smaps
def test_loading_and_reading_leave_no_page_of_the_file_resident(tmp_path, monkeypatch):
    X = np.random.default_rng(0).random((2000, 256), dtype=np.float32)  # 2 MB
    path = tmp_path / "x.npy"
    np.save(path, X)
    monkeypatch.setattr(_arrays, "CHUNK_VALUES", 50_000)  # several chunks
    mapped = load(path).X_train  # checked for NaN/inf: a full pass over the file
    np.testing.assert_array_equal(read_rows(mapped, np.arange(0, 2000, 7)), X[::7])
    assert sum(float(c.sum()) for _, c in row_chunks(mapped)) == pytest.approx(float(X.sum(dtype=np.float64)), rel=1e-5)
    assert resident_kib(path) == 0
    np.asarray(mapped[:500]).sum()  # the oracle sees pages read through the mapping
    assert resident_kib(path) > 0


def test_a_file_truncated_while_in_use_raises_data_error(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((100, 10), np.float32))
    mapped = load(path).X_train
    os.truncate(path, path.stat().st_size - 400)
    with pytest.raises(DataError, match="ends at byte"):
        read_rows(mapped, np.array([99]))


@needs_smaps
def test_fit_from_disk_matches_fit_in_memory_and_leaves_the_file_alone(tmp_path, monkeypatch, digits):
    X = digits[0] * 16 + 3  # raw values, standardised by fit (one chunked mean/std pass)
    path = tmp_path / "x.npy"
    np.save(path, X)
    before = file_state(path)
    monkeypatch.setattr(training_rows, "TRAIN_IN_MEMORY_LIMIT", 0)  # treat this small file as larger than memory
    reads = []
    monkeypatch.setattr(
        MappedRows, "__getitem__", lambda self, i, f=MappedRows.__getitem__: reads.append(len(i)) or f(self, i)
    )
    params = {
        "latent_dim": 3,
        "hidden": (32,),
        "likelihood": "gaussian",
        "preprocessing": "standardize",
        "epochs": 2,
        "batch_size": 100,
        "validation_fraction": 0.2,
        "random_state": 0,
    }

    from_disk = Autoencoder(**params).fit(load(path).X_train)
    assert reads and max(reads) <= 400  # batches and validation chunks, never the whole file
    assert resident_kib(path) == 0  # no pass of fit (checks, mean/std, range, fingerprint, codes) mapped pages
    assert file_state(path) == before
    # The autoencoder is deterministic: only the order of rows within a batch differs (file order
    # from disk), which changes sums in the last bits.
    in_memory = Autoencoder(**params).fit(X)
    for name, tensor in in_memory.module_.state_dict().items():
        torch.testing.assert_close(from_disk.module_.state_dict()[name], tensor, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(from_disk.transform(X[:50]), in_memory.transform(X[:50]), atol=1e-4)

    # A VAE draws its noise per position in the batch, so the two fits differ: close, not equal.
    disk_vae = VAE(**params).fit(load(path).X_train)
    memory_vae = VAE(**params).fit(X)
    np.testing.assert_allclose(disk_vae.history_["train"]["loss"], memory_vae.history_["train"]["loss"], rtol=0.02)
    assert resident_kib(path) == 0 and file_state(path) == before


def _image_folder(folder: Path, n: int = 40, shape=(8, 6)) -> np.ndarray:
    folder.mkdir()
    images = np.random.default_rng(1).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"img{i:03d}.png")
    return images[:, None]  # (n, 1, H, W)


def test_large_image_folder_loads_lazily_and_indexes_like_an_array(tmp_path, monkeypatch):
    images = _image_folder(tmp_path / "imgs")
    assert isinstance(load(tmp_path / "imgs").X_train, np.ndarray)  # small: decoded at once
    monkeypatch.setattr(datasets, "IN_MEMORY_LIMIT", 0)
    ds = load(tmp_path / "imgs")
    lazy = ds.X_train
    assert isinstance(lazy, ImageFolder)
    assert (lazy.shape, lazy.dtype, len(lazy), ds.sample_shape, ds.pixel_max) == (
        (40, 1, 8, 6),
        np.uint8,
        40,
        (1, 8, 6),
        255.0,
    )
    np.testing.assert_array_equal(np.asarray(lazy), images)
    np.testing.assert_array_equal(read_image_folder(tmp_path / "imgs"), images)
    np.testing.assert_array_equal(lazy[3], images[3])
    np.testing.assert_array_equal(lazy[-1], images[-1])
    np.testing.assert_array_equal(lazy[2:30:5], images[2:30:5])
    rows = np.array([7, 2, 2, 39])
    np.testing.assert_array_equal(lazy[rows], images[rows])
    np.testing.assert_array_equal(read_rows(lazy, rows), images[rows])
    with pytest.raises(IndexError):
        lazy[40]
    with pytest.raises(TypeError, match="int, a slice or a 1-D array"):
        lazy[:, 0]


def test_fit_on_a_lazy_image_folder_matches_the_decoded_array(tmp_path, monkeypatch):
    images = _image_folder(tmp_path / "imgs", n=120)
    monkeypatch.setattr(datasets, "IN_MEMORY_LIMIT", 0)
    lazy = load(tmp_path / "imgs").X_train
    decoded = []
    monkeypatch.setattr(ImageFolder, "_decode", lambda self, p, f=ImageFolder._decode: decoded.append(p) or f(self, p))
    assert Preprocessing.fit(lazy, kind="scale", pixel_max=255).pixel_max == 255  # uint8: no pass needed
    assert not decoded

    params = {
        "latent_dim": 2,
        "hidden": (16,),
        "architecture": "mlp",
        "preprocessing": "scale",
        "epochs": 2,
        "batch_size": 32,
        "validation_fraction": 0.25,
        "random_state": 0,
    }
    from_folder = Autoencoder(**params).fit(lazy)
    # Each image once per epoch, once for the run's fingerprint (every row of so small a set),
    # once for the code-mixture sample, and the 90 training rows once for the data-dependent
    # initialisation (up to 256 rows); no pass over the folder to check or scale it.
    assert len(decoded) == 2 * 120 + 120 + 120 + 90
    in_memory = Autoencoder(**params).fit(images)
    for name, tensor in in_memory.module_.state_dict().items():
        torch.testing.assert_close(from_folder.module_.state_dict()[name], tensor, atol=1e-4, rtol=1e-4)


def test_a_corrupt_image_in_a_lazy_folder_is_named_when_fit_reaches_it(tmp_path, monkeypatch):
    _image_folder(tmp_path / "imgs")
    bad = tmp_path / "imgs" / "img017.png"
    with open(bad, "r+b") as f:
        f.truncate(bad.stat().st_size // 2)  # the header still reads; the pixels do not
    monkeypatch.setattr(datasets, "IN_MEMORY_LIMIT", 0)
    lazy = load(tmp_path / "imgs").X_train
    with pytest.raises(DataError, match="img017.png is truncated or corrupted"):
        lazy[10:20]
    with pytest.raises(DataError, match="img017.png is truncated or corrupted"):
        VAE(latent_dim=2, hidden=(8,), epochs=1, preprocessing="scale", random_state=0).fit(lazy)


def test_mapped_rows_come_back_in_the_order_asked(tmp_path):
    # Labels kept beside the rows (ConditionalVAE) rely on this alignment.
    X = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.save(tmp_path / "x.npy", X)
    rows = MappedRows(np.load(tmp_path / "x.npy", mmap_mode="r"), np.array([7, 2, 9, 0, 5]), np.asarray, "cpu")
    np.testing.assert_array_equal(rows[torch.tensor([3, 0, 4, 1])].numpy(), X[[0, 7, 5, 2]])
