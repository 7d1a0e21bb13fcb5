"""Hostile data files: each is refused with one DataError naming the file, the problem and the fix,
before any large allocation (issue 15, items 5, 8, 14 and 16).

"No large allocation" is measured with tracemalloc, which sees numpy's array buffers as well as
Python objects: the peak while loading stays far below what the file claims.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import struct
import subprocess
import sys
import threading
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from vaelab.data import Preprocessing, load
from vaelab.errors import ConfigError, DataError

SRC = Path(__file__).resolve().parents[2] / "src"
SMALL = 16 << 20  # bytes: generous for a refusal, tiny next to every claim below


def refused(path, match: str, **options) -> None:
    """``load(path)`` raises a DataError matching ``match`` (and naming the file), allocating < SMALL."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=match) as info:
            load(str(path), **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value), info.value
    assert peak < SMALL, f"peak {peak} bytes while refusing {path}"


def npy_header(shape, dtype="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def idx_header(shape, code=0x08) -> bytes:
    return struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def png_header(width: int, height: int, colour_type: int = 2) -> bytes:
    """A PNG whose header claims width x height (RGB by default) and which holds no pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# -- the cases, each as (file name, how to write it, what the message must say) ------------------
def _npz_huge_claim(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", npy_header((10**12,)))  # claims 7.3 TiB, holds nothing
    assert path.stat().st_size < 400


def _npz_not_npy(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", npy_header((2, 2), "<f4") + bytes(16))
        archive.writestr("notes.txt", b"hello")


def _npz_member_garbage(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", b"this is not numpy" * 10)


def _npz_compression_bomb(path: Path) -> None:
    # An honest archive whose one member inflates past the memory budget: refused from its header.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("X.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as f:
            f.write(npy_header((1 << 20,), "<f4"))
            zeros = bytes(1 << 20)
            for _ in range(4):
                f.write(zeros)


def _idx_gz_inflates(path: Path) -> None:
    # The header claims 1000 images of 28x28 (784 KB); the stream inflates to 64 MiB.
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(idx_header((1000, 28, 28)))
        zeros = bytes(1 << 20)
        for _ in range(64):
            f.write(zeros)


def _idx_gz_huge_claim(path: Path) -> None:
    with gzip.open(path, "wb") as f:
        f.write(idx_header((10**6, 10**6, 1000)) + bytes(100))  # claims 10**15 bytes


def _idx_255_dims(path: Path) -> None:
    path.write_bytes(idx_header((1,) * 255) + b"\x00")


def _png_huge(folder: Path) -> None:
    folder.mkdir()
    (folder / "a.png").write_bytes(png_header(12000, 12000))
    (folder / "b.png").write_bytes(png_header(12000, 12000))


def _png_bomb(folder: Path) -> None:
    folder.mkdir()
    (folder / "a.png").write_bytes(png_header(30000, 30000))  # past Pillow's own bomb limit


def _csv(text: str):
    return lambda path: path.write_text(text)


CASES = {
    "npz member claiming (10**12,)": (
        "bomb.npz",
        _npz_huge_claim,
        r"member 'X.npy' claims shape \(1000000000000,\) of float64 \(7.28 TiB\) but holds 0 bytes "
        r"of data; the archive is corrupted: save it again",
    ),
    "npz member that is not .npy": (
        "mixed.npz",
        _npz_not_npy,
        r"member 'notes.txt' is not a .npy array .*rebuild the archive with numpy.savez",
    ),
    "npz member with a garbage .npy": (
        "garbage.npz",
        _npz_member_garbage,
        r"member 'X.npy' is not a valid .npy array .*save it with numpy.savez",
    ),
    "IDX.gz inflating past its header": (
        "train-images-idx3-ubyte.gz",
        _idx_gz_inflates,
        r"gzipped IDX file inflates beyond its header: header says shape \(1000, 28, 28\) of uint8 "
        r"\(766 KiB of data\), but it decompresses to more than 766 KiB; get a fresh copy",
    ),
    "IDX.gz claiming 10**15 bytes": (
        "huge-images-idx3-ubyte.gz",
        _idx_gz_huge_claim,
        r"IDX data of shape \(1000000, 1000000, 1000\) would need 909 TiB in memory, over the budget "
        r"of .*; decompress it \(gunzip\)",
    ),
    "IDX with 255 dimensions": (
        "deep-idx3-ubyte",
        _idx_255_dims,
        r"IDX header claims 255 dimensions; vaelab reads 1 to 4",
    ),
    "12000x12000 images": (
        "huge_pngs",
        _png_huge,
        r"a.png is 12000x12000 RGB pixels: one sample of 432,000,000 values, over vaelab's limit of "
        r"16,777,216 per sample; pass image_size=\(H, W\) to resize them",
    ),
    "an image past Pillow's bomb limit": (
        "bomb_png",
        _png_bomb,
        r"(would need 2.51 GiB in memory|claims more pixels than Pillow will decode)",
    ),
    "CSV whose line 1 has a gap": (
        "gap.csv",
        _csv("1,,3\n4,5,6\n7,8,9\n"),
        r"column 1 has an empty value on line 1; fill it in \(impute\) or drop the row",
    ),
    "CSV whose line 1 ends in N/A": (
        "na.csv",
        _csv("1,2,N/A\n4,5,6\n7,8,9\n"),
        r"column 2 has a missing value \('N/A'\) on line 1; fill it in \(impute\) or drop the row",
    ),
    "CSV whose line 1 mixes text and numbers": (
        "hex.csv",
        _csv("0x10,2\n3,4\n5,6\n"),
        r"line 1 mixes text and numbers: column 0 holds '0x10' but column 1 holds the number '2'.*"
        r"pass header=True if line 1 holds names, or header=False if it is data",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file_is_refused_before_any_large_allocation(tmp_path, case):
    name, write, match = CASES[case]
    path = tmp_path / name
    write(path)
    refused(path, match)


def test_npz_compression_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    from vaelab.data import _arrays

    monkeypatch.setattr(_arrays, "memory_budget", lambda: 1 << 20)  # a 1 MiB machine, for the test
    path = tmp_path / "zeros.npz"
    _npz_compression_bomb(path)
    assert path.stat().st_size < 100_000
    refused(
        path,
        r"member 'X.npy' of shape \(1048576,\) would need 4 MiB in memory, over the budget of "
        r"1 MiB .*save that array as .npy, which vaelab memory-maps",
    )


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    # Opening a FIFO for reading blocks until a writer comes: the refusal must come before.
    path = tmp_path / "data.csv"
    os.mkfifo(path)
    outcome = {}

    def attempt():
        try:
            load(str(path))
        except DataError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=20)
    if thread.is_alive():  # unblock the reader so the test process can end
        with open(path, "wb"):
            pass
        pytest.fail("load() blocked on a FIFO")
    assert outcome["error"] == (
        f"{path}: is a FIFO (named pipe), not a regular file; vaelab reads data from files it can "
        "check before reading: save the data to a file first and pass that"
    )


def test_dynamic_binarisation_without_scaling_names_the_users_parameters():
    X = np.random.default_rng(0).random((10, 3))
    with pytest.raises(ConfigError) as info:
        Preprocessing.fit(X, kind="standardize", binarize="dynamic")
    message = str(info.value)
    assert "binarize='dynamic' needs preprocessing='scale'" in message
    assert "pass preprocessing='scale' with pixel_max, or binarize='none'" in message
    assert "Preprocessing." not in message and "kind=" not in message
    with pytest.raises(ConfigError, match=r"preprocessing='auto' chose 'standardize'"):
        Preprocessing.fit(X, kind="auto", binarize="dynamic")


# -- the same files through the command line ---------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_every_hostile_file_ends_fit_in_one_line(tmp_path, capsys, case):
    # In-process (cheap): the CLI's message is the DataError's, the input and --out untouched.
    from vaelab.cli import main

    name, write, match = CASES[case]
    path = tmp_path / name
    write(path)
    before = {p: p.read_bytes() for p in [path, *path.rglob("*")] if p.is_file()}
    status = main(["fit", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("vaelab fit: error: ") and re.search(match, err), err
    assert {p: p.read_bytes() for p in before} == before and not (tmp_path / "run").exists()


CLI_CASES = ["npz member claiming (10**12,)", "IDX.gz inflating past its header"]


def _cli(tmp_path, case):
    name, write, match = CASES[case]
    path = tmp_path / name
    write(path)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "vaelab", "fit", "--data", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return result, out, match


@pytest.mark.slow
@pytest.mark.parametrize("case", CLI_CASES[:2])
def test_cli_refuses_hostile_data_in_one_line(tmp_path, case):
    # Each case costs a process start with torch's import; two show the routing, the rest are
    # the same DataError path.
    result, _, match = _cli(tmp_path, case)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("vaelab fit: error: "), result.stderr
    assert re.search(match, lines[0]), lines[0]


@pytest.mark.slow
def test_cli_leaves_no_empty_out_directory_after_bad_data(tmp_path):
    result, out, _ = _cli(tmp_path, "CSV whose line 1 has a gap")
    assert result.returncode == 2
    assert not out.exists(), "fit on bad --data left an empty --out directory behind"
